"""``/_sim/...``: a JSON side door for tests and benchmarks.

It has no login on purpose -- it exists so a test can check what the browser did
without driving a browser, plant lines for the integration to find (a duplicate, a
wrong line to be repaired), read the log of the requests the ERP handled, and end
every session behind the browser's back. Never expose a stand-in ERP outside a test
machine.
"""

import time

from flask import Blueprint, current_app, jsonify, request

from erp_sim import revisions, validation
from erp_sim.db import get_db, writing
from erp_sim.request_log import get_log
from erp_sim.worksheets import find_worksheet, product_exists

bp = Blueprint("sim", __name__, url_prefix="/_sim")

#: what a planted line's JSON body holds
LINE_FIELDS = ("product_nr", "amount", "text")


def _line_json(row):
    return {"id": row["id"], "product_nr": row["product_nr"], "amount": row["amount"],
            "reference": row["text"]}


def _not_found(number):
    return jsonify(error="not found", number=number), 404


def _invalid(fields):
    return jsonify(error="invalid line", fields=fields), 400


@bp.route("/health")
def health():
    get_db().execute("SELECT 1")  # ready means the database answers too
    return jsonify(status="ok")


@bp.route("/worksheets/<number>")
def worksheet(number):
    sheet = find_worksheet(number)
    if sheet is None:
        return _not_found(number)
    rows = get_db().execute(
        "SELECT id, product_nr, amount, text FROM lines WHERE worksheet = ? ORDER BY id",
        (sheet["number"],),
    ).fetchall()
    return jsonify(number=sheet["number"], status=sheet["status"],
                   lines=[_line_json(row) for row in rows])


def _form_of(body):
    """The planted line's fields as the add-line form would carry them, and what is
    wrong with their types (``{field: reason}``)."""
    form, wrong = {}, {}
    for name in LINE_FIELDS:
        value = body.get(name, "")
        if name == "text" and not isinstance(value, str):
            wrong[name] = "must be a string"
        elif isinstance(value, bool) or not isinstance(value, (str, int, float)):
            wrong[name] = "must be a string or a number"
        else:
            form[name] = str(value)
    return form, wrong


@bp.post("/worksheets/<number>/lines")
def plant_line(number):
    """Store a line as it is, with no login, save delay, lock or chaos -- on a closed
    worksheet too: a test plants what the integration must then find or repair."""
    sheet = find_worksheet(number)
    if sheet is None:
        return _not_found(number)
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _invalid({"body": "must be a JSON object with " + ", ".join(LINE_FIELDS)})
    form, wrong = _form_of(body)
    if wrong:
        return _invalid(wrong)
    values, errors = validation.check_line_fields(form, product_exists)
    if errors:
        return _invalid(errors)
    with writing() as db:
        line_id = db.execute(
            "INSERT INTO lines (worksheet, product_nr, amount, text) VALUES (?, ?, ?, ?)",
            (sheet["number"], int(values["product_nr"]), values["amount"], values["text"]),
        ).lastrowid
    row = get_db().execute("SELECT * FROM lines WHERE id = ?", (line_id,)).fetchone()
    return jsonify(_line_json(row)), 201


@bp.put("/worksheets/<number>/status")
def set_status(number):
    """Open or close a worksheet, as the workshop does when it invoices or reopens it: a
    test closes one, lets an order fail on it, reopens it and retries the order."""
    sheet = find_worksheet(number)
    if sheet is None:
        return _not_found(number)
    body = request.get_json(silent=True)
    status = body.get("status") if isinstance(body, dict) else None
    if status not in ("open", "closed"):
        return _invalid({"status": "must be open or closed"})
    with writing() as db:
        db.execute("UPDATE worksheets SET status = ? WHERE number = ?", (status, sheet["number"]))
    return jsonify(number=sheet["number"], status=status)


@bp.put("/worksheets/<number>/customer")
def set_customer(number):
    """Give a worksheet another customer, or none (``""``): the worksheet that belongs to
    nobody, which a probe must say is a poor choice rather than a changed screen."""
    sheet = find_worksheet(number)
    if sheet is None:
        return _not_found(number)
    body = request.get_json(silent=True)
    customer = body.get("customer") if isinstance(body, dict) else None
    if not isinstance(customer, str) or len(customer) > 200:
        return _invalid({"customer": "must be a string of at most 200 characters"})
    with writing() as db:
        db.execute("UPDATE worksheets SET customer = ? WHERE number = ?",
                   (customer.strip(), sheet["number"]))
    return jsonify(number=sheet["number"], customer=customer.strip())


@bp.get("/requests")
def requests_handled():
    """The requests the ERP handled, oldest first (``/_sim`` itself is not among them)."""
    return jsonify(requests=get_log().entries())


@bp.delete("/requests")
def clear_requests():
    return jsonify(cleared=get_log().clear())


@bp.route("/ui_revision", methods=("GET", "PUT"))
def ui_revision():
    """The revision of the screens (erp_sim/revisions.py); a PUT switches it from the next
    page on, while the ERP runs: a test changes the screens under a running bridge."""
    if request.method == "PUT":
        body = request.get_json(silent=True)
        try:
            revisions.switch(body.get("revision") if isinstance(body, dict) else None)
        except ValueError as exc:
            return jsonify(error="invalid revision", fields={"revision": str(exc)}), 400
    return jsonify(revision=revisions.current())


@bp.post("/sessions/expire")
def expire_sessions():
    """Every login made so far is over: its next page asks to log in again."""
    current_app.config["SESSIONS_VALID_FROM"] = time.time()
    return jsonify(status="expired")
