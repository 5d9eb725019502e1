"""The one shape of every error answer, the handlers that guarantee it, and the one
strict reader of JSON bodies.

Whatever goes wrong in a request -- bad JSON, a body too large, an unknown path, a bug
-- the client gets JSON ``{"error", "message"[, "fields"]}`` and never a stack trace.
Errors gunicorn answers before Flask sees the request have the same shape, see
:mod:`service.server`.
"""

import json
import logging
import re
from decimal import Decimal, InvalidOperation

from flask import current_app, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from core.errors import StorageUnavailable

log = logging.getLogger("oilmat.api")


def error_body(error, message, fields=None):
    """:returns: the one error shape as a dict"""
    body = {"error": error, "message": message}
    if fields:
        body["fields"] = fields
    return body


def error_response(status, error, message, fields=None):
    return jsonify(error_body(error, message, fields)), status


#: werkzeug's own headers of an HTTP error that describe its HTML body, not the error
_BODY_HEADERS = {"content-type", "content-length"}


def _http_error(exc):
    code = (exc.name or "error").lower().replace(" ", "_")
    message = {
        413: "the request body is larger than the limit of 64 KB",
        405: "this method is not allowed on this path",
        404: "no such endpoint",
    }.get(exc.code, exc.description or exc.name)
    response, status = error_response(exc.code, code, message)
    # keep what the error says about the request, e.g. a 405's Allow (RFC 9110)
    for name, value in exc.get_headers():
        if name.lower() not in _BODY_HEADERS:
            response.headers[name] = value
    return response, status


#: what every page for a browser is sent with: not framed (clickjacking), not
#: content-sniffed, no address leaked to a link's target; the page's own
#: Content-Security-Policy is set by :func:`secure_page`
PAGE_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def secure_page(response, policy="default-src 'none'"):
    """Set :data:`PAGE_HEADERS` and a Content-Security-Policy on an HTML response;
    ``frame-ancestors 'none'`` is always part of the policy.

    :param policy: the page's own sources, e.g. ``"default-src 'self'"``
    :returns: ``response``
    """
    response.headers.update(PAGE_HEADERS)
    response.headers["Content-Security-Policy"] = (
        f"{policy}; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
    return response


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


# -- reading a JSON body -------------------------------------------------------------

class BodyError(ValueError):
    """A request body that is not acceptable JSON; the message says why (answered 400)."""


#: digits a number in a body may have: Python refuses to read ints over 4,300 digits
#: with a ValueError naming sys.set_int_max_str_digits; no field needs more than 18
MAX_NUMBER_DIGITS = 100
_SURROGATE = re.compile("[\ud800-\udfff]")


def stream_limit(limit):
    """The ``MAX_CONTENT_LENGTH`` to give Flask for a body limit of ``limit`` bytes.

    One byte more: werkzeug's body stream raises 413 on any read past its maximum, also
    on the read that would only find the end of a body of exactly ``limit`` bytes (a
    body of 65,536 bytes got 413 under "over 64 KB"). :func:`read_body` holds the limit.
    """
    return limit + 1


def read_body(limit):
    """Read this request's body, at most ``limit`` bytes.

    Reads in pieces and stops one byte past the limit, so a chunked body (no
    ``Content-Length``, which werkzeug checks before reading) is refused with 413
    without holding more than the limit in memory. The app's ``MAX_CONTENT_LENGTH``
    must be :func:`stream_limit` of the same limit.

    :raises RequestEntityTooLarge: more than ``limit`` bytes (answered 413)
    :raises BodyError: a body that cannot be read (400)
    """
    stream, pieces, size = request.stream, [], 0
    while True:
        try:
            piece = stream.read(min(64 * 1024, limit + 1 - size))
        except HTTPException:
            raise
        except Exception as exc:  # e.g. gunicorn's InvalidChunkSize: a broken chunked body
            raise BodyError(f"the body could not be read: {str(exc)[:200]}") from None
        if not piece:
            break
        size += len(piece)
        if size > limit:
            raise RequestEntityTooLarge()
        pieces.append(piece)
    return b"".join(pieces)


def read_json_body():
    """Read this request's body (at most the app's ``BODY_LIMIT`` bytes, see
    :func:`read_body`) and parse it (:func:`parse_json`).

    :raises RequestEntityTooLarge: past the limit (answered 413)
    :raises BodyError: a body that cannot be read or parsed (400)
    """
    return parse_json(read_body(current_app.config["BODY_LIMIT"]))


def parse_json(raw):
    """Parse a request body as JSON, strictly.

    Refused, each with its own message: bytes that are not UTF-8 (a leading UTF-8 BOM
    is skipped), invalid JSON, nesting deeper than Python's recursion limit (the
    ``RecursionError`` that gave a 500), ``NaN``/``Infinity`` (not JSON), a key twice
    in one object (which value is meant?), a number of more than
    :data:`MAX_NUMBER_DIGITS` digits, and ``\\ud800``-style lone surrogates (they
    cannot be stored or encoded). Numbers with a fraction or exponent are read as
    :class:`~decimal.Decimal`, exactly as written.

    :param raw: the body as bytes
    :raises BodyError: with the reason
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError(f"the body is not valid UTF-8 (byte {exc.start})") from None
    try:
        value = json.loads(text.removeprefix("\ufeff"), parse_constant=_no_constant,
                           parse_int=_int, parse_float=_decimal, object_pairs_hook=_object)
    except json.JSONDecodeError as exc:
        raise BodyError(f"the body is not valid JSON: {exc.msg} (line {exc.lineno}, "
                        f"column {exc.colno})") from None
    except RecursionError:
        raise BodyError("the body nests arrays or objects too deeply") from None
    _check_strings(value)
    return value


def _no_constant(name):
    raise BodyError(f"the body is not valid JSON: {name} is not a JSON number")


def _long(text):
    if len(text) > MAX_NUMBER_DIGITS:
        raise BodyError(f"a number in the body is longer than {MAX_NUMBER_DIGITS} characters")


def _int(text):
    _long(text)
    return int(text)


def _decimal(text):
    _long(text)
    try:
        return Decimal(text)
    except InvalidOperation:  # an exponent beyond what Decimal can hold
        raise BodyError(f"a number in the body is out of range: {text}") from None


def _object(pairs):
    value = dict(pairs)
    if len(value) != len(pairs):
        seen = set()
        for key, _ in pairs:
            if key in seen:
                raise BodyError(f"the key {key[:50]!r} appears twice in one object")
            seen.add(key)
    return value


def _check_strings(value):
    """Refuse lone surrogates anywhere in the parsed body (iteratively: no recursion)."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str) and _SURROGATE.search(item):
            raise BodyError("the body holds a lone surrogate (an escape in \\ud800-\\udfff "
                            "that is not half of a pair), which is not text")
