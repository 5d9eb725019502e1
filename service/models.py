"""Request and response models: the source of the OpenAPI document (:mod:`service.openapi`).

``/create`` is checked by :func:`service.fields.check_order`, plain Python with the same
field checks, so that an instance taking orders never loads pydantic (~9 MB each, in a
fleet of hundreds); ``tests/test_models.py`` holds the model and that check to the same
answer for every order, valid or not.

Each field's rule and its schema come from :mod:`service.fields`. The order model is built
per instance (:func:`order_model`): the workshop it serves, its ``MAX_PRODUCT_AMOUNT``
and whether it has a default ERP login are part of what a valid order is, and so of the
published schema. Values may arrive as strings or numbers (``"product_amount": "5"`` or
``5``); each is normalised to the string the ERP is given. Unknown fields are ignored, so
OilMat can add fields without breaking an older bridge.
"""

from functools import lru_cache
from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, WithJsonSchema, create_model

from service import batch, fields
from orders.status import OrderStatus


def _rule(check, schema):
    """A field type checked by ``check`` (from :mod:`service.fields`) and published as
    ``schema``: pydantic's own coercion is left out, so nothing is accepted that the
    schema does not allow, and every refusal names the rule."""
    return Annotated[Any, PlainValidator(check), WithJsonSchema(schema)]


Identifier = _rule(fields.identifier, fields.IDENTIFIER_SCHEMA)
UniqueId = _rule(fields.uniqueid, fields.UNIQUEID_SCHEMA)
Username = _rule(fields.username, fields.USERNAME_SCHEMA)
Password = _rule(fields.password, fields.PASSWORD_SCHEMA)


class CreateOrder(BaseModel):
    """``POST /create``: one pumped-oil order to become one line on a worksheet.

    The workshop and amount rules depend on the instance; see :func:`order_model`.
    """

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={"example": {
            "workshop": "Bennys Auto", "worksheet": "558", "product_nr": "10",
            "product_amount": "5", "uniqueid": "pump-2026-0001",
            "username": "admin", "password": "secret"}},
    )

    workshop: str = Field(description="Must be the workshop this instance serves.")
    worksheet: Identifier = Field(description="Worksheet number in the ERP.")
    product_nr: Identifier = Field(description="Product number in the ERP.")
    product_amount: Any = Field(description="Litres: more than 0, at most 3 decimals.")
    uniqueid: UniqueId = Field(description="OilMat's id of the pump event; the idempotency key.")
    username: Optional[Username] = Field(
        None, description="ERP login; the instance's ERP_USERNAME when absent.")
    password: Optional[Password] = Field(
        None, description="ERP password; stored encrypted, never returned.")


def order_model(settings):
    """:returns: the :class:`CreateOrder` model of the instance with these settings"""
    return _order_model(*fields.order_rules(settings))


@lru_cache(maxsize=16)
def _order_model(workshop, max_amount, login_required):
    Workshop = _rule(fields.workshop(workshop), {"type": "string", "const": workshop})
    Amount = _rule(lambda value: fields.parse_amount(value, max_amount),
                   fields.amount_schema(max_amount))
    amount_text = fields.format_amount(max_amount)
    changes = {
        "workshop": (Workshop, Field(description=f"The workshop this instance serves: "
                                                 f"{workshop!r}.")),
        "product_amount": (Amount, Field(description=(
            f"Litres, more than 0 and at most {amount_text} (MAX_PRODUCT_AMOUNT), at most "
            "3 decimals: a JSON number, or a string of ASCII digits with one '.' or ',' "
            "as decimal separator (5, 2.5, \"4,7\")."))),
    }
    if login_required:
        changes["username"] = (Username, Field(
            description="ERP login: required, this instance has no ERP_USERNAME."))
    return create_model("CreateOrder", __base__=CreateOrder, **changes)


class HistoryEntry(BaseModel):
    status: OrderStatus
    at: str
    reason_code: Optional[str] = None
    reason_text: Optional[str] = None
    note: Optional[str] = Field(None, description="An operator's note (PUT /retry, /resolve).")


