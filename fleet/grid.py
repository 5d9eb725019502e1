"""The fleet's browser pool: a Selenium Grid 4 every instance drives its browser on.

``manage.py up`` runs the Grid under the same supervisord as the instances (program
``grid``, rendered by :mod:`fleet.supervisor_conf`): one Java process in *standalone* mode on
``127.0.0.1:GRID_PORT`` with ``BROWSER_SLOTS`` sessions of Debian's Chromium and
chromedriver. Its session queue is the waiting room: a new-session request beyond the
slots waits there (``BROWSER_WAIT_SECONDS`` at most) and gets the next free slot, so the
number of browsers on the machine is bounded by the slots, not by the busy workshops.

Past one server the same jar runs as a hub and nodes (``python -m fleet.grid hub`` and
``python -m fleet.grid node --hub URL``, see docs/fleet.md); the instances are then given
the hub's URL as ``SELENIUM_REMOTE_URL`` and no local Grid is started.

Everything the Grid is told is in one TOML file this module writes
(``SUPERVISOR_DIR/grid.toml``): loopback address (always: without ``host`` the node
registers under the machine's outward address and the Grid talks to itself over it),
no driver detection and no Selenium Manager (both would look for browsers or go to the
network), one driver configuration naming ``/usr/bin/chromedriver`` and
``/usr/bin/chromium``. ``SE_OFFLINE=true`` keeps Selenium Manager off as well.

``python -m fleet.grid run PIDFILE -- ARGV...`` is what supervisord starts: it ends what
a Grid killed with ``kill -9`` left behind (its chromedrivers and Chromiums live on, in
its process group), notes its own process group and execs Java. This module imports
only the standard library and :mod:`fleet.grid_install`, so that costs little. The
pool's state is read by :func:`integrations.browser.pool.pool_status` (the instances' workers
read it too).
"""

import argparse
import json
import os
import signal
import sys
import tempfile
from urllib.parse import urlsplit

from fleet.grid_install import VERSION, jar_path

#: the browser and driver every slot runs: Debian's (as IntegrationConfig's defaults)
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
#: a session without a command for this long is ended by the Grid and its slot freed: a
#: crashed instance's browser is back in the pool within a minute. Instances send a
#: command at least every PAGE_LOAD_TIMEOUT (20 s) while they use a session and give it
#: back after at most 30 s without work (workers.worker.POOL_HOLD_SECONDS).
SESSION_TIMEOUT = 60
#: seconds between the Grid's checks of queued requests against the wait limit
#: (its default, 10, would let a request wait up to 10 s past BROWSER_WAIT_SECONDS)
QUEUE_CHECK_SECONDS = 1
#: the JVM's heap: ~120 MiB PSS in use at rest; bounded so that it cannot grow to a
#: quarter of the machine's memory (Java's default) under load. Only the quick (C1)
#: compiler: the Grid proxies small HTTP calls, and C2's compiling cost more CPU than its
#: code saved (bench/bench_grid_jvm.py, 2026-12-03, the Java process's own CPU: start
#: 1.9 against 2.7-3.1 CPU-s; per order on a kept session 0.06 against 0.09, on a
#: claimed one 0.10 against 0.19; 156 against 171 MiB PSS; docs/benchmarks.md).
JAVA_OPTIONS = ("-Xmx512m", "-XX:TieredStopAtLevel=1")
#: supervisord's program name for the local Grid (instances' programs are bridge-...)
PROGRAM = "grid"


def default_slots(cores=None):
    """``BROWSER_SLOTS`` when not set: one per core, at least two.

    Under load the cores are the limit, not the slots: a new session costs ~3.3 CPU-s
    (bench/bench_order_cpu.py), so more browsers at once only share the same cores and
    each gets slower. Measured with bench/bench_fleet_load.py at 50 workshops x 50
    orders/min on 2 cores, two runs per setting (seeds 12 and 13): 2 slots gave p95 30.3
    and 37.7 s, 4 slots 41.2 and 47.4 s, with less memory (2.7 against 3.0-3.2 GiB). At
    least two, so that one slow visit does not stop every other workshop.
    """
    if cores is None:
        try:
            cores = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            cores = os.cpu_count() or 1
    return max(2, cores)


def pool_url(settings):
    """What every instance gets as ``SELENIUM_REMOTE_URL``: the local Grid's URL, or ""
    for ``BROWSER_POOL=local``. ``None`` when the admin set ``SELENIUM_REMOTE_URL`` (a
    Grid elsewhere): the instances inherit it from supervisord's environment, so a URL
    carrying a user and password is written into no file."""
    if settings.browser_pool == "local":
        return ""
    if settings.selenium_remote_url:
        return None
    return f"http://127.0.0.1:{settings.grid_port}"


def runs_local_grid(settings):
    """Whether ``manage.py up`` starts a Grid of its own."""
    return settings.browser_pool == "grid" and not settings.selenium_remote_url


def _toml_string(value):
    return json.dumps(str(value))  # a JSON string is a TOML basic string


