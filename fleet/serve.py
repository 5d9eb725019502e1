"""Run the management API: ``python -m fleet.serve`` (supervisord's ``management`` program).

One process, a thread per request: the API is called by a few admins and the overview
page, so a single small process beats a pre-forking server on memory.

The access log names method, path and status, never the query string: a client that
sends its token as ``?token=...`` must not leave it in ``logs/management.log``.
"""

import logging
import signal
import sys
import threading
from urllib.parse import urlsplit

from werkzeug.serving import WSGIRequestHandler, make_server

from core.errors import ConfigError
from core.hold import Hold
from service.logs import JsonFormatter
from fleet.janitor import start_janitor
from fleet.management import create_app
from fleet.settings import MANAGEMENT_HOLD, load_fleet_settings


class RequestHandler(WSGIRequestHandler):
    """werkzeug's handler, with an access log that drops query strings and raw request lines."""

    def log_request(self, code="-", size="-"):
        # self.path is missing when the request line did not parse
        path = urlsplit(getattr(self, "path", "") or "-").path
        line = f"{getattr(self, 'command', None) or '-'} {path}".translate(self._control_char_table)
        self.log("info", '"%s" %s %s', line, code, size)

    def log_error(self, format, *args):
        # http.server quotes the raw request line in these ("Bad request syntax ('GET /?token=...')")
        code = next((a for a in args if isinstance(a, int)), None)
        self.log("error", "refused a malformed request%s", f" ({code})" if code else "")


def serve_app(app, host, port):
    """:returns: a threaded server for ``app`` with :class:`RequestHandler` (not started)"""
    return make_server(host, port, app, threaded=True, request_handler=RequestHandler)


def main():
    try:
        settings = load_fleet_settings()
    except ConfigError as e:
        print(f"management API: {e}", file=sys.stderr)
        return 2
    handler = logging.StreamHandler()
    if settings.log_format == "json":  # LOG_FORMAT, as the instances honour it
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    try:
        # one per fleet: ``manage.py up`` finds the one a killed supervisord left (fleet/takeover.py)
        hold = Hold.take(settings.supervisor_dir, "management API", settings.management_port,
                         name=MANAGEMENT_HOLD)
        app = create_app(settings)
    except ConfigError as e:
        print(f"management API: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"management API: SUPERVISOR_DIR: {e}", file=sys.stderr)
        return 2
    server = serve_app(app, settings.management_host, settings.management_port)
    start_janitor(settings)  # parked Grid sessions nobody claimed (fleet/janitor.py)
    # shutdown() waits for serve_forever to return, so it must run on another thread
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    logging.getLogger("fleet").info("management API on http://%s:%s",
                                    settings.management_host, settings.management_port)
    server.serve_forever()
    hold.release()
    return 0


if __name__ == "__main__":
    sys.exit(main())
