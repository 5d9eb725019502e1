"""Tryton through sao: lines/min of the integration vs a naive baseline, in one run.

    .venv/bin/python bench/bench_tryton.py [--orders 40] [--sales 4] [--series 7.0|8.0]
                                           [--language CODE]

Both conditions write ``--orders`` orders spread over ``--sales`` draft sales of a fresh
stand-up (``python -m erp_tryton --series S --language L``: Tryton 8.0 or 7.0 LTS, its admin
working in language L, amounts in its locale) and check every line through Tryton's API:

* **integration** -- ``ERP_SYSTEM=tryton`` as the worker uses it: one browser kept
  logged in, one visit per sale for all its orders (``add_lines``);
* **naive** -- a fresh browser and a login per order (``add_line`` on a new
  integration, closed afterwards), as a script without batching or reuse would.

Prints (as Markdown, for docs/benchmarks.md) seconds per line, the login time, lines/min
of each and the ratio, and memory as PSS (shared pages split, so figures add up): the
trytond process tree idle and at its peak during the run, and the browser tree
(chromedriver, Chromium and its renderers) at its peak while the integration writes.
"""

import argparse
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from decimal import Decimal

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from common import PeakSampler, descendants, machine, tree_pss_mib  # noqa: E402
from erp_tryton import rpc  # noqa: E402
from erp_tryton.install import DEFAULT_SERIES, SERIES  # noqa: E402
from integrations import get_integration_class  # noqa: E402
from integrations.base import Credentials, IntegrationConfig, OrderLine  # noqa: E402

ADMIN = Credentials("admin", "admin")


def pins(series):
    """``(trytond==X, tryton-sao@Y)`` of ``series``, as the stand-up installs them."""
    requirements, sao, _ = SERIES[series]
    trytond = next(line.strip() for line in open(requirements) if line.startswith("trytond=="))
    return trytond, sao


