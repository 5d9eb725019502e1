"""Bearer-token authentication for every endpoint but ``GET /alive``.

``Authorization: Bearer <API_TOKEN>`` or ``X-API-Key: <API_TOKEN>``; compared in
constant time so the token cannot be guessed byte by byte from response times.
"""

import hmac

from flask import current_app, request

from service.http import error_response

#: endpoints that answer without a token: health checks must work for anyone
PUBLIC_ENDPOINTS = {"control.alive"}


def _presented_token():
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.headers.get("X-API-Key", "").strip()


#: the token a request presents, also for the rate limit's key (core/ratelimit.py)
presented_token = _presented_token


def _check_token():
    if request.endpoint in PUBLIC_ENDPOINTS or request.endpoint is None:
        return None  # None: unknown path, answered by the 404 handler
    presented = _presented_token().encode("utf-8")
    expected = current_app.config["API_TOKEN"].encode("utf-8")
    if not presented:
        return error_response(401, "unauthorized",
                              "send the API token as 'Authorization: Bearer <token>'")
    if not hmac.compare_digest(presented, expected):
        return error_response(401, "unauthorized", "the API token is not valid")
    return None


def init_app(app):
    app.before_request(_check_token)
