"""Speed and memory of one workshop's instance against the stand-in ERP.

    .venv/bin/python bench/bench_instance.py [--flavors classic,spa] [--orders 100]

* throughput: order lines per minute, N orders over 5 worksheets, (a) this automation
  through a real instance, (b) a naive baseline in the same run: a fresh browser and a
  fresh login for every order (the same integration code, built and closed per order);
  twice: with no injected latency (``--save-delay 0``) and with the stand-in's default
  save delay (0.3 s per line, a slow ERP, which caps any one-at-a-time writer at 200/min);
* latency: ``POST /create`` -> ``created`` for one order on an idle instance whose
  browser is closed, median and p95;
* intake: ``POST /create`` requests/s and p99 with 16 concurrent clients, next to
  ``GET /alive`` on the same instance in the same run (the HTTP floor); the worker is
  stopped so the browser does not compete for the two cores;
* memory: the instance process (and with its browser tree) while the browser is open,
  and after the idle close.

Prints Markdown; ``bench/run.py`` writes it into docs/benchmarks.md.
"""

import argparse
import itertools
import logging
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

from common import machine, rss_mib, tree_rss_mib  # noqa: E402
from erp_helpers import ErpSimServer  # noqa: E402
from instance_helpers import RunningInstance  # noqa: E402
from integrations import AVAILABLE, get_integration_class  # noqa: E402
from integrations.base import Credentials, IntegrationConfig, OrderLine  # noqa: E402

FLAVOR_SYSTEM = {"classic": "erp_sim", "spa": "erp_sim_spa"}
WORKSHEETS = [101, 102, 103, 104, 105]


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


