"""``python manage.py``: the admin's command for the fleet. Command names are fixed:
operators' scripts call them.

Every error is one line on stderr and exit code 2. ``rotate-secrets`` exits 1 when it
finished but found secrets that open under no key (named in its report).
"""

import argparse
import json
import os
import sys

from core.errors import BridgeError
from fleet import frontdoor, states
from fleet.backup import backup, restore
from fleet.bytecode import compile_sources
from fleet.errors import InvalidRegistration, SupervisorUnavailable
from fleet.control import Fleet
from fleet.rotate import rotate_secrets
from fleet.schemas import RegistrationChange, RegistrationSpec, parse
from fleet.settings import ROOT, load_fleet_settings, require
from fleet.takeover import take_over


def _integration_options(p, creating):
    p.add_argument("workshop", help="workshop name as OilMat knows it, e.g. 'Bennys Auto'")
    p.add_argument("--erp-system", required=creating, help="ERP module under integrations/, e.g. erp_sim")
    p.add_argument("--erp-url", required=creating, help="base URL of the workshop's ERP")
    p.add_argument("--port", type=int, required=creating, help="port of the instance's API")
    p.add_argument("--username", help="default ERP login")
    p.add_argument("--password", help="its password ('-' reads one line from stdin)")
    p.add_argument("--api-token", help="the instance's API token (default: generated)")
    p.add_argument("--option", dest="options", action="append", metavar="NAME=VALUE",
                   help="an option of the ERP, e.g. database=workshop (repeatable; VALUE '-' "
                        "reads one line from stdin" + ("; 'NAME=' removes it, so the ERP's "
                                                       "default applies)" if not creating else ")"))
    p.add_argument("--webhook-url", help="where the instance POSTs every order event (Standard "
                   "Webhooks)" + ("; '' removes the webhook" if not creating else ""))
    p.add_argument("--webhook-secret", help="whsec_<base64 key> that signs them ('-' reads one "
                   "line from stdin, after --password and --option values)")
    p.add_argument("--probe-worksheet", help="worksheet the ERP probe opens, reading only "
                   "(default: the last one written to)" + ("; '' for that default"
                                                           if not creating else ""))
    p.add_argument("--inactive", dest="active", action="store_false", default=None,
                   help="registered but not run")
    if not creating:
        p.add_argument("--active", dest="active", action="store_true", help="run it again")


