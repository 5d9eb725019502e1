"""What a new browser session costs, local Chromium vs the fleet's Selenium Grid.

    flock /tmp/browser.lock .venv/bin/python bench/bench_pool_session.py [--rounds 10]

With the browser pool an instance gives its session back as soon as its queue is empty
(``BROWSER_POOL_GRACE_SECONDS``), so a workshop whose orders trickle in pays for a new
session -- start and ERP login -- on most orders. This measures that price, per round,
for both ways of getting a browser, alternating (A B B A ...) so machine noise hits both:

* ``start``: ``Browser()`` -- local: chromedriver and Chromium started by this process;
  pool: a new-session request to a Grid in standalone mode, configured as the fleet
  configures it (:mod:`fleet.grid`, two slots, nothing else on it);
* ``login``: the first visit of the new session minus a second visit on the same,
  logged-in session (both write one line to a fresh worksheet and read it back);
* ``quit``: ``Browser.quit()`` (for the pool, the slot is free again after it);
* ``new session`` = start + login: what giving the session back costs the next order.

erp_sim at its default save delay; every line checked through ``/_sim/worksheets/<n>``.
Prints Markdown.
"""

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine, pss_mib  # noqa: E402
from integrations.base import Credentials  # noqa: E402
from tests.erp_helpers import ErpSimServer, make_integration, order  # noqa: E402
from tests.fleet_helpers import StandaloneGrid  # noqa: E402

ADMIN = Credentials("admin", "admin")
LOG = logging.getLogger("bench.pool_session")


def one_round(erp, workdir, remote_url):
    """:returns: ``{"start", "login", "quit"}`` seconds of one new session"""
    integration = make_integration("erp_sim", erp.url, workdir / "artifacts",
                                   selenium_remote_url=remote_url)
    first, second = order(), order()
    started = time.perf_counter()
    integration._browser_for(ADMIN)
    start = time.perf_counter() - started
    visits = []
    for line in (first, second):
        began = time.perf_counter()
        result = integration.add_lines(line.worksheet, [line], ADMIN)[line.uniqueid]
        visits.append(time.perf_counter() - began)
        if isinstance(result, Exception):
            raise SystemExit(f"order {line.uniqueid}: {result}")
    began = time.perf_counter()
    integration.close()
    quit_ = time.perf_counter() - began
    for line in (first, second):
        lines = erp.lines_with(line.worksheet, line.uniqueid)
        if len(lines) != 1:
            raise SystemExit(f"worksheet {line.worksheet}: {len(lines)} lines for {line.uniqueid}")
    return {"start": start, "login": visits[0] - visits[1], "quit": quit_}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    workdir = Path(tempfile.mkdtemp(prefix="bench-pool-"))
    seconds = {"local": [], "pool": []}
    with ErpSimServer() as erp, StandaloneGrid(workdir) as pool:
        for index in range(args.rounds):
            modes = ("local", "pool") if index % 2 == 0 else ("pool", "local")
            for mode in modes:
                seconds[mode].append(one_round(erp, workdir, pool.url if mode == "pool" else ""))
        grid_pss = pss_mib(pool.process.pid)
    print(f"Machine: {machine()}. erp_sim at its default save delay; "
          f"{args.rounds} rounds each, alternating; medians (min-max), seconds.\n")
    print("| browser | start | login | new session (start + login) | quit |")
    print("| --- | --- | --- | --- | --- |")
    for mode, label in (("local", "local Chromium (BROWSER_POOL=local)"),
                        ("pool", "the fleet's Grid (standalone, 2 slots)")):
        rounds = seconds[mode]
        cells = []
        for key in ("start", "login", "new", "quit"):
            values = [r["start"] + r["login"] if key == "new" else r[key] for r in rounds]
            cells.append(f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})")
        print(f"| {label} | " + " | ".join(cells) + " |")
    print(f"\nThe Grid's Java process at rest after the rounds: {grid_pss:.0f} MiB PSS.")


if __name__ == "__main__":
    main()
