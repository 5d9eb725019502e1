"""Login, logout, the session's age limit and CSRF tokens.

The session is Flask's signed cookie. It holds the user, the login time and the form
token. A login is valid for ``session_ttl`` seconds counted from the login itself --
absolute age, not idle time, which is simple to reason about in tests. Every page
outside :data:`PUBLIC_ENDPOINTS` sends an anonymous or expired visitor to
``/login?next=<where they were going>``.
"""

import secrets
import time
from urllib.parse import urlsplit

from flask import (Blueprint, current_app, flash, g, redirect, render_template, request,
                   session, url_for)
from werkzeug.security import check_password_hash

from erp_sim.db import get_db

bp = Blueprint("auth", __name__)

#: endpoints reachable without a login (``None`` is an unknown URL: a plain 404)
PUBLIC_ENDPOINTS = {"auth.login", "auth.logout", "static", None}

LOGIN_FAILED = "Invalid username or password"
BAD_TOKEN = "The form has expired. Please try again."
EXPIRED = "Your session has expired. Please log in again."


def csrf_token():
    """This session's form token, made on first use (also before any login)."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def csrf_ok(sent=None):
    """Whether the request carries this session's token.

    :param sent: the token sent; the posted form's ``csrf_token`` when ``None``
    """
    sent = request.form.get("csrf_token", "") if sent is None else sent
    return "csrf" in session and secrets.compare_digest(sent, session["csrf"])


def current_user():
    """The logged-in username, or ``None`` when there is none or it has expired."""
    if "user" not in session:
        return None
    login_at = session.get("login_at", 0)
    # logins before the last POST /_sim/sessions/expire are over, as after a restart
    if (time.time() - login_at > current_app.config["ERP_SIM"].session_ttl
            or login_at < current_app.config.get("SESSIONS_VALID_FROM", 0)):
        session.clear()
        g.session_expired = True
        return None
    return session["user"]


def password_ok(username, password):
    """Whether ``username`` exists and ``password`` is theirs."""
    row = get_db().execute(
        "SELECT password_hash FROM users WHERE username = ?", (username,)
    ).fetchone()
    return row is not None and check_password_hash(row["password_hash"], password)


def start_session(username):
    """Log ``username`` in: a fresh session (and form token) per login."""
    session.clear()
    session["user"] = username
    session["login_at"] = time.time()


def require_login():
    if request.endpoint in PUBLIC_ENDPOINTS or request.blueprint == "sim":
        return None
    if current_user() is None:
        if g.get("session_expired"):
            flash(EXPIRED, "info")
        return redirect(url_for("auth.login", next=_came_from()))
    return None


def _came_from():
    # A POST cannot be replayed after the login, so send the user back to the page
    # the form was on instead.
    if request.method == "GET":
        return request.full_path.rstrip("?")
    referrer = urlsplit(request.referrer or "")
    if referrer.netloc == request.host:
        return referrer.path + (f"?{referrer.query}" if referrer.query else "")
    return ""


def _safe_next(target):
    # Only local paths: "//evil.example" would be an open redirect.
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("worksheets.search")


@bp.route("/login", methods=("GET", "POST"))
def login():
    next_url = request.values.get("next", "")
    if request.method == "GET":
        return render_template("login.html", next=next_url, errors=[], username="")
    username = request.form.get("username", "").strip()
    if not csrf_ok():
        errors, status = [BAD_TOKEN], 400
    else:
        if password_ok(username, request.form.get("password", "")):
            start_session(username)
            return redirect(_safe_next(next_url))
        errors, status = [LOGIN_FAILED], 401
    # The password is never echoed back into the form.
    return render_template("login.html", next=next_url, errors=errors,
                           username=username), status


@bp.route("/logout")
def logout():
    session.clear()
    flash("You have been logged out.", "info")
    return redirect(url_for("auth.login"))


def init_app(app):
    app.register_blueprint(bp)
    app.before_request(require_login)
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["current_user"] = lambda: session.get("user")
