"""``GET /openapi.json``: the API description, built from :mod:`bridge.openapi`."""

from flask import Blueprint, jsonify

from bridge.openapi import build_document

bp = Blueprint("docs", __name__)


@bp.get("/openapi.json")
def openapi():
    return jsonify(build_document())
