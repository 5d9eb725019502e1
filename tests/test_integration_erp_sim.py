"""The erp_sim integration against a real erp_sim server, in real headless Chromium.

One integration (one browser) serves most tests of this module; the tests that need
other ERP or browser settings build their own.
"""

import itertools
import json
import logging
import os
import subprocess
import sys
import time
import uuid
from decimal import Decimal

import pytest
from selenium.common.exceptions import InvalidSessionIdException, TimeoutException

from bridge.exceptions import (BrowserError, ErpTimeout, ErpUnavailable, InvalidAmount,
                               LoginFailed, ProductNotFound, SessionExpired, UnexpectedPage,
                               WorksheetClosed, WorksheetNotFound)
from integrations import get_integration_class
from integrations.base import Credentials, IntegrationConfig, LineOutcome, OrderLine
from integrations.browser import (MASK, error_page_reason, map_webdriver_error,
                                  process_running, reap_orphaned_browsers,
                                  save_failure_artifacts, scrub_html)
from integrations.erp_sim import ErpSimIntegration, amount_text
# Fixtures; parameters of the same names below are pytest's injection, not shadowing.
from tests.conftest_erp import erp_server, erp_server_factory  # noqa: F401
from tests.erp_helpers import REPO_ROOT, ChromedriverServer, closed_port_url

ADMIN = Credentials("admin", "admin")
LOG = logging.getLogger("test.integration.erp_sim")
_worksheets = itertools.count(100)  # a worksheet of its own for each test that writes


def order(worksheet=None, product_nr="10", amount="5", uniqueid=None):
    return OrderLine(uniqueid=uniqueid or uuid.uuid4().hex[:12],
                     worksheet=str(worksheet or next(_worksheets)),
                     product_nr=product_nr, product_amount=Decimal(amount))


def make_integration(url, artifact_dir, **options):
    options.setdefault("wait_timeout", 5.0)
    options.setdefault("page_load_timeout", 10.0)
    return ErpSimIntegration(IntegrationConfig(erp_url=url, artifact_dir=str(artifact_dir),
                                               **options), LOG)


@pytest.fixture(scope="module")
def artifact_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="module")
def integration(erp_server, artifact_dir):
    integration = make_integration(erp_server.url, artifact_dir)
    yield integration
    integration.close()


# -- writing a line ---------------------------------------------------------------------------

def test_registered_under_its_name():
    assert get_integration_class("erp_sim") is ErpSimIntegration


def test_adds_one_line_and_then_reports_it_existed(integration, erp_server):
    line = order(amount="5.000")
    assert integration.add_line(line, ADMIN) is LineOutcome.CREATED
    assert erp_server.lines_with(line.worksheet, line.uniqueid) == [
        {"product_nr": 10, "amount": "5", "reference": line.text}]
    assert integration.add_line(line, ADMIN) is LineOutcome.EXISTED
    assert len(erp_server.lines_with(line.worksheet, line.uniqueid)) == 1


def test_uniqueid_is_matched_as_a_whole_word(integration, erp_server):
    longer = order(amount="2.50")
    shorter = order(worksheet=longer.worksheet, uniqueid=longer.uniqueid[:-1])
    assert integration.add_line(longer, ADMIN) is LineOutcome.CREATED
    assert integration.add_line(shorter, ADMIN) is LineOutcome.CREATED
    assert erp_server.lines_with(longer.worksheet, longer.uniqueid)[0]["amount"] == "2.5"
    assert len(erp_server.lines_with(longer.worksheet, shorter.uniqueid)) == 1


@pytest.mark.parametrize("worksheet, product_nr, amount, error", [
    ("1500", "10", "1", WorksheetNotFound),
    ("950", "10", "1", WorksheetClosed),
    (None, "999", "1", ProductNotFound),
    (None, "10", "-1", InvalidAmount),
])
def test_erp_refusals_map_to_reason_codes(integration, erp_server, worksheet,
                                          product_nr, amount, error):
    line = order(worksheet=worksheet, product_nr=product_nr, amount=amount)
    with pytest.raises(error) as raised:
        integration.add_line(line, ADMIN)
    assert raised.value.reason_code == error.reason_code
    if line.worksheet != "1500":
        assert erp_server.lines_with(line.worksheet, line.uniqueid) == []


