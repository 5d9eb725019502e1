"""Tryton through sao: lines/min of the integration vs a naive baseline, in one run.

    .venv/bin/python bench/bench_tryton.py [--orders 40] [--sales 4]

Both conditions write ``--orders`` orders spread over ``--sales`` draft sales of a fresh
stand-up (``python -m erp_tryton``) and check every line through Tryton's API:

* **integration** -- ``ERP_SYSTEM=tryton`` as the worker uses it: one browser kept
  logged in, one visit per sale for all its orders (``add_lines``);
* **naive** -- a fresh browser and a login per order (``add_line`` on a new
  integration, closed afterwards), as a script without batching or reuse would.

Prints seconds per line, the login time, lines/min of each and the ratio.
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
import uuid
from decimal import Decimal

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from erp_tryton import rpc  # noqa: E402
from integrations import get_integration_class  # noqa: E402
from integrations.base import Credentials, IntegrationConfig, OrderLine  # noqa: E402

ADMIN = Credentials("admin", "admin")


def start_tryton(data_dir):
    """``python -m erp_tryton`` on a free port; :returns: ``(process, url)``"""
    log = open(os.path.join(data_dir, "server.log"), "wb")
    process = subprocess.Popen([sys.executable, "-m", "erp_tryton", "--port", "0", "--data",
                                os.path.join(data_dir, "db")], cwd=ROOT, stdout=log,
                               stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 900  # the first run on a machine installs Tryton
    while time.monotonic() < deadline:
        found = re.search(r"listening on (http://\S+?)/? ",
                          open(log.name, errors="replace").read())
        if found:
            return process, found.group(1).rstrip("/")
        if process.poll() is not None:
            raise SystemExit(f"erp_tryton exited: {open(log.name).read()}")
        time.sleep(0.1)
    raise SystemExit("erp_tryton did not start")


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


def run_integration(url, lines, artifacts, log):
    it = integration(url, artifacts, log)
    try:
        by_sale = {}
        for line in lines:
            by_sale.setdefault(line.worksheet, []).append(line)
        started = time.monotonic()
        for worksheet, batch in by_sale.items():
            results = it.add_lines(worksheet, batch, ADMIN)
            bad = {k: v for k, v in results.items() if isinstance(v, Exception)}
            assert not bad, bad
        return time.monotonic() - started
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
    args = parser.parse_args()
    data_dir = tempfile.mkdtemp(prefix="bench-tryton-")
    process, url = start_tryton(data_dir)
    log = logging.getLogger("bench.tryton")
    log.setLevel(logging.INFO)
    timings = Timings()
    log.addHandler(timings)
    try:
        fast = orders(args.orders, args.sales, 100)
        fast_s = run_integration(url, fast, data_dir, log)
        check(url, fast)
        naive = orders(args.orders, args.sales, 200)
        naive_s = run_naive(url, naive, data_dir, log)
        check(url, naive)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(10)
    n = args.orders
    print(f"tryton, {n} orders over {args.sales} sales, every line checked through the API")
    print(f"  integration: {fast_s:6.1f} s  {n / fast_s * 60:5.1f} lines/min  "
          f"{fast_s / n:.2f} s/line (one browser, one visit per sale)")
    print(f"  naive:       {naive_s:6.1f} s  {n / naive_s * 60:5.1f} lines/min  "
          f"{naive_s / n:.2f} s/line (fresh browser + login per order)")
    print(f"  ratio: {naive_s / fast_s:.2f}x   login: median "
          f"{sorted(timings.logins)[len(timings.logins) // 2]:.2f} s over {len(timings.logins)}")


if __name__ == "__main__":
    main()
