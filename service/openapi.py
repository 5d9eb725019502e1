"""The OpenAPI 3.1 document, generated from the pydantic models in :mod:`service.models`.

Schemas come from the same classes that validate requests; only the list of paths is
written here, and a test checks it against the app's URL map so no route is missing.
The document is built for one instance (:func:`build_document`): the workshop it serves
and its ``MAX_PRODUCT_AMOUNT`` are part of the order schema, so that every request the
document allows is one the instance accepts (``tests/test_fuzz_api.py`` checks that).
"""

from pydantic.json_schema import models_json_schema

from service import fields, models
from service.params import MOMENT_FORMATS
from orders.status import OrderStatus
from service.views.failed import MAX_LIMIT as ORDERS_MAX_LIMIT, NOTE_MAX

_REF = "#/components/schemas/{model}"

_SCHEMAS = (models.CreateAccepted, models.OrderRecord, models.QueueListing, models.Alive,
            models.WorkerChange, models.KillAnswer, models.Cleared, models.Error,
            models.EventPage, models.EventAck, models.OrderPage, models.ArtifactList)


def _ref(model):
    return {"$ref": _REF.format(model=model.__name__)}


def _json(model):
    schema = {"type": "object"} if model is None else _ref(model)
    return {"content": {"application/json": {"schema": schema}}}


#: the answer over RATE_LIMIT
_RATE_LIMITED = {
    "description": "More than RATE_LIMIT requests from this token (from this address without "
                   "a valid token); wait Retry-After seconds",
    "headers": {"Retry-After": {"description": "seconds until a request is allowed again",
                                "required": True,
                                "schema": {"type": "integer", "minimum": 1}}},
    **_json(models.Error)}


#: a batch of orders (service/batch.py); its items refer to the instance's CreateOrder
_CREATE_BATCH = models.batch_model(_REF.format(model="CreateOrder"))


def _create_op():
    """``POST /create``: one order, or a batch of them (a body with ``orders``)."""
    op = _op("Queue an order line, or a batch of 1-100 in one transaction (idempotent on "
             "uniqueid)", 200, models.CreateAccepted, (400, 401, 409, 413, 415, 503))
    # a body with "orders" is a batch, and one with an order's field too is refused as
    # both (service/batch.py): so an order has no "orders", and a batch no order field
    single = {"allOf": [_ref(models.CreateOrder)], "not": {"required": ["orders"]}}
    several = {"allOf": [_ref(_CREATE_BATCH)], "not": {"anyOf": [
        {"required": [name]} for name in fields.ORDER_FIELDS]}}
    op["requestBody"] = {"required": True, "content": {"application/json": {"schema": {
        "oneOf": [single, several]}}}}
    op["responses"]["200"] = {
        "description": "One order: its status. A batch: no order failed.",
        "content": {"application/json": {"schema": {
            "anyOf": [_ref(models.CreateAccepted), _ref(models.BatchAnswer)]}}}}
    op["responses"]["207"] = {"description": "A batch in which at least one order failed "
                                             "(see results); the others are stored",
                              **_json(models.BatchAnswer)}
    op["responses"]["409"]["description"] += " (one order; in a batch it is a result)"
    return op


def _op(summary, ok, ok_model, errors=(401,), body=None, params=None, public=False):
    responses = {str(ok): {"description": "OK", **_json(ok_model)}}
    descriptions = {400: "Missing or invalid fields, or a body that is not JSON",
                    401: "Missing or wrong API token",
                    404: "Unknown order", 409: "uniqueid already used for another order",
                    413: "Body over 64 KB", 415: "Body is not JSON",
                    503: "The instance's files cannot be used (disk full, damaged); see "
                         "Retry-After"}
    for code in errors:
        responses[str(code)] = {"description": descriptions[code], **_json(models.Error)}
    # any request may be refused by the HTTP server before the app sees it (service/server.py);
    # a long query is the one a client meets (a very long /events query answered 414)
    responses["414"] = {"description": "Request line over 4094 bytes", **_json(models.Error)}
    op = {"summary": summary, "responses": responses}
    if body is not None:
        op["requestBody"] = {"required": True, **_json(body)}
    if params:
        op["parameters"] = params
    if public:
        op["security"] = []
    else:  # every endpoint but /alive is rate limited (core/ratelimit.py)
        responses["429"] = _RATE_LIMITED
    return op