def build_parser():
    parser = argparse.ArgumentParser(prog="manage.py", description="Manage the OilMat Bridge fleet.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _integration_options(sub.add_parser("add", help="register an integration; prints its API token once"), True)
    _integration_options(sub.add_parser("update", help="change an integration (restarts only it)"), False)
    p = sub.add_parser("remove", help="stop and forget an integration")
    p.add_argument("workshop")
    p.add_argument("--delete-data", action="store_true", help="also delete its queue and records")
    for name, text in (("list", "list the integrations"), ("status", "health of every integration")):
        sub.add_parser(name, help=text).add_argument("--json", action="store_true", help="JSON output")
    for name in ("activate", "deactivate"):
        sub.add_parser(name, help=f"{name} an integration").add_argument("workshop")
    sub.add_parser("probe", help="check an integration's ERP screens now, reading only; exit "
                   "1 unless they are as known").add_argument("workshop")
    sub.add_parser("up", help="run supervisord in the foreground with every active integration")
    sub.add_parser("backup", help="copy the registry and every workshop's records and "
                   "queue into DIR, while orders flow").add_argument("dir", metavar="DIR")
    sub.add_parser("restore", help="put a backup back onto a stopped fleet").add_argument(
        "dir", metavar="DIR")
    sub.add_parser("rotate-secrets", help="re-seal every stored secret under SECRET_KEY "
                   "(old keys in SECRET_KEY_FALLBACKS); restarts running instances one at a time")
    return parser


def _stdin_line():
    return sys.stdin.readline().rstrip("\n")


def _options(items):
    """``["database=workshop", "api_key=-"]`` -> ``{name: value}``; ``-`` reads one line of
    stdin (in the order given, after ``--password -``), so a secret is on no command line.

    :raises InvalidRegistration: for an item without ``=``
    """
    options = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:  # the item is not echoed: it may be a misplaced secret
            raise InvalidRegistration("--option must be NAME=VALUE, e.g. --option database=workshop")
        options[name] = _stdin_line() if value == "-" else value
    return options


def _spec_fields(args):
    fields = {k: getattr(args, k) for k in
              ("workshop", "erp_system", "erp_url", "port", "username", "password", "active", "api_token",
               "webhook_url", "webhook_secret", "probe_worksheet")}
    if fields["password"] == "-":
        fields["password"] = _stdin_line()
    if args.options is not None:
        fields["options"] = _options(args.options)
    if fields["webhook_secret"] == "-":
        fields["webhook_secret"] = _stdin_line()
    return {k: v for k, v in fields.items() if v is not None}


def _table(rows, columns):
    widths = [max(len(c), *(len(str(r.get(c, ""))) for r in rows)) if rows else len(c) for c in columns]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(str(r.get(c, "")).ljust(w) for c, w in zip(columns, widths)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def _status_row(o):
    error = o["last_error"]
    health = o["health"]
    if health == states.HELD:  # another process holds the workshop's data: which one
        health = f"held by pid {o['hold']['pid']}"
    erp = o.get("erp") or {}
    erp_state = (erp.get("state", "-") + (" (orders held)" if erp.get("held") else "")) if erp else "-"
    return {"workshop": o["workshop"], "active": "yes" if o["active"] else "no", "port": o["port"],
            "process": o["process"]["state"], "health": health, "worker": o["worker"] or "-",
            "erp": erp_state,
            "queue": "-" if o["queue_length"] is None else o["queue_length"],
            "last error": f"{error['reason_code']} {error['at']}" if error else "-"}


def run(args, fleet, out=None):
    """Run one parsed command. :returns: the exit code"""
    out = out or sys.stdout  # looked up now, so a test's captured stdout gets it
    cmd = args.command
    if cmd == "add":
        spec = parse(RegistrationSpec, _spec_fields(args))
        integration, token, done = fleet.create(spec)
        print(f"added {integration.workshop!r} on port {integration.port} "
              f"({'active' if integration.active else 'inactive'}; supervisor: {done})", file=out)
        print(f"API token (shown once, give it to OilMat): {token}", file=out)
    elif cmd == "update":
        fields = _spec_fields(args)
        workshop = fields.pop("workshop")
        integration, done = fleet.reconfigure(workshop, parse(RegistrationChange, fields))
        print(f"updated {integration.workshop!r} (supervisor: {done})", file=out)
    elif cmd == "remove":
        integration, done = fleet.remove(args.workshop, delete_data=args.delete_data)
        kept = "data deleted" if args.delete_data else "data kept"
        print(f"removed {integration.workshop!r} ({kept}; supervisor: {done})", file=out)
    elif cmd in ("activate", "deactivate"):
        integration, done = fleet.set_active(args.workshop, cmd == "activate")
        print(f"{cmd}d {integration.workshop!r} (supervisor: {done})", file=out)
    elif cmd == "probe":
        integration, erp = fleet.probe(args.workshop)
        held = "; orders held" if erp.get("held") else ""
        print(f"{integration.workshop!r}: ERP {erp.get('state')}: {erp.get('detail')}{held}",
              file=out)
        return 0 if erp.get("state") == "ok" else 1
    elif cmd == "list":
        rows = [i.public() for i in fleet.registry.all()]
        if args.json:
            print(json.dumps(rows, ensure_ascii=False, indent=2), file=out)
        else:
            for r in rows:
                r["active"] = "yes" if r["active"] else "no"
                r["options"] = " ".join(f"{k}={v}" for k, v in r["options"].items()) or "-"
            print(_table(rows, ["workshop", "slug", "active", "port", "erp_system", "erp_url",
                                "username", "options", "updated_at"]), file=out)
    elif cmd == "status":
        overview = fleet.overview()
        if not fleet.supervisor.running():
            print("manage.py: note: supervisord is not running ('python manage.py up')", file=sys.stderr)
        if args.json:
            print(json.dumps(overview, ensure_ascii=False, indent=2), file=out)
        else:
            print(_table([_status_row(o) for o in overview],
                         ["workshop", "active", "port", "process", "health", "worker", "erp",
                          "queue", "last error"]), file=out)
    elif cmd == "up":
        up(fleet)
    elif cmd == "backup":
        backup(fleet.settings, fleet.registry, args.dir, out)
    elif cmd == "restore":
        restore(fleet.settings, fleet.supervisor, args.dir, out)
    elif cmd == "rotate-secrets":
        if not fleet.settings.secret_key_fallbacks:
            print("manage.py: note: SECRET_KEY_FALLBACKS is empty: only secrets under SECRET_KEY "
                  "open, so nothing can be re-sealed", file=sys.stderr)
        return rotate_secrets(fleet, out)
    return 0


def browser_pool_line(settings):
    """One line on where the instances' browsers run, for ``up`` to say."""
    if settings.browser_pool == "local":
        return settings.browser_pool_note or "browsers: one Chromium per busy instance (BROWSER_POOL=local)"
    if settings.selenium_remote_url:
        return "browsers: the Selenium Grid at SELENIUM_REMOTE_URL (no local Grid)"
    return (f"browsers: a Selenium Grid on 127.0.0.1:{settings.grid_port} with "
            f"{settings.browser_slots} slots (BROWSER_SLOTS), shared by every instance")


def up(fleet):
    """Write the configuration and become supervisord (foreground).

    ``exec`` rather than a child: Ctrl-C and SIGTERM reach supervisord itself, which
    stops every program gracefully before it exits.
    """
    settings = fleet.settings
    require(settings, "management_token")
    if fleet.supervisor.running():
        raise SupervisorUnavailable(f"supervisord is already running on {settings.socket_path}")
    # what a supervisord killed with kill -9 left running: stopped first, so no workshop
    # ever has two workers and no orphan goes on unmanaged (fleet/takeover.py)
    take_over(settings, fleet.registry, lambda line: print(f"manage.py: {line}", file=sys.stderr,
                                                           flush=True))
    fleet.check_grid_port()
    conf = fleet.write_config(starting=True)
    if frontdoor.runs_front_door(settings):
        frontdoor.check(settings)  # nginx -t: a bad certificate or key is one line here
    problem = compile_sources(settings.python, ROOT)
    if problem:
        print(f"manage.py: note: {problem}; instances will compile it at each start", file=sys.stderr)
    print(f"manage.py: {browser_pool_line(settings)}", file=sys.stderr)
    if frontdoor.runs_front_door(settings):
        print(f"manage.py: front door: https://<this host>:{settings.public_port}/w/<slug>/ "
              "for each workshop, /manage/ for the management API (nginx)", file=sys.stderr)
        if fleet.front_door_note:
            print(f"manage.py: {fleet.front_door_note}", file=sys.stderr)
    sys.stdout.flush()
    os.chdir(ROOT)
    os.execv(sys.executable, [sys.executable, "-m", "supervisor.supervisord", "-n", "-c", str(conf)])


def main(argv=None):
    args = build_parser().parse_args(argv)  # parse
    try:
        settings = load_fleet_settings()  # validate
        require(settings, "secret_key")
        fleet = Fleet(settings)  # build
        return run(args, fleet)  # run
    except BridgeError as e:
        print(f"manage.py: error: {_one_line(e.reason_text)}", file=sys.stderr)
        return 2
    except Exception as e:  # sqlite, the file system, a bug: one line and exit 2 all the same
        print(f"manage.py: error: {_one_line(f'{type(e).__name__}: {e}')}", file=sys.stderr)
        return 2


def _one_line(text):
    return " ".join(str(text).split()) or "unknown error"