class MemorySampler(threading.Thread):
    """Samples the instance's tree RSS every 0.2 s; keeps the peak."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak_tree, self.peak_own = pid, 0.0, 0.0
        self.done = threading.Event()

    def run(self):
        while not self.done.wait(0.2):
            self.peak_tree = max(self.peak_tree, tree_rss_mib(self.pid))
            self.peak_own = max(self.peak_own, rss_mib(self.pid))


def order_ids(orders):
    return [f"tp-{uuid.uuid4().hex[:10]}" for _ in range(orders)]


def throughput(inst, erp, orders, worksheets=WORKSHEETS, ids=None):
    """Post ``orders`` at once over ``worksheets`` (uniqueids ``ids``, else fresh ones)
    and follow them to the end (``wait_final``: the status feed, as OilMat does).

    :returns: (lines per minute, seconds, the memory sampler, RSS after: own / tree);
        the rate is of the orders posted, ``len(ids)`` when ``ids`` are given
    """
    if ids is None:
        ids = order_ids(orders)
    sheets = itertools.cycle(worksheets)
    sampler = MemorySampler(inst.proc.pid)
    sampler.start()
    started = time.monotonic()
    for uniqueid in ids:
        assert inst.create(uniqueid=uniqueid, worksheet=str(next(sheets))).status_code == 200
    records = inst.wait_final(ids, timeout=1800)
    elapsed = time.monotonic() - started
    sampler.done.set()
    sampler.join()
    bad = [r for r in records.values() if r["status"] != "created"]
    assert not bad, bad[:3]
    lines = {n: erp.worksheet(n)["lines"] for n in worksheets}
    for uniqueid in ids:  # exactly once, or the figure means nothing
        assert sum(uniqueid in line["reference"].split() for ls in lines.values()
                   for line in ls) == 1, uniqueid
    browser_open = (rss_mib(inst.proc.pid), tree_rss_mib(inst.proc.pid))
    return len(ids) / elapsed * 60, elapsed, sampler, browser_open


def naive(erp, system, orders, workdir):
    """A fresh browser and a fresh login for every order: what a script per order does."""
    cls = get_integration_class(system)
    config = IntegrationConfig(erp_url=erp.url, artifact_dir=str(workdir / "naive-artifacts"))
    log = logging.getLogger("bench.naive")
    sheets = itertools.cycle(WORKSHEETS)
    started = time.monotonic()
    for _ in range(orders):
        integration = cls(config, log)
        try:
            integration.add_line(OrderLine(f"nv-{uuid.uuid4().hex[:10]}", str(next(sheets)), "10",
                                           Decimal("5")), Credentials("admin", "admin"))
        finally:
            integration.close()
    elapsed = time.monotonic() - started
    return orders / elapsed * 60, elapsed


def latency(inst, runs):
    samples = []
    for n in range(runs):
        time.sleep(1.5)  # BROWSER_IDLE_SECONDS=0.5: the browser is closed again
        assert not inst.session.get(inst.url + "/alive").json()["current_orders"]
        uniqueid = f"lat-{uuid.uuid4().hex[:10]}"
        started = time.monotonic()
        assert inst.create(uniqueid=uniqueid, worksheet="106").status_code == 200
        while inst.status(uniqueid)["status"] not in ("created", "error"):
            time.sleep(0.02)
        samples.append(time.monotonic() - started)
        assert inst.status(uniqueid)["status"] == "created"
    return samples


def load(url, make_request, clients=16, seconds=8.0):
    """``clients`` threads, each with its own keep-alive session, for ``seconds``."""
    latencies, errors = [], []
    deadline = time.monotonic() + seconds

    def client(_):
        session = requests.Session()
        mine = []
        while time.monotonic() < deadline:
            started = time.monotonic()
            answer = make_request(session)
            mine.append(time.monotonic() - started)
            if answer.status_code != 200:
                errors.append(answer.status_code)
        return mine

    started = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        for mine in pool.map(client, range(clients)):
            latencies += mine
    elapsed = time.monotonic() - started
    return len(latencies) / elapsed, percentile(latencies, 99) * 1000, len(errors)


def intake(inst):
    inst.session.put(inst.url + "/stop_worker")
    headers = {"Authorization": f"Bearer {inst.token}"}
    counter = itertools.count()

    def post(session):
        return session.post(inst.url + "/create", headers=headers, timeout=30, json={
            "workshop": inst.workshop, "worksheet": "107", "product_nr": "10",
            "product_amount": "5", "uniqueid": f"in-{next(counter)}-{uuid.uuid4().hex[:6]}"})

    def alive(session):
        return session.get(inst.url + "/alive", timeout=30)

    floor = load(inst.url, alive)
    create = load(inst.url, post)
    inst.session.put(inst.url + "/clear_queue")
    return create, floor


def speed_without_save_delay(flavor, orders, naive_orders, workdir):
    """Throughput and naive baseline against an ERP that saves at once (``--save-delay
    0``): no latency injected at all, so the figures are the automation's own cost."""
    system = FLAVOR_SYSTEM[flavor]
    with ErpSimServer(flavor=flavor, save_delay=0) as erp:
        inst = RunningInstance(workdir / f"{flavor}-tp0", erp.url, ERP_SYSTEM=system,
                               BROWSER_IDLE_SECONDS="5").start()
        try:
            rate, elapsed, _, _ = throughput(inst, erp, orders)
        finally:
            inst.stop()
        naive_rate, naive_elapsed = naive(erp, system, naive_orders, workdir)
    return {"rate": rate, "elapsed": elapsed, "naive_rate": naive_rate,
            "naive_elapsed": naive_elapsed}


def bench_flavor(flavor, orders, naive_orders, latency_runs, workdir):
    system = FLAVOR_SYSTEM[flavor]
    fast = speed_without_save_delay(flavor, orders, naive_orders, workdir)
    with ErpSimServer(flavor=flavor) as erp:
        inst = RunningInstance(workdir / f"{flavor}-tp", erp.url, ERP_SYSTEM=system,
                               BROWSER_IDLE_SECONDS="5").start()
        try:
            rate, elapsed, sampler, browser_open = throughput(inst, erp, orders)
            time.sleep(7)  # past BROWSER_IDLE_SECONDS: the browser is closed
            after_close = (rss_mib(inst.proc.pid), tree_rss_mib(inst.proc.pid))
            create, floor = intake(inst)
        finally:
            inst.stop()
        naive_rate, naive_elapsed = naive(erp, system, naive_orders, workdir)
        inst = RunningInstance(workdir / f"{flavor}-lat", erp.url, ERP_SYSTEM=system,
                               BROWSER_IDLE_SECONDS="0.5").start()
        try:
            samples = latency(inst, latency_runs)
        finally:
            inst.stop()
    return {
        "flavor": flavor, "orders": orders, "rate": rate, "elapsed": elapsed,
        "naive_orders": naive_orders, "naive_rate": naive_rate, "naive_elapsed": naive_elapsed,
        "lat_median": statistics.median(samples), "lat_p95": percentile(samples, 95),
        "lat_runs": latency_runs, "create": create, "floor": floor,
        "peak_own": sampler.peak_own, "peak_tree": sampler.peak_tree,
        "open": browser_open, "closed": after_close, "fast": fast,
    }


