"""integrations/browser/life.py: when a browser is got, kept, quit or parked.

The rules are decided from the idle time the worker reports and the pool's state, so
most of them are checked here with a fake browser and a pool state the test sets: no
clock to wait on. The last two tests start a real (remote) browser against a pool that
does not answer.
"""

import logging
import threading
import time

import pytest

from conftest import wait_for
from core.credentials import Credentials
from core.errors import BrowserError
from integrations.base import IntegrationConfig
from integrations.browser import kept, life as life_module
from integrations.browser.life import BrowserLife
from integrations.browser.parking import Parking

LOG = logging.getLogger("test.browser_life")
ADMIN = Credentials("admin", "admin")


class FakeBrowser:
    """What BrowserLife asks of a browser: claimed, quit, park, cookies."""

    def __init__(self, claimed=None):
        self.claimed = claimed
        self.quits = 0
        self.parked = None
        self.restored = None

    def quit(self):
        self.quits += 1

    def park(self, orders=0):
        self.parked = orders
        return True

    def cookies(self):
        return [{"name": "sid", "value": "the ERP's session"}]

    def restore_cookies(self, cookies):
        self.restored = cookies
        return True


class Counter:
    def __init__(self):
        self.starts = 0

    def browser_started(self):
        self.starts += 1


def make_life(tmp_path, pooled=True, parking=False, pool=None, claims=(), **config):
    """A BrowserLife on fakes: ``pool`` is the pool's state it reads (a dict the test may
    change, or None: unknown), ``claims`` the parking records the next opens claim.

    :returns: ``(life, opened)``; ``opened`` lists the fake browsers and what each was
        opened with
    """
    config = IntegrationConfig(
        erp_url="http://127.0.0.1:1", artifact_dir=str(tmp_path),
        selenium_remote_url="http://127.0.0.1:2" if pooled else "",
        browser_park_dir=str(tmp_path / "parked") if parking else "",
        **{"browser_pool_grace_seconds": 0.3, "browser_idle_seconds": 60, **config})
    claims = list(claims)
    opened = []

    def open_browser(config, wait_seconds, cancel, log, parking):
        browser = FakeBrowser(claims.pop(0) if claims else None)
        opened.append((browser, wait_seconds, cancel, parking))
        return browser

    life = BrowserLife(config, LOG, pool_state=lambda: pool, open_browser=open_browser)
    return life, opened


@pytest.fixture(autouse=True)
def fresh_pool_reads(monkeypatch):
    # the pool's state is read at most every POLL_SECONDS; here at every ask
    monkeypatch.setattr(life_module, "POLL_SECONDS", 0.0)


def test_a_local_browser_is_kept_for_the_idle_time_then_quit(tmp_path):
    life, opened = make_life(tmp_path, pooled=False, browser_idle_seconds=60)
    life.get(ADMIN)
    assert life.state == "ready" and life.poll_seconds() == life_module.POLL_SECONDS
    assert not life.idle(59.0)  # far past a pool's grace: a local browser is not given back
    assert life.idle(60.0)
    assert opened[0][0].quits == 1 and life.state == "none" and life.poll_seconds() is None
    life.pause(600)  # a local browser is not given back for a retry's wait either
    life.get(ADMIN)
    life.pause(600)
    assert life.holding


def test_a_pooled_browser_is_kept_while_slots_stand_free_and_given_back_when_needed(tmp_path):
    pool = {"slots": 2, "in_use": 1, "waiting": 0, "nodes": 1}  # ours in use, one free
    life, opened = make_life(tmp_path, pool=pool)
    life.get(ADMIN)
    assert not life.idle(1.5)  # past the grace, a slot stands free: a lone workshop keeps it
    pool.update(in_use=2, waiting=1)  # a request waits in the Grid's queue: at once
    assert life.idle(0.1)
    assert opened[0][0].quits == 1 and not life.holding


@pytest.mark.parametrize("pool", [{"slots": 4, "in_use": 4, "waiting": 0, "nodes": 1}, None],
                         ids=["no slot free", "state unknown"])
def test_a_pooled_browser_goes_back_after_the_grace_when_slots_run_short(tmp_path, pool):
    life, opened = make_life(tmp_path, pool=pool, browser_pool_grace_seconds=0.6)
    life.get(ADMIN)
    assert not life.idle(0.59)  # a short grace for bursts
    assert life.idle(0.6) and opened[0][0].quits == 1


def test_a_pooled_browser_is_kept_no_longer_than_the_hold_time(tmp_path, monkeypatch):
    monkeypatch.setattr(life_module, "POOL_HOLD_SECONDS", 1.0)
    life, _ = make_life(tmp_path, pool={"slots": 4, "in_use": 1, "waiting": 0, "nodes": 1})
    life.get(ADMIN)
    assert not life.idle(0.9)
    assert life.idle(1.0)


def test_with_a_parking_an_idle_session_is_parked_at_once_for_a_waiting_workshop(tmp_path):
    life, opened = make_life(tmp_path, parking=True, browser_pool_grace_seconds=30,
                             pool={"slots": 2, "in_use": 2, "waiting": 0, "nodes": 1})
    life.get(ADMIN)
    assert life.poll_seconds() == life_module.HOLDER_POLL_SECONDS
    assert not life.idle(0.8)  # within the grace, nobody waiting
    with Parking(tmp_path / "parked").waiter():
        assert life.idle(0.9)
    assert opened[0][0].parked == 0 and opened[0][0].quits == 0


