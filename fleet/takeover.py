"""What ``manage.py up`` ends before it becomes supervisord: a fleet a killed supervisord left.

supervisord killed with kill -9 (and ``up`` execs supervisord, so killing ``up`` is the
same) cannot stop its programs: the instances, the management API and the Grid with its
browsers live on, adopted by init, watched by nobody. A new supervisord would start a
second instance of every workshop beside the old one; today that second one exits 2 (the
old one holds the workshop's data, core/hold.py), so the old one would go on working the
queue unmanaged: not restarted when it crashes, not stopped by ``down``, invisible to
``manage.py status``.

So ``up`` first finds them, by what each holds:

* an instance by its hold on ``QUEUE_DIR/<workshop>``;
* the management API by its hold ``SUPERVISOR_DIR/management.hold``;
* the fleet's own Grid by the process group named in ``SUPERVISOR_DIR/grid.pid``;
* the front door's nginx by ``SUPERVISOR_DIR/nginx/nginx.pid`` (it holds ``PUBLIC_PORT``:
  a new nginx could not listen there);

and stops them as supervisord would have: SIGTERM to every instance at once, so each
finishes or releases the order in hand (waiting up to ``STOP_WAIT_SECONDS``, then
SIGKILL), the Grid after them (their last visits need it), the management API beside
the instances. It says what it found and did, one line each.

What it leaves alone (and names): a process whose parent is a running supervisord (another
fleet's, which watches it); a hand-run instance of a workshop this fleet does not run
(inactive or not registered: no conflict); a holder on another host (it cannot be signalled
from here; the workshop's instance shows ``held`` until it is stopped there).
"""

import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from core.hold import HOLD_FILE, describe, holder, process_stat, running
from core.names import file_name
from fleet import frontdoor, grid
from fleet.settings import MANAGEMENT_HOLD

#: seconds the Grid and the management API get after SIGTERM (their supervisor sections'
#: stopwaitsecs) before SIGKILL
QUICK_STOP_SECONDS = 10


@dataclass
class LeftBehind:
    """One process (or process group) found running.

    :param what: what it is, for the report (``workshop 'Bennys Auto'``)
    :param pid: its pid (the group's leader for the Grid)
    :param holder: its hold's description, if it holds one
    :param group: signal the whole process group (the Grid and its browsers)
    """

    what: str
    pid: int
    holder: dict = None
    group: bool = False

    def describe(self):
        return f"{self.what}: {describe(self.holder) if self.holder else f'pid {self.pid}'}"


def watching_supervisord(pid):
    """:returns: the pid of a running supervisord that is ``pid``'s parent, or None"""
    fields = process_stat(pid)
    if fields is None:
        return None
    parent = int(fields[1])
    try:
        with open(f"/proc/{parent}/cmdline", "rb") as f:
            command = f.read()
    except OSError:
        return None
    return parent if b"supervisord" in command else None


def find(settings, registry):
    """:returns: ``(to_stop, left_alone)``, lists of :class:`LeftBehind` (``left_alone``
        with a reason each: ``(item, why)``)"""
    runs = {file_name(i.workshop): i for i in registry.all() if i.active}
    to_stop, left_alone = [], []

    def sort(item):
        watcher = watching_supervisord(item.pid)
        if item.holder and item.holder.get("host") not in (None, os.uname().nodename):
            left_alone.append((item, "it runs on another host: stop it there"))
        elif watcher is not None:
            left_alone.append((item, f"a running supervisord (pid {watcher}) watches it"))
        else:
            to_stop.append(item)

    queue_dir = Path(settings.queue_dir)
    folders = sorted(p for p in queue_dir.iterdir() if (p / HOLD_FILE).is_file()) \
        if queue_dir.is_dir() else []
    for folder in folders:
        info = holder(folder)
        if info is None:
            continue
        integration = runs.get(folder.name)
        item = LeftBehind(f"workshop {integration.workshop!r}" if integration
                          else f"workshop folder {folder.name!r}", info["pid"], info)
        if integration is None and not info.get("program"):
            left_alone.append((item, "this fleet does not run that workshop (inactive or not "
                                     "registered), so it is in nobody's way"))
        else:
            sort(item)
    info = holder(settings.supervisor_dir, MANAGEMENT_HOLD)
    if info is not None:
        sort(LeftBehind("the management API", info["pid"], info))
    master = _nginx_master(settings)
    if master is not None:
        sort(LeftBehind("the front door (nginx)", master))
    leader = _grid_leader(settings)
    if leader is not None:
        sort(LeftBehind("the browser pool (Selenium Grid)", leader, group=True))
    return to_stop, left_alone


