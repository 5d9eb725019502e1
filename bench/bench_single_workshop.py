"""One busy workshop with the browser pool against its own Chromium: ``make bench``'s
throughput, measured both ways in one run (issue 12: "no regression for a single busy
workshop (the make bench throughput) with the pool").

    flock /tmp/browser.lock .venv/bin/python bench/bench_single_workshop.py \
        [--orders 100] [--rounds 3] [--warmup 30] [--save-delays 0,0.3] [--flavor classic]
        [--status-polls 0]

The measure is bench_instance's: N orders posted at once over 5 worksheets to a real
``api.py`` instance, lines per minute until the last is ``created`` (followed through
the status feed, as OilMat does), every line checked exactly once through ``/_sim``.
``--status-polls R`` adds a second client asking for the orders' statuses R times a
second during every counted run: 10 is what the default RATE_LIMIT (600/minute) lets
one client ask. (Until 2026-12-04 the harness itself asked for every waiting order's
status ten times a second, ~100 requests a second: with the pool that cost 13-25 % of
the lines per minute, with a local browser little; see docs/benchmarks.md.)

Per save delay, one erp_sim and one Grid (the fleet's own TOML, launcher and Java
options, two slots); rounds alternate local and pool (pool first in odd rounds) so
drift in the machine's speed falls on both. The CPU of the
whole machine during each run is read from ``/proc/stat`` (steal excluded), per order.
The ratio is pool / local of the medians; the target is pool >= 0.9 x local.

Before the rounds, each way runs ``--warmup`` orders that are not counted: a fleet's
Grid runs for days, and a Java process just started spends its first few hundred
commands compiling itself (its CPU per order fell from 0.036 to 0.015 CPU-s between a
first and a second run of 100 orders, measured per process). The pool's warm-up is
reported on its own, as the cost of a Grid just (re)started.
"""

import argparse
import itertools
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

from bench_instance import FLAVOR_SYSTEM, order_ids, throughput  # noqa: E402
from common import busy_cpu_seconds, machine  # noqa: E402
from erp_helpers import ErpSimServer  # noqa: E402
from instance_helpers import RunningInstance  # noqa: E402
from tests.fleet_helpers import StandaloneGrid  # noqa: E402


def fresh_worksheets(run, count=5, first=101):
    """The worksheets of the ``run``-th run against one erp_sim: empty ones every time.
    A worksheet's page shows all its lines and every visit reads them, so rounds on the
    same five sheets got slower one after the other (380 down to 234 lines/min in one
    run of 2026-12-04), and the order of the rounds weighed on the ratio."""
    start = first + run * count
    if start + count - 1 >= 900:  # erp_sim's 900-999 are closed (erp_sim/seed.py)
        raise ValueError(f"run {run}: no {count} open worksheets left from {start}")
    return list(range(start, start + count))


class StatusPoller(threading.Thread):
    """A second client asking for the run's orders' statuses, ``rate`` a second, one
    after the other (``--status-polls``): OilMat using all of the default RATE_LIMIT
    (600/minute) on ``/get_order_status`` instead of following the feed."""

    def __init__(self, inst, ids, rate):
        super().__init__(daemon=True)
        self.url, self.ids, self.rate = inst.url + "/get_order_status", ids, rate
        self.session = requests.Session()  # not the instance's: one per thread
        self.session.headers.update(inst.session.headers)
        self.done = threading.Event()
        self.asked = 0

    def run(self):
        started = time.monotonic()
        for uniqueid in itertools.cycle(self.ids):
            if self.done.wait(max(0.0, started + self.asked / self.rate - time.monotonic())):
                return
            try:
                self.session.get(self.url, params={"uniqueid": uniqueid}, timeout=10)
            except requests.RequestException:
                pass
            self.asked += 1


def one_run(workdir, erp, system, orders, grid_url, worksheets, status_polls=0):
    env = {"ERP_SYSTEM": system, "BROWSER_IDLE_SECONDS": "5"}
    if grid_url:
        # as the fleet sets it for an instance under the pool (no parking: one workshop)
        env.update(SELENIUM_REMOTE_URL=grid_url, BROWSER_WAIT_SECONDS="60")
    inst = RunningInstance(workdir, erp.url, **env).start()
    ids = order_ids(orders)
    poller = StatusPoller(inst, ids, status_polls) if status_polls else None
    try:
        cpu = busy_cpu_seconds()
        if poller:
            poller.start()
        rate, elapsed, _, _ = throughput(inst, erp, orders, worksheets, ids)
        cpu = busy_cpu_seconds() - cpu
    finally:
        if poller:
            poller.done.set()
            poller.join()
        inst.stop()
    return {"rate": rate, "elapsed": elapsed, "cpu": cpu / orders}


