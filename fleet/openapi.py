"""The management API's OpenAPI 3.1 document, generated from :mod:`fleet.schemas`.

As for the instance (:mod:`service.openapi`): the schemas come from the pydantic models
that validate the requests, so every rule (name pattern, lengths, port range, the known
ERP systems) is in the document; only the list of paths is written here, and a test
checks it against the app's URL map.
"""

from functools import lru_cache

from pydantic import TypeAdapter
from pydantic.json_schema import models_json_schema

from service import fields
from service.openapi import order_query_params
from fleet import schemas

_REF = "#/components/schemas/{model}"

_MODELS = (schemas.RegistrationSpec, schemas.RegistrationChange, schemas.Overview, schemas.Health,
           schemas.Created, schemas.Changed, schemas.Removed, schemas.ProcessChanged,
           schemas.InstanceAnswered, schemas.Error, schemas.OrderPage, schemas.OrderActed,
           schemas.OrderArtifacts, schemas.Pool, schemas.Probed)

_ERRORS = {
    400: "Invalid field, body or query parameter (the message names each and its rule)",
    401: "Missing or wrong management token",
    404: "No integration for that workshop (or, on an order's path, no such order)",
    409: "Name or port taken, the integration is inactive, the order is not in error, or "
         "another process holds the workshop's data",
    413: "Body over 64 KB",
    415: "Body is not JSON",
    502: "The instance did not answer",
    503: "supervisord does not answer",
    414: "Request line over 4094 bytes (the HTTP server's limit; a long query)",
    429: "More than MANAGEMENT_RATE_LIMIT requests from this token (from this address without "
         "a valid token); wait Retry-After seconds",
}

#: every path is rate limited (core/ratelimit.py); the 429 says how long to wait
_RATE_LIMITED_HEADERS = {"Retry-After": {
    "description": "seconds until a request is allowed again", "required": True,
    "schema": {"type": "integer", "minimum": 1}}}


def _rate_limited():
    return {"description": _ERRORS[429], "headers": _RATE_LIMITED_HEADERS, **_json(schemas.Error)}


def _json(model):
    return {"content": {"application/json": {"schema": {"$ref": _REF.format(model=model.__name__)}}}}


def _op(summary, ok_model, errors, ok=200, body=None, params=()):
    responses = {str(ok): {"description": "OK", **_json(ok_model)}}
    for code in (401, *errors, 414):
        responses[str(code)] = {"description": _ERRORS[code], **_json(schemas.Error)}
    responses["429"] = _rate_limited()
    op = {"summary": summary, "responses": responses}
    if body is not None:
        op["requestBody"] = {"required": True, **_json(body)}
    if params:
        op["parameters"] = list(params)
    return op


@lru_cache(maxsize=1)
def _workshop():
    return {"name": "workshop", "in": "path", "required": True,
            "schema": TypeAdapter(schemas.Workshop).json_schema()}


def _one(summary, ok_model, errors, **kwargs):
    return _op(summary, ok_model, (404, *errors), params=[_workshop(), *kwargs.pop("params", ())],
               **kwargs)


def _metrics_op():
    """``GET /metrics``: Prometheus' text format, not JSON (see :mod:`fleet.metrics`)."""
    op = _op("Every active instance's metrics, labelled with its workshop", schemas.Error, ())
    op["responses"]["200"] = {
        "description": "Prometheus text exposition format (prometheus_client)",
        "content": {"text/plain": {"schema": {"type": "string"}}}}
    return op


def _paths():
    body_errors = (400, 409, 413, 415, 503)
    delete_data = {"name": "delete_data", "in": "query", "required": False,
                   "schema": {"type": "string", "enum": ["true", "false", "1", "0"]}}
    paths = {
        "/openapi.json": {"get": {"summary": "This document", "responses": {
            "200": {"description": "OpenAPI document",
                    "content": {"application/json": {"schema": {"type": "object"}}}},
            "401": {"description": _ERRORS[401], **_json(schemas.Error)},
            "414": {"description": _ERRORS[414], **_json(schemas.Error)},
            "429": _rate_limited()}}},
        "/metrics": {"get": _metrics_op()},
        "/pool": {"get": _op("The browser pool: slots, in use, waiting", schemas.Pool, ())},
        "/integrations": {
            "get": _op("Health of every integration", schemas.Overview, ()),
            "post": _op("Register an integration; its API token is in this answer only",
                        schemas.Created, body_errors, ok=201, body=schemas.RegistrationSpec),
        },
        "/integrations/{workshop}": {
            "get": _one("Health of one integration", schemas.Health, ()),
            "put": _one("Reconfigure (restarts only its instance); unset fields stay",
                        schemas.Changed, body_errors, body=schemas.RegistrationChange),
            "delete": _one("Stop and forget it; its data stays unless delete_data",
                           schemas.Removed, (400, 409, 503), params=[delete_data]),
        },
    }
    for action, summary in (("activate", "Activate and start"), ("deactivate", "Stop and deactivate")):
        paths[f"/integrations/{{workshop}}/{action}"] = {
            "put": _one(summary, schemas.Changed, (503,))}
    for action, summary in (("start", "Start the instance process"),
                            ("stop", "Stop the instance process gracefully")):
        paths[f"/integrations/{{workshop}}/{action}"] = {
            "put": _one(summary, schemas.ProcessChanged, (409, 503))}
    for action, summary in (("start_worker", "Start the instance's worker"),
                            ("stop_worker", "Stop the instance's worker gracefully"),
                            ("kill", "Shut the instance down (it stays down)")):
        paths[f"/integrations/{{workshop}}/{action}"] = {
            "put": _one(summary, schemas.InstanceAnswered, (409, 502))}
    paths["/integrations/{workshop}/probe"] = {"post": _one(
        "Have the instance check its ERP's screens now, reading only (502: no answer, or "
        "its worker is stopped)", schemas.Probed, (409, 502))}
    paths.update(_order_paths())
    return paths


