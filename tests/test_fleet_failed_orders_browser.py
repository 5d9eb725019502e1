"""Acting on failed orders from the overview page, in real headless Chromium, against a
real fleet (``manage.py up``: supervisord, an instance with its own Chromium) and a real
erp_sim. The ERP's own read path (``/_sim``) says what ended on the worksheets.

An order fails because its worksheet is closed (WORKSHEET_CLOSED); the page lists it with
its reason, time, attempts and screenshot; the worksheet is reopened in the ERP and Retry
on the page makes the order ``created`` with exactly one line. A second one is resolved by
hand and gets no line.
"""

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC

from tests.erp_helpers import ErpSimServer
from tests.fleet_helpers import Fleet, fleet_env, wait_for
from tests.test_fleet_overview_browser import OverviewPage, driver  # noqa: F401 (fixture)

W = "Bennys Auto"
CLOSED_SHEETS = (901, 902)


class FailedOrdersPanel:
    """The failed-orders panel of the overview page (one workshop at a time)."""

    ROWS = (By.CSS_SELECTOR, "#failed-orders tbody tr")
    SHOT = (By.ID, "shot")
    STATUS = (By.ID, "failed-status")

    def __init__(self, page):
        self.page = page
        self.driver = page.driver
        self.wait = page.wait

    def open(self, workshop):
        self.page.click(workshop, "failed")
        self.wait.until(EC.visibility_of_element_located((By.ID, "failed")))
        return self

    def _row(self, uniqueid):
        for row in self.driver.find_elements(*self.ROWS):
            if row.get_attribute("data-uniqueid") == uniqueid:
                return row
        return None

    def row_text(self, uniqueid):
        return self.wait.until(lambda _: self._row(uniqueid) and self._row(uniqueid).text)

    def listed(self, uniqueid):
        return self._row(uniqueid) is not None

    def press(self, uniqueid, action, note=None):
        def press(_):
            row = self._row(uniqueid)
            if row is None:
                return False
            if note is not None:
                field = row.find_element(By.CSS_SELECTOR, "input.note")
                field.clear()
                field.send_keys(note)
            row.find_element(By.CSS_SELECTOR, f"button[data-action='{action}']").click()
            return True
        self.wait.until(press)
        return self

    def status(self):
        return self.driver.find_element(*self.STATUS).text


@pytest.fixture(scope="module")
def stand(tmp_path_factory):
    with ErpSimServer(save_delay=0.05) as erp:
        fleet = Fleet(fleet_env(tmp_path_factory.mktemp("fleet"), RETRY_BASE_SECONDS="0.2",
                                BROWSER_IDLE_SECONDS="1", STOP_WAIT_SECONDS="30"))
        fleet.add(W, erp.url)
        try:
            fleet.up()
            fleet.wait_health({W: "ok"})
            for n, sheet in enumerate(CLOSED_SHEETS, 1):
                assert erp.worksheet(sheet)["status"] == "closed"
                fleet.order(W, f"fail-{n}", sheet)
            for n in (1, 2):
                wait_for(lambda: fleet.order_status(W, f"fail-{n}") == "error", 90, 0.2,
                         f"fail-{n} to fail")
            yield fleet, erp
        finally:
            fleet.cleanup()


def test_retry_from_the_page_after_the_worksheet_is_reopened(stand, driver):  # noqa: F811
    fleet, erp = stand
    page = OverviewPage(driver, fleet.url).open().connect(fleet.env["MANAGEMENT_TOKEN"])
    page.wait_for_health(W, "ok")
    page.wait.until(lambda _: "2" in page._row(W).find_element(By.CSS_SELECTOR, "td.failed").text)
    panel = FailedOrdersPanel(page).open(W)

    text = panel.row_text("fail-1")
    assert "WORKSHEET_CLOSED" in text and "901" in text
    record = fleet.instance(W, "GET", "/get_order_status", params={"uniqueid": "fail-1"}).json()
    assert str(record["attempts"]) in text and record["updated_at"] in text

    panel.press("fail-1", "screenshot")
    shot = panel.wait.until(EC.visibility_of_element_located(panel.SHOT))
    assert "WORKSHEET_CLOSED" in shot.get_attribute("data-name")
    assert panel.wait.until(lambda d: d.execute_script(
        "return arguments[0].complete && arguments[0].naturalWidth", shot)) > 100

    erp.set_status(901, "open")  # the workshop reopens the worksheet
    panel.press("fail-1", "retry", note="worksheet reopened")
    wait_for(lambda: fleet.order_status(W, "fail-1") == "created", 90, 0.2, "fail-1 created")
    assert len(erp.lines_with(901, "fail-1")) == 1
    page.wait.until(lambda _: not panel.listed("fail-1"))  # no longer failed

    history = fleet.instance(W, "GET", "/get_order_status",
                             params={"uniqueid": "fail-1"}).json()["history"]
    assert [h["status"] for h in history][-3:] == ["placed", "processing", "created"]
    assert any(h.get("note") == "worksheet reopened" for h in history)


def test_resolve_from_the_page_ends_it_without_a_line(stand, driver):  # noqa: F811
    fleet, erp = stand
    page = OverviewPage(driver, fleet.url).open().connect(fleet.env["MANAGEMENT_TOKEN"])
    panel = FailedOrdersPanel(page).open(W)
    panel.press("fail-2", "resolve", note="typed in by hand")
    page.wait.until(lambda _: not panel.listed("fail-2"))
    assert fleet.order_status(W, "fail-2") == "resolved"
    assert erp.lines_with(902, "fail-2") == []
    page.wait.until(lambda _: panel.status() == "No failed orders.")

    driver.find_element(By.ID, "export").click()
    page.wait.until(lambda _: panel.status().startswith("Exported"))
    assert panel.status() == "Exported 2 orders."
    csv_text = fleet.api("GET", fleet.path(W, "orders.csv")).text
    assert '"fail-1","created","901"' in csv_text
    assert '"fail-2","resolved","902"' in csv_text


def test_the_failed_orders_need_the_management_token(stand):
    fleet, _ = stand
    r = requests.get(fleet.url + fleet.path(W, "orders?status=error"), timeout=10)
    assert r.status_code == 401


def test_orders_called_dot_and_dot_dot_are_acted_on_from_the_page(stand, driver):  # noqa: F811
    """Issue 28, item 5: a browser collapses the path segments "." and ".." (%2E too), so
    the page could neither retry nor resolve such an order; it names orders in the query."""
    fleet, erp = stand
    for uniqueid in (".", ".."):
        fleet.order(W, uniqueid, 902)  # still closed: both fail
    for uniqueid in (".", ".."):
        wait_for(lambda: fleet.order_status(W, uniqueid) == "error", 90, 0.2,
                 f"{uniqueid!r} to fail")
    page = OverviewPage(driver, fleet.url).open().connect(fleet.env["MANAGEMENT_TOKEN"])
    panel = FailedOrdersPanel(page).open(W)
    panel.press("..", "screenshot")
    shot = panel.wait.until(EC.visibility_of_element_located(panel.SHOT))
    assert "WORKSHEET_CLOSED" in shot.get_attribute("data-name")
    for uniqueid in (".", ".."):
        panel.press(uniqueid, "resolve", note="resolved by hand")
        page.wait.until(lambda _: not panel.listed(uniqueid))
        assert fleet.order_status(W, uniqueid) == "resolved"
    assert erp.lines_with(902, "..") == []