def bench(flavor, orders, rounds, save_delays, workdir, warmup=30, status_polls=0):
    system = FLAVOR_SYSTEM[flavor]
    rows = []
    for delay in save_delays:
        runs = {"local": [], "pool": [], "warmup": []}
        (workdir / f"grid-{delay}").mkdir()
        with ErpSimServer(flavor=flavor, save_delay=delay) as erp, \
                StandaloneGrid(workdir / f"grid-{delay}", slots=2) as grid:
            sheets = (fresh_worksheets(n) for n in itertools.count())
            for kind in ("pool", "local") if warmup else ():
                run = one_run(workdir / f"warmup-{kind}-{delay}", erp, system, warmup,
                              grid.url if kind == "pool" else None, next(sheets))
                if kind == "pool":
                    runs["warmup"].append(run)
                print(f"save delay {delay}: warm-up {kind}: {run['rate']:.0f} lines/min, "
                      f"{run['cpu']:.2f} CPU-s per order (not counted)", file=sys.stderr, flush=True)
            for n in range(rounds):
                order = ("pool", "local") if n % 2 == 0 else ("local", "pool")
                for kind in order:
                    where = workdir / f"{kind}-{delay}-{n}"
                    run = one_run(where, erp, system, orders,
                                  grid.url if kind == "pool" else None, next(sheets),
                                  status_polls)
                    runs[kind].append(run)
                    print(f"save delay {delay}: round {n + 1} {kind}: {run['rate']:.0f} "
                          f"lines/min ({run['elapsed']:.1f} s), {run['cpu']:.2f} CPU-s per "
                          "order", file=sys.stderr, flush=True)
        rows.append((delay, runs))
    return rows


def _warmup(runs):
    if not runs["warmup"]:
        return "none"
    first = runs["warmup"][0]
    return f"{first['rate']:.0f} lines/min, {first['cpu']:.2f} CPU-s per order"


def _client(status_polls):
    text = ("the harness follows the orders through the status feed (`GET /events`), as "
            "OilMat does")
    if status_polls:
        text += (f", and a second client asks for their statuses {status_polls:g} times a "
                 "second throughout (`--status-polls`; 10 is the default RATE_LIMIT)")
    return text


def report(rows, flavor, orders, rounds, command, warmup=30, status_polls=0):
    out = ["## One busy workshop: the pool against its own browser (issue 12)\n",
           f"Command: `{command}`  ",
           f"Machine: {machine()}\n",
           f"erp_sim ({flavor}), {orders} orders posted at once over 5 worksheets (empty "
           "ones in every run), lines "
           f"per minute until the last is `created` (every line checked once through "
           f"`/_sim`); {rounds} rounds alternating local and pool, after {warmup} "
           "orders each way that are not counted (the Grid's Java warms up: see the "
           f"last column); {_client(status_polls)}; CPU is the whole machine's busy time "
           "during the run (steal excluded), per order.\n",
           "| save delay | local: lines/min (each round) | pool: lines/min (each round) "
           "| pool / local (medians) | CPU-s per order, local / pool | target pool >= 0.9x "
           "| pool's warm-up (a Grid just started) |",
           "| --- | --- | --- | --- | --- | --- | --- |"]
    for delay, runs in rows:
        local = statistics.median(r["rate"] for r in runs["local"])
        pool = statistics.median(r["rate"] for r in runs["pool"])
        cpu_local = statistics.median(r["cpu"] for r in runs["local"])
        cpu_pool = statistics.median(r["cpu"] for r in runs["pool"])
        ratio = pool / local
        each = lambda kind: ", ".join(f"{r['rate']:.0f}" for r in runs[kind])  # noqa: E731
        out.append(f"| {delay} s | {local:.0f} ({each('local')}) | {pool:.0f} ({each('pool')}) "
                   f"| **{ratio:.2f}x** | {cpu_local:.2f} / {cpu_pool:.2f} "
                   f"| {'met' if ratio >= 0.9 else 'not met'} | {_warmup(runs)} |")
    out.append("\nWith the pool every WebDriver command of a visit goes through the Grid "
               "(one more HTTP hop and its Java); a one-line visit on the classic pages is "
               "4 commands (the sheet's load, a poll that finds and reads it, one script "
               "that fills the form in and clicks, a poll that finds and reads the saved "
               "sheet; tests/"
               "test_integration_erp_sim_flow.py counts them). The save delay hides part "
               "of that hop behind the ERP's own time.")
    return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flavor", default="classic", choices=sorted(FLAVOR_SYSTEM))
    parser.add_argument("--orders", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=30,
                        help="orders each way before the rounds, not counted (0: none)")
    parser.add_argument("--save-delays", default="0,0.3")
    parser.add_argument("--status-polls", type=float, default=0,
                        help="a second client asks for the orders' statuses this many times "
                             "a second during every counted run (default 0; 10 is the "
                             "default RATE_LIMIT of 600/minute)")
    args = parser.parse_args()
    delays = [float(d) for d in args.save_delays.split(",")]
    workdir = Path(tempfile.mkdtemp(prefix="bench-single-"))
    started = time.monotonic()
    rows = bench(args.flavor, args.orders, args.rounds, delays, workdir, args.warmup,
                 args.status_polls)
    command = ".venv/bin/python bench/bench_single_workshop.py " + " ".join(sys.argv[1:])
    print(report(rows, args.flavor, args.orders, args.rounds, command.strip(), args.warmup,
                 args.status_polls))
    print(f"(took {time.monotonic() - started:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
