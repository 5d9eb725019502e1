"""The one shape of every error answer, and the handlers that guarantee it.

Whatever goes wrong in a request -- bad JSON, a body too large, an unknown path, a bug
-- the client gets JSON ``{"error", "message"[, "fields"]}`` and never a stack trace.
"""

import logging

from flask import jsonify
from werkzeug.exceptions import HTTPException

from bridge.exceptions import StorageUnavailable

log = logging.getLogger("oilmat.api")


def error_response(status, error, message, fields=None):
    body = {"error": error, "message": message}
    if fields:
        body["fields"] = fields
    return jsonify(body), status


def _http_error(exc):
    code = (exc.name or "error").lower().replace(" ", "_")
    message = {
        413: "the request body is larger than the limit of 64 KB",
        405: "this method is not allowed on this path",
        404: "no such endpoint",
    }.get(exc.code, exc.description or exc.name)
    return error_response(exc.code, code, message)


#: seconds a client is told to wait when the instance's own files cannot be used
STORAGE_RETRY_AFTER = 30


def _storage_unavailable(exc):
    """Disk full or records damaged: 503 with ``Retry-After``, saying whether the order
    of this request is stored all the same (a repost is always safe)."""
    response, status = error_response(503, "storage_unavailable", exc.reason_text)
    response.headers["Retry-After"] = str(STORAGE_RETRY_AFTER)
    return response, status


def _unexpected(exc):
    log.exception("unhandled error")
    return error_response(500, "internal_error", "the server hit an unexpected error")


def init_app(app):
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(StorageUnavailable, _storage_unavailable)
    app.register_error_handler(Exception, _unexpected)
