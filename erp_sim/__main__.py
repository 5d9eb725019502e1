"""``python -m erp_sim --port PORT``: serve one stand-in ERP until SIGINT/SIGTERM.

Chaos options (all off by default) make it behave like a real ERP on a bad day; see
erp_sim/README.md. ``/_sim/*`` is never subject to chaos.
"""

import argparse
import atexit
import os
import shutil
import signal
import sys
import tempfile

from werkzeug.serving import make_server

from erp_sim.app import create_app
from erp_sim.config import FLAVORS, REVISIONS, SimConfig


def _latency(text):
    low, sep, high = text.partition("-")
    try:
        low, high = float(low), float(high if sep else low)
    except ValueError:
        raise argparse.ArgumentTypeError("expected MIN-MAX seconds, e.g. 0-0.5") from None
    if not 0 <= low <= high:
        raise argparse.ArgumentTypeError("expected 0 <= MIN <= MAX")
    return low, high


def _share(text):
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError("expected a share between 0 and 1")
    return value


def _revision_from_env():
    text = os.environ.get("ERP_SIM_UI_REVISION", "").strip()
    if not text:
        return SimConfig.ui_revision
    if text not in {str(n) for n in REVISIONS}:
        sys.exit(f"ERP_SIM_UI_REVISION must be one of {', '.join(map(str, REVISIONS))}")
    return int(text)


def _user(text):
    name, sep, password = text.partition(":")
    if not (name and sep and password):
        raise argparse.ArgumentTypeError("expected NAME:PASSWORD")
    return name, password


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m erp_sim", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--db", help="SQLite file (default: a temporary file, removed on exit)")
    parser.add_argument("--flavor", choices=FLAVORS, default=SimConfig.flavor,
                        help="classic: server-rendered pages (default); spa: a JavaScript "
                             "single-page app over JSON calls")
    parser.add_argument("--ui-revision", type=int, choices=REVISIONS,
                        default=_revision_from_env(),
                        help="the screens' revision: 1 as always (default; "
                             "$ERP_SIM_UI_REVISION when set), 2 after a vendor update that "
                             "renamed a field and a button and reordered the lines table; "
                             "switchable while running: PUT /_sim/ui_revision")
    parser.add_argument("--user", type=_user, action="append", default=[],
                        metavar="NAME:PASSWORD",
                        help="an extra user besides admin/admin (repeatable)")
    parser.add_argument("--session-ttl", type=float, default=SimConfig.session_ttl,
                        help="seconds a login stays valid, from the login (default 1800)")
    parser.add_argument("--save-delay", type=float, default=SimConfig.save_delay,
                        help="seconds to wait before storing a new line (default 0.3)")
    chaos = parser.add_argument_group("chaos (all off by default)")
    chaos.add_argument("--latency", type=_latency, metavar="MIN-MAX",
                       help="seconds added to every response, uniformly in MIN-MAX")
    chaos.add_argument("--error-rate", type=_share, default=0.0, metavar="P",
                       help="share of requests answered with an HTTP 500 or 502 error, half "
                            "of them after the request was carried out")
    chaos.add_argument("--rerender", action="store_true",
                       help="pages replace their content 20-300 ms after they are drawn, "
                            "making held elements stale")
    chaos.add_argument("--slow-save", type=float, default=0.0, metavar="SECONDS",
                       help="a line is stored at once, its confirmation comes this much later")
    chaos.add_argument("--lock-rate", type=_share, default=0.0, metavar="P",
                       help="share of worksheet opens and saves that find the worksheet "
                            "locked by another user for 0.2-1 s")
    chaos.add_argument("--seed", type=int, help="seed of the chaos random numbers")
    args = parser.parse_args(argv)
    if args.session_ttl <= 0 or args.save_delay < 0 or args.slow_save < 0:
        parser.error("--session-ttl must be > 0, --save-delay and --slow-save >= 0")
    return args


def main(argv=None):
    args = parse_args(argv)
    db_path = args.db
    if db_path is None:
        tmp = tempfile.mkdtemp(prefix="erp_sim-")
        atexit.register(shutil.rmtree, tmp, ignore_errors=True)
        db_path = os.path.join(tmp, "erp.sqlite")
    config = SimConfig(db_path=db_path, flavor=args.flavor, session_ttl=args.session_ttl,
                       save_delay=args.save_delay, users=tuple(args.user),
                       latency=args.latency, error_rate=args.error_rate,
                       rerender=args.rerender, slow_save=args.slow_save,
                       lock_rate=args.lock_rate, seed=args.seed,
                       ui_revision=args.ui_revision)
    server = make_server(args.host, args.port, create_app(config), threaded=True)
    # SIGTERM (the test helper, supervisord) should clean up like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    print(f"erp_sim listening on http://{args.host}:{server.server_port}/ "
          f"(db {db_path}, flavor {config.flavor}, session ttl {config.session_ttl:g}s, "
          f"save delay {config.save_delay:g}s{_revision(config)}{_chaos_summary(config)})",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _revision(config):
    return f", ui revision {config.ui_revision}" if config.ui_revision != 1 else ""


def _chaos_summary(config):
    parts = []
    if config.latency:
        parts.append(f"latency {config.latency[0]:g}-{config.latency[1]:g}s")
    for name in ("error_rate", "slow_save", "lock_rate"):
        if getattr(config, name):
            parts.append(f"{name.replace('_', ' ')} {getattr(config, name):g}")
    if config.rerender:
        parts.append("rerender")
    if config.seed is not None:
        parts.append(f"seed {config.seed}")
    return ", chaos: " + ", ".join(parts) if parts else ""


if __name__ == "__main__":
    main()
