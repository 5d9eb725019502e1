"""Worksheet search, the worksheet page and adding a line to it."""

import time

from flask import (Blueprint, abort, current_app, flash, redirect, render_template, request,
                   url_for)

from erp_sim import validation
from erp_sim.auth import BAD_TOKEN, csrf_ok
from erp_sim.db import get_db, writing

bp = Blueprint("worksheets", __name__)

NOT_FOUND = "No worksheet found with number {}"
CLOSED = "Worksheet {} is closed (invoiced) and cannot be changed"
LINE_ADDED = "Line added"


def find_worksheet(number):
    """The worksheet row for ``number`` (any string), or ``None``."""
    if not (number.isascii() and number.isdigit()):
        return None
    return get_db().execute(
        "SELECT * FROM worksheets WHERE number = ?", (int(number),)
    ).fetchone()


def worksheet_lines(number):
    return get_db().execute(
        "SELECT l.product_nr, p.name AS product_name, l.amount, l.text FROM lines l"
        " JOIN products p ON p.nr = l.product_nr WHERE l.worksheet = ? ORDER BY l.id",
        (number,),
    ).fetchall()


def _product_exists(nr):
    return get_db().execute("SELECT 1 FROM products WHERE nr = ?", (nr,)).fetchone() is not None


def _render_sheet(sheet, errors=(), form=None, status=200):
    closed = sheet["status"] == "closed"
    return render_template(
        "worksheet.html",
        sheet=sheet,
        lines=worksheet_lines(sheet["number"]),
        closed_message=CLOSED.format(sheet["number"]) if closed else None,
        errors=list(errors),
        form=form or {},
    ), status


@bp.route("/")
def index():
    return redirect(url_for("worksheets.search"))


@bp.route("/worksheets")
def search():
    number = request.args.get("number")
    if number is None:
        return render_template("search.html", errors=[], number="")
    number = number.strip()
    if not number:
        return render_template("search.html", errors=["Enter a worksheet number"], number="")
    if find_worksheet(number) is None:
        return render_template("search.html", errors=[NOT_FOUND.format(number)], number=number)
    return redirect(url_for("worksheets.show", number=int(number)))


@bp.route("/worksheets/<number>")
def show(number):
    sheet = find_worksheet(number)
    if sheet is None:
        # The same page a failed search gives, so a deep link fails the same way.
        return render_template("search.html", errors=[NOT_FOUND.format(number)],
                               number=number), 404
    return _render_sheet(sheet)


@bp.route("/worksheets/<number>/lines", methods=("POST",))
def add_line(number):
    sheet = find_worksheet(number)
    if sheet is None:
        abort(404)
    if sheet["status"] == "closed":
        return _render_sheet(sheet, status=409)
    if not csrf_ok():
        return _render_sheet(sheet, [BAD_TOKEN], request.form, status=400)
    values, errors = validation.check_line(request.form, _product_exists)
    if errors:
        return _render_sheet(sheet, errors, request.form, status=422)
    time.sleep(current_app.config["ERP_SIM"].save_delay)  # a slow ERP, on purpose
    with writing() as db:
        db.execute(
            "INSERT INTO lines (worksheet, product_nr, amount, text) VALUES (?, ?, ?, ?)",
            (sheet["number"], int(values["product_nr"]), values["amount"], values["text"]),
        )
    flash(LINE_ADDED, "success")
    return redirect(url_for("worksheets.show", number=sheet["number"]))