def node_toml(slots, session_timeout=SESSION_TIMEOUT):
    """The ``[node]`` part of a Grid's TOML: ``slots`` sessions of Debian's Chromium."""
    stereotype = json.dumps({"browserName": "chrome",
                             "goog:chromeOptions": {"binary": CHROMIUM}})
    return "\n".join([
        "[node]",
        "detect-drivers = false",
        "selenium-manager = false",
        f"max-sessions = {int(slots)}",
        # the Grid caps sessions at the core count unless told otherwise
        "override-max-sessions = true",
        f"session-timeout = {int(session_timeout)}",
        "",
        "[[node.driver-configuration]]",
        'display-name = "chromium"',
        f"webdriver-executable = {_toml_string(CHROMEDRIVER)}",
        f"max-sessions = {int(slots)}",
        f"stereotype = {_toml_string(stereotype)}",
        "",
    ])


def _server_toml(host, port):
    return f"[server]\nhost = {_toml_string(host)}\nport = {int(port)}\n\n"


def _queue_toml(wait_seconds):
    return ("[sessionqueue]\n"
            f"session-request-timeout = {max(1, round(wait_seconds))}\n"
            f"session-request-timeout-period = {QUEUE_CHECK_SECONDS}\n\n")


# Tracing costs CPU on every request and nothing here reads the traces.
_LOGGING_TOML = "[logging]\ntracing = false\n\n"


def standalone_toml(settings):
    """The local Grid's whole configuration (``SUPERVISOR_DIR/grid.toml``)."""
    return (f"# Generated by fleet/grid.py for `manage.py up`; rewritten on every change.\n\n"
            + _server_toml("127.0.0.1", settings.grid_port)
            + _queue_toml(settings.browser_wait_seconds) + _LOGGING_TOML
            + node_toml(settings.browser_slots))


def config_path(settings):
    return os.path.join(str(settings.supervisor_dir), "grid.toml")


def pid_path(settings):
    return os.path.join(str(settings.supervisor_dir), "grid.pid")


def java_argv(java, jar, role, config):
    return [java, *JAVA_OPTIONS, "-jar", str(jar), role, "--config", str(config)]


def standalone_argv(settings):
    """The supervised command: the launcher, then Java in standalone mode."""
    return [settings.python, "-m", "fleet.grid", "run", pid_path(settings), "--",
            *java_argv(settings.java, settings.grid_jar, "standalone", config_path(settings))]


def status_url(settings):
    """The Grid the fleet's instances use (for its state), or None with local browsers."""
    if settings.browser_pool == "local":
        return None
    return settings.selenium_remote_url or f"http://127.0.0.1:{settings.grid_port}"


# -- hub and nodes (past one server) ---------------------------------------------------


def _events_toml(host, publish_port, subscribe_port, bind):
    return ("[events]\n"
            f"publish = {_toml_string(f'tcp://{host}:{int(publish_port)}')}\n"
            f"subscribe = {_toml_string(f'tcp://{host}:{int(subscribe_port)}')}\n"
            + ("bind = true\n" if bind else "") + "\n")


def hub_toml(host, port, publish_port, subscribe_port, wait_seconds):
    """A hub: router, distributor, session map and queue in one process. Nodes register
    over its event bus (``publish_port``, ``subscribe_port``; the Grid's defaults are
    4442 and 4443), which it binds on ``host``."""
    return ("# A Selenium Grid hub for the OilMat fleet (python -m fleet.grid hub)\n\n"
            + _server_toml(host, port) + _events_toml(host, publish_port, subscribe_port, True)
            + _queue_toml(wait_seconds) + _LOGGING_TOML)


def node_role_toml(host, port, hub, publish_port, subscribe_port, slots):
    """A node of the hub at ``hub`` (``http://hub-host:port``): it listens on
    ``host:port``, an address the hub can reach, and joins the hub's event bus."""
    hub_host = urlsplit(hub).hostname
    return ("# A Selenium Grid node for the OilMat fleet (python -m fleet.grid node)\n\n"
            + _server_toml(host, port)
            + _events_toml(hub_host, publish_port, subscribe_port, False) + _LOGGING_TOML
            + node_toml(slots).replace("[node]\n", f"[node]\nhub = {_toml_string(hub)}\n", 1))


# -- the launcher supervisord runs ---------------------------------------------------------


def group_members(pgid):
    """Pids in process group ``pgid`` (Linux ``/proc``), with their command names."""
    members = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index(b"(") + 1:stat.rindex(b")")].decode(errors="replace")
        fields = stat[stat.rindex(b")") + 2:].split()
        if int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            members[int(entry)] = name
    return members


#: what a Grid leaves behind: its drivers and browsers (command names as /proc shows them)
_LEFTOVERS = ("chromedriver", "chromium", "chrome", "java")