class OrderRecord(BaseModel):
    """An order as ``/get_order_status`` and ``/queue`` show it. Never any credential."""

    uniqueid: str
    worksheet: str
    product_nr: str
    product_amount: str
    status: OrderStatus
    reason_code: Optional[str] = Field(
        None, description="When status is error (or resolved: the error's); while "
                          "processing, the last transient reason.")
    reason_text: Optional[str] = None
    attempts: int = Field(description="Tries so far; from 0 again after PUT /retry.")
    created_at: str
    updated_at: str
    history: Optional[list[HistoryEntry]] = None
    cursor: Optional[int] = Field(None, description="GET /orders: its place, for `after`.")


class _Page(BaseModel):
    """What every page of a listing ends with: where to go on from."""

    next: int = Field(description="The cursor to ask after next (the last one returned).")
    more: bool = Field(description="More match after this page.")


class OrderPage(_Page):
    """A page of ``GET /orders``."""

    orders: list[OrderRecord]


class Artifact(BaseModel):
    name: str = Field(description="<stamp>_<uniqueid>_<reason_code>.png or .html")
    kind: str = Field(description="screenshot (PNG) or page (the page's HTML, scrubbed "
                                  "of secrets)")
    reason_code: str
    at: str = Field(description="When the failure was saved (ISO 8601, UTC).")
    bytes: int


class ArtifactList(BaseModel):
    uniqueid: str
    artifacts: list[Artifact]


class CreateAccepted(BaseModel):
    uniqueid: str
    status: OrderStatus


class QueueListing(BaseModel):
    length: int
    tasks: list[OrderRecord]


class WebhookState(BaseModel):
    """The webhook as ``/alive`` shows it (never its URL or secret)."""

    state: str = Field(description="off (no WEBHOOK_URL), enabled, or disabled (it answered "
                                   "410; until WEBHOOK_URL or WEBHOOK_SECRET changes).")
    backlog: int = Field(description="Events not delivered yet.")
    failures: int = Field(description="Failed tries of the next event.")
    next_try: Optional[str] = Field(None, description="When it is tried again, while failing.")


class ErpHealth(BaseModel):
    """The ERP's screens as the worker's last probe found them (workers/probing.py)."""

    state: str = Field(description="ok, changed (a screen is not as the integration knows "
                                   "it: detail names it), unreachable, login_failed, or "
                                   "unknown (not checked yet: detail says why).")
    checked_at: Optional[str] = Field(None, description="When it was last checked (UTC).")
    detail: str = Field(description="What was checked, or what is missing or different where.")
    checked: list[str] = Field(default_factory=list,
                               description="The screens that passed, in the order checked.")
    artifacts: list[str] = Field(default_factory=list,
                                 description="Screenshot and page saved for a changed screen.")
    held: bool = Field(description="Orders are held (placed, no attempt spent) because a "
                                   "screen changed; they are worked once a probe passes or "
                                   "after PUT /start_worker.")
    held_since: Optional[str] = None
    held_for: Optional[str] = Field(None, description="What the hold began with.")


class Alive(BaseModel):
    api: str = Field(description="Always 'running' when it answers.")
    worker: str = Field(description="running, paused (running, but its files cannot be "
                                    "written: storage says why), stopping or stopped.")
    workshop: str
    queue_length: Optional[int] = Field(
        description="Orders placed or processing; null when the records cannot be read.")
    current_orders: list[str] = Field(default_factory=list,
                                      description="uniqueids of the orders in hand.")
    last_success: Optional[str] = None
    last_error: Optional[dict] = None
    storage: str = Field("ok", description="'ok', or why the order records or the queue "
                                           "cannot be used (a full disk, damaged records).")
    webhook: Optional[WebhookState] = Field(None, description="null when the records cannot be read.")
    repairs: Optional[int] = Field(
        None, description="Orders created after the read-back found their line duplicated, "
                          "wrong or missing and repaired it; null when the records cannot "
                          "be read.")
    failed: Optional[int] = Field(
        None, description="Orders in error, waiting for an operator (PUT /retry or "
                          "/resolve); null when the records cannot be read.")
    browser: Optional[str] = Field(
        None, description="The worker's browser: none, starting, waiting (for a slot of "
                          "the browser pool), in_use or idle.")
    erp: Optional[ErpHealth] = None


