"""The OpenAPI 3.1 document, generated from the pydantic models in :mod:`bridge.models`.

Schemas come from the same classes that validate requests; only the list of paths is
written here, and a test checks it against the app's URL map so no route is missing.
"""

from functools import lru_cache

from pydantic.json_schema import models_json_schema

from bridge import models

_REF = "#/components/schemas/{model}"

_SCHEMAS = (models.CreateOrder, models.CreateAccepted, models.OrderRecord, models.QueueListing,
            models.Alive, models.WorkerChange, models.KillAnswer, models.Cleared, models.Error)


def _ref(model):
    return {"$ref": _REF.format(model=model.__name__)}


def _json(model):
    return {"content": {"application/json": {"schema": _ref(model)}}}


def _op(summary, ok, ok_model, errors=(401,), body=None, params=None, public=False):
    responses = {str(ok): {"description": "OK", **_json(ok_model)}}
    descriptions = {400: "Missing or invalid fields", 401: "Missing or wrong API token",
                    404: "Unknown order", 409: "uniqueid already used for another order",
                    413: "Body over 64 KB", 415: "Body is not JSON"}
    for code in errors:
        responses[str(code)] = {"description": descriptions[code], **_json(models.Error)}
    op = {"summary": summary, "responses": responses}
    if body is not None:
        op["requestBody"] = {"required": True, **_json(body)}
    if params:
        op["parameters"] = params
    if public:
        op["security"] = []
    return op


#: path -> method -> operation. Every route of the app must be here (tested).
PATHS = {
    "/create": {"post": _op("Queue an order line (idempotent on uniqueid)", 200,
                            models.CreateAccepted, (400, 401, 409, 413, 415),
                            body=models.CreateOrder)},
    "/get_order_status": {"get": _op(
        "Status, attempts and history of one order", 200, models.OrderRecord, (400, 401, 404),
        params=[{"name": "uniqueid", "in": "query", "required": True,
                 "schema": {"type": "string"}}])},
    "/queue": {"get": _op("Orders waiting or in progress", 200, models.QueueListing)},
    "/clear_queue": {"put": _op("Remove every waiting order (each ends in error CLEARED)",
                                200, models.Cleared)},
    "/start_worker": {"put": _op("Start the worker (idempotent)", 200, models.WorkerChange)},
    "/stop_worker": {"put": _op("Stop the worker gracefully (idempotent)", 200,
                                models.WorkerChange)},
    "/alive": {"get": _op("API and worker state; no token needed", 200, models.Alive, (),
                          public=True)},
    "/kill": {"put": _op("Shut the instance down gracefully", 200, models.KillAnswer)},
    "/openapi.json": {"get": {"summary": "This document",
                              "responses": {"200": {"description": "OpenAPI document"}}}},
}


@lru_cache(maxsize=1)
def build_document():
    _, defs = models_json_schema([(m, "validation") for m in _SCHEMAS], ref_template=_REF)
    return {
        "openapi": "3.1.0",
        "info": {"title": "OilMat Bridge instance API", "version": "1.0.0",
                 "description": "One instance serves one workshop: OilMat orders in, "
                                "order lines written into the workshop's ERP."},
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
