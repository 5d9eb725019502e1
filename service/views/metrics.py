"""``GET /metrics``: the instance's figures for Prometheus (see :mod:`service.metrics`).

Token-protected like every endpoint but ``/alive``: Prometheus sends it with
``authorization: {credentials: <API_TOKEN>}`` in its scrape configuration.
"""

from flask import Blueprint, Response, current_app

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics():
    body, content_type = current_app.extensions["service"].metrics.render()
    return Response(body, content_type=content_type)
