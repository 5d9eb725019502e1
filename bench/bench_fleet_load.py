"""The fleet under load: N workshops under ``manage.py up``, orders arriving at random.

    flock /tmp/browser.lock .venv/bin/python bench/bench_fleet_load.py \\
        --workshops 50 --rate 50 --minutes 3 --pool grid|local [--json out.json]
    flock /tmp/browser.lock .venv/bin/python bench/bench_fleet_load.py \\
        --matrix 20x30,50x50,200x100 --pools grid,local --minutes 3 [--write part.md]

One run: N workshops registered through the fleet's own code (:class:`fleet.control.Fleet`)
in a temporary folder, each on a free port, against ``ceil(N / --per-erp)`` erp_sim
servers at their default save delay (each workshop writes only to worksheets of its
own); then the project's ``manage.py up`` -- a real supervisord, with the browser pool
``--pool`` (``BROWSER_POOL`` in the fleet's environment). Once every instance answers
``/alive``, orders arrive as a Poisson process at ``--rate`` per minute, each at a
workshop drawn at random, for ``--minutes``; then the run waits until every order has a
final status. Reported:

* seconds from ``up`` until every instance answers ``/alive``;
* ``POST /create`` -> ``created``: the harness's clock before the POST to the ``created``
  entry of the order's history (same machine clock), p50 / p95 / max;
* peak concurrent browsers (Chromium main processes in supervisord's tree; with the pool
  also the Grid's sessions in use), peak PSS of supervisord's whole process tree (instances,
  management API, chromedrivers, browsers, the Grid), peak 1-minute load average;
* every line exactly once, read through erp_sim's ``/_sim/worksheets/<n>``: per accepted
  order exactly one line carrying its uniqueid, with its product and amount.

A guard stops a run that would exhaust the machine (``--pss-limit-gib`` of the tree, or
less than ``--min-available-gib`` left): the fleet is stopped and the run is reported as
"did not finish", with the figures measured until then.

``--warmup-orders N`` (in ``--matrix``: ``1x60w30``) posts N orders one after another
before the counted ones, each followed to its end; they are not counted, their lines are
checked: a fleet that has run a while, its Grid's Java compiled, against one just started.

``--matrix`` runs each configuration with each pool (pool first, then local, in the same
invocation, one subprocess per run) and prints the Markdown table for
docs/benchmarks.md, with the issue's targets next to the measured values;
``bench/run.py`` (``make bench-fleet``) writes it there.

The harness stays small: one ``requests.Session``, one thread pool for posting and
polling, a sampler thread; erp_sim servers are its children, not supervisord's, so they
are not in the measured tree.
"""

import argparse
import json
import math
import os
import random
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import (busy_cpu_seconds, descendants, machine, pss_mib,  # noqa: E402
                          steal_cpu_seconds)

#: the issue's targets (issue 12), per configuration: (what, key, limit)
TARGETS = {
    (50, 50): [("create→created p95", "p95", 10.0, "s"), ("peak PSS of the tree", "pss_gib", 4.0, "GiB")],
    (200, 100): [("every instance alive after `up`", "alive_seconds", 60.0, "s"),
                 ("create→created p95", "p95", 15.0, "s"),
                 ("peak PSS of the tree", "pss_gib", 8.0, "GiB"),
                 ("orders lost or written twice", "bad_orders", 0, "")],
}
#: products the orders carry (erp_sim knows 1-200) and the worksheets each workshop owns
PRODUCTS = ("10", "11", "12")
SHEETS_PER_WORKSHOP = 4
FINAL = ("created", "error", "resolved")
BROWSER_NAMES = ("chromium", "chrome", "chromium-browser", "headless_shell")
#: seconds between two rounds of /alive over the instances that have not answered yet
ALIVE_POLL_SECONDS = 1.0


# -- pure helpers (tests/test_bench_fleet_load.py) -----------------------------------------


def parse_config(text):
    """``"200x100"`` -> ``(200, 100, 0)``: workshops, orders per minute and warm-up orders;
    ``"1x60w30"`` -> ``(1, 60, 30)``: 30 orders one after another before the counted ones
    (``--warmup-orders``)."""
    workshops, _, rest = text.lower().partition("x")
    rate, _, warmup = rest.partition("w")
    try:
        config = int(workshops), float(rate), int(warmup or 0)
    except ValueError:
        config = (0, 0, 0)
    if config[0] < 1 or config[1] <= 0 or config[2] < 0:
        raise ValueError(f"a configuration is WORKSHOPSxRATE[wWARMUP] with both > 0, got {text!r}")
    return config[0], int(config[1]) if config[1].is_integer() else config[1], config[2]


def config_label(workshops, rate, warmup=0):
    """How the tables name a configuration."""
    return f"{workshops} × {rate:g}/min" + (f", after {warmup} warm-up orders" if warmup else "")


def poisson_arrivals(rate_per_min, minutes, workshops, rng):
    """Arrival times (seconds from the start) of a Poisson process at ``rate_per_min``
    over ``minutes``, each with a workshop index drawn uniformly.

    :returns: ``[(seconds, workshop_index), ...]`` in time order
    """
    arrivals, t, end = [], 0.0, minutes * 60.0
    while True:
        t += rng.expovariate(rate_per_min / 60.0)
        if t >= end:
            return arrivals
        arrivals.append((t, rng.randrange(workshops)))