def test_wrong_password_fails_with_scrubbed_artifacts(integration, artifact_dir, caplog):
    password = "Wr0ng&<pw>\"s3cret"
    line = order()
    with caplog.at_level(logging.INFO, logger=LOG.name):
        with pytest.raises(LoginFailed) as raised:
            integration.add_line(line, Credentials("admin", password))
    assert raised.value.reason_code == "LOGIN_FAILED"
    saved = sorted(p for p in os.listdir(artifact_dir) if line.uniqueid in p)
    assert [os.path.splitext(p)[1] for p in saved] == [".html", ".png"]
    assert all("LOGIN_FAILED" in p for p in saved)
    html = (artifact_dir / saved[0]).read_text()
    assert 'id="login-form"' in html and "Invalid username or password" in html
    for path in saved:
        data = (artifact_dir / path).read_bytes()
        assert b"Wr0ng" not in data and b"s3cret" not in data
    assert "Wr0ng" not in caplog.text and "s3cret" not in caplog.text
    assert str(artifact_dir / saved[0]) in caplog.text  # the paths are logged
    # the right password works again on the same integration
    assert integration.add_line(order(), ADMIN) is LineOutcome.CREATED


def test_artifacts_of_a_logged_in_page_hide_the_password(integration, artifact_dir):
    line = order(product_nr="999")
    with pytest.raises(ProductNotFound):
        integration.add_line(line, ADMIN)
    html_name = next(p for p in os.listdir(artifact_dir)
                     if line.uniqueid in p and p.endswith("_PRODUCT_NOT_FOUND.html"))
    html = (artifact_dir / html_name).read_text()
    # the password "admin" is also the user name shown in the header: masked too
    assert "Unknown product number 999" in html and "admin" not in html and MASK in html


def test_session_lost_mid_order_logs_in_again_and_adds_once(integration, erp_server):
    line = order()
    sheet = integration._open_worksheet(line.worksheet, ADMIN)
    integration._browser.driver.delete_all_cookies()  # logged out behind its back
    assert integration._submit(sheet, line, ADMIN) is LineOutcome.CREATED
    assert len(erp_server.lines_with(line.worksheet, line.uniqueid)) == 1


def test_dead_browser_is_a_transient_error_and_then_replaced(integration, erp_server):
    integration._browser_for(ADMIN).driver.quit()  # the browser crashed
    with pytest.raises(BrowserError):
        integration.add_line(order(), ADMIN)
    assert integration._browser is None
    line = order()
    assert integration.add_line(line, ADMIN) is LineOutcome.CREATED
    assert len(erp_server.lines_with(line.worksheet, line.uniqueid)) == 1


def test_close_twice_is_safe_and_next_line_starts_afresh(integration, erp_server):
    integration.close()
    integration.close()
    line = order()
    assert integration.add_line(line, ADMIN) is LineOutcome.CREATED
    assert len(erp_server.lines_with(line.worksheet, line.uniqueid)) == 1


# -- other ERP or browser settings ---------------------------------------------------------------

def test_erp_not_running_is_unavailable(tmp_path):
    integration = make_integration(closed_port_url(), tmp_path)
    try:
        with pytest.raises(ErpUnavailable) as raised:
            integration.add_line(order(), ADMIN)
        assert raised.value.reason_code == "ERP_UNAVAILABLE"
        assert {os.path.splitext(p)[1] for p in os.listdir(tmp_path)} == {".png", ".html"}
    finally:
        integration.close()


def test_unknown_page_is_unexpected(erp_server, tmp_path):
    integration = make_integration(erp_server.url + "/no/such/app/", tmp_path, wait_timeout=1.0)
    try:
        with pytest.raises(UnexpectedPage, match="404 Not Found"):
            integration.add_line(order(), ADMIN)
    finally:
        integration.close()


def test_session_expiry_between_orders_logs_in_again(erp_server_factory, tmp_path, caplog):
    erp = erp_server_factory(session_ttl=2, save_delay=0)
    integration = make_integration(erp.url, tmp_path)
    first, second = order(), order()
    try:
        with caplog.at_level(logging.INFO, logger=LOG.name):
            assert integration.add_line(first, ADMIN) is LineOutcome.CREATED
            time.sleep(2.2)
            assert integration.add_line(second, ADMIN) is LineOutcome.CREATED
    finally:
        integration.close()
    assert caplog.text.count("logging in") == 2
    assert len(erp.lines_with(first.worksheet, first.uniqueid)) == 1
    assert len(erp.lines_with(second.worksheet, second.uniqueid)) == 1