def _whole_param(name, minimum, description, maximum=2 ** 63 - 1, required=False):
    """A query parameter that is a whole number (see :mod:`service.views.events`)."""
    return {"name": name, "in": "query", "required": required, "description": description,
            "schema": {"type": "integer", "minimum": minimum, "maximum": maximum}}


def _uniqueid_param(where="query"):
    if where == "path":
        return {"name": "uniqueid", "in": "path", "required": True,
                "description": fields.UNIQUEID_PATH_NOTE,
                "schema": {"type": "string", "pattern": fields.UNIQUEID_PATH_PATTERN}}
    return {"name": "uniqueid", "in": where, "required": True,
            "schema": {"type": "string", "pattern": fields.UNIQUEID_PATTERN}}


_STATUS_LIST = "|".join(s.value for s in OrderStatus)


def order_query_params(note=False):
    """The query parameters of ``GET /orders`` (or, with ``note``, of ``PUT /retry``
    and ``/resolve``), as service/params.py reads them; the management API's document
    uses them too (fleet/openapi.py)."""
    if note:
        return [_uniqueid_param(), {
            "name": "note", "in": "query", "required": False,
            "description": "the operator's words, kept in the order's history and event",
            "schema": {"type": "string", "maxLength": NOTE_MAX,
                       "pattern": "^[^\u0000-\u001f\u007f-\u009f\u2028\u2029]*$"}}]
    return [{"name": "status", "in": "query", "required": False,
             "description": "one status, or several separated by commas",
             "schema": {"type": "string",
                        "pattern": f"^({_STATUS_LIST})(,({_STATUS_LIST}))*$"}},
            {"name": "since", "in": "query", "required": False,
             "description": "posted at or after (a date is midnight UTC)",
             "schema": {"anyOf": list(MOMENT_FORMATS)}},
            {"name": "until", "in": "query", "required": False,
             "description": "posted before (a date is midnight UTC)",
             "schema": {"anyOf": list(MOMENT_FORMATS)}},
            _whole_param("after", 0, "the `next` of the page before"),
            _whole_param("limit", 1, "most orders in the answer (default 100)",
                         maximum=ORDERS_MAX_LIMIT)]


def _operator_op(summary):
    """``PUT /retry`` and ``PUT /resolve`` (service/views/failed.py)."""
    return _with_description(_op(summary, 200, models.OrderRecord, (400, 401, 404, 409, 503),
                                 params=order_query_params(note=True)),
                             409, "The order is not in error (not_failed)")


def _orders_op():
    return _op("Orders in arrival order, a page at a time (filter by status and by when "
               "they were posted)", 200, models.OrderPage, (400, 401, 503),
               params=order_query_params())


def _artifact_op():
    """One artifact: a PNG shown inline, or page HTML as a download."""
    op = _op("One failure artifact of the order", 200, None, (400, 401, 404, 503), params=[
        _uniqueid_param("path"),
        {"name": "name", "in": "path", "required": True,
         "schema": {"type": "string"}}])
    op["responses"]["200"] = {"description": "The screenshot (image/png) or the page's HTML "
                                             "(text/html, as an attachment)",
                              "content": {"image/png": {"schema": {"type": "string",
                                                                   "format": "binary"}},
                                          "text/html": {"schema": {"type": "string"}}}}
    return op


def _with_description(op, status, description):
    """``op`` with its own description of one error answer."""
    op["responses"][str(status)]["description"] = description
    return op


def _metrics_op():
    """``GET /metrics``: Prometheus' text format, not JSON (see :mod:`service.metrics`)."""
    op = _op("The instance's metrics in Prometheus' text format", 200, None, (401,))
    op["responses"]["200"] = {
        "description": "Prometheus text exposition format (prometheus_client)",
        "content": {"text/plain": {"schema": {"type": "string"}}}}
    return op


def _docs_op():
    """``GET /docs``: this document for people, as an HTML page (service/views/docs.py)."""
    op = _op("This document as a page for people: every operation and what it does", 200,
             None)
    op["responses"]["200"] = {"description": "HTML",
                              "content": {"text/html": {"schema": {"type": "string"}}}}
    return op


