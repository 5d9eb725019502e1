"""The fleet's process tree, measured and stopped: supervisord's tree and what its
programs started that left it (found by the run's folder in their environment), its PSS,
browsers and CPU by kind, sampled in a thread with a guard, and killed at the end.

Apart from bench/bench_fleet_load.py because it reads ``/proc`` and knows nothing of
orders or of the report: bench/bench_fleet_density.py stops its fleet with
:func:`kill_tree` as well.
"""

import os
import signal
import threading
import time
from pathlib import Path

from bench.common import descendants, pss_mib

BROWSER_NAMES = ("chromium", "chrome", "chromium-browser", "headless_shell")


def is_browser_main(argv):
    """Whether a command line is a browser's main process (its helpers carry ``--type=``)."""
    return bool(argv) and os.path.basename(argv[0]) in BROWSER_NAMES \
        and not any(arg.startswith("--type=") for arg in argv[1:])


def _argv(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return []


def _available_gib():
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024 / 1024
    return 0.0


def _cpu_times(pid):
    """``(own, reaped)`` CPU-seconds of ``pid``: its own, and its finished children's
    (``/proc/<pid>/stat`` utime+stime and cutime+cstime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick


def _kind(argv):
    """Which part of the fleet a process is, for :func:`cpu_by_kind`."""
    name = Path(argv[0]).name if argv else ""
    if name.startswith("java"):
        return "grid"
    if "chrom" in name:
        return "browsers"
    text = " ".join(argv)
    if "supervisord" in text or ("manage.py" in text and "up" in argv):
        return "supervisord"
    if "fleet.serve" in argv:  # the management API ([program:management])
        return "management"
    return "instances"


def cpu_by_kind(pids):
    """CPU-seconds so far of the fleet's processes by kind: ``grid`` (Java itself),
    ``browsers`` (chromedrivers and Chromiums, live or reaped: a finished session's are
    in its parent's reaped times -- the Grid's, or a local instance's), ``instances``,
    ``management``, ``supervisord``. Processes that left the tree unreaped are counted
    while they live."""
    totals = dict.fromkeys(("grid", "browsers", "instances", "management", "supervisord"), 0.0)
    for pid in pids:
        try:
            own, reaped = _cpu_times(pid)
        except (OSError, IndexError, ValueError):
            continue
        kind = _kind(_argv(pid))
        totals[kind] += own
        # what a Grid or an instance reaped were its chromedrivers (and their Chromiums)
        totals["browsers" if kind in ("grid", "instances", "browsers") else kind] += reaped
    return totals


class TreeSampler:
    """Samples supervisord's tree (PSS, browsers), the load average and the Grid's sessions
    in a thread; keeps the peaks. ``tripped`` says why the guard fired, if it did.

    A sample reads ``/proc`` for every process of the tree; with a thousand processes
    that costs CPU the fleet needs, so the pause between samples is at least four times
    the last sample's duration (the sampler takes at most a fifth of a core)."""

    def __init__(self, root_pid, marker, interval, pss_limit_gib, min_available_gib, grid_url=None):
        self.root_pid, self.marker, self.interval, self.grid_url = root_pid, marker, interval, grid_url
        self.pss_limit_gib, self.min_available_gib = pss_limit_gib, min_available_gib
        self.peak = {"pss_gib": 0.0, "browsers": 0, "grid_sessions": 0, "grid_waiting": 0, "load": 0.0,
                     "processes": 0}
        self.samples, self.tripped = 0, None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def sample(self):
        pids = fleet_pids(self.root_pid, self.marker)
        pss = sum(pss_mib(pid) for pid in pids) / 1024
        browsers = sum(1 for pid in pids if is_browser_main(_argv(pid)))
        pool = self._pool()
        now = {"pss_gib": pss, "browsers": browsers, "load": os.getloadavg()[0], "processes": len(pids),
               "grid_sessions": pool["in_use"], "grid_waiting": pool["waiting"]}
        for key, value in now.items():
            self.peak[key] = max(self.peak[key], value)
        self.samples += 1
        available = _available_gib()
        if pss > self.pss_limit_gib:
            self.tripped = (f"the tree's PSS passed {self.pss_limit_gib:g} GiB "
                            f"({pss:.1f} GiB, {browsers} browsers)")
        elif available < self.min_available_gib:
            self.tripped = (f"the machine had {available:.1f} GiB left (< {self.min_available_gib:g}; "
                            f"tree {pss:.1f} GiB, {browsers} browsers)")
        return now

    def _pool(self):
        """The Grid's sessions in use and requests waiting (the fleet's own reading)."""
        if self.grid_url:
            from integrations.browser.pool import pool_status

            state = pool_status(self.grid_url)
            if state is not None:  # None: not up yet, or restarting
                return state
        return {"in_use": 0, "waiting": 0}

    def _run(self):
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.sample()
            except OSError:  # a process gone between two reads: skip the sample
                pass
            self._stop.wait(max(self.interval, 4 * (time.monotonic() - started)))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(30)


def _carries(pid, marker):
    try:
        return marker in Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False


def fleet_pids(root_pid, marker):
    """pids of supervisord's tree, and of what its programs started that left the tree: a
    browser whose chromedriver died, or a crash handler that daemonized itself, is
    re-parented to init (measured: 200 workshops with local browsers left 57 such
    processes, 19 of them browsers). Those are found by ``marker`` (the run's folder) in
    the environment they inherited from the fleet, among the processes whose parent is
    init."""
    orphans = []
    for entry in Path("/proc").iterdir():
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) if entry.name.isdigit() else 0
        except (OSError, IndexError, ValueError):
            continue
        if ppid == 1 and int(entry.name) != root_pid and _carries(entry.name, marker):
            orphans.append(int(entry.name))
    roots = ([root_pid] if root_pid and Path(f"/proc/{root_pid}").exists() else []) + orphans
    return [pid for root in roots for pid in (root, *descendants(root))]


def kill_tree(root_pid, marker):
    """SIGKILL supervisord's tree and what left it (:func:`fleet_pids`), by pid. Stopped first
    (SIGSTOP), again until no new process shows up, so nothing forks or restarts under the
    kill and no browser is orphaned when its driver dies."""
    seen = set()
    for _ in range(20):
        pids = set(fleet_pids(root_pid, marker)) - seen
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGSTOP)
            except ProcessLookupError:
                pass
        seen |= pids
    for pid in seen:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
