"""The health overview page in real headless Chromium, against a real fleet.

``FLEET_SCREENSHOT=docs/overview.png pytest tests/test_fleet_overview_browser.py``
refreshes the screenshot in the docs.
"""

import os
import tempfile

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from tests.erp_helpers import ErpSimServer
from tests.fleet_helpers import ROOT, Fleet, fleet_env, wait_for

A, B, C = "Bennys Auto", "Bilverksted Ålesund", "Garage Tre"


class OverviewPage:
    """The overview page (``/`` of the management API).

    The page redraws its table every few seconds, so every read and click runs inside a
    wait that retries on a stale element.
    """

    TOKEN = (By.ID, "token")
    CONNECT = (By.ID, "connect")
    ROWS = (By.CSS_SELECTOR, "#integrations tbody tr")
    STATUS = (By.ID, "status")

    def __init__(self, driver, url):
        self.driver = driver
        self.url = url
        self.wait = WebDriverWait(driver, 20, poll_frequency=0.1,
                                  ignored_exceptions=(StaleElementReferenceException,))

    def open(self):
        self.driver.get(self.url + "/")
        self.wait.until(EC.element_to_be_clickable(self.CONNECT))
        return self

    def connect(self, token):
        self.driver.find_element(*self.TOKEN).send_keys(token)
        self.driver.find_element(*self.CONNECT).click()
        self.wait.until(EC.presence_of_element_located(self.ROWS))
        return self

    def _row(self, workshop):
        for row in self.driver.find_elements(*self.ROWS):
            if row.get_attribute("data-workshop") == workshop:
                return row
        return None

    def _health(self, workshop):
        row = self._row(workshop)
        return row.get_attribute("data-health") if row is not None else None

    def health(self, workshop):
        """:returns: the health shown for ``workshop``, or None while it is not listed"""
        return self.wait.until(lambda _: [self._health(workshop)])[0]

    def wait_for_health(self, workshop, health):
        self.wait.until(lambda _: self._health(workshop) == health)
        return self

    def click(self, workshop, action):
        """Press the button of ``action`` (e.g. ``stop_worker``) in the workshop's row."""
        def press(_):
            row = self._row(workshop)
            found = row and row.find_elements(By.CSS_SELECTOR, f"button[data-action='{action}']")
            if not found:
                return False
            found[0].click()
            return True
        self.wait.until(press)
        return self

    def row_text(self, workshop):
        return self.wait.until(lambda _: self._row(workshop).text)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    with ErpSimServer(save_delay=0.05) as erp:
        fleet = Fleet(fleet_env(tmp_path_factory.mktemp("fleet"), RETRY_BASE_SECONDS="0.2",
                                BROWSER_IDLE_SECONDS="1", STOP_WAIT_SECONDS="30"))
        for workshop in (A, B):
            fleet.add(workshop, erp.url)
        fleet.add(C, erp.url, None, "--inactive")
        try:
            fleet.up()
            fleet.wait_health({A: "ok", B: "ok", C: "inactive"})
            # one refused order, so the page has a last error to show
            fleet.order(A, "order-4711", 999_999)
            wait_for(lambda: fleet.order_status(A, "order-4711") == "error", 60, 0.2, "the refused order")
            yield fleet
        finally:
            fleet.cleanup()


@pytest.fixture
def driver():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--window-size=1400,600"):
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="overview-chrome-")
    options.add_argument(f"--user-data-dir={profile}")
    browser = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=options)
    browser.set_page_load_timeout(20)
    try:
        yield browser
    finally:
        browser.quit()


def test_stop_worker_button_changes_the_state_on_the_page(fleet, driver):
    page = OverviewPage(driver, fleet.url).open().connect(fleet.env["MANAGEMENT_TOKEN"])
    page.wait_for_health(A, "ok").wait_for_health(B, "ok").wait_for_health(C, "inactive")
    assert "WORKSHEET_NOT_FOUND" in page.row_text(A)

    page.click(B, "stop_worker").wait_for_health(B, "worker_stopped")
    assert fleet.overview()[B]["worker"] == "stopped"  # the instance itself says so
    assert page.health(A) == "ok"

    target = os.environ.get("FLEET_SCREENSHOT")
    if target:
        driver.save_screenshot(os.path.join(ROOT, target))

    page.click(B, "start_worker").wait_for_health(B, "ok")


def test_the_page_shows_nothing_without_the_token(fleet, driver):
    page = OverviewPage(driver, fleet.url).open()
    driver.find_element(*OverviewPage.TOKEN).send_keys("wrong-token")
    driver.find_element(*OverviewPage.CONNECT).click()
    page.wait.until(EC.text_to_be_present_in_element(OverviewPage.STATUS, "Could not load"))
    assert driver.find_elements(*OverviewPage.ROWS) == []
