"""The classic erp_sim integration's particulars and the shared browser plumbing,
against a real erp_sim server in real headless Chromium.

The interface itself (idempotency, reason codes, sessions, remote browsers, chaos) is
checked for every integration in ``tests/test_integration_contract.py``.
"""

import contextlib
import functools
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from decimal import Decimal

import pytest
from selenium.common.exceptions import InvalidSessionIdException, TimeoutException

from core.errors import (BrowserError, ErpTimeout, ErpUnavailable, SessionExpired,
                         UnexpectedPage)
from integrations import get_integration_class
from integrations.base import Credentials, LineOutcome
from integrations.browser import (MASK, error_page_reason, map_webdriver_error,
                                  process_running, reap_orphaned_browsers,
                                  save_failure_artifacts, scrub_html)
from integrations.erp_sim.flow import ErpSimIntegration
from integrations.erp_sim.flow import amount_text
from integrations.erp_sim import pages as classic_pages
# Fixtures; parameters of the same names below are pytest's injection, not shadowing.
from tests.conftest_erp import erp_server, erp_server_factory  # noqa: F401
from tests.erp_helpers import REPO_ROOT, make_integration, next_worksheet, order

ADMIN = Credentials("admin", "admin")
make_integration = functools.partial(make_integration, "erp_sim")


@pytest.fixture(scope="module")
def artifact_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="module")
def integration(erp_server, artifact_dir):
    integration = make_integration(erp_server.url, artifact_dir)
    yield integration
    integration.close()


# -- classic pages ---------------------------------------------------------------------------
# What every integration must do is checked for this one too by test_integration_contract.py;
# here is only what is particular to the classic pages and the browser plumbing.

def test_registered_under_its_name():
    assert get_integration_class("erp_sim") is ErpSimIntegration


def test_unknown_page_is_unexpected(erp_server, tmp_path):
    integration = make_integration(erp_server.url + "/no/such/app/", tmp_path, wait_timeout=1.0)
    try:
        with pytest.raises(UnexpectedPage, match="404 Not Found"):
            integration.add_line(order(), ADMIN)
    finally:
        integration.close()


def test_a_page_replaced_under_the_script_is_refilled(erp_server_factory, tmp_path):
    erp = erp_server_factory(save_delay=0, extra_args=["--rerender", "--seed", "1"])
    integration = make_integration(erp.url, tmp_path)
    sheet = str(next_worksheet())
    lines = [order(sheet, product_nr=str(nr)) for nr in range(10, 16)]
    try:
        results = integration.add_lines(sheet, lines, ADMIN)
    finally:
        integration.close()
    assert set(results.values()) == {LineOutcome.CREATED}
    assert [(line["product_nr"], line["reference"]) for line in erp.worksheet(sheet)["lines"]] \
        == [(int(line.product_nr), line.text) for line in lines]


# -- browser plumbing --------------------------------------------------------------------------

def test_scrub_html_masks_secrets_and_password_values():
    page = ('<input type="password" name="pw" value="hunter2&amp;x">'
            '<p>hunter2&amp;x</p><p>hunter2&x</p><input name="user" value="bob">')
    scrubbed = scrub_html(page, ["hunter2&x", ""])
    assert "hunter2" not in scrubbed and 'value=""' in scrubbed and 'value="bob"' in scrubbed
    assert scrubbed.count(MASK) == 2


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


def test_land_recognises_an_error_page_without_a_check_of_its_own(integration):
    # the flow opens its start page with check=False: land's own poll must see a 5xx page
    browser = integration._browser_for(ADMIN)
    browser.open("data:text/html,<title>502 Bad Gateway</title><h1>502 Bad Gateway</h1>",
                 check=False)
    with pytest.raises(ErpUnavailable, match="502"):
        classic_pages.land(browser, classic_pages.SearchPage)


def test_a_worksheet_cut_off_mid_answer_is_never_read(integration, tmp_path):
    # What the hostile network's reset_mid_answer does to a page load: the browser shows
    # the half it got -- the sheet and some of its lines -- and the document stays
    # "loading". Read as the worksheet, it lacks lines that are on it.
    rows = "".join(f'<tr class="line" data-line-id="{n}"><td class="line-id">{n}</td>'
                   f'<td class="product-nr">10</td><td class="amount">1</td>'
                   f'<td class="text">order {n}</td></tr>' for n in range(400))
    page = (f'<html><body><div id="worksheet" data-number="7"><table id="lines">{rows}'
            f'</table></div></body></html>').encode()
    browser = integration._browser_for(ADMIN)
    with answered_cut_off(page, len(page) // 2) as url:
        browser.open(url + "/worksheets/7", check=False)
    assert browser.driver.execute_script("return document.readyState") == "loading"
    assert browser.driver.find_elements("css selector", "#lines tr.line")  # half a sheet
    with pytest.raises(ErpTimeout):
        classic_pages.land(browser, classic_pages.WorksheetPage)


def test_a_page_cut_off_before_its_body_gets_no_screenshot_and_the_browser_goes_on(
        integration, tmp_path):
    # Such a document stays "loading" with nothing to paint: Chromium's screenshot of
    # it never returned, and chromedriver held every later command behind it (seen
    # behind the hostile network: the browser answered nothing for minutes)
    browser = integration._browser_for(ADMIN)
    with answered_cut_off(b"<html><head><title>Worksheet</title></head><body>x</body></html>",
                          6) as url:
        browser.open(url + "/worksheets/7", check=False)
    assert browser.driver.execute_script("return document.body") is None
    paths = save_failure_artifacts(browser.driver, str(tmp_path), "u-cut", ErpTimeout.reason_code)
    assert [os.path.splitext(path)[1] for path in paths] == [".html"]
    browser.open("data:text/html,<h1>after</h1>", check=False)
    assert browser.texts("h1") == ["after"]


@contextlib.contextmanager
def answered_cut_off(page, keep):
    """A server answering one request with ``page``'s headers and its first ``keep``
    bytes, then a reset (an RST): what the hostile network's ``reset_mid_answer`` does.

    :returns: (as a context) the server's URL; the answer has been cut when it exits
    """
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)

        def answer_part():
            client, _ = listener.accept()
            client.recv(65536)
            client.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: "
                           + str(len(page)).encode() + b"\r\n\r\n" + page[:keep])
            time.sleep(0.2)
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.close()

        server = threading.Thread(target=answer_part)
        server.start()
        try:
            yield f"http://127.0.0.1:{listener.getsockname()[1]}"
        finally:
            server.join()


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
    # Chromium's own children exit a moment after their parent: give them the same deadline
    deadline = time.monotonic() + 5
    while _browser_processes(profile) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _browser_processes(profile)


def _browser_processes(profile):
    return [pid for pid in os.listdir("/proc") if pid.isdigit()
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