def report(results, command):
    out = [f"## One instance: throughput, latency, intake, memory\n",
           f"Command: `{command}`  ",
           f"Machine: {machine()}\n",
           "Stand-in ERP without chaos options. Two conditions: **no injected latency** "
           "(`--save-delay 0`: the ERP stores a line at once, so the figures are the "
           "automation's own cost; the condition the issue names) and the stand-in's **default "
           "save delay** (0.3 s of sleep per saved line, a slow ERP; at most 200 lines/min "
           "can be saved one after another). Latency, intake and memory are measured at "
           "the default.\n",
           "| flavor | measure | value | target |", "| --- | --- | --- | --- |"]
    for r in results:
        f = r["flavor"]
        intake_ratio = r["create"][0] / r["floor"][0]
        for label, d in (("no injected latency", r["fast"]), ("save delay 0.3 s", r)):
            ratio = d["rate"] / d["naive_rate"]
            out += [
                f"| {f} | lines/min, {r['orders']} orders over 5 worksheets (this automation), {label} | "
                f"**{d['rate']:.0f}** ({d['elapsed']:.1f} s) | ≥ 120 ({'met' if d['rate'] >= 120 else 'missed'}) |",
                f"| {f} | lines/min, naive baseline: fresh browser + login per order ({r['naive_orders']} orders), {label} | "
                f"{d['naive_rate']:.0f} ({d['naive_elapsed']:.1f} s) | |",
                f"| {f} | ratio automation / naive, same run, {label} | **{ratio:.1f}×** | ≥ 4× ({'met' if ratio >= 4 else 'missed'}) |",
            ]
        out += [
            f"| {f} | `/create` → `created`, one order, browser closed, median / p95 of {r['lat_runs']} | "
            f"{r['lat_median']:.2f} s / {r['lat_p95']:.2f} s | |",
            f"| {f} | `POST /create`, 16 clients: req/s, p99 | {r['create'][0]:.0f} req/s, {r['create'][1]:.0f} ms "
            f"({r['create'][2]} non-200) | |",
            f"| {f} | `GET /alive` (HTTP floor), 16 clients: req/s, p99 | {r['floor'][0]:.0f} req/s, {r['floor'][1]:.0f} ms | |",
            f"| {f} | intake / floor, same run | **{intake_ratio:.2f}** | ≥ 0.6 ({'met' if intake_ratio >= 0.6 else 'missed'}) |",
            f"| {f} | peak RSS during the throughput run: instance / with browser tree | "
            f"{r['peak_own']:.0f} MiB / {r['peak_tree']:.0f} MiB | |",
            f"| {f} | RSS with the browser open: instance / with browser tree | "
            f"{r['open'][0]:.0f} MiB / {r['open'][1]:.0f} MiB | |",
            f"| {f} | RSS after the idle close: instance / with tree | "
            f"{r['closed'][0]:.0f} MiB / {r['closed'][1]:.0f} MiB | |",
        ]
    out.append("\nThe tree figure adds the RSS of chromedriver and every Chromium process; shared "
               "pages are counted once per process, so it over-states the real cost. The HTTP "
               "client is Python (requests, 16 threads) on the same 2 cores as the server, for "
               "both the intake and the floor, so the ratio is the fair figure.")
    return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flavors", default="classic,spa")
    parser.add_argument("--orders", type=int, default=100)
    parser.add_argument("--naive-orders", type=int, default=20)
    parser.add_argument("--latency-runs", type=int, default=10)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    workdir = Path(tempfile.mkdtemp(prefix="bench-instance-"))
    results = []
    for flavor in args.flavors.split(","):
        if FLAVOR_SYSTEM[flavor] not in AVAILABLE:
            print(f"skipping {flavor}: integration {FLAVOR_SYSTEM[flavor]} not available",
                  file=sys.stderr)
            continue
        results.append(bench_flavor(flavor, args.orders, args.naive_orders,
                                    args.latency_runs, workdir))
    command = "make bench  (= .venv/bin/python bench/run.py; this part: bench/bench_instance.py " \
              + " ".join(sys.argv[1:]) + ")"
    print(report(results, command))


if __name__ == "__main__":
    main()
