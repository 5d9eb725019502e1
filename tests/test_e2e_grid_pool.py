"""End to end: the browser pool. A real Selenium Grid (the pinned jar, Java, Debian's
Chromium and chromedriver) under the fleet's real supervisord, real instances (api.py),
a real erp_sim; every line checked through erp_sim's ``/_sim/worksheets/<n>``.

* A fleet of three workshops shares one slot (``BROWSER_SLOTS=1``): all orders
  ``created``, exactly one line each, the one slot handed from workshop to workshop --
  and, once a session is parked, the session itself (no new one started).
* A request in the Grid's own queue gets the slot of a parked session (the fleet's
  janitor quits it), or ``ERP_UNAVAILABLE`` when the slot stays taken.
* The Grid killed with ``kill -9`` is restarted by supervisord, what it left behind is
  ended, and the instances carry on.
* A hub and two nodes on loopback ports (the distributed mode) serve one instance.

The fleet of the first two tests serves the module, in the order the tests are written.
"""

import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest
import requests
from selenium import webdriver

from core.errors import BrowserError, ErpUnavailable
from fleet import grid
from fleet.supervisor_client import Supervisor
from integrations.base import IntegrationConfig
from integrations.browser.parking import Parking
from integrations.browser.pool import pool_status
from integrations.browser.life import CHROMIUM_FLAGS, POOL_ANSWER_MARGIN, Browser
from tests.erp_helpers import ErpSimServer
from tests.fleet_helpers import Fleet, fleet_env, free_port, wait_for
from tests.instance_helpers import RunningInstance

pytestmark = pytest.mark.e2e

WORKSHOPS = ("Bennys Auto", "Bilverksted Ålesund", "Garage Tre")
#: quick retries; the session given back half a second after the queue is empty
INSTANCE_ENV = dict(RETRY_BASE_SECONDS="0.2", RETRY_MAX_SECONDS="1", PAGE_LOAD_TIMEOUT="10",
                    WAIT_TIMEOUT="5", BROWSER_POOL_GRACE_SECONDS="0.5", STOP_WAIT_SECONDS="60")
_CREATED = re.compile(r"Session created by the Node\. Id: (\w+)")
_RELEASED = re.compile(r"Releasing slot for session id (\w+)")


def status(url):
    return requests.get(url + "/status", timeout=5).json()["value"]


def in_use(url):
    """Sessions open on the Grid now (integrations.browser.pool.pool_status, as /metrics reads it)."""
    return pool_status(url, timeout=5)["in_use"]


def wait_ready(url, nodes=1, timeout=60):
    def ready():
        try:
            value = status(url)
        except (requests.RequestException, ValueError):
            return False
        return value["ready"] and len(value["nodes"]) == nodes
    wait_for(ready, timeout, 0.2, f"the Grid at {url} with {nodes} node(s)")


def session_events(log_text):
    """The Grid's log as ``[("open" | "close", session id), ...]`` in order."""
    events = []
    for line in log_text.splitlines():
        if found := _CREATED.search(line):
            events.append(("open", found.group(1)))
        elif found := _RELEASED.search(line):
            events.append(("close", found.group(1)))
    return events


def remote_options():
    options = webdriver.ChromeOptions()
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    return options


def created_once(erp, orders, status_of, timeout=90):
    for workshop, uniqueid, _ in orders:
        wait_for(lambda: status_of(workshop, uniqueid) == "created", timeout, 0.2,
                 f"order {uniqueid} of {workshop} to be created")
    for _, uniqueid, worksheet in orders:
        assert len(erp.lines_with(worksheet, uniqueid)) == 1, erp.worksheet(worksheet)


class Watch:
    """Polls the Grid in a thread: the most sessions open and requests queued at once."""

    def __init__(self, url):
        self.url, self.most_sessions, self.most_queued = url, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(0.05):
            state = pool_status(self.url)
            if state is not None:  # None: the Grid restarting
                self.most_sessions = max(self.most_sessions, state["in_use"])
                self.most_queued = max(self.most_queued, state["waiting"])

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)


@pytest.fixture(scope="module")
def erp():
    with ErpSimServer(save_delay=0.05) as server:
        yield server