class WorkerChange(BaseModel):
    worker_before: str
    worker_after: str
    resumed: bool = Field(False, description="Whether orders held for a changed ERP screen "
                                             "are worked again.")


class KillAnswer(BaseModel):
    was_running: bool
    worker_was_running: bool
    message: str


class Cleared(BaseModel):
    cleared: int
    uniqueids: list[str]


class Error(BaseModel):
    """The one shape of every error answer."""

    error: str = Field(description="Machine-readable error code.")
    message: str
    fields: Optional[dict[str, str]] = Field(None, description="Field name -> what is wrong.")


# -- turning pydantic's errors into the public error shape --------------------------

def field_errors(validation_error):
    """:returns: ``{field: reason}`` for a :class:`pydantic.ValidationError`, one reason a field"""
    found = {}
    for err in validation_error.errors(include_url=False):
        name = str(err["loc"][0]) if err["loc"] else "body"
        if err["type"] == "missing":
            found.setdefault(name, "is required")
        else:  # every field is checked by service.fields, whose ValueError names the rule
            found.setdefault(name, str(err.get("ctx", {}).get("error", err["msg"])))
    return found


class Event(BaseModel):
    """One status change of an order: a feed item, and the body of a webhook delivery."""

    cursor: int = Field(description="Its place in the feed; only grows.")
    id: str = Field(description="evt_<hex>: the idempotency key (the webhook-id header).")
    type: str = Field(description="order.placed, order.processing, order.retrying, "
                                  "order.created, order.error, order.note, order.<status>.")
    workshop: str
    uniqueid: str
    status: OrderStatus
    reason_code: Optional[str] = None
    reason_text: Optional[str] = None
    note: Optional[str] = None
    attempts: int
    at: str = Field(description="When the change happened (ISO 8601, UTC).")


class EventPage(_Page):
    """A page of ``GET /events``."""

    events: list[Event]


class EventAck(BaseModel):
    acked: int = Field(description="Every event up to this cursor is acknowledged.")


# -- a batch (service/batch.py) -----------------------------------------------------

_ITEM_DESCRIPTION = (
    "An order as CreateOrder describes it. Each is checked on its own: one that breaks a "
    "rule fails alone (result 'failed' with its fields), the others are stored.")


def batch_model(order_schema_ref):
    """:returns: the request model of a batch whose items document ``order_schema_ref``

    The items are published as *an order, or any other object*: an invalid order does
    not make the request invalid, it fails on its own (so the document says exactly
    what the instance accepts); the reference shows a client what an order is.
    """
    item = Annotated[dict[str, Any], WithJsonSchema({
        "anyOf": [{"$ref": order_schema_ref}, {"type": "object"}],
        "description": _ITEM_DESCRIPTION})]

    class CreateBatch(BaseModel):
        """``POST /create`` with several orders, stored in one transaction."""

        orders: list[item] = Field(min_length=1, max_length=batch.MAX_BATCH_ORDERS, description=(
            f"1 to {batch.MAX_BATCH_ORDERS} orders; a body with 'orders' is a batch."))

    return CreateBatch


class BatchCounts(BaseModel):
    placed: int
    existed: int
    failed: int


class BatchResult(BaseModel):
    """What became of one order of a batch."""

    index: int = Field(description="Its place in the request's 'orders', from 0.")
    uniqueid: Optional[str] = Field(description="null when it has no valid uniqueid.")
    result: Literal["placed", "existed", "failed"]
    status: Optional[OrderStatus] = Field(
        None, description="placed or existed: the order's current status.")
    error: Optional[Literal["validation_failed", "duplicate_uniqueid"]] = None
    message: Optional[str] = None
    fields: Optional[dict[str, str]] = Field(None, description="Field name -> what is wrong.")


class BatchAnswer(BaseModel):
    """The answer to a batch: one result per order, in request order."""

    counts: BatchCounts
    results: list[BatchResult]
