"""The cost of verified writes: lines/min with and without the read-back, in one run.

    .venv/bin/python bench/bench_readback.py [--systems classic,spa,tryton] [--orders 60]
        [--tryton-orders 20] [--worksheets 3] [--burst 30]

Issue 10 made every visit read its worksheet back (:func:`integrations.verify.verify_visit`,
through the flow's ``_verify``) before an order counts as ``created``. This measures what
that costs on the calm path -- a fresh ERP, no chaos, nothing to repair -- for each ERP
(erp_sim classic and spa at the stand-in's default save delay; Tryton through sao):

* **with** the read-back: the integration as the product runs it;
* **without**: the same integration object with its ``_verify`` shadowed by a no-op on
  the instance (bench only: there is no product setting that turns verification off).

One integration, one kept browser, logged in before the clock starts; the two conditions
alternate visit by visit (A B B A ...), writing the same shapes of visit onto the same
worksheets, so machine noise, the browser's warmth and the worksheets' growing length hit
both alike. Two shapes of visit, as the worker makes them:

* **one line per visit** -- orders trickling in, each taken alone (the calm path);
* **batched** -- bursts of ``--burst`` orders arriving together, grouped per worksheet
  by the worker's own rule (:meth:`workers.worker.Worker._groups`, at most
  ``VISIT_LINES`` per visit).

Every line of both conditions is checked through the ERP's own read path
(``/_sim/worksheets/<n>`` for erp_sim, Tryton's JSON-RPC): each worksheet holds exactly
one line per order with the order's product and amount, and nothing else. The time spent
inside ``_verify`` is also timed directly in the *with* condition (the step's own cost,
free of the noise the difference of two totals carries).

Prints Markdown; ``bench/run.py`` writes it into docs/benchmarks.md.
"""

import argparse
import logging
import statistics
import sys
import tempfile
import time
import types
from collections import Counter
from decimal import Decimal
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

from bench_tryton import ADMIN, integration as tryton_integration, orders, start_tryton  # noqa: E402
from common import machine  # noqa: E402
from erp_helpers import ErpSimServer  # noqa: E402
from erp_tryton import rpc  # noqa: E402
from integrations import get_integration_class  # noqa: E402
from integrations.base import IntegrationConfig  # noqa: E402
from workers.worker import Worker  # noqa: E402

FLAVOR_SYSTEM = {"classic": "erp_sim", "spa": "erp_sim_spa"}
#: the first worksheet (sale reference) written to; the warm-up visit uses the one before
FIRST_SHEET = 301
#: the read-back's cost the issue accepts, in per cent of the time without it
TARGET_PERCENT = 10


# -- the ERPs under test --------------------------------------------------------------------


class SimTarget:
    """``python -m erp_sim`` (default save delay), read through ``/_sim/worksheets/<n>``."""

    def __init__(self, flavor, workdir):
        self.flavor, self.workdir = flavor, workdir
        self.server = ErpSimServer(flavor=flavor)
        self.label = f"erp_sim {flavor}"

    def __enter__(self):
        self.server.start()
        return self

    def __exit__(self, *exc):
        self.server.stop()

    def integration(self, log):
        config = IntegrationConfig(erp_url=self.server.url,
                                   artifact_dir=str(self.workdir / "artifacts"))
        return get_integration_class(FLAVOR_SYSTEM[self.flavor])(config, log)

    def shown(self, sheet):
        """:returns: a Counter of ``(product, amount, text)`` of the worksheet's lines"""
        answer = requests.get(f"{self.server.url}/_sim/worksheets/{sheet}", timeout=10)
        answer.raise_for_status()
        return Counter((str(one["product_nr"]), Decimal(str(one["amount"])), one["reference"])
                       for one in answer.json()["lines"])


class TrytonTarget:
    """A fresh ``python -m erp_tryton`` stand-up, read through Tryton's JSON-RPC."""

    label = "Tryton (sao)"

    def __init__(self, workdir):
        self.data_dir = str(workdir / "tryton")
        Path(self.data_dir).mkdir()
        self.process = self.url = None

    def __enter__(self):
        self.process, self.url = start_tryton(self.data_dir)
        return self

    def __exit__(self, *exc):
        self.process.terminate()
        self.process.wait(10)

    def integration(self, log):
        return tryton_integration(self.url, self.data_dir, log)

    def shown(self, sheet):
        return Counter((one["product_code"], one["quantity"], one["description"])
                       for one in rpc.worksheet_lines(self.url, str(sheet)))


