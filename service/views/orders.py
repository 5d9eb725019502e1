"""OilMat's endpoints: ``POST /create`` and ``GET /get_order_status``."""

from flask import Blueprint, current_app, jsonify, request

from service import fields
from service.http import BodyError, error_response, read_json_body
from service.params import BadParam, one
from orders.records import DuplicateConflict

bp = Blueprint("orders", __name__)


def _instance():
    return current_app.extensions["service"]


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
    if "orders" in body:  # {"orders": [...]}: a batch, or refused as both (service/batch.py)
        return _create_batch(body)
    instance = _instance()
    # the instance's workshop, MAX_PRODUCT_AMOUNT and default login decide what is valid
    order, problems = fields.check_order(body, *fields.order_rules(instance.settings))
    if problems:
        return error_response(400, "validation_failed", "the order has missing or invalid fields",
                              problems)
    try:
        record, created = instance.submit(order)
    except DuplicateConflict as exc:
        return error_response(409, "duplicate_uniqueid", str(exc))
    current_app.logger.info("create %s: %s", record["uniqueid"],
                            "queued" if created else f"repeat, status {record['status']}",
                            extra={"uniqueid": record["uniqueid"]})
    return jsonify({"uniqueid": record["uniqueid"], "status": record["status"]}), 200


def _create_batch(body):
    from service import batch

    try:
        orders = batch.check_orders(body)
    except batch.BatchRefused as exc:
        return error_response(400, "validation_failed", exc.message, {exc.field: str(exc)})
    answer, status = batch.intake(_instance(), orders)
    counts = answer["counts"]
    for result in answer["results"]:
        current_app.logger.info("create %s (batch): %s", result["uniqueid"], result.get(
            "status") if result["result"] != "failed" else f"failed, {result['error']}",
            extra={"uniqueid": result["uniqueid"]})
    current_app.logger.info("create batch of %d: %d placed, %d existed, %d failed",
                            len(orders), counts["placed"], counts["existed"], counts["failed"])
    return jsonify(answer), status


@bp.get("/get_order_status")
def get_order_status():
    try:
        uniqueid = one("uniqueid", required=True)
    except BadParam as exc:
        return exc.response("which order?")
    try:
        fields.uniqueid(uniqueid)  # the rule of /create, without loading pydantic
    except ValueError as exc:
        return error_response(400, "validation_failed", "no order can have this uniqueid",
                              {"uniqueid": str(exc)})
    record = _instance().store.get(uniqueid)
    if record is None:
        return error_response(404, "not_found", f"no order with uniqueid {uniqueid!r}")
    return jsonify(record)
