"""``python -m erp_sim --port PORT``: serve one stand-in ERP until SIGINT/SIGTERM."""

import argparse
import atexit
import os
import shutil
import signal
import sys
import tempfile

from werkzeug.serving import make_server

from erp_sim.app import create_app
from erp_sim.config import SimConfig


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m erp_sim", description=__doc__)
    parser.add_argument("--port", type=int, required=True, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--db", help="SQLite file (default: a temporary file, removed on exit)")
    parser.add_argument("--session-ttl", type=float, default=SimConfig.session_ttl,
                        help="seconds a login stays valid, from the login (default 1800)")
    parser.add_argument("--save-delay", type=float, default=SimConfig.save_delay,
                        help="seconds to wait before storing a new line (default 0.3)")
    args = parser.parse_args(argv)
    if args.session_ttl <= 0 or args.save_delay < 0:
        parser.error("--session-ttl must be > 0 and --save-delay >= 0")
    return args


def main(argv=None):
    args = parse_args(argv)
    db_path = args.db
    if db_path is None:
        tmp = tempfile.mkdtemp(prefix="erp_sim-")
        atexit.register(shutil.rmtree, tmp, ignore_errors=True)
        db_path = os.path.join(tmp, "erp.sqlite")
    config = SimConfig(db_path=db_path, session_ttl=args.session_ttl,
                       save_delay=args.save_delay)
    server = make_server(args.host, args.port, create_app(config), threaded=True)
    # SIGTERM (the test helper, supervisord) should clean up like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    print(f"erp_sim listening on http://{args.host}:{server.server_port}/ "
          f"(db {db_path}, session ttl {args.session_ttl:g}s, save delay {args.save_delay:g}s)",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
