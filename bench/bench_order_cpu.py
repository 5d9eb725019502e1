"""What one order costs the machine's CPU, by how its browser session is had (issue 12).

The fleet's throughput on a small server is bounded by CPU, not by memory or slots: every
order of a workshop that was idle pays for a browser session. This measures, against one
erp_sim at its default save delay, the CPU-seconds (``/proc/stat``: user, nice, system,
irq, softirq -- not steal) the whole machine spends per order, and the wall time:

* **kept**: one more order on a session that is open and logged in (a busy workshop);
* **new session**: the order on a session started for it (start, ERP login, the line,
  quit) -- what an idle workshop's order costs with the pool;
* **parked session claimed**: the order on a session another workshop parked
  (:mod:`integrations.browser.parking`): claim it, log in, the line, then wipe and park it
  again -- what an idle workshop's order costs in a fleet with parking (the default);
* **fresh user context in a kept browser**: a Chromium kept open, the order in a fresh
  WebDriver BiDi user context (its own cookies and storage, removed after), attached
  from another client as a fleet-wide warm pool would (login and the line, no browser
  start) -- the design measured before building it.

Each through the fleet's Grid (standalone, as ``manage.py up`` runs it) and, for the
first two, with a local chromedriver. Medians over ``--orders`` orders after one warm-up.

    flock /tmp/browser.lock .venv/bin/python bench/bench_order_cpu.py --orders 8
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_pool_session import ADMIN  # noqa: E402
from bench.common import busy_cpu_seconds, machine  # noqa: E402
from integrations.browser import life as browser_life  # noqa: E402
from integrations.browser.parking import Parking  # noqa: E402
from integrations.browser.pool import end_session  # noqa: E402
from tests.erp_helpers import ErpSimServer, make_integration, order  # noqa: E402
from tests.fleet_helpers import StandaloneGrid  # noqa: E402


def measured(rounds, one):
    """Run ``one()`` ``rounds + 1`` times (the first warms up); :returns: the medians of
    (wall, CPU) seconds. A short pause after each lets exiting processes be counted."""
    walls, cpus = [], []
    for n in range(rounds + 1):
        cpu, wall = busy_cpu_seconds(), time.monotonic()
        one()
        walls.append(time.monotonic() - wall)
        time.sleep(0.5)
        cpus.append(busy_cpu_seconds() - cpu)
        if n == 0:
            walls.clear(), cpus.clear()
    return statistics.median(walls), statistics.median(cpus)


def write_order(integration, erp):
    """One order written through ``integration``, checked through erp_sim's read path."""
    line = order()
    result = integration.add_lines(line.worksheet, [line], ADMIN)[line.uniqueid]
    if isinstance(result, Exception) or len(erp.lines_with(line.worksheet, line.uniqueid)) != 1:
        raise SystemExit(f"order {line.uniqueid}: {result}")


def kept(erp, work, remote):
    integration = make_integration("erp_sim", erp.url, work, selenium_remote_url=remote)
    try:
        return measured(ROUNDS, lambda: write_order(integration, erp))
    finally:
        integration.close()


def new_session(erp, work, remote):
    def one():
        integration = make_integration("erp_sim", erp.url, work, selenium_remote_url=remote)
        try:
            write_order(integration, erp)
        finally:
            integration.close()
    return measured(ROUNDS, one)


def parked(erp, work, grid_url):
    """Each order by a new integration (a workshop) on the session the one before parked."""
    park_dir = work / "parked"

    def one():
        integration = make_integration("erp_sim", erp.url, work, selenium_remote_url=grid_url,
                                       browser_park_dir=str(park_dir))
        try:
            write_order(integration, erp)
            if integration._browser.claimed is None and one.claims:
                raise SystemExit("the parked session was not claimed")
            one.claims += 1
        finally:
            integration.browsers.release(park=True)
    one.claims = 0
    try:
        return measured(ROUNDS, one)
    finally:
        while (record := Parking(park_dir).claim()) is not None:
            end_session(grid_url, record["session_id"])


def user_context(erp, grid_url):
    """The order in a fresh BiDi user context of a Chromium kept open on the Grid, from a
    client attached to that session (as another instance would be)."""
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver
    from selenium.webdriver.support.ui import WebDriverWait

    def options():
        chosen = webdriver.ChromeOptions()
        for flag in browser_life.CHROMIUM_FLAGS:
            chosen.add_argument(flag)
        chosen.enable_bidi = True
        return chosen

    class Attached(WebDriver):
        def __init__(self, session_id, caps):
            self._attach = session_id, caps
            super().__init__(command_executor=grid_url, options=options())

        def start_session(self, capabilities):
            self.session_id, self.caps = self._attach

    keeper = webdriver.Remote(command_executor=grid_url, options=options())
    home = keeper.current_window_handle

    def one():
        driver = Attached(keeper.session_id, dict(keeper.caps))
        context = driver.browser.create_user_context()
        driver.switch_to.window(driver.browsing_context.create(type="tab", user_context=context))
        driver.get(erp.url + "/login")
        driver.find_element(By.ID, "username").send_keys("admin")
        driver.find_element(By.ID, "password").send_keys("admin")
        driver.find_element(By.ID, "login-submit").click()
        WebDriverWait(driver, 10, 0.02).until(lambda d: "/login" not in d.current_url)
        driver.get(f"{erp.url}/worksheets/5")
        line = order()
        driver.find_element(By.ID, "product_nr").send_keys(str(line.product_nr))
        driver.find_element(By.ID, "amount").send_keys("1")
        driver.find_element(By.ID, "text").send_keys(line.text)
        driver.find_element(By.ID, "add-line-submit").click()
        WebDriverWait(driver, 10, 0.02).until(lambda d: line.text in d.page_source)
        driver.close()
        driver.switch_to.window(home)
        driver.browser.remove_user_context(context)
        driver._websocket_connection.close()
    try:
        return measured(ROUNDS, one)
    finally:
        keeper.quit()


ROUNDS = 8


def main(argv=None):
    global ROUNDS
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=ROUNDS, help="orders measured per row")
    ROUNDS = parser.parse_args(argv).orders
    work = Path(tempfile.mkdtemp(prefix="order-cpu-"))
    rows = []
    with ErpSimServer() as erp, StandaloneGrid(work, slots=2) as grid:
        for label, run in (
                ("kept session, local Chromium", lambda: kept(erp, work, "")),
                ("kept session, the Grid", lambda: kept(erp, work, grid.url)),
                ("new session per order, local Chromium", lambda: new_session(erp, work, "")),
                ("new session per order, the Grid", lambda: new_session(erp, work, grid.url)),
                ("parked session claimed, the Grid", lambda: parked(erp, work, grid.url)),
                ("fresh user context in a kept Grid browser", lambda: user_context(erp, grid.url))):
            wall, cpu = run()
            rows.append((label, wall, cpu))
            print(f"{label}: {wall:.2f} s, {cpu:.2f} CPU-s", file=sys.stderr, flush=True)
    print(f"Command: `flock /tmp/browser.lock .venv/bin/python bench/bench_order_cpu.py "
          f"--orders {ROUNDS}`  \nMachine: {machine()}\n")
    print("| how the order's session is had | wall per order (median) | CPU-s per order "
          "(median, whole machine) |\n| --- | --- | --- |")
    for label, wall, cpu in rows:
        print(f"| {label} | {wall:.2f} s | {cpu:.2f} |")


if __name__ == "__main__":
    main()
