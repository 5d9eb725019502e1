"""``/_sim/...``: a JSON side door for tests and benchmarks.

It has no login on purpose -- it exists so a test can check what the browser did
without driving a browser, and end every session behind its back. Never expose a
stand-in ERP outside a test machine.
"""

import time

from flask import Blueprint, current_app, jsonify

from erp_sim.db import get_db
from erp_sim.worksheets import find_worksheet

bp = Blueprint("sim", __name__, url_prefix="/_sim")


@bp.route("/health")
def health():
    get_db().execute("SELECT 1")  # ready means the database answers too
    return jsonify(status="ok")


@bp.route("/worksheets/<number>")
def worksheet(number):
    sheet = find_worksheet(number)
    if sheet is None:
        return jsonify(error="not found", number=number), 404
    rows = get_db().execute(
        "SELECT product_nr, amount, text FROM lines WHERE worksheet = ? ORDER BY id",
        (sheet["number"],),
    ).fetchall()
    return jsonify(
        number=sheet["number"],
        status=sheet["status"],
        lines=[{"product_nr": r["product_nr"], "amount": r["amount"], "reference": r["text"]}
               for r in rows],
    )


@bp.post("/sessions/expire")
def expire_sessions():
    """Every login made so far is over: its next page asks to log in again."""
    current_app.config["SESSIONS_VALID_FROM"] = time.time()
    return jsonify(status="expired")
