"""Request and response models. They validate ``/create`` and they are the source of the
OpenAPI document (:mod:`bridge.openapi`), so the two cannot drift apart.

Values may arrive as strings or numbers (``"product_amount": "5"`` or ``5``); each is
normalised to the string the ERP is given. Unknown fields are ignored, so OilMat can
add fields without breaking an older bridge.
"""

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Optional, Union

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, StrictFloat, StrictInt,
                      StrictStr)

from bridge.status import OrderStatus

_IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,31}$")
_UNIQUEID = re.compile(r"^[\x21-\x7e]{1,128}$")  # printable ASCII, no spaces
MAX_AMOUNT = Decimal("100000")
MAX_DECIMALS = 3


def _identifier(value):
    text = str(value).strip()
    if not _IDENTIFIER.match(text):
        raise ValueError("must be 1-32 letters, digits or . _ / - (starting with a letter or digit)")
    return text


def _uniqueid(value):
    text = str(value).strip()
    if not _UNIQUEID.match(text):
        raise ValueError("must be 1-128 printable characters without spaces")
    return text


def _amount(value):
    if isinstance(value, float) and value != value:  # NaN
        raise ValueError("must be a positive number like 5 or 2.5")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError("must be a positive number like 5 or 2.5") from None
    if not amount.is_finite() or amount <= 0:
        raise ValueError("must be a positive number like 5 or 2.5")
    if amount > MAX_AMOUNT:
        raise ValueError(f"must not exceed {MAX_AMOUNT}")
    if amount != amount.quantize(Decimal(1).scaleb(-MAX_DECIMALS)):
        raise ValueError(f"must have at most {MAX_DECIMALS} decimals")
    normal = amount.normalize()
    # normalize() turns 100 into 1E+2; the ERP wants plain digits
    return format(normal, "f")


Identifier = Annotated[Union[StrictStr, StrictInt], AfterValidator(_identifier)]
UniqueId = Annotated[Union[StrictStr, StrictInt], AfterValidator(_uniqueid)]
Amount = Annotated[Union[StrictStr, StrictInt, StrictFloat], AfterValidator(_amount)]


class CreateOrder(BaseModel):
    """``POST /create``: one pumped-oil order to become one line on a worksheet."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra={"example": {
            "workshop": "Bennys Auto", "worksheet": "558", "product_nr": "10",
            "product_amount": "5", "uniqueid": "pump-2026-0001",
            "username": "admin", "password": "secret"}},
    )

    workshop: StrictStr = Field(min_length=1, max_length=200,
                                description="Must be the workshop this instance serves.")
    worksheet: Identifier = Field(description="Worksheet number in the ERP.")
    product_nr: Identifier = Field(description="Product number in the ERP.")
    product_amount: Amount = Field(description="Positive amount (litres), at most 3 decimals.")
    uniqueid: UniqueId = Field(description="OilMat's id of the pump event; the idempotency key.")
    username: Optional[StrictStr] = Field(
        None, min_length=1, max_length=200,
        description="ERP login; the instance's ERP_USERNAME when absent.")
    password: Optional[StrictStr] = Field(
        None, max_length=200, json_schema_extra={"writeOnly": True},
        description="ERP password; stored encrypted, never returned.")


class HistoryEntry(BaseModel):
    status: OrderStatus
    at: str
    reason_code: Optional[str] = None
    reason_text: Optional[str] = None


class OrderRecord(BaseModel):
    """An order as ``/get_order_status`` and ``/queue`` show it. Never any credential."""

    uniqueid: str
    worksheet: str
    product_nr: str
    product_amount: str
    status: OrderStatus
    reason_code: Optional[str] = Field(
        None, description="When status is error; while processing, the last transient reason.")
    reason_text: Optional[str] = None
    attempts: int
    created_at: str
    updated_at: str
    history: Optional[list[HistoryEntry]] = None


class CreateAccepted(BaseModel):
    uniqueid: str
    status: OrderStatus


class QueueListing(BaseModel):
    length: int
    tasks: list[OrderRecord]


class Alive(BaseModel):
    api: str = Field(description="Always 'running' when it answers.")
    worker: str = Field(description="running, stopping or stopped.")
    workshop: str
    queue_length: Optional[int] = Field(
        description="Orders placed or processing; null when the records cannot be read.")
    current_orders: list[str] = Field(default_factory=list,
                                      description="uniqueids of the orders in hand.")
    last_success: Optional[str] = None
    last_error: Optional[dict] = None
    storage: str = Field("ok", description="'ok', or why the order records cannot be used.")


class WorkerChange(BaseModel):
    worker_before: str
    worker_after: str


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

_TYPE_HINTS = {
    "workshop": "must be a string",
    "username": "must be a string",
    "password": "must be a string",
    "worksheet": "must be a string or a whole number",
    "product_nr": "must be a string or a whole number",
    "uniqueid": "must be a string or a whole number",
    "product_amount": "must be a positive number like 5 or 2.5",
}


def field_errors(validation_error):
    """:returns: ``{field: reason}`` for a :class:`pydantic.ValidationError`, one reason a field"""
    fields = {}
    for err in validation_error.errors(include_url=False):
        name = str(err["loc"][0]) if err["loc"] else "body"
        if name in fields:
            continue
        kind = err["type"]
        if kind == "missing":
            fields[name] = "is required"
        elif kind == "value_error":
            fields[name] = str(err["ctx"]["error"])
        elif kind in ("string_too_short", "string_too_long"):
            fields[name] = err["msg"].replace("String should", "must")
        else:
            fields[name] = _TYPE_HINTS.get(name, err["msg"])
    return fields