def percentile(values, q):
    """The ``q``-th percentile (0-100) by nearest rank; ``None`` of nothing."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def worksheets_of(index, per_erp, count=SHEETS_PER_WORKSHOP):
    """The worksheets workshop ``index`` writes to on its erp_sim (no other workshop does)."""
    first = 1 + (index % per_erp) * count
    return [str(n) for n in range(first, first + count)]


def tally_lines(orders, sheets):
    """Each accepted order against what the worksheets hold.

    :param orders: ``{uniqueid: (worksheet, product_nr, amount, status)}`` of accepted
        orders (``status``: the final one, ``None`` when it had none at the end)
    :param sheets: ``{worksheet: [line, ...]}`` as ``/_sim/worksheets/<n>`` lists them
        (``reference``, ``product_nr``, ``amount``), for every worksheet the orders name
    :returns: counts of what is wrong: ``lost`` (``created`` and no line), ``twice`` (more
        than one line), ``wrong`` (one line, not the order's product or amount), ``stray``
        (a line of no order), ``error_written`` (ended in ``error`` yet its line is there).
        An order in ``error`` without a line is consistent (its client is told), and one
        without a final status is the run's "unfinished", counted apart.
    """
    counts = {"lost": 0, "twice": 0, "wrong": 0, "stray": 0, "error_written": 0}
    found = {}
    for sheet, lines in sheets.items():
        for line in lines:
            words = str(line.get("reference", "")).split()
            owner = next((w for w in words if w in orders and orders[w][0] == sheet), None)
            if owner is None:
                counts["stray"] += 1
            else:
                found.setdefault(owner, []).append(line)
    for uniqueid, (_, product, amount, status) in orders.items():
        lines = found.get(uniqueid, [])
        if not lines:
            counts["lost"] += status == "created"
        elif len(lines) > 1:
            counts["twice"] += 1
        elif status in ("error", "resolved"):
            counts["error_written"] += 1
        elif (str(lines[0]["product_nr"]), str(lines[0]["amount"])) != (product, amount):
            counts["wrong"] += 1
    return counts


def is_browser_main(argv):
    """Whether a command line is a browser's main process (its helpers carry ``--type=``)."""
    return bool(argv) and os.path.basename(argv[0]) in BROWSER_NAMES \
        and not any(arg.startswith("--type=") for arg in argv[1:])


def created_seconds(history, sent_at):
    """Seconds from ``sent_at`` (epoch) to the ``created`` entry of an order's history."""
    at = next((h["at"] for h in history if h.get("status") == "created"), None)
    return None if at is None else datetime.fromisoformat(at).timestamp() - sent_at


# -- the machine: the tree under supervisord ------------------------------------------------


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


# -- one run --------------------------------------------------------------------------------


class Failed(Exception):
    """The run cannot be made (the pool not available, the fleet not starting): exit 2."""


def fleet_environment(args, base):
    """The environment of ``manage.py up``: only what this run sets (the shell's ERP_,
    BROWSER_, GRID_, SELENIUM_ ... settings would change the run without showing in its
    command), all files under ``base``."""
    from cryptography.fernet import Fernet
    from tests.fleet_helpers import free_port

    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ERP_", "API_", "MANAGEMENT_", "REGISTRY_", "SUPERVISOR_",
                                "BROWSER_", "GRID_", "SELENIUM_", "WEBHOOK_"))}
    env.update(SECRET_KEY=Fernet.generate_key().decode(), MANAGEMENT_TOKEN="bench-" + os.urandom(8).hex(),
               MANAGEMENT_PORT=str(free_port()), GRID_PORT=str(free_port()),
               REGISTRY_DB=str(base / "integrations.db"), SUPERVISOR_DIR=str(base / "sup"),
               QUEUE_DIR=str(base / "q"), LOG_DIR=str(base / "logs"), STOP_WAIT_SECONDS="60",
               BROWSER_POOL=args.pool, PYTHONUNBUFFERED="1")
    if args.slots:
        env["BROWSER_SLOTS"] = str(args.slots)
    for item in args.set:
        key, _, value = item.partition("=")
        env[key] = value
    return env


def check_pool(settings, pool):
    """:raises Failed: when ``pool`` is not what the fleet's settings will run"""
    have = getattr(settings, "browser_pool", None)
    if have is None and pool == "grid":
        raise Failed("--pool grid: this checkout's fleet has no browser pool (fleet/settings.py "
                     "does not read BROWSER_POOL); only --pool local runs here")
    if have is not None and have != pool:
        raise Failed(f"--pool {pool}: the fleet's settings came out {have!r}")