def start_tryton(data_dir, series, language):
    """``python -m erp_tryton`` on a free port; :returns: ``(process, url)``"""
    log = open(os.path.join(data_dir, "server.log"), "wb")
    process = subprocess.Popen([sys.executable, "-m", "erp_tryton", "--port", "0", "--data",
                                os.path.join(data_dir, "db"), "--series", series,
                                "--language", language], cwd=ROOT, stdout=log,
                               stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 900  # the first run on a machine installs Tryton
    while time.monotonic() < deadline:
        found = re.search(r"listening on (http://\S+?)/? ",
                          open(log.name, errors="replace").read())
        if found and answers(found.group(1)):
            # trytond opens its port only once the database is loaded: then it is ready
            return process, found.group(1).rstrip("/")
        if process.poll() is not None:
            raise SystemExit(f"erp_tryton exited: {open(log.name).read()}")
        time.sleep(0.1)
    raise SystemExit("erp_tryton did not start")


def answers(url):
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False


def integration(url, artifacts, log):
    config = IntegrationConfig(erp_url=url, artifact_dir=artifacts,
                               options={"database": "workshop"})
    return get_integration_class("tryton")(config, log)


def orders(count, sales, first_reference):
    references = [str(first_reference + i) for i in range(sales)]
    return [OrderLine(uuid.uuid4().hex[:12], references[i % sales], str(10 + i % 50),
                      Decimal(f"{1 + i % 7}.{i % 1000:03d}")) for i in range(count)]


def check(url, lines):
    for reference in {line.worksheet for line in lines}:
        found = {(x["product_code"], x["quantity"], x["description"])
                 for x in rpc.worksheet_lines(url, reference)}
        want = {(line.product_nr, line.product_amount, line.text)
                for line in lines if line.worksheet == reference}
        assert found == want, (reference, found ^ want)


def browser_pss(it):
    """PSS of the integration's browser tree (chromedriver and all below it), MiB."""
    browser = it._browser
    return tree_pss_mib(browser.driver.service.process.pid) if browser else 0.0


def run_integration(url, lines, artifacts, log):
    """:returns: ``(seconds, peak PSS of the browser tree in MiB)``"""
    it = integration(url, artifacts, log)
    try:
        by_sale = {}
        for line in lines:
            by_sale.setdefault(line.worksheet, []).append(line)
        started = time.monotonic()
        with PeakSampler(lambda: browser_pss(it)) as browser:
            for worksheet, batch in by_sale.items():
                results = it.add_lines(worksheet, batch, ADMIN)
                bad = {k: v for k, v in results.items() if isinstance(v, Exception)}
                assert not bad, bad
        return time.monotonic() - started, browser.peak
    finally:
        it.close()


def run_naive(url, lines, artifacts, log):
    started = time.monotonic()
    for line in lines:
        it = integration(url, artifacts, log)
        try:
            it.add_line(line, ADMIN)
        finally:
            it.close()
    return time.monotonic() - started


class Timings(logging.Handler):
    """Picks the login time out of the integration's own log."""

    def __init__(self):
        super().__init__()
        self.logins = []

    def emit(self, record):
        found = re.match(r"logged in in ([\d.]+)s", record.getMessage())
        if found:
            self.logins.append(float(found.group(1)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=40)
    parser.add_argument("--sales", type=int, default=4)
    parser.add_argument("--series", choices=sorted(SERIES), default=DEFAULT_SERIES)
    parser.add_argument("--language", default="en", help="the admin's language (en, de, ...)")
    args = parser.parse_args()
    data_dir = tempfile.mkdtemp(prefix="bench-tryton-")
    process, url = start_tryton(data_dir, args.series, args.language)
    log = logging.getLogger("bench.tryton")
    log.setLevel(logging.INFO)
    timings = Timings()
    log.addHandler(timings)
    try:
        time.sleep(5)  # idle: after start-up, before any client
        trytond_idle = tree_pss_mib(process.pid)
        with PeakSampler(lambda: tree_pss_mib(process.pid)) as trytond:
            fast = orders(args.orders, args.sales, 100)
            fast_s, browser_peak = run_integration(url, fast, data_dir, log)
            check(url, fast)
            naive = orders(args.orders, args.sales, 200)
            naive_s = run_naive(url, naive, data_dir, log)
            check(url, naive)
        trytond_processes = 1 + len(descendants(process.pid))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(10)
    n, ratio = args.orders, naive_s / fast_s
    login = sorted(timings.logins)[len(timings.logins) // 2]
    trytond_pin, sao_pin = pins(args.series)
    print(f"""## Tryton {args.series} through sao, admin in `{args.language}` (issues 9 and 25)

Command: `.venv/bin/python bench/bench_tryton.py --orders {n} --sales {args.sales} --series
{args.series} --language {args.language}` (a fresh `python -m erp_tryton` stand-up: {trytond_pin},
{sao_pin}; amounts such as 4.007 typed and read in the admin's locale; every line checked
through Tryton's JSON-RPC)
Machine: {machine()}

| condition (same run) | {n} orders over {args.sales} sales | lines/min | seconds per line |
| --- | --- | --- | --- |
| `ERP_SYSTEM=tryton` (one browser kept logged in, one visit and one save per sale) | {fast_s:.1f} s | {n / fast_s * 60:.1f} | {fast_s / n:.2f} |
| naive baseline (a fresh browser and a login per order) | {naive_s:.1f} s | {n / naive_s * 60:.1f} | {naive_s / n:.2f} |
| **ratio** | | **{ratio:.2f}x** (target 3x: {"met" if ratio >= 3 else "NOT met"}) | |

Login: median {login:.2f} s over {len(timings.logins)} logins.

| memory (PSS, MiB: shared pages split) | |
| --- | --- |
| trytond tree ({trytond_processes} processes), idle after start | {trytond_idle:.0f} |
| trytond tree, peak during both runs | {trytond.peak:.0f} |
| browser tree (chromedriver + Chromium + renderers), peak while the integration wrote | {browser_peak:.0f} |
""")


if __name__ == "__main__":
    main()
