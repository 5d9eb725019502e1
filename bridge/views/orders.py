"""OilMat's endpoints: ``POST /create`` and ``GET /get_order_status``."""

from flask import Blueprint, current_app, jsonify, request

from bridge.http import BodyError, error_response, read_json_body
from bridge.records import DuplicateConflict

bp = Blueprint("orders", __name__)


def _instance():
    return current_app.extensions["bridge"]


@bp.post("/create")
def create():
    if not request.is_json:
        return error_response(415, "unsupported_media_type",
                              "send the order as JSON with 'Content-Type: application/json'")
    try:
        body = read_json_body()
    except BodyError as exc:
        return error_response(400, "malformed_json", str(exc))
    if not isinstance(body, dict):
        return error_response(400, "validation_failed", "the body must be a JSON object")
    # pydantic and the models are imported by the first order, not at start: they are
    # ~9 MB of RSS, and most instances of a fleet sit idle (bench_fleet_density.py).
    from pydantic import ValidationError

    from bridge.models import CreateOrder, field_errors

    try:
        order = CreateOrder.model_validate(body)
    except ValidationError as exc:
        return error_response(400, "validation_failed", "the order has missing or invalid fields",
                              field_errors(exc))
    instance = _instance()
    served = instance.settings.workshop
    if order.workshop != served:
        return error_response(400, "validation_failed", "the order is for another workshop",
                              {"workshop": f"this instance serves {served!r}"})
    if not order.username and not instance.settings.erp_username:
        return error_response(400, "validation_failed", "no ERP login for this order",
                              {"username": "is required: this instance has no default ERP login"})
    try:
        record, created = instance.submit(order.model_dump())
    except DuplicateConflict as exc:
        return error_response(409, "duplicate_uniqueid", str(exc))
    current_app.logger.info("create %s: %s", record["uniqueid"],
                            "queued" if created else f"repeat, status {record['status']}")
    return jsonify({"uniqueid": record["uniqueid"], "status": record["status"]}), 200


@bp.get("/get_order_status")
def get_order_status():
    uniqueid = request.args.get("uniqueid", "").strip()
    if not uniqueid:
        return error_response(400, "validation_failed", "which order?",
                              {"uniqueid": "is required as a query parameter"})
    record = _instance().store.get(uniqueid)
    if record is None:
        return error_response(404, "not_found", f"no order with uniqueid {uniqueid!r}")
    return jsonify(record)
