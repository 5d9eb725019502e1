"""Rate limits of an HTTP API, per API token, with the ``limits`` library in memory.

``limits`` is the engine under Flask-Limiter, used here through one ``before_request``
hook of our own. Flask-Limiter itself resolved which of its limits apply on every
request (route, blueprint, method, exemptions): 0.32 ms of the 1.45 ms an in-process
``POST /create`` took (cProfile, 1,000 creates, 2026-12-04), enough to pull intake below
half of the HTTP floor (``make bench``: 0.46 against the target 0.5). The one
application-wide limit this API has needs none of that; the hook costs a dictionary
look-up, a digest comparison and the moving window's hit.

Used by the instance (``RATE_LIMIT``) and the management API (``MANAGEMENT_RATE_LIMIT``).
Each is one process, so the counts live in that process's memory (no Redis); a restart
forgets them, which costs at most one window's allowance.

* **Key.** A request that presents the valid token is counted under a SHA-256 digest of
  that token, made once at start: the token itself never becomes a key, so it cannot
  show in the limiter's storage, its log lines or a memory dump of the counts. Any other
  request (no token, a wrong one) is counted per remote address, so that guessing tokens
  is limited as well and cannot use up the allowance of the real client.
* **Before authentication.** The limiter's hook is the first ``before_request`` of the
  app (:func:`init_app` must be called before the token check is registered), so a flood
  of wrong tokens is answered 429 too.
* **One allowance for the whole API** (an application-wide limit), not one per endpoint.
  Endpoints named in ``exempt`` (the instance's ``/alive``: ILX polls it, and a health
  check must answer also to a client over its limit) and unknown paths are not counted.
* **Moving window**: the limit holds over every window of that length, so there is no
  burst of twice the limit at the edge of a fixed window; ``Retry-After`` says when the
  oldest counted request leaves the window.
* **Over the limit**: 429 in the API's own error shape, with ``Retry-After`` in seconds.
"""

import hashlib
import hmac
import math
import time

from core.errors import ConfigError

#: requests per token (or per address without one), when no setting says otherwise
DEFAULT_RATE_LIMIT = "600/minute"


def check_rate_limit(name, value):
    """Check a rate in Flask-Limiter's notation: ``600/minute``, ``10 per second``, or
    several joined with ``;`` (each must hold).

    :param name: the setting's name, for the message
    :returns: ``value``
    :raises ConfigError: a one-line message when it cannot be read or allows nothing
    """
    from limits import parse_many

    try:
        items = parse_many(value)
    except ValueError:
        items = None
    if not items:
        raise ConfigError(f"{name} must be a rate like 600/minute or 10/second "
                          f"(Flask-Limiter notation), got {value!r}")
    if any(item.amount < 1 for item in items):
        raise ConfigError(f"{name} must allow at least 1 request, got {value!r}")
    return value


def init_app(app, rate, token, presented_token, refuse, exempt=()):
    """Limit every request to ``app`` to ``rate`` per token (per address without one).

    :param app: the Flask app; call this before its token check is registered
    :param rate: a rate checked by :func:`check_rate_limit`
    :param token: the API's valid token
    :param presented_token: callable: the token the current request presents, or ``""``
    :param refuse: callable ``(message) -> (response, status)``: the API's error answer
    :param exempt: endpoint names that are never limited
    :returns: the counts' storage (a :class:`limits.storage.MemoryStorage`), also in
        ``app.extensions["ratelimit"]``
    """
    from flask import request
    from limits import parse_many
    from limits.storage import MemoryStorage
    from limits.strategies import MovingWindowRateLimiter

    expected = token.encode("utf-8")
    token_key = "token:" + hashlib.sha256(expected).hexdigest()
    items = parse_many(rate)
    storage = MemoryStorage()
    window = MovingWindowRateLimiter(storage)
    exempt = frozenset(exempt)

    def key():
        presented = presented_token().encode("utf-8")
        if presented and hmac.compare_digest(presented, expected):
            return token_key
        return "address:" + (request.remote_addr or "unknown")

    def limit():
        if request.endpoint is None or request.endpoint in exempt:
            return None  # unknown paths (404) and exempt endpoints are not counted
        who = key()
        for item in items:  # each must hold; the first one broken answers
            if not window.hit(item, who):
                # the window's reset: when the oldest counted request leaves it
                reset = window.get_window_stats(item, who).reset_time
                wait = max(1, math.ceil(reset - time.time()))
                response, _ = refuse(f"more than {item} for this client; "
                                     f"try again in {wait} s")
                response.headers["Retry-After"] = str(wait)
                return response, 429
        return None

    app.before_request(limit)
    app.extensions["ratelimit"] = storage
    return storage