def test_timeout_after_submit_never_adds_twice(erp_server_factory, tmp_path):
    erp = erp_server_factory(save_delay=2.5)
    integration = make_integration(erp.url, tmp_path, page_load_timeout=1.0)
    line = order()
    try:
        with pytest.raises(ErpTimeout):  # looked again, the ERP was still saving
            integration.add_line(line, ADMIN)
        deadline = time.monotonic() + 5  # the worker's backoff
        while not erp.lines_with(line.worksheet, line.uniqueid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert integration.add_line(line, ADMIN) is LineOutcome.EXISTED
    finally:
        integration.close()
    assert len(erp.lines_with(line.worksheet, line.uniqueid)) == 1


def test_remote_webdriver(erp_server, tmp_path):
    with ChromedriverServer() as chromedriver:
        integration = make_integration(erp_server.url, tmp_path,
                                       selenium_remote_url=chromedriver.url)
        line = order()
        try:
            assert integration.add_line(line, ADMIN) is LineOutcome.CREATED
            assert integration.add_line(line, ADMIN) is LineOutcome.EXISTED
        finally:
            integration.close()
    assert len(erp_server.lines_with(line.worksheet, line.uniqueid)) == 1


# -- browser plumbing --------------------------------------------------------------------------

def test_scrub_html_masks_secrets_and_password_values():
    page = ('<input type="password" name="pw" value="hunter2&amp;x">'
            '<p>hunter2&amp;x</p><p>hunter2&x</p><input name="user" value="bob">')
    scrubbed = scrub_html(page, ["hunter2&x", ""])
    assert "hunter2" not in scrubbed and 'value=""' in scrubbed and 'value="bob"' in scrubbed


def test_map_webdriver_error():
    assert isinstance(map_webdriver_error(TimeoutException("slow")), ErpTimeout)
    assert isinstance(map_webdriver_error(InvalidSessionIdException("gone")), BrowserError)
    refused = map_webdriver_error(Exception("unknown error: net::ERR_CONNECTION_REFUSED"))
    assert isinstance(refused, ErpUnavailable)
    assert isinstance(map_webdriver_error(SessionExpired()), SessionExpired)


@pytest.mark.parametrize("html, unavailable", [
    ("<title>502 Bad Gateway</title><h1>502 Bad Gateway</h1>", True),
    ("<title>Oops</title><h1>500 Internal Server Error</h1>", True),
    ("<title>Worksheet 500 - Workshop ERP</title><h1>Worksheet 500</h1>", False),
])
def test_error_pages_are_recognised(integration, html, unavailable):
    browser = integration._browser_for(ADMIN)
    browser.driver.get("data:text/html," + html)
    assert isinstance(error_page_reason(browser.driver), ErpUnavailable) is unavailable


def test_password_field_is_emptied_before_the_screenshot(integration, erp_server, tmp_path):
    driver = integration._browser_for(ADMIN).driver
    driver.delete_all_cookies()
    driver.get(erp_server.url + "/login")
    driver.find_element("name", "password").send_keys("typed-secret")
    paths = save_failure_artifacts(driver, str(tmp_path), "u1", UnexpectedPage.reason_code,
                                   secrets=["typed-secret"])
    assert len(paths) == 2 and all(os.path.getsize(p) for p in paths)
    assert driver.find_element("name", "password").get_attribute("value") == ""


_OWN_A_BROWSER = """
from integrations.base import IntegrationConfig
from integrations.browser import Browser
browser = Browser(IntegrationConfig(erp_url="http://127.0.0.1:1", artifact_dir="unused"))
print(browser._profile_dir, flush=True)
input()  # until killed
"""


def test_browser_of_a_killed_process_is_reaped():
    owner = subprocess.Popen([sys.executable, "-c", _OWN_A_BROWSER], cwd=REPO_ROOT,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        profile = owner.stdout.readline().strip()
        with open(os.path.join(profile, "bridge-owner.json")) as f:
            chromedriver = json.load(f)["chromedriver"]
    finally:
        owner.kill()  # kill -9: it cannot quit its browser
        owner.wait(5)
    assert process_running(chromedriver) and os.path.isdir(profile)
    reap_orphaned_browsers()
    assert not os.path.isdir(profile)
    deadline = time.monotonic() + 5
    while process_running(chromedriver) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not process_running(chromedriver)
    assert not [pid for pid in os.listdir("/proc") if pid.isdigit()
                and profile.encode() in _read_cmdline(pid)]


def _read_cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def test_amount_text():
    assert [amount_text(Decimal(a)) for a in ("5.000", "2.50", "100", "0.125")] == [
        "5", "2.5", "100", "0.125"]
