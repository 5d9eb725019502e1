"""End to end: idle Grid sessions parked by one workshop and claimed by another
(:mod:`integrations.browser.parking`). A real Selenium Grid (the fleet's configuration, one
slot), real Chromium, a real erp_sim with two users; lines read through ``/_sim``.

What must hold: the claimer gets the *same* browser (no new session), and nothing of
the workshop before it -- not its ERP login (a wrong password is refused, where a
leaked session cookie would have let the line through), not what the ERP's pages
stored; a workshop waiting for the one slot gets the session its holder parks; a
parked session gone stale or ended by the Grid is never handed out.
"""

import threading
import time

import pytest
from selenium.common.exceptions import WebDriverException

from core.errors import LoginFailed
from integrations.browser import parking as parking_module
from integrations.base import Credentials
from integrations.browser.parking import Parking
from integrations.browser.pool import pool_status
from tests.erp_helpers import ErpSimServer, make_integration, order
from tests.fleet_helpers import StandaloneGrid, free_port, wait_for

pytestmark = pytest.mark.e2e

ADMIN = Credentials("admin", "admin")
BENNY = Credentials("benny", "pw-benny")


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    with StandaloneGrid(tmp_path_factory.mktemp("grid"), slots=1) as running:
        yield running


@pytest.fixture(scope="module")
def erp():
    with ErpSimServer(extra_args=["--user", "benny:pw-benny"]) as server:
        yield server


@pytest.fixture
def park_dir(tmp_path, grid):
    yield tmp_path / "parked"
    wait_for(lambda: pool_status(grid.url, timeout=5)["in_use"] == 0, timeout=30,
             message="every session of the test ended")


def workshop(erp, grid, park_dir, tmp_path, **options):
    return make_integration("erp_sim", erp.url, tmp_path / "artifacts",
                            selenium_remote_url=grid.url, browser_park_dir=str(park_dir),
                            **options)


def write(integration, erp, credentials):
    line = order()
    result = integration.add_lines(line.worksheet, [line], credentials)[line.uniqueid]
    return result, erp.lines_with(line.worksheet, line.uniqueid)


def test_a_parked_session_is_claimed_by_the_next_workshop_and_holds_nothing_of_the_first(
        erp, grid, park_dir, tmp_path):
    first = workshop(erp, grid, park_dir, tmp_path)
    result, lines = write(first, erp, ADMIN)
    assert not isinstance(result, Exception) and len(lines) == 1
    session = first._browser.driver.session_id
    first._browser.driver.execute_script("localStorage.setItem('left', 'by the first')")
    assert first.browsers.release(park=True)
    assert Parking(park_dir).parked() == 1

    second = workshop(erp, grid, park_dir, tmp_path)
    try:
        result, lines = write(second, erp, Credentials("benny", "wrong"))
        # Logged in as admin, the line would have gone in: the session cookie is gone.
        assert isinstance(result, LoginFailed) and lines == []
        assert second._browser.driver.session_id == session  # claimed, not started
        assert second._browser.driver.execute_script(
            "return localStorage.getItem('left')") is None
        result, lines = write(second, erp, BENNY)
        assert not isinstance(result, Exception) and len(lines) == 1
        assert second._browser.driver.session_id == session
        assert len(second._browser.driver.window_handles) == 1
    finally:
        second.close()
    assert Parking(park_dir).parked() == 0


def test_a_workshop_waiting_for_the_only_slot_gets_the_session_its_holder_parks(
        erp, grid, park_dir, tmp_path):
    holder = workshop(erp, grid, park_dir, tmp_path)
    result, _ = write(holder, erp, ADMIN)
    assert not isinstance(result, Exception)
    session = holder._browser.driver.session_id
    newcomer = workshop(erp, grid, park_dir, tmp_path)
    outcome = {}

    def newcomer_writes():
        outcome["result"], outcome["lines"] = write(newcomer, erp, BENNY)
    thread = threading.Thread(target=newcomer_writes)
    thread.start()
    try:
        # No slot is free, so the newcomer waits in the parking, not in the Grid's queue.
        wait_for(lambda: Parking(park_dir).waiting() == 1, timeout=15,
                 message="the newcomer waiting for a parked browser")
        assert pool_status(grid.url, timeout=5)["waiting"] == 0
        parked_at = time.monotonic()
        assert holder.browsers.release(park=True)
        thread.join(30)
        assert not thread.is_alive()
        assert time.monotonic() - parked_at < 10
        assert not isinstance(outcome["result"], Exception) and len(outcome["lines"]) == 1
        assert newcomer._browser.driver.session_id == session
        assert Parking(park_dir).waiting() == 0
    finally:
        thread.join(60)
        newcomer.close()


def test_a_stale_parked_session_is_quit_and_a_new_one_started(
        erp, grid, park_dir, tmp_path, monkeypatch):
    first = workshop(erp, grid, park_dir, tmp_path)
    write(first, erp, ADMIN)
    session = first._browser.driver.session_id
    assert first.browsers.release(park=True)
    monkeypatch.setattr(parking_module, "PARK_SECONDS", 0.0)
    # The stale one held the only slot: it was quit, and a new session took the slot.
    written_on_another_session(erp, grid, park_dir, tmp_path, session)


def test_a_parked_session_the_grid_ended_is_passed_over(erp, grid, park_dir, tmp_path):
    first = workshop(erp, grid, park_dir, tmp_path)
    write(first, erp, ADMIN)
    driver = first._browser.driver
    session, capabilities = driver.session_id, dict(driver.caps)
    first.close()  # ended, as the Grid's session timeout or a restart would
    Parking(park_dir).park(session, capabilities)
    written_on_another_session(erp, grid, park_dir, tmp_path, session)