#: path -> method -> operation. Every route of the app must be here (tested).
PATHS = {
    "/create": {"post": _create_op()},
    "/get_order_status": {"get": _op(
        "Status, attempts and history of one order", 200, models.OrderRecord,
        (400, 401, 404, 503),
        params=[{"name": "uniqueid", "in": "query", "required": True,
                 "schema": {"type": "string", "pattern": fields.UNIQUEID_PATTERN}}])},
    "/queue": {"get": _op("Orders waiting or in progress", 200, models.QueueListing,
                          (401, 503))},
    "/clear_queue": {"put": _op("Remove every waiting order (each ends in error CLEARED)",
                                200, models.Cleared, (401, 503))},
    "/start_worker": {"put": _op("Start the worker (idempotent); resume orders held for a "
                                 "changed ERP screen", 200, models.WorkerChange)},
    "/probe": {"put": _with_description(_op(
        "Check the ERP's screens now, reading only (the worker runs the probe)", 200,
        models.ErpHealth, (401, 409)), 409, "The worker is stopped, or did not answer in "
                                             "time; the answer holds the last state")},
    "/stop_worker": {"put": _op("Stop the worker gracefully (idempotent)", 200,
                                models.WorkerChange)},
    "/alive": {"get": _op("API and worker state; no token needed", 200, models.Alive, (),
                          public=True)},
    "/kill": {"put": _op("Shut the instance down gracefully", 200, models.KillAnswer)},
    "/openapi.json": {"get": _op("This document", 200, None)},
    "/docs": {"get": _docs_op()},
    "/metrics": {"get": _metrics_op()},
    "/events": {"get": _op(
        "Order events after a cursor, oldest first (the status feed)", 200, models.EventPage,
        (400, 401, 503), params=[
            _whole_param("after", 0, "the last cursor you have; default: the acknowledged one"),
            _whole_param("limit", 1, "most events in the answer (default 100)", maximum=500)])},
    "/events/ack": {"put": _with_description(_op(
        "Acknowledge every event up to a cursor (kept until then)", 200, models.EventAck,
        (400, 401, 409, 503), params=[_whole_param("cursor", 0, "the last event received",
                                                   required=True)]),
        409, "No event has had this cursor yet")},
    "/retry": {"put": _operator_op(
        "Retry an order that ended in error: back to placed, with fresh attempts")},
    "/resolve": {"put": _operator_op(
        "End an order that ended in error as resolved (handled by hand)")},
    "/orders": {"get": _orders_op()},
    "/orders/{uniqueid}/artifacts": {"get": _op(
        "The failure screenshots and page HTML an order left", 200, models.ArtifactList,
        (400, 401, 404, 503), params=[_uniqueid_param("path")])},
    "/orders/{uniqueid}/artifacts/{name}": {"get": _artifact_op()},
}

_DESCRIPTION = (
    "One instance serves one workshop: OilMat orders in, order lines written into the "
    "workshop's ERP. Every error is JSON {\"error\", \"message\"[, \"fields\"]}, also those "
    "the HTTP server answers before the application sees the request: 400 (a request "
    "that is not HTTP), 414 (request line over 4094 bytes), 431 (a header over 8190 "
    "bytes, or over 100 headers), 501 (a transfer coding other than chunked). 405 "
    "answers carry an Allow header.")


def build_document(settings, server_url=None):
    """The document of the instance with these settings (built per request: it is
    asked for rarely, and a test may change an instance's settings).

    :param settings: :class:`~service.settings.Settings`
    :param server_url: the instance's base URL as its client sees it (``servers``)
    """
    order = models.order_model(settings)
    _, defs = models_json_schema([(m, "validation") for m in (order, *_SCHEMAS, _CREATE_BATCH,
                                                              models.BatchAnswer)],
                                 ref_template=_REF)
    return {
        "openapi": "3.1.0",
        "info": {"title": "OilMat Bridge instance API", "version": "1.0.0",
                 "description": _DESCRIPTION},
        **({"servers": [{"url": server_url}]} if server_url else {}),
        "paths": PATHS,
        "components": {
            "schemas": defs["$defs"],
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
        "security": [{"bearer": []}, {"apiKey": []}],
    }