@pytest.fixture(scope="module")
def fleet(erp, tmp_path_factory):
    env = fleet_env(tmp_path_factory.mktemp("pool"), BROWSER_POOL="grid", BROWSER_SLOTS=1,
                    GRID_PORT=free_port(), BROWSER_WAIT_SECONDS=60, **INSTANCE_ENV)
    fleet = Fleet(env)
    for workshop in WORKSHOPS:
        fleet.add(workshop, erp.url)
    fleet.grid_url = f"http://127.0.0.1:{env['GRID_PORT']}"
    fleet.grid_log = os.path.join(env["SUPERVISOR_DIR"], "logs", "grid.log")
    fleet.park_dir = os.path.join(env["SUPERVISOR_DIR"], "parked-browsers")
    fleet.supervisor = Supervisor(os.path.join(env["SUPERVISOR_DIR"], "supervisor.sock"))
    try:
        fleet.up()
        wait_ready(fleet.grid_url)
        fleet.wait_health({w: "ok" for w in WORKSHOPS})
        yield fleet
    finally:
        fleet.cleanup()


def read(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def test_three_workshops_share_one_slot_and_every_line_is_written_once(fleet, erp):
    orders = [(w, f"pool-{n}-{k}", 100 + 10 * n + k) for n, w in enumerate(WORKSHOPS)
              for k in range(2)]
    with Watch(fleet.grid_url) as watch:
        for workshop, uniqueid, worksheet in orders:  # all at once: three want the slot
            fleet.order(workshop, uniqueid, worksheet)
        created_once(erp, orders, fleet.order_status)
    assert watch.most_sessions == 1  # BROWSER_SLOTS=1: never a second browser
    # The last session is not quit but parked for the next workshop (integrations.browser.parking).
    parking = Parking(fleet.park_dir)
    wait_for(lambda: parking.parked() == 1, 10, 0.2, "the last session parked")
    assert in_use(fleet.grid_url) == 1
    # One session at a time on the Grid: each opened after the one before it ended.
    events = session_events(read(fleet.grid_log))
    opened = [sid for kind, sid in events if kind == "open"]
    assert events == [e for sid in opened for e in (("open", sid), ("close", sid))][:-1], events
    # One workshop after another: each claims the parked session, none starts a new one.
    later = [(w, f"parked-{n}", 150 + n) for n, w in enumerate(WORKSHOPS)]
    for workshop, uniqueid, worksheet in later:
        fleet.order(workshop, uniqueid, worksheet)
        created_once(erp, [(workshop, uniqueid, worksheet)], fleet.order_status)
    assert [kind for kind, _ in session_events(read(fleet.grid_log))[len(events):]] == []
    # the management API's /metrics shows the pool
    metrics = fleet.api("GET", "/metrics").text
    for sample in ("oilmat_browser_pool_up 1.0", "oilmat_browser_pool_slots 1.0",
                   "oilmat_browser_pool_in_use 1.0", "oilmat_browser_pool_waiting 0.0"):
        assert sample in metrics.splitlines(), sample
    for workshop in WORKSHOPS:
        log = read(os.path.join(fleet.env["LOG_DIR"], f"{workshop}_create_orderline.log"))
        assert "browser claimed from the fleet's parking" in log, workshop
        assert "giving the browser back to the pool" in log
    started = f"browser started (remote 127.0.0.1:{fleet.grid_url.rsplit(':', 1)[1]})"
    assert any(started in read(os.path.join(fleet.env["LOG_DIR"], f"{w}_create_orderline.log"))
               for w in WORKSHOPS)


def test_a_full_pool_is_a_wait_and_then_erp_unavailable(fleet, tmp_path):
    held = webdriver.Remote(command_executor=fleet.grid_url, options=remote_options())
    try:
        config = IntegrationConfig(erp_url="http://127.0.0.1:1", artifact_dir=str(tmp_path),
                                   selenium_remote_url=fleet.grid_url)
        # the Grid would keep the request for 60 s (its limit here): the instance gives up
        # at its own wait plus the margin for the Grid's answer
        started = time.monotonic()
        with pytest.raises(ErpUnavailable, match="no browser free in the pool"):
            Browser(config, wait_seconds=2)
        assert 2 + POOL_ANSWER_MARGIN <= time.monotonic() - started < 2 + POOL_ANSWER_MARGIN + 3
        # a stopping worker does not wait out its 60 s
        cancel = threading.Event()
        stop = threading.Timer(1.0, cancel.set)
        stop.start()
        started = time.monotonic()
        with pytest.raises(BrowserError, match="stopped while waiting"):
            Browser(config, wait_seconds=60, cancel=cancel)
        assert time.monotonic() - started < 2
    finally:
        held.quit()
    # the requests given up on are not served later: once the Grid's queue is empty (each
    # served or dropped), no session holds a slot for nobody -- one that did would stay
    # until the Grid's own session timeout, minutes after this deadline
    wait_for(lambda: (state := pool_status(fleet.grid_url, timeout=5))["waiting"] == 0
             and state["in_use"] == 0, 15)


def test_a_grid_killed_with_kill_9_is_restarted_and_the_instances_carry_on(fleet, erp):
    before = fleet.supervisor.processes()[grid.PROGRAM]["pid"]
    orders = [(w, f"kill9-{n}-{k}", 300 + 10 * n + k) for n, w in enumerate(WORKSHOPS)
              for k in range(2)]
    seen = len(erp.requests_handled())
    for workshop, uniqueid, worksheet in orders:
        fleet.order(workshop, uniqueid, worksheet)
    # killed in the middle of a visit: a browser of the Grid is talking to the ERP
    wait_for(lambda: len(erp.requests_handled()) > seen, 30, 0.02, "a visit on the Grid")
    assert "chromedriver" in grid.group_members(before).values()  # in the Grid's group
    os.kill(before, signal.SIGKILL)

    def restarted():
        info = fleet.supervisor.processes()[grid.PROGRAM]
        return info["state"] == "RUNNING" and info["pid"] not in (None, before) and info
    wait_for(restarted, 30, 0.2, "supervisord to restart the Grid")
    wait_ready(fleet.grid_url)
    assert not grid.group_members(before)  # what the killed Grid left behind is gone
    created_once(erp, orders, fleet.order_status)
    attempts = [fleet.instance(w, "GET", "/get_order_status", params={"uniqueid": u}).json()
                ["attempts"] for w, u, _ in orders]
    assert max(attempts) == 2, attempts  # the visit the kill broke, tried once more
    assert "a killed Grid left behind" in read(fleet.grid_log)  # the launcher ended them
    overview = fleet.overview()
    assert all(overview[w]["health"] == "ok" for w in WORKSHOPS)


@pytest.fixture
def hub_and_two_nodes(tmp_path):
    """A hub and two nodes of one slot each, on loopback ports, as ``python -m fleet.grid``
    runs them on other servers."""
    hub_port, publish, subscribe = free_port(), free_port(), free_port()
    bus = ["--publish-port", str(publish), "--subscribe-port", str(subscribe),
           "--config-dir", str(tmp_path)]
    hub_url = f"http://127.0.0.1:{hub_port}"
    commands = {"hub": ["hub", "--port", str(hub_port), "--wait", "60", *bus]}
    for n in (1, 2):
        commands[f"node{n}"] = ["node", "--hub", hub_url, "--port", str(free_port()),
                                "--slots", "1", *bus]
    processes, logs = {}, {}
    try:
        for name, args in commands.items():
            logs[name] = str(tmp_path / f"{name}.log")
            with open(logs[name], "wb") as log:
                processes[name] = subprocess.Popen([sys.executable, "-m", "fleet.grid", *args],
                                                   stdout=log, stderr=subprocess.STDOUT,
                                                   start_new_session=True)
        wait_ready(hub_url, nodes=2)
        yield hub_url, logs
    finally:
        for process in processes.values():
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)


