"""``GET /openapi.json``: the API description, built from :mod:`service.openapi`; and
``GET /docs``: the same for people, a page listing every operation with its summary.

Both need the token, like every endpoint but ``/alive``: the document is this
instance's (its workshop, its ``MAX_PRODUCT_AMOUNT``). The page is plain HTML made on
the server, with no script and nothing loaded from elsewhere (the instance may have no
internet), sent with a Content-Security-Policy that allows none.
"""

from html import escape

from flask import Blueprint, Response, current_app, jsonify, request

from service.http import secure_page

bp = Blueprint("docs", __name__)


def _document():
    # Imported on the first request, not at start: the document is built from the
    # pydantic models, and pydantic plus the models are ~9 MB of an idle instance's RSS.
    from service.openapi import build_document

    # the server URL as the client reached it: behind the fleet's front door
    # https://host:8443/w/<slug> (service/proxy.py), else this instance's own address
    return build_document(current_app.extensions["service"].settings,
                          request.url_root.rstrip("/"))


@bp.get("/openapi.json")
def openapi():
    return jsonify(_document())


@bp.get("/docs")
def docs():
    document = _document()
    info = document["info"]
    rows = "".join(
        f"<tr><td>{escape(method.upper())}</td><td><code>{escape(path)}</code></td>"
        f"<td>{escape(operation.get('summary', ''))}</td></tr>\n"
        for path, operations in document["paths"].items()
        for method, operation in operations.items())
    page = (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(info['title'])}</title></head><body>\n"
            f"<h1>{escape(info['title'])} {escape(info['version'])}</h1>\n"
            f"<p>{escape(info.get('description', ''))}</p>\n"
            f"<p>The whole description, with every field and answer: "
            f"<code>GET /openapi.json</code> (OpenAPI 3.1, the same token).</p>\n"
            f"<table><tr><th>Method</th><th>Path</th><th>What it does</th></tr>\n{rows}"
            f"</table></body></html>\n")
    return secure_page(Response(page, content_type="text/html; charset=utf-8"))
