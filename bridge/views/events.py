"""The status feed: ``GET /events`` and ``PUT /events/ack`` (see :mod:`bridge.events`).

``after`` and ``limit`` of ``GET /events`` and ``cursor`` of ``PUT /events/ack`` are
query parameters, like ``uniqueid`` of ``/get_order_status``: whole numbers written
in ASCII digits. Without ``after`` the feed starts after the acknowledged cursor, so a
client that acknowledges what it has read needs to remember nothing.
"""

import re

from flask import Blueprint, current_app, jsonify, request

from bridge.events import DEFAULT_LIMIT, MAX_CURSOR, MAX_LIMIT, CursorAhead
from bridge.http import error_response

bp = Blueprint("events", __name__)

_DIGITS = re.compile(r"[0-9]{1,19}")


class _BadParam(ValueError):
    def __init__(self, name, reason):
        super().__init__(reason)
        self.name = name


def _whole(name, low, high, default=None, required=False):
    """The query parameter ``name`` as a whole number from ``low`` to ``high``.

    :raises _BadParam: naming the parameter and the rule it breaks
    """
    raw = request.args.get(name)
    if raw is None:
        if required:
            raise _BadParam(name, "is required as a query parameter")
        return default
    if not _DIGITS.fullmatch(raw) or not low <= int(raw) <= high:
        raise _BadParam(name, f"must be a whole number from {low} to {high}")
    return int(raw)


def _events():
    return current_app.extensions["bridge"].events


@bp.get("/events")
def feed():
    try:
        after = _whole("after", 0, MAX_CURSOR)
        limit = _whole("limit", 1, MAX_LIMIT, DEFAULT_LIMIT)
    except _BadParam as exc:
        return error_response(400, "validation_failed", "invalid query parameter",
                              {exc.name: str(exc)})
    return jsonify(_events().page(after, limit))


@bp.put("/events/ack")
def ack():
    try:
        cursor = _whole("cursor", 0, MAX_CURSOR, required=True)
    except _BadParam as exc:
        return error_response(400, "validation_failed", "which cursor?", {exc.name: str(exc)})
    try:
        acked = _events().ack(cursor)
    except CursorAhead as exc:
        return error_response(409, "cursor_ahead", str(exc), {"cursor": str(exc)})
    return jsonify({"acked": acked})