def test_a_hub_and_two_nodes_serve_an_instance(hub_and_two_nodes, erp, tmp_path):
    hub_url, logs = hub_and_two_nodes
    instance = RunningInstance(tmp_path, erp.url, SELENIUM_REMOTE_URL=hub_url,
                               BROWSER_POOL_GRACE_SECONDS="0.3", BROWSER_WAIT_SECONDS="30").start()
    ours = []
    try:
        def through_the_free_node(uniqueid, worksheet):
            assert instance.create(uniqueid=uniqueid, worksheet=str(worksheet)).status_code == 200
            created_once(erp, [(None, uniqueid, worksheet)],
                         lambda _, u: instance.status(u).get("status"))
            wait_for(lambda: in_use(hub_url) == len(ours), 10, 0.1, "the session given back")

        # The test holds one node's slot, so the instance's session lands on the other;
        # then it holds that one and frees the first: the instance uses both nodes.
        ours.append(webdriver.Remote(command_executor=hub_url, options=remote_options()))
        through_the_free_node("hub-1", 501)
        ours.append(webdriver.Remote(command_executor=hub_url, options=remote_options()))
        ours.pop(0).quit()
        through_the_free_node("hub-2", 502)
    finally:
        for driver in ours:
            driver.quit()
        instance.stop()
    mine = set()
    for name in ("node1", "node2"):
        opened = {sid for kind, sid in session_events(read(logs[name])) if kind == "open"}
        assert len(opened) == 2, (name, read(logs[name])[-3000:])  # one the test's, one the instance's
        mine |= opened
    log = read(os.path.join(instance.log_dir, "Bennys Auto_create_orderline.log"))
    assert log.count(f"browser started (remote 127.0.0.1:{hub_url.rsplit(':', 1)[1]})") == 2
    assert len(mine) == 4