# -- the read-back switched on and off ------------------------------------------------------


class ReadBack:
    """Turns an integration's read-back on and off between visits, timing it when on.

    The flow calls ``self._verify(...)``; an attribute of the same name on the instance
    shadows the method, so *off* is a no-op there and *on* the flow's own method inside a
    timer. Nothing else of the integration changes.
    """

    def __init__(self, integration):
        self.integration = integration
        self.verify = integration._verify  # the flow's method, bound
        self.seconds = []  # one entry per visit made with the read-back on

    def _timed(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return self.verify(*args, **kwargs)
        finally:
            self.seconds.append(time.perf_counter() - started)

    def switch(self, on):
        self.integration._verify = self._timed if on else (lambda *args, **kwargs: None)

    def restore(self):
        """The flow's own method again (the shadowing attribute removed)."""
        vars(self.integration).pop("_verify", None)


# -- visits ---------------------------------------------------------------------------------


def visit_plan(lines, shape, burst):
    """The visits the worker would make for ``lines``: ``[[OrderLine, ...], ...]``.

    :param shape: ``"one"`` (each order taken alone) or ``"batched"`` (``burst`` orders
        taken together, grouped by :meth:`Worker._groups`)
    """
    if shape == "one":
        return [[line] for line in lines]
    visits = []
    for start in range(0, len(lines), burst):
        taken = [types.SimpleNamespace(group_key=(line.worksheet, ADMIN), line=line)
                 for line in lines[start:start + burst]]
        visits += [[one.line for one in group] for group in Worker._groups(taken)]
    return visits


def write(integration, visit):
    """One visit, as the worker makes it. :returns: its seconds"""
    started = time.perf_counter()
    results = integration.add_lines(visit[0].worksheet, visit, ADMIN)
    elapsed = time.perf_counter() - started
    failed = {uid: result for uid, result in results.items() if isinstance(result, Exception)}
    if failed or len(results) != len(visit):
        raise SystemExit(f"worksheet {visit[0].worksheet}: not all written: {failed}")
    return elapsed


def measure(integration, count, sheets, shape, burst, first_reference):
    """Write ``count`` orders with the read-back and ``count`` without, alternating.

    :returns: ``({"on": [seconds per visit], "off": [...]}, [seconds inside _verify],
        every line written)``
    """
    switch = ReadBack(integration)
    plans = {condition: visit_plan(orders(count, sheets, first_reference), shape, burst)
             for condition in ("on", "off")}
    seconds = {"on": [], "off": []}
    try:
        for index, pair in enumerate(zip(plans["on"], plans["off"])):
            # A B B A: neither condition always goes first after the other
            order = ("on", "off") if index % 2 == 0 else ("off", "on")
            for condition in order:
                switch.switch(condition == "on")
                visit = pair[0] if condition == "on" else pair[1]
                seconds[condition].append(write(integration, visit))
    finally:
        switch.restore()
    written = [line for plan in plans.values() for visit in plan for line in visit]
    return seconds, switch.seconds, [len(visit) for visit in plans["on"]], written


def check(target, lines):
    """Every worksheet holds exactly one right line per order, and nothing else."""
    for sheet in sorted({line.worksheet for line in lines}):
        want = Counter((line.product_nr, line.product_amount, line.text)
                       for line in lines if line.worksheet == sheet)
        found = target.shown(sheet)
        if found != want:
            raise SystemExit(f"{target.label}, worksheet {sheet}: missing {want - found}, "
                             f"unexpected {found - want}")


def bench_target(target, count, sheets, burst, log):
    """Both shapes on one ERP, one browser. :returns: ``[row dict, ...]``"""
    rows, written = [], []
    with target:
        integration = target.integration(log)
        try:
            # Start the browser and log in before the clock: both conditions run warm.
            warm = orders(1, 1, FIRST_SHEET - 1)
            write(integration, warm)
            written += warm
            for shape, first in (("one", FIRST_SHEET), ("batched", FIRST_SHEET + sheets)):
                seconds, verify_seconds, sizes, lines = measure(
                    integration, count, sheets, shape, burst, first)
                written += lines
                rows.append({"erp": target.label, "shape": shape, "orders": count,
                             "visits": len(sizes), "sizes": sizes, "seconds": seconds,
                             "verify": verify_seconds})
        finally:
            integration.close()
        check(target, written)
    for row in rows:
        row["checked"] = len(written)
    return rows


# -- the report -----------------------------------------------------------------------------


def shape_label(row):
    if row["shape"] == "one":
        return "one line per visit"
    sizes = row["sizes"]
    return f"batched ({min(sizes)}-{max(sizes)} lines per visit)" if min(sizes) != max(sizes) \
        else f"batched ({sizes[0]} lines per visit)"


def report(rows, command):
    out = ["## The read-back's cost on the calm path (issue 10)\n",
           f"Command: `{command}`  ",
           f"Machine: {machine()}\n",
           "Every visit reads its worksheet back and checks each order's line before the order "
           "counts as `created`. *With*: the integration as the product runs it. *Without*: "
           "the same integration object with its `_verify` shadowed by a no-op (bench only; no "
           "product setting turns it off). One kept browser, logged in before the clock; the "
           "conditions alternate visit by visit (A B B A ...) onto the same worksheets. "
           "erp_sim at its default save delay (0.3 s per saved line), no chaos. Every line of "
           "both conditions checked through the ERP's own read path (`/_sim/worksheets/<n>`, "
           "Tryton's JSON-RPC): exactly one right line per order, nothing else.\n",
           "| ERP | visits | condition | orders | seconds | lines/min | s/line | "
           "inside `_verify`, per visit (median) | cost | target ≤ "
           f"{TARGET_PERCENT} % |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        on, off = sum(row["seconds"]["on"]), sum(row["seconds"]["off"])
        n = row["orders"]
        cost = (on / off - 1) * 100
        inside = statistics.median(row["verify"])
        shape = f"{shape_label(row)}, {row['visits']} visits each"
        out += [
            f"| {row['erp']} | {shape} | with read-back | {n} | {on:.1f} | {n / on * 60:.0f} | "
            f"{on / n:.3f} | {inside * 1000:.0f} ms ({sum(row['verify']) / on * 100:.1f} % of "
            f"the time) | | |",
            f"| {row['erp']} | {shape} | without | {n} | {off:.1f} | {n / off * 60:.0f} | "
            f"{off / n:.3f} | | | |",
            f"| {row['erp']} | {shape} | **ratio** | | | **{off / on:.3f}** | | | "
            f"**{cost:+.1f} %** | {'met' if cost <= TARGET_PERCENT else 'NOT met'} |",
        ]
    checked = ", ".join(f"{erp} {count}" for erp, count in
                        {row["erp"]: row["checked"] for row in rows}.items())
    out.append(f"\n*cost*: how much longer the visits took with the read-back than without, "
               f"from the two totals (negative: within the noise). The `_verify` column is the "
               f"step timed directly in the *with* condition. Lines checked (both shapes and "
               f"conditions, and the warm-up visit): {checked}.")
    return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", default="classic,spa,tryton",
                        help="comma-separated: classic, spa (erp_sim), tryton")
    parser.add_argument("--orders", type=int, default=60,
                        help="orders per condition and shape on erp_sim")
    parser.add_argument("--tryton-orders", type=int, default=20,
                        help="orders per condition and shape on Tryton (slow)")
    parser.add_argument("--worksheets", type=int, default=3)
    parser.add_argument("--burst", type=int, default=30,
                        help="orders arriving together in the batched shape")
    args = parser.parse_args()
    if min(args.orders, args.tryton_orders, args.worksheets, args.burst) < 1:
        parser.error("--orders, --tryton-orders, --worksheets and --burst must be >= 1")
    logging.basicConfig(level=logging.WARNING)
    log = logging.getLogger("bench.readback")
    workdir = Path(tempfile.mkdtemp(prefix="bench-readback-"))
    rows = []
    for system in args.systems.split(","):
        if system == "tryton":
            target, count = TrytonTarget(workdir), args.tryton_orders
        elif system in FLAVOR_SYSTEM:
            target, count = SimTarget(system, workdir), args.orders
        else:
            parser.error(f"--systems: unknown {system!r}")
        rows += bench_target(target, count, args.worksheets, args.burst, log)
    command = ".venv/bin/python bench/bench_readback.py " + " ".join(sys.argv[1:])
    print(report(rows, command.strip()))


if __name__ == "__main__":
    main()
