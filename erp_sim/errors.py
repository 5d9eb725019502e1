"""One recognisable answer for every HTTP error, as a real ERP (or its proxy) has:
an HTML page for pages, JSON for the SPA's ``/api`` calls."""

from flask import jsonify, make_response, render_template, request
from werkzeug.http import HTTP_STATUS_CODES


def error_response(code):
    """The error answer for HTTP status ``code`` to the current request."""
    name = HTTP_STATUS_CODES.get(code, "Error")
    if request.path.startswith("/api/"):
        response = jsonify(error=f"{code} {name}")
    else:
        response = make_response(render_template("error.html", code=code, name=name))
    response.status_code = code
    return response


def handle_http_error(error):
    return error_response(getattr(error, "code", 500) or 500)