def reap_previous(pidfile):
    """End what the Grid that ``pidfile`` names left behind when it was killed.

    supervisord starts every program as the leader of its own process group, and the
    Grid's chromedrivers and Chromiums stay in that group. Killed with ``kill -9``, the
    Grid cannot quit them (~200 MiB each); they live on until this. A process group's
    number is not reused while any member lives, so what is still in the old group is
    the old Grid's -- checked by name all the same.

    :returns: the pids ended
    """
    try:
        with open(pidfile) as f:
            pgid = int(f.read().strip())
    except (OSError, ValueError):
        return []
    if pgid == os.getpgrp() or not os.path.isdir("/proc"):
        return []
    ended = []
    for pid, name in group_members(pgid).items():
        if name.startswith(_LEFTOVERS):
            try:
                os.kill(pid, signal.SIGKILL)
                ended.append(pid)
            except OSError:
                pass
    return ended


def run(pidfile, argv):
    """Reap the previous Grid's leftovers, note this process group, exec ``argv``.

    Under supervisord this process leads its own group already (and Java, exec'd, keeps
    its pid), so the group noted is the Grid's and its browsers'.
    """
    ended = reap_previous(pidfile)
    if ended:
        print(f"fleet.grid: ended {len(ended)} process(es) a killed Grid left behind",
              file=sys.stderr, flush=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(pidfile)))
    with os.fdopen(fd, "w") as f:
        f.write(f"{os.getpgrp()}\n")
    os.replace(tmp, pidfile)
    exec_java(argv)


def exec_java(argv):
    sys.stdout.flush()
    sys.stderr.flush()
    from fleet.launch import inherited  # the standard library only, like this module

    # the Grid needs no secret of the fleet's: not the management token, nor the key
    environment = {name: value for name, value in inherited(os.environ).items()
                   if name not in ("SECRET_KEY", "SECRET_KEY_FALLBACKS")}
    os.execvpe(argv[0], argv, {**environment, "SE_OFFLINE": "true"})


# -- python -m fleet.grid hub|node: the Grid on other servers ------------------------------


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m fleet.grid",
        description=f"Run a Selenium Grid {VERSION} hub or node for the fleet (Debian's Chromium "
                    "and chromedriver, offline). The jar: GRID_JAR, else the cached one "
                    "(scripts/setup_grid.sh); Java: GRID_JAVA, else java on PATH.")
    sub = parser.add_subparsers(dest="role", required=True)
    hub = sub.add_parser("hub", help="the hub the instances' SELENIUM_REMOTE_URL names")
    node = sub.add_parser("node", help="a node: browsers for a hub")
    for p, port in ((hub, 4444), (node, 5555)):
        p.add_argument("--host", default="127.0.0.1",
                       help="address to listen on and to be reached at (default 127.0.0.1; "
                            "on a LAN, this machine's address there)")
        p.add_argument("--port", type=int, default=port, help=f"HTTP port (default {port})")
        p.add_argument("--publish-port", type=int, default=4442,
                       help="the hub's event bus publish port (default 4442)")
        p.add_argument("--subscribe-port", type=int, default=4443,
                       help="the hub's event bus subscribe port (default 4443)")
        p.add_argument("--config-dir", default=None,
                       help="where the TOML goes (default: a folder of its own in the cache)")
    hub.add_argument("--wait", type=float, default=60.0,
                     help="seconds a session request may wait for a free slot "
                          "(the instances' BROWSER_WAIT_SECONDS; default 60)")
    node.add_argument("--hub", required=True, help="the hub's URL, e.g. http://10.0.0.5:4444")
    node.add_argument("--slots", type=int, default=default_slots(),
                      help="browser sessions at once (default: 1 per core, at least 2)")
    return parser


def role_config(args):
    """:returns: ``(toml text, file name)`` for ``python -m fleet.grid hub|node``"""
    if args.role == "hub":
        text = hub_toml(args.host, args.port, args.publish_port, args.subscribe_port, args.wait)
    else:
        text = node_role_toml(args.host, args.port, args.hub, args.publish_port,
                              args.subscribe_port, args.slots)
    return text, f"{args.role}-{args.port}.toml"


def main(argv=None):
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["run"]:
        if len(args) < 4 or args[2] != "--":
            print("usage: python -m fleet.grid run PIDFILE -- JAVA ARGS...", file=sys.stderr)
            return 2
        try:
            run(args[1], args[3:])
        except OSError as exc:
            print(f"fleet.grid: error: cannot run {args[3]}: {exc.strerror or exc}", file=sys.stderr)
            return 2
    options = _parser().parse_args(args)
    text, name = role_config(options)
    folder = options.config_dir or os.path.dirname(jar_path())
    os.makedirs(folder, exist_ok=True)
    config = os.path.join(folder, name)
    with open(config, "w", encoding="utf-8") as f:
        f.write(text)
    jar = os.environ.get("GRID_JAR") or jar_path()
    if not os.path.isfile(jar):
        print(f"fleet.grid: error: no Grid jar at {jar}: run scripts/setup_grid.sh", file=sys.stderr)
        return 2
    try:
        exec_java(java_argv(os.environ.get("GRID_JAVA") or "java", jar, options.role, config))
    except OSError as exc:
        print(f"fleet.grid: error: cannot run java: {exc.strerror or exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
