"""Acting on failed orders: ``PUT /retry``, ``PUT /resolve``, ``GET /orders`` and an
order's failure artifacts.

* ``PUT /retry?uniqueid=..[&note=..]`` -- an order in ``error`` goes back to ``placed``
  and into the queue, with ``MAX_ATTEMPTS`` fresh tries; its history keeps the earlier
  attempts and the note. 409 ``not_failed`` when it is not in ``error``.
* ``PUT /resolve?uniqueid=..[&note=..]`` -- an order in ``error`` ends as ``resolved``:
  a final status of its own (event ``order.resolved``), meaning a person handled it
  outside the bridge. Its ``reason_code`` stays the error's, so reports still say why it
  needed one; the note goes into its history and the event.
* ``GET /orders?status=error&since=..&until=..&limit=..&after=..`` -- orders in arrival
  order, a page at a time like the feed (``next``, ``more``); ``since``/``until`` bound
  the time the order was posted (``created_at``).
* ``GET /orders/<uniqueid>/artifacts`` (a uniqueid may hold ``/``: the path takes it) -- the screenshots and page HTML its failures
  left; ``.../artifacts/<name>`` serves one. A screenshot is shown inline; page HTML is
  a download with a sandboxing Content-Security-Policy: it is the ERP's page, and must
  not run as ours.
"""

import os

from flask import Blueprint, current_app, jsonify, send_file

from service import fields
from orders.events import MAX_CURSOR
from service.http import error_response
from service.params import BadParam, choices, moment, one, text, whole
from orders.status import OrderStatus
from integrations.artifacts import find_artifacts

bp = Blueprint("failed", __name__)

#: an operator's note: a sentence, not a report
NOTE_MAX = 500
DEFAULT_LIMIT = 100
MAX_LIMIT = 500
_STATUSES = tuple(s.value for s in OrderStatus)


def _instance():
    return current_app.extensions["service"]


def _uniqueid(value):
    """:raises BadParam: when no order can have this uniqueid (the rule of /create)"""
    if value is None:
        raise BadParam("uniqueid", "is required as a query parameter")
    try:
        fields.uniqueid(value)
    except ValueError as exc:
        raise BadParam("uniqueid", str(exc)) from None
    return value


def _not_found(uniqueid):
    return error_response(404, "not_found", f"no order with uniqueid {uniqueid!r}")


def _act(action):
    """``PUT /retry`` and ``PUT /resolve``: the same checks, a different move."""
    try:
        uniqueid = _uniqueid(one("uniqueid"))
        note = text("note", NOTE_MAX)
    except BadParam as exc:
        return exc.response("which order?" if exc.name == "uniqueid" else "invalid note")
    record, moved = action(uniqueid, note)
    if record is None:
        return _not_found(uniqueid)
    if not moved:
        return error_response(
            409, "not_failed", f"order {uniqueid!r} is {record['status']}, not error: only an "
            "order that ended in error can be retried or resolved")
    return jsonify(_instance().store.get(uniqueid))


@bp.put("/retry")
def retry():
    return _act(_instance().retry)


@bp.put("/resolve")
def resolve():
    return _act(_instance().resolve)


@bp.get("/orders")
def orders():
    try:
        statuses = choices("status", _STATUSES)
        since, until = moment("since"), moment("until")
        after = whole("after", 0, MAX_CURSOR, 0)
        limit = whole("limit", 1, MAX_LIMIT, DEFAULT_LIMIT)
    except BadParam as exc:
        return exc.response()
    return jsonify(_instance().store.listing(statuses, since, until, after, limit))


def _artifacts_of(uniqueid):
    """:returns: ``(artifacts, None)``, or ``(None, error response)`` when no order has
    this uniqueid"""
    try:
        _uniqueid(uniqueid)
    except BadParam as exc:
        return None, exc.response("no order can have this uniqueid")
    record = _instance().store.get(uniqueid)
    if record is None:
        return None, _not_found(uniqueid)
    reasons = {h["reason_code"] for h in record["history"] if h.get("reason_code")}
    return find_artifacts(_instance().settings.artifact_dir, uniqueid, reasons), None


@bp.get("/orders/<path:uniqueid>/artifacts")
def artifacts(uniqueid):
    found, refused = _artifacts_of(uniqueid)
    return refused or jsonify({"uniqueid": uniqueid, "artifacts": found})


@bp.get("/orders/<path:uniqueid>/artifacts/<name>")
def artifact(uniqueid, name):
    found, refused = _artifacts_of(uniqueid)
    if refused:
        return refused
    # the name is looked up among the files listed, never joined to a path as given
    match = next((a for a in found if a["name"] == name), None)
    if match is None:
        return error_response(404, "not_found", f"order {uniqueid!r} has no artifact {name!r}")
    path = os.path.join(_instance().settings.artifact_dir, match["name"])
    screenshot = match["kind"] == "screenshot"
    response = send_file(path, mimetype="image/png" if screenshot else "text/html",
                         as_attachment=not screenshot, download_name=match["name"],
                         max_age=0)
    response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'; img-src 'self'"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "no-store"
    return response
