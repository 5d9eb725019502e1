"""The status feed: ``GET /events`` and ``PUT /events/ack`` (see :mod:`orders.events`).

``after`` and ``limit`` of ``GET /events`` and ``cursor`` of ``PUT /events/ack`` are
query parameters, like ``uniqueid`` of ``/get_order_status``: whole numbers written
in ASCII digits. Without ``after`` the feed starts after the acknowledged cursor, so a
client that acknowledges what it has read needs to remember nothing.
"""

from flask import Blueprint, current_app, jsonify

from orders.events import DEFAULT_LIMIT, MAX_CURSOR, MAX_LIMIT, CursorAhead
from service.http import error_response
from service.params import BadParam, whole

bp = Blueprint("events", __name__)


def _events():
    return current_app.extensions["service"].events


@bp.get("/events")
def feed():
    try:
        after = whole("after", 0, MAX_CURSOR)
        limit = whole("limit", 1, MAX_LIMIT, DEFAULT_LIMIT)
    except BadParam as exc:
        return exc.response()
    return jsonify(_events().page(after, limit))


@bp.put("/events/ack")
def ack():
    try:
        cursor = whole("cursor", 0, MAX_CURSOR, required=True)
    except BadParam as exc:
        return exc.response("which cursor?")
    try:
        acked = _events().ack(cursor)
    except CursorAhead as exc:
        return error_response(409, "cursor_ahead", str(exc), {"cursor": str(exc)})
    return jsonify({"acked": acked})