def _nginx_master(settings):
    """The front door's nginx master, if it still runs (its pid file, and a command line
    naming this fleet's nginx.conf: a pid used again by another process is not it)."""
    try:
        pid = int((frontdoor.nginx_dir(settings) / "nginx.pid").read_text().strip())
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            command = f.read()
    except (OSError, ValueError):
        return None
    conf = str(frontdoor.nginx_dir(settings) / "nginx.conf").encode()
    return pid if b"nginx" in command and conf in command and running(pid) else None


def _grid_leader(settings):
    """The process group of the fleet's Grid, if any of it still runs (``grid.pid``)."""
    if not grid.runs_local_grid(settings):
        return None
    try:
        with open(grid.pid_path(settings)) as f:
            pgid = int(f.read().strip())
    except (OSError, ValueError):
        return None
    if pgid == os.getpgrp() or not os.path.isdir("/proc"):
        return None
    return pgid if grid.group_members(pgid) else None


def _gone(item):
    if item.group:
        return not grid.group_members(item.pid)
    return not running(item.pid)


def _signal(item, signum):
    try:
        (os.killpg if item.group else os.kill)(item.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _stop(items, grace, say):
    """SIGTERM to every item, then wait up to ``grace`` seconds, then SIGKILL the rest."""
    started = time.monotonic()
    for item in items:
        _signal(item, signal.SIGTERM)
    waiting = list(items)
    while waiting and time.monotonic() - started < grace:
        time.sleep(0.1)
        for item in [i for i in waiting if _gone(i)]:
            waiting.remove(item)
            say(f"  {item.what}: stopped ({time.monotonic() - started:.1f} s after SIGTERM)")
    for item in waiting:
        _signal(item, signal.SIGKILL)
    deadline = time.monotonic() + QUICK_STOP_SECONDS
    while any(not _gone(i) for i in waiting) and time.monotonic() < deadline:
        time.sleep(0.1)
    for item in waiting:
        ended = "killed" if _gone(item) else "still there even after SIGKILL"
        say(f"  {item.what}: did not stop within {grace} s after SIGTERM: {ended} (SIGKILL)")


def take_over(settings, registry, say):
    """Find what an earlier supervisord left running and stop it (see the module's docstring).

    :param say: a callable taking one line for the admin
    :returns: ``(stopped, left_alone)`` counts
    """
    to_stop, left_alone = find(settings, registry)
    for item, why in left_alone:
        say(f"left running: {item.describe()}: {why}")
    if not to_stop:
        return 0, len(left_alone)
    say(f"found {len(to_stop)} process(es) still running from an earlier supervisord "
        "(killed?); stopping them as supervisord would, before starting the fleet:")
    for item in to_stop:
        say(f"  {item.describe()}")
    first = [i for i in to_stop if not i.group]  # instances and the management API
    instances = [i for i in first if i.holder and i.holder.get("what") != "management API"]
    grace = settings.stop_wait_seconds if instances else QUICK_STOP_SECONDS
    _stop(first, grace, say)
    _stop([i for i in to_stop if i.group], QUICK_STOP_SECONDS, say)  # the Grid last
    return len(to_stop), len(left_alone)