def _order_paths():
    """Failed orders (fleet/orders.py): the instance's endpoints, per workshop."""
    uniqueid = {"name": "uniqueid", "in": "path", "required": True,
                "description": fields.UNIQUEID_PATH_NOTE,
                "schema": {"type": "string", "pattern": fields.UNIQUEID_PATH_PATTERN}}
    by_query = {"name": "uniqueid", "in": "query", "required": True,
                "description": "the order's uniqueid (a browser cannot name the orders \".\" "
                               "and \"..\" in a path; here any uniqueid works)",
                "schema": {"type": "string", "pattern": fields.UNIQUEID_PATTERN}}
    query = order_query_params()
    period = [p for p in query if p["name"] in ("status", "since", "until")]
    note = next(p for p in order_query_params(note=True) if p["name"] == "note")
    csv_op = _one("The workshop's orders as CSV (a row per order; filter by period and "
                  "status)", schemas.Error, (400, 409, 502), params=period)
    csv_op["responses"]["200"] = {"description": "text/csv, as an attachment",
                                  "content": {"text/csv": {"schema": {"type": "string"}}}}
    artifact_op = _one("One failure artifact (a PNG inline, page HTML as a download)",
                       schemas.Error, (400, 409, 502), params=[
                           uniqueid, {"name": "name", "in": "path", "required": True,
                                      "schema": {"type": "string"}}])
    artifact_op["responses"]["200"] = {
        "description": "The screenshot (image/png) or the page's HTML (text/html)",
        "content": {"image/png": {"schema": {"type": "string", "format": "binary"}},
                    "text/html": {"schema": {"type": "string"}}}}
    paths = {
        "/integrations/{workshop}/orders": {"get": _one(
            "The workshop's orders, a page at a time (e.g. status=error)", schemas.OrderPage,
            (400, 409, 502), params=query)},
        "/integrations/{workshop}/orders.csv": {"get": csv_op},
        "/integrations/{workshop}/orders/{uniqueid}/artifacts": {"get": _one(
            "The failure screenshots and page HTML an order left", schemas.OrderArtifacts,
            (400, 409, 502), params=[uniqueid])},
        "/integrations/{workshop}/orders/{uniqueid}/artifacts/{name}": {"get": artifact_op},
    }
    for action, summary in (("retry", "Retry an order that ended in error"),
                            ("resolve", "End an order that ended in error as resolved")):
        paths[f"/integrations/{{workshop}}/orders/{{uniqueid}}/{action}"] = {"put": _one(
            summary, schemas.OrderActed, (400, 409, 502), params=[uniqueid, note])}
        paths[f"/integrations/{{workshop}}/{action}"] = {"put": _one(
            summary + " (the order named in the query: any uniqueid, \".\" and \"..\" too)",
            schemas.OrderActed, (400, 409, 502), params=[by_query, note])}
    paths["/integrations/{workshop}/artifacts"] = {"get": _one(
        "The failure artifacts of the order named in the query", schemas.OrderArtifacts,
        (400, 409, 502), params=[by_query])}
    artifact_by_query = _one("One failure artifact of the order named in the query",
                             schemas.Error, (400, 409, 502), params=[
                                 by_query, {"name": "name", "in": "path", "required": True,
                                            "schema": {"type": "string"}}])
    artifact_by_query["responses"]["200"] = artifact_op["responses"]["200"]
    paths["/integrations/{workshop}/artifacts/{name}"] = {"get": artifact_by_query}
    return paths


@lru_cache(maxsize=1)
def build_document():
    """:returns: the document (built once; the models do not change while running)"""
    _, defs = models_json_schema([(m, "validation") for m in _MODELS], ref_template=_REF)
    return {
        "openapi": "3.1.0",
        "info": {"title": "OilMat Bridge management API", "version": "1.0.0",
                 "description": "The fleet of workshop instances on this machine: registry, "
                                "processes (through supervisord) and health."},
        "paths": _paths(),
        "components": {"schemas": defs["$defs"],
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
    }