class Load:
    """One run's state: the fleet, the ERPs, the orders and what became of them."""

    def __init__(self, args):
        self.args = args
        self.base = Path(tempfile.mkdtemp(prefix="fl-"))  # short: supervisord's socket path
        self.marker = f"={self.base}/".encode()  # in the environment of every process of the fleet
        self.erps, self.workshops, self.up = [], [], None
        self.session = requests.Session()
        # a connection pool per instance and ERP, so none is dropped and opened again
        adapter = requests.adapters.HTTPAdapter(pool_connections=args.workshops + 16, pool_maxsize=16)
        self.session.mount("http://", adapter)
        self.orders = {}  # uniqueid -> {"w", "sheet", "product", "amount", "sent", ...}
        self.outstanding = {}  # workshop index -> {uniqueid}
        self.lock = threading.Lock()
        self.refused = 0
        self.late = 0.0  # how far behind its schedule the harness posted, at worst
        self.halt = threading.Event()  # the guard fired: post nothing more

    # -- setting up ---------------------------------------------------------------------

    def start_erps(self):
        from tests.erp_helpers import ErpSimServer

        for _ in range(math.ceil(self.args.workshops / self.args.per_erp)):
            self.erps.append(ErpSimServer().start())  # default save delay: the condition

    def settings(self, env):
        """The fleet's settings for ``env``. :raises Failed: when they do not run ``--pool``"""
        from core.errors import ConfigError
        from fleet.settings import load_fleet_settings

        try:
            settings = load_fleet_settings(env, dotenv=False)
        except ConfigError as exc:
            raise Failed(f"--pool {self.args.pool}: {exc}") from None
        check_pool(settings, self.args.pool)
        return settings

    def register(self, settings, env):
        from fleet.control import Fleet
        from fleet.schemas import RegistrationSpec
        from tests.fleet_helpers import free_port

        fleet = Fleet(settings)
        taken = {int(env["MANAGEMENT_PORT"]), int(env["GRID_PORT"]), *(e.port for e in self.erps)}
        for n in range(self.args.workshops):
            port = free_port()
            while port in taken:  # free_port() releases what it found: it can repeat itself
                port = free_port()
            taken.add(port)
            erp = self.erps[n // self.args.per_erp]
            _, token, _ = fleet.create(RegistrationSpec(
                workshop=f"Verksted {n:03d}", erp_system="erp_sim", erp_url=erp.url, port=port,
                username="admin", password="admin"))
            self.workshops.append({"name": f"Verksted {n:03d}", "port": port, "token": token,
                                   "erp": erp, "sheets": worksheets_of(n, self.args.per_erp)})

    def spawn(self, env):
        """``manage.py up`` in the background (it becomes supervisord)."""
        log = open(self.base / "up.out", "wb")
        self.up = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "up"], cwd=ROOT, env=env,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        return time.monotonic()

    def wait_alive(self, started):
        """:returns: seconds from ``started`` until every instance answered ``/alive``"""
        pending = list(range(len(self.workshops)))
        # Once a second, 8 at a time: polling 200 starting instances every 0.2 s with 32
        # threads took ~20 % of the 2 cores their start-up needs (measured with 200)
        with ThreadPoolExecutor(max_workers=8) as pool:
            while pending:
                if self.up.poll() is not None:
                    raise Failed(f"manage.py up exited with {self.up.returncode}: "
                                 f"{(self.base / 'up.out').read_text(errors='replace')[-1500:]}")
                if time.monotonic() - started > self.args.alive_timeout:
                    raise Failed(f"{len(pending)} instances not alive {self.args.alive_timeout} s after up")
                answers = list(pool.map(self.alive, pending))
                pending = [w for w, ok in zip(pending, answers) if not ok]
                if pending:
                    time.sleep(ALIVE_POLL_SECONDS)
        return time.monotonic() - started

    def alive(self, w):
        try:
            return self.session.get(f"http://127.0.0.1:{self.workshops[w]['port']}/alive",
                                    timeout=2).status_code == 200
        except requests.RequestException:
            return False

    # -- orders ---------------------------------------------------------------------------

    def instance(self, w, method, path, **kwargs):
        shop = self.workshops[w]
        return self.session.request(method, f"http://127.0.0.1:{shop['port']}{path}", timeout=30,
                                    headers={"Authorization": f"Bearer {shop['token']}"}, **kwargs)

    def post(self, uniqueid, w, due):
        order = self.orders[uniqueid]
        body = {"workshop": self.workshops[w]["name"], "worksheet": order["sheet"],
                "product_nr": order["product"], "product_amount": order["amount"], "uniqueid": uniqueid}
        order["sent"] = time.time()
        self.late = max(self.late, time.monotonic() - due)
        for attempt in range(5):  # a repost of the same body is idempotent (docs/api.md: intake)
            if self.halt.is_set():
                break
            try:
                r = self.instance(w, "POST", "/create", json=body)
                if r.status_code == 200:
                    with self.lock:
                        order["accepted"] = True
                        self.outstanding.setdefault(w, set()).add(uniqueid)
                    return
            except requests.RequestException:
                pass
            time.sleep(1 + attempt)
        with self.lock:
            self.refused += 1

    def poll(self, w):
        """Final statuses of workshop ``w``'s outstanding orders: one ``/queue`` call, then
        ``/get_order_status`` only for the orders no longer in it."""
        with self.lock:
            waiting = set(self.outstanding.get(w, ()))
        if not waiting:
            return
        try:
            active = {t["uniqueid"] for t in self.instance(w, "GET", "/queue").json()["tasks"]}
        except (requests.RequestException, ValueError, KeyError):
            return
        for uniqueid in waiting - active:
            try:
                status = self.instance(w, "GET", "/get_order_status", params={"uniqueid": uniqueid}).json()
            except (requests.RequestException, ValueError):
                continue
            if status.get("status") in FINAL:  # else posted after the /queue answer: next round
                order = self.orders[uniqueid]
                order["status"], order["reason"] = status["status"], status.get("reason_code")
                order["latency"] = created_seconds(status.get("history", []), order["sent"])
                with self.lock:
                    self.outstanding[w].discard(uniqueid)

    def cpu_by_kind(self):
        """CPU-seconds so far: the fleet's by kind (:func:`cpu_by_kind`), the erp_sim
        servers' and this harness's own."""
        totals = cpu_by_kind(fleet_pids(self.up.pid, self.marker))
        totals["erp_sim"] = sum(sum(_cpu_times(erp.process.pid)) for erp in self.erps)
        totals["harness"] = sum(os.times()[:2])
        return totals

    def pending(self):
        with self.lock:
            return sum(len(s) for s in self.outstanding.values())

    def warm_up(self, count, rng):
        """Post ``count`` orders one after another, each to a workshop drawn at random,
        each followed to its final status before the next: the Grid's Java and every
        hot path warmed as a fleet that has run for a while has them. They are not
        counted in the latencies or the order counts; their lines are checked with the
        others. :returns: seconds it took"""
        started = time.monotonic()
        for i in range(count):
            w = rng.randrange(len(self.workshops))
            uniqueid = f"warm-{os.urandom(3).hex()}-{i:03d}"
            self.orders[uniqueid] = {"w": w, "sheet": rng.choice(self.workshops[w]["sheets"]),
                                     "product": rng.choice(PRODUCTS), "amount": "1", "warmup": True,
                                     "accepted": False, "status": None, "latency": None}
            self.post(uniqueid, w, time.monotonic())
            deadline = time.monotonic() + 120
            while self.orders[uniqueid]["accepted"] and self.outstanding[w] \
                    and time.monotonic() < deadline:
                self.poll(w)
                time.sleep(0.2)
        self.late = 0.0  # the warm-up's posts are not the schedule's
        return time.monotonic() - started

    def drive(self, arrivals, rng, sampler):
        """Post the orders on schedule, poll their statuses, wait for the last to finish.

        :returns: why the run stopped early, or ``None``"""
        stop = threading.Event()

        def poller(pool):
            while not stop.is_set():
                with self.lock:
                    busy = [w for w, s in self.outstanding.items() if s]
                list(pool.map(self.poll, busy))
                stop.wait(self.args.poll_seconds)

        with ThreadPoolExecutor(max_workers=16) as posting, ThreadPoolExecutor(max_workers=8) as polling:
            thread = threading.Thread(target=poller, args=(polling,), daemon=True)
            thread.start()
            start, run_id, posts = time.monotonic(), os.urandom(3).hex(), []
            for i, (t, w) in enumerate(arrivals):
                while not sampler.tripped and time.monotonic() < start + t:
                    time.sleep(max(0.0, min(0.2, start + t - time.monotonic())))
                if sampler.tripped:
                    break
                uniqueid = f"load-{run_id}-{i:05d}"
                self.orders[uniqueid] = {"w": w, "sheet": rng.choice(self.workshops[w]["sheets"]),
                                         "product": rng.choice(PRODUCTS), "amount": str(rng.randint(1, 9)),
                                         "accepted": False, "status": None, "latency": None}
                posts.append(posting.submit(self.post, uniqueid, w, start + t))
            deadline = time.monotonic() + self.args.drain_seconds
            while not sampler.tripped and time.monotonic() < deadline:
                if all(p.done() for p in posts) and not self.pending():
                    break
                time.sleep(1)
            stop.set()
            thread.join(60)
            if sampler.tripped:
                self.halt.set()
        if sampler.tripped:
            return sampler.tripped
        if self.pending():
            return (f"{self.pending()} orders without a final status {self.args.drain_seconds:g} s "
                    "after the last arrival")
        return None

    def check_lines(self):
        accepted = {u: (o["sheet"], o["product"], o["amount"], o["status"])
                    for u, o in self.orders.items() if o["accepted"]}
        counts = dict.fromkeys(("lost", "twice", "wrong", "stray", "error_written"), 0)
        for erp in self.erps:
            mine = {u: v for u, v in accepted.items() if self.workshops[self.orders[u]["w"]]["erp"] is erp}
            used = {sheet for n, shop in enumerate(self.workshops) if shop["erp"] is erp for sheet in shop["sheets"]}
            sheets = {n: self.session.get(f"{erp.url}/_sim/worksheets/{n}", timeout=30).json()["lines"]
                      for n in sorted(used, key=int)}
            for key, value in tally_lines(mine, sheets).items():
                counts[key] += value
        return counts

    # -- tearing down ---------------------------------------------------------------------

    def stop(self, graceful):
        """:returns: seconds the graceful stop took, or ``None`` (killed)"""
        if self.up is None or self.up.poll() is not None:
            return None
        if graceful:
            started = time.monotonic()
            self.up.send_signal(signal.SIGTERM)
            try:
                self.up.wait(180)
                return time.monotonic() - started
            except subprocess.TimeoutExpired:
                pass
        kill_tree(self.up.pid, self.marker)
        self.up.wait(30)
        return None

    def cleanup(self):
        kill_tree(0, self.marker)  # whatever the fleet started that outlived it
        for erp in self.erps:
            erp.stop()
        if self.args.keep:
            print(f"kept {self.base}", file=sys.stderr)
        else:
            shutil.rmtree(self.base, ignore_errors=True)


