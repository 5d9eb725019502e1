"""``python -m erp_tryton --port PORT --data DIR``: serve a seeded Tryton (trytond + sao).

Installs what is missing into its own cached virtualenv and sao folder (the first run takes
about a minute, later ones a second), copies the seeded ``workshop`` database into DIR if
DIR has none, then becomes trytond on 127.0.0.1:PORT until SIGTERM or SIGINT (exit 0).
See erp_tryton/README.md.
"""

import argparse
import os
import socket
import sys

from erp_tryton.install import (DATABASE, DEFAULT_LANGUAGE, DEFAULT_SERIES, LANGUAGES,
                                REPO_ROOT, SERIES, Build, install_database, write_config)


def _seconds(text):
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("expected a whole number of seconds > 0")
    return value


def _language(text):
    if text not in LANGUAGES:
        raise argparse.ArgumentTypeError(
            f"Tryton ships no language {text!r}; it has {', '.join(LANGUAGES)}")
    return text


def _series(text):
    if text not in SERIES:
        raise argparse.ArgumentTypeError(
            f"no Tryton series {text!r} here; the stand-up runs {', '.join(sorted(SERIES))}")
    return text


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m erp_tryton", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, help="0 picks a free port (required to serve)")
    parser.add_argument("--data", metavar="DIR",
                        help="folder of the database workshop.sqlite (created and seeded "
                             "when absent; required to serve)")
    parser.add_argument("--session-ttl", type=_seconds, metavar="SECONDS",
                        help="a login is valid this long, counted from the login "
                             "(Tryton's [session] max_age; default 30 days)")
    parser.add_argument("--series", type=_series, default=DEFAULT_SERIES, metavar="X.Y",
                        help=f"the Tryton series: {' or '.join(sorted(SERIES))} (default "
                             f"{DEFAULT_SERIES}); each is built and cached beside the other")
    parser.add_argument("--language", type=_language, metavar="CODE",
                        help="load this language into the database and make it the admin's "
                             f"preference (default {DEFAULT_LANGUAGE} for a new database; a "
                             "kept one keeps its own unless this is given)")
    parser.add_argument("--prepare", action="store_true",
                        help="only install and build the cached template database, then exit")
    args = parser.parse_args(argv)
    if not args.prepare and (args.port is None or args.data is None):
        parser.error("--port and --data are required (or --prepare)")
    if args.port is not None and not 0 <= args.port <= 65535:
        parser.error("--port must be 0-65535")
    if args.data is not None and os.path.exists(args.data) and not os.path.isdir(args.data):
        parser.error(f"--data {args.data} is not a folder")
    return args


def _free_port():
    # trytond needs a number in its configuration; the race with another process taking
    # it between here and trytond's bind is accepted, as for any test server.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv=None):
    args = parse_args(argv)
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    language = args.language or DEFAULT_LANGUAGE
    build = Build(log=log, series=args.series).ensure(language)
    if args.prepare:
        print(f"erp_tryton: ready in {build.dir}", flush=True)
        return
    data_dir = os.path.abspath(args.data)
    seeded = install_database(build, data_dir, language)
    if not seeded and args.language:
        # A kept database may be in any language: load this one into it (seconds).
        build.set_language(data_dir, language)
    port = args.port or _free_port()
    config = write_config(data_dir, data_dir, port, build.sao, args.session_ttl)
    print(f"erp_tryton listening on http://127.0.0.1:{port}/ (Tryton {args.series}, "
          f"database {DATABASE} in "
          f"{data_dir}, {'freshly seeded' if seeded else 'kept'}; log in as admin/admin"
          f"{f', language {args.language}' if args.language or seeded else ''})", flush=True)
    # Become trytond (no parent left behind): signals and memory figures are then its own.
    env = {**os.environ, "PYTHONPATH": REPO_ROOT}
    os.execve(build.python, [build.python, "-m", "erp_tryton.serve", config, DATABASE], env)


if __name__ == "__main__":
    main()
