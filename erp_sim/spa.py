"""The SPA flavour: one HTML shell whose script draws every screen from JSON calls.

``GET /`` is the shell (``templates/spa.html`` with ``static/spa.js`` inline); the
screens talk to ``/api/...``. Same users, sessions (cookie, TTL), CSRF token (sent in
the ``X-CSRF-Token`` header), data, rules and messages as the classic flavour -- only
the user interface differs. The API is described in ``erp_sim/README.md``.
"""

import functools
import os

from flask import Blueprint, g, jsonify, render_template, request, session
from markupsafe import Markup

from erp_sim import auth
from erp_sim.auth import BAD_TOKEN, EXPIRED, LOGIN_FAILED
from erp_sim.chaos import get_chaos, locked_message
from erp_sim.db import get_db
from erp_sim.worksheets import (NOT_FOUND, closed_message, delete_line, find_worksheet,
                                save_line, worksheet_lines)

bp = Blueprint("spa", __name__)

#: endpoints that answer without a login
PUBLIC_ENDPOINTS = {"spa.shell", "spa.session", "spa.login", "spa.logout", "static"}
NOT_LOGGED_IN = "Please log in"
ENTER_NUMBER = "Enter a worksheet number"
MAX_SUGGESTIONS = 10
_SCRIPT = os.path.join(os.path.dirname(__file__), "static", "spa.js")


@functools.lru_cache(maxsize=1)
def _script():
    with open(_SCRIPT, encoding="utf-8") as f:
        return Markup(f.read())  # our own file: safe to put inline as it is


def _token_ok():
    return auth.csrf_ok(request.headers.get("X-CSRF-Token", ""))


def _form():
    data = request.get_json(silent=True)
    data = data if isinstance(data, dict) else {}
    return {key: str(data.get(key, "")) for key in ("username", "password", "product_nr",
                                                   "amount", "text")}


def _logged_out():
    expired = bool(g.get("session_expired"))
    return jsonify(error=EXPIRED if expired else NOT_LOGGED_IN, expired=expired,
                   csrf_token=auth.csrf_token()), 401


@bp.before_request
def require_login():
    if request.endpoint in PUBLIC_ENDPOINTS or auth.current_user() is not None:
        return None
    return _logged_out()


@bp.route("/")
def shell():
    return render_template("spa.html", script=_script(), rerender_ms=get_chaos().rerender_ms())


@bp.route("/api/session")
def session_info():
    user = auth.current_user()
    if user is None:
        return _logged_out()
    return jsonify(user=user, csrf_token=auth.csrf_token())


@bp.route("/api/login", methods=("POST",))
def login():
    form = _form()
    if not _token_ok():
        return jsonify(errors=[BAD_TOKEN], csrf_token=auth.csrf_token()), 400
    if not auth.password_ok(form["username"].strip(), form["password"]):
        return jsonify(errors=[LOGIN_FAILED]), 401
    auth.start_session(form["username"].strip())
    return jsonify(user=session["user"], csrf_token=auth.csrf_token())


@bp.route("/api/logout", methods=("POST",))
def logout():
    session.clear()
    return jsonify(csrf_token=auth.csrf_token())


@bp.route("/api/worksheets")
def search():
    number = request.args.get("number", "").strip()
    if not number:
        return jsonify(errors=[ENTER_NUMBER]), 400
    sheet = find_worksheet(number)
    if sheet is None:
        return jsonify(errors=[NOT_FOUND.format(number)]), 404
    return jsonify(number=sheet["number"])


def _sheet_json(sheet, **extra):
    return dict(
        number=sheet["number"], customer=sheet["customer"], vehicle=sheet["vehicle"],
        status=sheet["status"], closed_message=closed_message(sheet),
        lines=[dict(line) for line in worksheet_lines(sheet["number"])], **extra)


@bp.route("/api/worksheets/<number>")
def worksheet(number):
    sheet = find_worksheet(number)
    if sheet is None:
        return jsonify(errors=[NOT_FOUND.format(number)]), 404
    locked = None if closed_message(sheet) else locked_message(sheet["number"])
    return jsonify(_sheet_json(sheet, locked_message=locked))


def _change_sheet(number, change):
    """Answer a change of worksheet ``number``: the sheet as it is now, with ``errors``.

    :param change: ``change(sheet) -> (errors, status)``, a rule of :mod:`erp_sim.worksheets`
    """
    sheet = find_worksheet(number)
    if sheet is None:
        return jsonify(errors=[NOT_FOUND.format(number)]), 404
    errors, status = change(sheet)
    return jsonify(_sheet_json(sheet, errors=errors)), status


@bp.route("/api/worksheets/<number>/lines", methods=("POST",))
def add_line(number):
    return _change_sheet(number, lambda sheet: save_line(sheet, _form(), _token_ok()))


@bp.route("/api/worksheets/<number>/lines/<line_id>", methods=("DELETE",))
def remove_line(number, line_id):
    return _change_sheet(number, lambda sheet: delete_line(sheet, line_id, _token_ok()))


@bp.route("/api/products")
def products():
    query = request.args.get("q", "").strip()
    if not query:
        return jsonify(products=[])
    rows = get_db().execute(
        "SELECT nr, name FROM products"
        " WHERE substr(CAST(nr AS TEXT), 1, length(:q)) = :q OR instr(lower(name), lower(:q)) > 0"
        " ORDER BY CAST(nr AS TEXT) = :q DESC, nr LIMIT :limit",
        {"q": query, "limit": MAX_SUGGESTIONS},
    ).fetchall()
    return jsonify(products=[{"nr": r["nr"], "name": r["name"]} for r in rows])


def init_app(app):
    app.register_blueprint(bp)
    # error.html (a 404, a chaos 502) shares the classic page frame
    app.jinja_env.globals["current_user"] = lambda: session.get("user")
