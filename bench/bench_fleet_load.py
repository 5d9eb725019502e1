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
are not in the measured tree. Here: the run and the command line; the process tree
(measuring and killing it) is bench/fleet_processes.py, the Markdown bench/fleet_report.py.
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

from bench.common import busy_cpu_seconds, machine, steal_cpu_seconds  # noqa: E402
from bench.fleet_processes import (TreeSampler, _cpu_times, cpu_by_kind, fleet_pids,  # noqa: E402
                                   kill_tree)
from bench.fleet_report import config_label, render  # noqa: E402

#: products the orders carry (erp_sim knows 1-200) and the worksheets each workshop owns
PRODUCTS = ("10", "11", "12")
SHEETS_PER_WORKSHOP = 4
FINAL = ("created", "error", "resolved")
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


def created_seconds(history, sent_at):
    """Seconds from ``sent_at`` (epoch) to the ``created`` entry of an order's history."""
    at = next((h["at"] for h in history if h.get("status") == "created"), None)
    return None if at is None else datetime.fromisoformat(at).timestamp() - sent_at


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
