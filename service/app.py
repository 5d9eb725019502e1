"""The Flask app factory of one instance."""

from flask import Flask

from core import ratelimit
from service import auth, http, proxy
from service.http import error_response
from service.views import control, docs, events, failed, orders
from service.views import metrics as metrics_view

#: bodies above this are refused with 413 (a body of exactly this size is taken)
MAX_BODY_BYTES = 64 * 1024


def _rate_limited(message):
    return error_response(429, "rate_limited", message)


def create_app(instance, request_shutdown=None):
    """Build the API of one workshop's instance.

    :param instance: the :class:`~service.instance.Instance` it serves
    :param request_shutdown: called by ``PUT /kill`` once the answer is decided; it
        must return at once and stop the process afterwards (see :mod:`service.server`)
    """
    app = Flask("oilmat_bridge")
    app.config.update(
        API_TOKEN=instance.settings.api_token,
        BODY_LIMIT=MAX_BODY_BYTES,
        MAX_CONTENT_LENGTH=http.stream_limit(MAX_BODY_BYTES),
        REQUEST_SHUTDOWN=request_shutdown or instance.shutdown_requested.set,
        JSON_SORT_KEYS=False,
    )
    app.json.sort_keys = False
    app.extensions["service"] = instance
    http.init_app(app)
    proxy.init_app(app)  # behind the fleet's front door: the public URL and client address
    # before the token check: a flood of wrong tokens is limited too (core/ratelimit.py)
    ratelimit.init_app(app, instance.settings.rate_limit, instance.settings.api_token,
                       auth.presented_token, _rate_limited, exempt=auth.PUBLIC_ENDPOINTS)
    auth.init_app(app)
    app.register_blueprint(orders.bp)
    app.register_blueprint(control.bp)
    app.register_blueprint(docs.bp)
    app.register_blueprint(events.bp)
    app.register_blueprint(failed.bp)
    app.register_blueprint(metrics_view.bp)
    return app