def written_on_another_session(erp, grid, park_dir, tmp_path, session):
    """The next workshop's order is written, on a session other than ``session``."""
    second = workshop(erp, grid, park_dir, tmp_path)
    try:
        result, lines = write(second, erp, ADMIN)
        assert not isinstance(result, Exception) and len(lines) == 1
        assert second._browser.driver.session_id != session
    finally:
        second.close()


def test_a_browser_due_for_recycling_is_quit_not_parked(erp, grid, park_dir, tmp_path):
    first = workshop(erp, grid, park_dir, tmp_path, recycle_after_orders=1)
    write(first, erp, ADMIN)
    assert not first.browsers.release(park=True)
    assert Parking(park_dir).parked() == 0


def test_a_workshop_claiming_again_keeps_its_own_login_and_nobody_else_gets_it(
        erp, grid, park_dir, tmp_path, caplog):
    caplog.set_level("INFO", logger="test.integration")
    first = workshop(erp, grid, park_dir, tmp_path)
    write(first, erp, ADMIN)
    assert first.browsers.release(park=True)
    other = workshop(erp, grid, park_dir, tmp_path)
    result, lines = write(other, erp, Credentials("benny", "wrong"))
    assert isinstance(result, LoginFailed) and lines == []  # admin's cookie was not put back
    result, _ = write(other, erp, BENNY)
    assert not isinstance(result, Exception)
    assert other.browsers.release(park=True)
    caplog.clear()
    again = first  # admin's workshop (its instance keeps its integration), its next order
    try:
        result, lines = write(again, erp, ADMIN)
        assert not isinstance(result, Exception) and len(lines) == 1
        assert again._browser.claimed is not None
        logins = [r.getMessage() for r in caplog.records if "logging in" in r.getMessage()]
        assert logins == [], logins  # its own session cookie, put back from memory
    finally:
        again.close()


def test_the_parked_tab_is_kept_and_its_session_storage_and_scripts_are_gone(
        erp, grid, park_dir, tmp_path):
    """The wipe keeps the tab (no new renderer per handover) but clears the origin's
    session storage; a claimer of the same origin whose address differs by its
    #fragment only still gets a new document, not the first workshop's scripts."""
    first = workshop(erp, grid, park_dir, tmp_path)
    write(first, erp, ADMIN)
    driver = first._browser.driver
    tab = driver.current_window_handle
    driver.execute_script("sessionStorage.setItem('left', 'by the first'); "
                          "window.leftover = 'by the first'; location.hash = 'a';")
    assert first.browsers.release(park=True)

    second = workshop(erp, grid, park_dir, tmp_path)
    try:
        browser = second._browser_for(BENNY)
        assert browser.claimed is not None
        assert browser.driver.window_handles == [tab]  # the same tab, not a new one
        address = browser.driver.current_url.split("#")[0] + "#b"
        browser.open(address, check=False)
        assert browser.driver.execute_script(
            "return [window.leftover === undefined, sessionStorage.getItem('left')]") \
            == [True, None]
    finally:
        second.close()


def test_a_parked_error_page_gets_a_new_tab(erp, grid, park_dir, tmp_path):
    """A page not of the ERP's origin (here the browser's own error page) is not left
    for the next workshop: the tab is closed, with every origin's session storage in
    it, and a new one left."""
    first = workshop(erp, grid, park_dir, tmp_path)
    write(first, erp, ADMIN)
    driver = first._browser.driver
    tab = driver.current_window_handle
    driver.execute_script("sessionStorage.setItem('left', 'by the first')")
    try:
        driver.get(f"http://127.0.0.1:{free_port()}/")  # nobody listens: an error page
    except WebDriverException:
        pass
    assert first.browsers.release(park=True)

    second = workshop(erp, grid, park_dir, tmp_path)
    try:
        browser = second._browser_for(BENNY)
        assert browser.claimed is not None
        assert len(browser.driver.window_handles) == 1
        assert browser.driver.window_handles != [tab]
        browser.open(erp.url + "/_sim/health", check=False)
        assert browser.driver.execute_script("return sessionStorage.getItem('left')") is None
    finally:
        second.close()


def test_a_claimer_of_another_erp_takes_the_tab_as_it_is_and_logs_in(
        erp, grid, park_dir, tmp_path):
    """Another origin (another workshop's ERP): the claimer's first load replaces the
    parked page directly, and nothing of the first ERP's login goes with it."""
    first = workshop(erp, grid, park_dir, tmp_path)
    write(first, erp, ADMIN)
    tab = first._browser.driver.current_window_handle
    assert first.browsers.release(park=True)
    with ErpSimServer() as other_erp:
        second = make_integration("erp_sim", other_erp.url, tmp_path / "artifacts",
                                  selenium_remote_url=grid.url,
                                  browser_park_dir=str(park_dir))
        try:
            result, lines = write(second, other_erp, ADMIN)
            assert not isinstance(result, Exception) and len(lines) == 1
            assert second._browser.claimed is not None
            assert second._browser.driver.window_handles == [tab]
            cookies = second._browser.cookies()
            assert {c["domain"] for c in cookies} <= {"127.0.0.1"}
            assert all(c.get("sourcePort") in (None, -1, other_erp.port) for c in cookies)
        finally:
            second.close()