def run_once(args):
    """One configuration with one pool. :returns: the result as a dict (see ``--json``)"""
    rng = random.Random(args.seed)
    arrivals = poisson_arrivals(args.rate, args.minutes, args.workshops, rng)
    result = {"workshops": args.workshops, "rate": args.rate, "minutes": args.minutes, "pool": args.pool,
              "warmup": args.warmup_orders,
              "erps": math.ceil(args.workshops / args.per_erp), "load_at_start": os.getloadavg()[0],
              "planned_orders": len(arrivals), "did_not_finish": None}
    load = Load(args)
    try:
        env = fleet_environment(args, load.base)
        settings = load.settings(env)  # first: a pool that is not there fails before anything starts
        load.start_erps()
        load.register(settings, env)
        result["slots"] = getattr(settings, "browser_slots", None) if args.pool == "grid" else None
        grid_url = f"http://127.0.0.1:{env['GRID_PORT']}" if args.pool == "grid" else None
        started = load.spawn(env)
        sampler = TreeSampler(load.up.pid, load.marker, args.sample_seconds, args.pss_limit_gib,
                              args.min_available_gib, grid_url)
        with sampler:  # from the start: the fleet's memory while it starts counts too
            result["alive_seconds"] = load.wait_alive(started)
            if args.idle_seconds > 0:  # what the fleet costs before any order: its floor
                busy = busy_cpu_seconds()
                time.sleep(args.idle_seconds)
                result["idle_cpu_share"] = (busy_cpu_seconds() - busy) / (
                    args.idle_seconds * (os.cpu_count() or 1))
            if args.warmup_orders:
                result["warmup_seconds"] = load.warm_up(args.warmup_orders,
                                                        random.Random(args.seed + 1))
            busy, wall, steal = busy_cpu_seconds(), time.monotonic(), steal_cpu_seconds()
            before = load.cpu_by_kind()
            result["did_not_finish"] = load.drive(arrivals, rng, sampler)
            result["cpu_seconds"] = busy_cpu_seconds() - busy
            result["steal_share"] = (steal_cpu_seconds() - steal) / (
                (time.monotonic() - wall) * (os.cpu_count() or 1))
            after = load.cpu_by_kind()
            result["cpu_by_kind"] = {k: round(after[k] - before[k], 1) for k in after}
            result["cpu_share"] = result["cpu_seconds"] / ((time.monotonic() - wall) * (os.cpu_count() or 1))
        result["stop_seconds"] = load.stop(graceful=not sampler.tripped)
        result.update(sampler.peak, samples=sampler.samples)
        orders = [o for o in load.orders.values() if not o.get("warmup")]
        latencies = [o["latency"] for o in orders if o["latency"] is not None]
        result.update(
            sent=len(orders), accepted=sum(o["accepted"] for o in orders), refused=load.refused,
            created=sum(o["status"] == "created" for o in orders),
            error=sum(o["status"] in ("error", "resolved") for o in orders),
            reasons=dict(Counter(o.get("reason") or "?" for o in orders if o["status"] in ("error", "resolved"))),
            unfinished=sum(o["accepted"] and o["status"] is None for o in orders),
            p50=percentile(latencies, 50), p95=percentile(latencies, 95),
            max=max(latencies) if latencies else None, late_seconds=load.late)
        result["cpu_per_order"] = result["cpu_seconds"] / max(1, result["accepted"])
        result["lines"] = load.check_lines()
        result["bad_orders"] = sum(result["lines"].values())  # lost or written twice, wrong, stray
    finally:
        load.stop(graceful=False)
        load.cleanup()
    result["harness_peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


# -- the table ------------------------------------------------------------------------------


def _num(value, unit="", digits=1):
    return "–" if value is None else f"{value:.{digits}f}{unit}"


def _ratio(a, b):
    return "–" if a is None or not b else f"{a / b:.2f}×"


def _pool_label(r):
    if r["pool"] == "grid":
        return f"pool (Grid, {r['slots']} slots)" if r.get("slots") else "pool (Grid)"
    return "`BROWSER_POOL=local`"


def render_rows(results):
    """Rows of the comparison table: each run, then pool / local of each configuration."""
    rows, by_config = [], {}
    for r in results:
        by_config.setdefault((r["workshops"], r["rate"], r.get("warmup") or 0), {})[r["pool"]] = r
    for (workshops, rate, warmup), runs in by_config.items():
        config = config_label(workshops, rate, warmup)
        for pool in ("grid", "local"):
            r = runs.get(pool)
            if r is None:
                continue
            if r.get("failed"):
                rows.append(f"| {config} | {_pool_label(r)} | not run: {r['failed']} | | | | | | | |")
                continue
            lines = r.get("lines") or {}
            rows.append(
                f"| {config} | {_pool_label(r)} | {_num(r.get('alive_seconds'), ' s')} | "
                f"{_num(r.get('p50'))} / {_num(r.get('p95'))} / {_num(r.get('max'), ' s')} | "
                f"{r.get('browsers', 0)}" + (f" ({r.get('grid_sessions', 0)} in use, {r.get('grid_waiting', 0)} waiting)"
                                             if pool == "grid" else "")
                + f" | {_num(r.get('pss_gib'), ' GiB', 2)} | {_num(r.get('load'))}{_cpu(r)} | "
                f"{r.get('created', 0)} / {r.get('error', 0)}{_reasons(r)} / {r.get('unfinished', 0)} "
                f"of {r.get('sent', 0)} | {lines.get('lost', '–')} / {lines.get('twice', '–')} / "
                f"{lines.get('wrong', '–')} / {lines.get('stray', '–')}"
                + (f" (and {lines['error_written']} written though in `error`)" if lines.get("error_written") else "")
                + " | "
                + (f"**did not finish**: {r['did_not_finish']}" if r.get("did_not_finish") else "finished")
                + (f"; orders posted up to {r['late_seconds']:.0f} s late" if r.get("late_seconds", 0) > 2 else "")
                + " |")
        pool, local = runs.get("grid"), runs.get("local")
        if pool and local and not pool.get("failed") and not local.get("failed"):
            rows.append(
                f"| {config} | **pool / local** | {_ratio(pool.get('alive_seconds'), local.get('alive_seconds'))} | "
                f"{_ratio(pool.get('p50'), local.get('p50'))} / {_ratio(pool.get('p95'), local.get('p95'))} / "
                f"{_ratio(pool.get('max'), local.get('max'))} | {_ratio(pool.get('browsers'), local.get('browsers'))} | "
                f"{_ratio(pool.get('pss_gib'), local.get('pss_gib'))} | {_ratio(pool.get('load'), local.get('load'))} "
                "| | | |")
    return rows


def _cpu(r):
    """``; cores 87 % busy, 1.90 CPU-s per order`` while orders arrived and drained
    (the whole machine: fleet, erp_sim servers and harness), when measured."""
    if r.get("cpu_seconds") is None:
        return ""
    idle = (f" (idle fleet before them: {100 * r['idle_cpu_share']:.0f} %)"
            if r.get("idle_cpu_share") is not None else "")
    kinds = r.get("cpu_by_kind") or {}
    split = ", ".join(f"{k} {v / max(1, r.get('accepted', 0)):.2f}" for k, v in kinds.items() if v)
    stolen = (f", {100 * r['steal_share']:.0f} % stolen by the host"
              if r.get("steal_share") is not None else "")
    return (f"; cores {100 * r['cpu_share']:.0f} % busy{idle}{stolen}, "
            f"{r['cpu_per_order']:.2f} CPU-s per order" + (f" ({split})" if split else ""))


def _reasons(r):
    """`` (ERP_UNAVAILABLE ×20)``: the reason codes of the orders that ended in error."""
    reasons = r.get("reasons") or {}
    return " (" + ", ".join(f"{code} ×{n}" for code, n in sorted(reasons.items())) + ")" if reasons else ""


def judge(r, key, limit):
    """``(measured text, verdict)`` of one target on one run (``None``: not measured)."""
    if r is None or r.get("failed"):
        return "not measured", "not measured"
    value = r.get(key)
    text = _num(value, digits=2) if isinstance(value, float) else str(value)
    if r.get("did_not_finish"):
        return text, f"**not met** (did not finish: {r['did_not_finish']})"
    if value is None:
        return "–", "not measured"
    return text, "**met**" if value <= limit else "**not met**"


def render_targets(results):
    runs = {(r["workshops"], r["rate"], r["pool"]): r for r in results if not r.get("warmup")}
    rows = []
    for (workshops, rate), targets in TARGETS.items():
        for what, key, limit, unit in targets:
            pool, local = runs.get((workshops, rate, "grid")), runs.get((workshops, rate, "local"))
            measured, verdict = judge(pool, key, limit)
            if key == "bad_orders" and pool and pool.get("error"):
                verdict += (f"; {pool['error']} other orders ended in `error`{_reasons(pool)}, "
                            "their clients told, nothing written for them")
            rows.append(f"| {workshops} × {rate:g}/min: {what} ≤ {limit:g}{' ' + unit if unit else ''} | {measured} | "
                        f"{judge(local, key, limit)[0]} | {verdict} |")
    rows += single_rows(results)
    return rows


def single_rows(results):
    """The single busy workshop against its own browser (p95 within +10 % of local, all
    created): judged after a warm-up where one was run (a fleet's Grid runs for days),
    and after a cold start as well (a Grid just restarted: its Java compiles itself)."""
    pairs = {}
    for r in results:
        if r["workshops"] == 1:
            pairs.setdefault((r["rate"], r.get("warmup") or 0), {})[r["pool"]] = r
    rows = []
    for (rate, warmup), runs in sorted(pairs.items(), key=lambda item: -item[0][1]):
        pool, local = runs.get("grid"), runs.get("local")
        if not (pool and local and not pool.get("failed") and not local.get("failed")
                and pool.get("p95") and local.get("p95")):
            continue
        ok = (pool["p95"] <= 1.1 * local["p95"] and not pool.get("did_not_finish")
              and pool.get("created") == pool.get("sent"))
        when = f"after {warmup} warm-up orders" if warmup else "from a cold start (Grid just started)"
        rows.append(f"| 1 × {rate:g}/min, {when}: a single busy workshop, no regression with the pool "
                    f"(p95 within +10 % of local, all created) | p95 {pool['p95']:.2f} s | "
                    f"p95 {local['p95']:.2f} s | {'**met**' if ok else '**not met**'} |")
    if not rows:
        rows.append("| a single busy workshop: no regression with the pool | not measured (run a 1×R "
                    "configuration) | | not measured |")
    return rows


def render(results, command, minutes, machine_line, notes=""):
    """The Markdown section for docs/benchmarks.md (``command`` as Markdown)."""
    header = ("| configuration | browsers | every instance alive after `up` | create→created p50 / p95 / max "
              "| peak browsers | peak PSS of the tree | peak load average (1 min); CPU while orders ran "
              "| orders created / error / unfinished | lines lost / twice / wrong / stray | run |\n"
              "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    harness = max((r.get("harness_peak_rss_mib", 0) for r in results), default=0)
    return f"""## The fleet under load (issue 12)

Command: {command}
Machine: {machine_line}

Each run: N workshops registered in a fresh registry, `manage.py up` (a real supervisord),
one erp_sim per 25 workshops at its default save delay (0.3 s per saved line), orders
arriving as a Poisson process at R per minute, each at a workshop drawn at random, for
**T = {minutes:g} min** (the same seed, so the same arrivals, for the pool and for local);
then every order is followed to its final status. A configuration *after N warm-up orders*
first posts N orders one after another, each followed to its end (not counted; their lines
are checked): a fleet that has run a while, against one just started. *Browsers*: the pool is `BROWSER_POOL=grid`
(the Selenium Grid under the same supervisord, `BROWSER_SLOTS` at its default), local is one
Chromium per busy instance. *create→created*: from the harness's clock before `POST /create`
to the `created` entry of the order's history. *Peak browsers*: Chromium main processes in
supervisord's tree at once (with the pool, in brackets, the most Grid sessions in use and the
most session requests waiting in its queue, each at its own peak). *PSS*:
proportional set size, shared pages split, summed over supervisord's whole tree (instances,
management API, Grid, chromedrivers, every Chromium process; see *Tree*), sampled every
~2 s or more (a sample's /proc reading takes at most a fifth of a core); GiB.
*CPU*: the whole machine's busy time (`/proc/stat`; the fleet, the erp_sim servers and
this harness) while orders arrived and drained, as a share of both cores, and per
accepted order; *stolen*: the share of both cores the hypervisor gave to other guests
meanwhile (`/proc/stat`'s steal: why the same run is slower another hour); in brackets the idle fleet's share over `--idle-seconds` after `up`.
*Lines*: every accepted order checked through erp_sim's `/_sim/worksheets/<n>`: lost (`created`
and no line), twice (more than one), wrong (product or amount), stray (a line of no order); an
order that ended in `error` must have no line (its client is told: not lost), its reason codes
are in the orders column. *Tree*: supervisord and everything under it, and what its programs
started that left it (a browser whose driver died is re-parented to init; found by the run's
folder in its environment), killed with the fleet at the end of each run. A run
that would exhaust the machine is stopped by a guard (`--pss-limit-gib`, `--min-available-gib`)
and reported as **did not finish** with what it measured until then. Ratios are pool / local
within the same invocation (below 1: the pool needs less).

{header}
{chr(10).join(render_rows(results))}

Targets (issue 12, this 2-core / 24 GiB machine), judged on the pool's run:

| target | with the pool | with `BROWSER_POOL=local` | verdict |
| --- | --- | --- | --- |
{chr(10).join(render_targets(results))}

The harness itself (one `requests.Session`, a thread pool for posting, one for polling)
peaked at {harness:.0f} MiB RSS; it and the erp_sim servers are not in the measured tree.
{notes}"""


# -- the command line ------------------------------------------------------------------------


def run_matrix(args):
    results = []
    configs = [parse_config(c) for c in args.matrix.split(",")]
    pools = [p.strip() for p in args.pools.split(",")]
    first = True
    for workshops, rate, warmup in configs:
        for pool in pools:
            if not first:
                time.sleep(args.pause)  # let the last run's load average fall off
            first = False
            with tempfile.NamedTemporaryFile("r", suffix=".json") as out:
                command = [sys.executable, __file__, "--workshops", str(workshops), "--rate", str(rate),
                           "--minutes", str(args.minutes), "--pool", pool, "--json", out.name,
                           "--warmup-orders", str(warmup), *_passed_on(args)]
                print(f"bench_fleet_load: {config_label(workshops, rate, warmup)}, {pool} ...",
                      file=sys.stderr, flush=True)
                done = subprocess.run(command, cwd=ROOT, stderr=subprocess.PIPE, text=True)
                sys.stderr.write(done.stderr[-3000:])
                text = Path(out.name).read_text()
            if text:
                results.append(json.loads(text))
            else:
                why = done.stderr.strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
                results.append({"workshops": workshops, "rate": rate, "pool": pool, "warmup": warmup,
                                "failed": why[0].replace("bench_fleet_load: ", "").replace("|", "/")})
    return results


def _passed_on(args):
    passed = ["--per-erp", str(args.per_erp), "--seed", str(args.seed),
              "--pss-limit-gib", str(args.pss_limit_gib), "--min-available-gib", str(args.min_available_gib),
              "--drain-seconds", str(args.drain_seconds), "--alive-timeout", str(args.alive_timeout)]
    if args.slots:
        passed += ["--slots", str(args.slots)]
    for item in args.set:
        passed += ["--set", item]
    return passed


def shown_arguments(argv):
    """The command line without where it wrote its output (a temporary file's name)."""
    shown, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("--write", "--json", "--via"):
            skip = True
        elif not arg.startswith(("--write=", "--json=", "--via=")):
            shown.append(arg)
    return shown


def parser():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workshops", type=int, default=5, help="instances under manage.py up")
    p.add_argument("--rate", type=float, default=10, help="orders per minute, all workshops together")
    p.add_argument("--minutes", type=float, default=1, help="T: how long orders arrive")
    p.add_argument("--pool", choices=("grid", "local"), default="local", help="BROWSER_POOL of the fleet")
    p.add_argument("--slots", type=int, help="BROWSER_SLOTS (default: the fleet's own default)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="one more setting in the fleet's environment (repeatable)")
    p.add_argument("--per-erp", type=int, default=25, help="workshops per erp_sim server")
    p.add_argument("--seed", type=int, default=12, help="seed of the arrivals (the same for every pool)")
    p.add_argument("--pss-limit-gib", type=float, default=16.0,
                   help="guard: stop the run when supervisord's tree passes this PSS")
    p.add_argument("--min-available-gib", type=float, default=3.0,
                   help="guard: stop the run when the machine has less memory available")
    p.add_argument("--drain-seconds", type=float, default=600,
                   help="how long after the last arrival the orders may take to finish")
    p.add_argument("--alive-timeout", type=float, default=300, help="seconds allowed from up to all alive")
    p.add_argument("--warmup-orders", type=int, default=0,
                   help="orders posted one after another (each followed to its end) before the "
                        "counted ones, not counted; --matrix: WORKSHOPSxRATEwN")
    p.add_argument("--idle-seconds", type=float, default=15,
                   help="after all are alive, measure the idle fleet's CPU this long before orders (0: not)")
    p.add_argument("--poll-seconds", type=float, default=2.0, help="pause between status polls")
    p.add_argument("--sample-seconds", type=float, default=2.0, help="least pause between /proc samples")
    p.add_argument("--json", help="write the result of one run as JSON to this file")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (logs)")
    p.add_argument("--matrix", help="configurations WORKSHOPSxRATE,... : run each with each of --pools")
    p.add_argument("--pools", default="grid,local", help="with --matrix: the pools, in this order")
    p.add_argument("--pause", type=float, default=30, help="with --matrix: seconds between runs")
    p.add_argument("--write", help="with --matrix: write the Markdown section to this file")
    p.add_argument("--via", help="the command that ran this one, for the report (make bench-fleet)")
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    # a harness stopped with kill still tears its fleet down (Run.stop and Run.cleanup)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    command = "flock /tmp/browser.lock .venv/bin/python bench/bench_fleet_load.py " + " ".join(
        shlex.quote(a) for a in shown_arguments(argv if argv is not None else sys.argv[1:]))
    command = f"`{args.via}` (this part: `{command}`)" if args.via else f"`{command}`"
    machine_line = machine()  # the load average before the first run
    if args.matrix:
        results = run_matrix(args)
        report = render(results, command, args.minutes, machine_line)
        print(report)
        if args.write:
            Path(args.write).write_text(report, encoding="utf-8")
        return
    try:
        result = run_once(args)
    except Failed as exc:
        print(f"bench_fleet_load: {exc}", file=sys.stderr)
        if args.json:  # for --matrix: the reason in its table
            Path(args.json).write_text(json.dumps({
                "workshops": args.workshops, "rate": args.rate, "pool": args.pool,
                "failed": str(exc).splitlines()[0].replace("|", "/")}), encoding="utf-8")
        sys.exit(2)
    if args.json:
        Path(args.json).write_text(json.dumps(result), encoding="utf-8")
    print(render([result], command, args.minutes, machine_line))
    print(json.dumps(result, indent=1), file=sys.stderr)


if __name__ == "__main__":
    main()