@pytest.mark.parametrize("pool, parks", [
    ({"slots": 2, "in_use": 2, "waiting": 1, "nodes": 1}, False),  # the Grid's queue: a slot
    ({"slots": 2, "in_use": 2, "waiting": 0, "nodes": 1}, True),  # no slot free: park it
])
def test_with_a_parking_a_session_is_quit_only_for_a_request_in_the_grids_queue(
        tmp_path, pool, parks):
    life, opened = make_life(tmp_path, parking=True, pool=pool)
    life.get(ADMIN)
    assert life.idle(0.3)
    browser = opened[0][0]
    assert (browser.parked is not None, browser.quits) == ((True, 0) if parks else (False, 1))


def test_a_pooled_browser_is_given_back_before_a_wait_longer_than_the_grace(tmp_path):
    life, opened = make_life(tmp_path, parking=True,
                             pool={"slots": 2, "in_use": 1, "waiting": 0, "nodes": 1})
    life.for_orders(1, ADMIN)
    life.pause(0.2)  # within the grace: kept for the retry
    assert life.holding
    life.pause(1.0)
    assert not life.holding and opened[0][0].parked == 1


def test_logins_are_kept_by_the_instance_and_put_into_a_claimed_session(tmp_path):
    life, opened = make_life(tmp_path, parking=True, claims=[None, {"orders": 3}],
                             pool={"slots": 1, "in_use": 1, "waiting": 0, "nodes": 1})
    life.get(ADMIN)
    life.credentials = ADMIN  # the flow logged in
    assert life.release(park=True)
    claimed = life.get(ADMIN)  # the claimed session gets this workshop's cookies back
    assert claimed.restored == [{"name": "sid", "value": "the ERP's session"}]
    assert life.credentials == ADMIN and life.orders == 3
    other, other_opened = make_life(tmp_path, parking=True, claims=[{"orders": 0}])
    assert other.get(ADMIN).restored is None  # another instance knows none of them


def test_new_credentials_a_recycle_and_the_stop_reach_the_browser(tmp_path):
    life, opened = make_life(tmp_path, pooled=False, recycle_after_orders=2,
                             browser_wait_seconds=17)
    stop, counter = threading.Event(), Counter()
    life.attach(stop, counter)
    life.for_orders(1, ADMIN)
    life.credentials = ADMIN
    assert opened[0][1:3] == (17, stop)  # BROWSER_WAIT_SECONDS and the worker's stop
    life.for_orders(1, ADMIN)
    life.for_orders(1, ADMIN)  # a third order on it: recycled first
    assert len(opened) == 2 and opened[0][0].quits == 1
    life.credentials = ADMIN
    life.get(Credentials("other", "user"))  # reconfigured credentials: a fresh browser
    assert len(opened) == 3 and counter.starts == 3


def test_a_claimed_session_is_not_counted_as_a_browser_started(tmp_path):
    life, _ = make_life(tmp_path, parking=True, claims=[{"orders": 1}])
    counter = Counter()
    life.attach(threading.Event(), counter)
    life.get(ADMIN)
    assert counter.starts == 0


# -- a real remote browser: starting, waiting, and a pool that does not answer ---------------


class _NoVisit(kept.KeptBrowserIntegration):
    name = "no-visit"

    def _visit(self, worksheet, lines, credentials, results):
        raise AssertionError("never reached: there is no browser")

    def _read_lines(self, worksheet, credentials):
        raise AssertionError("never reached: there is no browser")


def test_a_pool_that_does_not_answer_is_waited_for_then_a_browser_error(tmp_path, monkeypatch):
    from tests.erp_helpers import closed_port_url, order

    monkeypatch.setattr(life_module, "WAITING_AFTER_SECONDS", 1.0)
    config = IntegrationConfig(erp_url="http://127.0.0.1:1", artifact_dir=str(tmp_path),
                               selenium_remote_url=closed_port_url(), browser_wait_seconds=2.5)
    integration = _NoVisit(config, LOG)
    integration.attach(threading.Event(), Counter())
    assert integration.browser_state == "none"
    line, results, seen = order(), {}, []
    thread = threading.Thread(target=lambda: results.update(
        integration.add_lines(line.worksheet, [line], None)))
    started = time.monotonic()
    thread.start()
    while thread.is_alive():
        seen.append(integration.browser_state)
        time.sleep(0.05)
    took = time.monotonic() - started
    assert 2.0 <= took < 5, took  # asked again each second within the wait, then given up
    assert seen[0] == "starting" and seen[-1] == "waiting" and set(seen) == {"starting", "waiting"}
    error = results[line.uniqueid]
    assert isinstance(error, BrowserError) and "did not answer within 2.5 s" in str(error)
    assert integration.browser_state == "none"


def test_a_stop_ends_the_wait_for_a_pool_at_once(tmp_path):
    from tests.erp_helpers import closed_port_url, order

    config = IntegrationConfig(erp_url="http://127.0.0.1:1", artifact_dir=str(tmp_path),
                               selenium_remote_url=closed_port_url(), browser_wait_seconds=60)
    integration = _NoVisit(config, LOG)
    stop = threading.Event()
    integration.attach(stop, Counter())
    line, results = order(), {}
    thread = threading.Thread(target=lambda: results.update(
        integration.add_lines(line.worksheet, [line], None)))
    thread.start()
    wait_for(lambda: integration.browser_state == "starting", 5)
    time.sleep(0.5)
    stopped = time.monotonic()
    stop.set()
    thread.join(5)
    assert not thread.is_alive() and time.monotonic() - stopped < 1.5
    assert "stopped while waiting" in str(results[line.uniqueid])
