"""Worksheet search, the worksheet page, adding a line to it and deleting one.

The rules of a worksheet (:func:`find_worksheet`, :func:`save_line`,
:func:`delete_line`) serve both flavours; the routes here are the classic,
server-rendered pages.
"""

import time

from flask import (Blueprint, abort, current_app, flash, redirect, render_template, request,
                   url_for)

from erp_sim import revisions, validation
from erp_sim.auth import BAD_TOKEN, csrf_ok
from erp_sim.chaos import confirm_slowly, locked_message
from erp_sim.db import get_db, writing

bp = Blueprint("worksheets", __name__)

NOT_FOUND = "No worksheet found with number {}"
CLOSED = "Worksheet {} is closed (invoiced) and cannot be changed"
LINE_ADDED = "Line added"
LINE_DELETED = "Line deleted"
LINE_NOT_FOUND = "Line {} is not on worksheet {}"


def find_worksheet(number):
    """The worksheet row for ``number`` (any string), or ``None``."""
    number = validation.whole_number(number)
    if number is None:
        return None
    return get_db().execute(
        "SELECT * FROM worksheets WHERE number = ?", (number,)
    ).fetchone()


def worksheet_lines(number):
    """The lines of worksheet ``number``, oldest first, each with its ``id``."""
    return get_db().execute(
        "SELECT l.id, l.product_nr, p.name AS product_name, l.amount, l.text FROM lines l"
        " JOIN products p ON p.nr = l.product_nr WHERE l.worksheet = ? ORDER BY l.id",
        (number,),
    ).fetchall()


def product_exists(nr):
    """Whether the ERP sells product ``nr`` (an int)."""
    return get_db().execute("SELECT 1 FROM products WHERE nr = ?", (nr,)).fetchone() is not None


def closed_message(sheet):
    """The "closed (invoiced)" message of ``sheet``, or ``None`` when it is open."""
    return CLOSED.format(sheet["number"]) if sheet["status"] == "closed" else None


def _refusal(sheet, token_ok):
    """Why ``sheet`` takes no change now, as ``(errors, status)``, or ``None``.

    Adding and deleting a line are refused alike: a closed sheet first (it can never
    change), then a bad form token, then a lock by "another user" (chaos).
    """
    closed = closed_message(sheet)
    if closed:
        return [closed], 409
    if not token_ok:
        return [BAD_TOKEN], 400
    locked = locked_message(sheet["number"])
    if locked:
        return [locked], 423
    return None


def _slowly_write(sql, params):
    """Run one write the way a slow ERP does: think first, confirm late (chaos).

    :returns: how many rows it changed
    """
    time.sleep(current_app.config["ERP_SIM"].save_delay)  # a slow ERP, on purpose
    with writing() as db:
        changed = db.execute(sql, params).rowcount
    confirm_slowly()
    return changed


def save_line(sheet, form, token_ok):
    """Check and store a new line on ``sheet``: the rules every flavour shares.

    :param form: mapping with ``product_nr``, ``amount``, ``text``
    :param token_ok: whether the request carried the session's CSRF token
    :returns: ``(errors, status)``; ``([], 201)`` when the line was stored
    """
    refused = _refusal(sheet, token_ok)
    if refused:
        return refused
    values, errors = validation.check_line(form, product_exists)
    if errors:
        return errors, 422
    _slowly_write(
        "INSERT INTO lines (worksheet, product_nr, amount, text) VALUES (?, ?, ?, ?)",
        (sheet["number"], int(values["product_nr"]), values["amount"], values["text"]))
    return [], 201


def delete_line(sheet, line_id, token_ok):
    """Delete line ``line_id`` (any string) of ``sheet``: the rules every flavour shares.

    :param token_ok: whether the request carried the session's CSRF token
    :returns: ``(errors, status)``; ``([], 200)`` when the line was deleted
    """
    refused = _refusal(sheet, token_ok)
    if refused:
        return refused
    # Checked by the delete itself, under the write lock: of two requests deleting the
    # same line at once (a resent POST), exactly one succeeds.
    line = validation.whole_number(line_id)
    deleted = line is not None and _slowly_write(
        "DELETE FROM lines WHERE id = ? AND worksheet = ?", (line, sheet["number"]))
    if not deleted:
        return [LINE_NOT_FOUND.format(line_id, sheet["number"])], 404
    return [], 200


def _render_sheet(sheet, errors=(), form=None, status=200, locked=None):
    closed = closed_message(sheet)
    return render_template(
        "worksheet.html",
        sheet=sheet,
        lines=worksheet_lines(sheet["number"]),
        closed_message=closed,
        locked_message=locked if not closed else None,
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
    locked = locked_message(sheet["number"])
    return _render_sheet(sheet, locked=locked, status=423 if locked else 200)


def _after_change(sheet, errors, status, done_message):
    """The answer to a change of ``sheet`` (a line added or deleted): back to the sheet
    with ``done_message``, or the sheet again with what was refused."""
    if status == 423:
        return _render_sheet(sheet, form=request.form, status=status, locked=errors[0])
    if errors:
        # a closed sheet says so in its banner, not twice
        return _render_sheet(sheet, [] if status == 409 else errors, request.form, status)
    flash(done_message, "success")
    return redirect(url_for("worksheets.show", number=sheet["number"]))


@bp.route("/worksheets/<number>/lines", methods=("POST",))
def add_line(number):
    sheet = find_worksheet(number)
    if sheet is None:
        abort(404)
    return _after_change(sheet, *save_line(sheet, revisions.line_form(request.form), csrf_ok()),
                         LINE_ADDED)


@bp.route("/worksheets/<number>/lines/<line_id>/delete", methods=("POST",))
def remove_line(number, line_id):
    sheet = find_worksheet(number)
    if sheet is None:
        abort(404)
    return _after_change(sheet, *delete_line(sheet, line_id, csrf_ok()), LINE_DELETED)
