"""Behind the fleet's front door (nginx, fleet/frontdoor.py): the client's view of a request.

nginx passes ``/w/<slug>/create`` on as ``/create`` and says what it took off and how it
was reached in ``X-Forwarded-Prefix``, ``-Proto``, ``-Host`` and ``-For``. With those,
``request.url_root`` is the public ``https://host:8443/w/<slug>/`` (the server URL of
``/openapi.json``) and ``request.remote_addr`` the client's address (rate limits per
address). They are believed only from the loopback address, where the front door
connects from; from anywhere else they are ignored.
"""

from werkzeug.middleware.proxy_fix import ProxyFix

#: the only addresses whose X-Forwarded-* headers are believed
TRUSTED = frozenset({"127.0.0.1", "::1"})


class TrustedProxy:
    """WSGI middleware: werkzeug's ProxyFix (one proxy) for requests from :data:`TRUSTED`."""

    def __init__(self, app):
        self.app = app
        self.behind_proxy = ProxyFix(app, x_for=1, x_proto=1, x_host=1, x_prefix=1)

    def __call__(self, environ, start_response):
        if environ.get("REMOTE_ADDR") in TRUSTED:
            return self.behind_proxy(environ, start_response)
        return self.app(environ, start_response)


def init_app(app):
    app.wsgi_app = TrustedProxy(app.wsgi_app)
