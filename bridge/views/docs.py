"""``GET /openapi.json``: the API description, built from :mod:`bridge.openapi`."""

from flask import Blueprint, current_app, jsonify

bp = Blueprint("docs", __name__)


@bp.get("/openapi.json")
def openapi():
    # Imported on the first request, not at start: the document is built from the
    # pydantic models, and pydantic plus the models are ~9 MB of an idle instance's RSS.
    from bridge.openapi import build_document

    return jsonify(build_document(current_app.extensions["bridge"].settings))
