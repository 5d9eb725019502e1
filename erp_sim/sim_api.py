"""``/_sim/...``: a read-only JSON side door for tests and benchmarks.

It has no login on purpose -- it exists so a test can check what the browser did
without driving a browser. Never expose a stand-in ERP outside a test machine.
"""

from flask import Blueprint, jsonify

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
