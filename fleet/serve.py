"""Run the management API: ``python -m fleet.serve`` (supervisord's ``management`` program).

One process, a thread per request: the API is called by a few admins and the overview
page, so a single small process beats a pre-forking server on memory.
"""

import logging
import signal
import sys
import threading

from werkzeug.serving import make_server

from bridge.exceptions import ConfigError
from fleet.management import create_app
from fleet.settings import load_fleet_settings


def main():
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        settings = load_fleet_settings()
        app = create_app(settings)
    except ConfigError as e:
        print(f"management API: {e}", file=sys.stderr)
        return 2
    server = make_server(settings.management_host, settings.management_port, app, threaded=True)
    # shutdown() waits for serve_forever to return, so it must run on another thread
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    logging.getLogger("fleet").info("management API on http://%s:%s",
                                    settings.management_host, settings.management_port)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
