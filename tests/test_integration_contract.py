"""The contract of :class:`integrations.base.Integration`, checked for every integration.

Each test runs once per integration (``erp_sim`` drives the classic pages,
``erp_sim_spa`` the single-page app) against a real erp_sim server of that flavour in
real headless Chromium. One server and one integration (one browser) per flavour serve
most tests; those that need other ERP or browser settings start their own.
"""

import logging
import os
import time

import pytest

from core.errors import (BrowserError, ErpTimeout, ErpUnavailable, InvalidAmount, LoginFailed,
                         ProductNotFound, TransientError, WorksheetClosed, WorksheetNotFound)
from integrations import get_integration_class
from integrations.base import Credentials, LineOutcome
from tests.erp_helpers import (LOG, ChromedriverServer, ErpSimServer, closed_port_url,
                               make_integration, next_worksheet, order)

#: integration name -> the erp_sim flavour it drives
FLAVORS = {"erp_sim": "classic", "erp_sim_spa": "spa"}
ADMIN = Credentials("admin", "admin")
#: a user with a password that cannot be mistaken for anything else on a page
CLERK = Credentials("clerk", "Cl3rk-&<pw>\"only")
CHAOS = ("--error-rate", "0.2", "--rerender", "--slow-save", "1", "--lock-rate", "0.2",
         "--latency", "0-0.2", "--seed", "7")


def start_erp(name, *extra_args, **options):
    options.setdefault("save_delay", 0.05)
    return ErpSimServer(flavor=FLAVORS[name], extra_args=[
        "--user", f"{CLERK.username}:{CLERK.password}", *extra_args], **options).start()


def add_until_settled(integration, worksheet, lines, credentials, rounds=25):
    """Call add_lines again for the lines that failed transiently, like the worker does.

    :returns: ``{uniqueid: final result}``
    """
    final, pending = {}, list(lines)
    for _ in range(rounds):
        results = integration.add_lines(worksheet, pending, credentials)
        assert set(results) == {line.uniqueid for line in pending}
        final.update(results)
        pending = [line for line in pending if isinstance(results[line.uniqueid], TransientError)]
        if not pending:
            return final
        time.sleep(0.2)  # the worker's backoff
    raise AssertionError(f"still failing after {rounds} rounds: {final}")


@pytest.fixture(scope="module", params=sorted(FLAVORS))
def name(request):
    return request.param


@pytest.fixture(scope="module")
def erp(name):
    server = start_erp(name)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def artifact_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("artifacts")


@pytest.fixture(scope="module")
def integration(name, erp, artifact_dir):
    integration = make_integration(name, erp.url, artifact_dir)
    yield integration
    integration.close()


@pytest.fixture
def own_erp(name):
    """``own_erp(*flags, **ErpSimServer options)``: a server of this flavour for one test."""
    servers = []

    def start(*extra_args, **options):
        servers.append(start_erp(name, *extra_args, **options))
        return servers[-1]
    yield start
    for server in servers:
        server.stop()


class TestIntegrationContract:

    def test_registered_under_its_name(self, name):
        assert get_integration_class(name).name == name

    def test_adds_one_line_then_reports_it_existed(self, integration, erp):
        line = order(amount="5.000")
        assert integration.add_line(line, ADMIN) is LineOutcome.CREATED
        assert erp.lines_with(line.worksheet, line.uniqueid) == [
            {"product_nr": 10, "amount": "5", "reference": line.text}]
        assert integration.add_line(line, ADMIN) is LineOutcome.EXISTED
        assert len(erp.lines_with(line.worksheet, line.uniqueid)) == 1

    def test_uniqueid_is_matched_as_a_whole_word(self, integration, erp):
        longer = order(amount="2.50")
        shorter = order(worksheet=longer.worksheet, uniqueid=longer.uniqueid[:-1])
        assert integration.add_line(longer, ADMIN) is LineOutcome.CREATED
        assert integration.add_line(shorter, ADMIN) is LineOutcome.CREATED
        assert erp.lines_with(longer.worksheet, longer.uniqueid)[0]["amount"] == "2.5"
        assert len(erp.lines_with(longer.worksheet, shorter.uniqueid)) == 1

    def test_add_lines_gives_each_line_its_own_result(self, integration, erp, caplog):
        sheet = str(next_worksheet())
        present = order(sheet, product_nr="11")
        assert integration.add_line(present, ADMIN) is LineOutcome.CREATED
        new = [order(sheet, product_nr="12", amount="1.5"), order(sheet, product_nr="150")]
        unknown = order(sheet, product_nr="999")
        batch = [new[0], present, unknown, new[1]]
        with caplog.at_level(logging.INFO, logger=LOG.name):
            results = integration.add_lines(sheet, batch, ADMIN)
        assert results[new[0].uniqueid] is LineOutcome.CREATED
        assert results[new[1].uniqueid] is LineOutcome.CREATED
        assert results[present.uniqueid] is LineOutcome.EXISTED
        assert isinstance(results[unknown.uniqueid], ProductNotFound)
        assert caplog.text.count("logging in") == 0  # the session was kept
        lines = erp.worksheet(sheet)["lines"]
        assert [line["reference"] for line in lines] == [present.text, new[0].text, new[1].text]
        assert lines[1]["amount"] == "1.5" and lines[2]["product_nr"] == 150
        assert integration.add_lines(sheet, batch[:2], ADMIN) == {
            new[0].uniqueid: LineOutcome.EXISTED, present.uniqueid: LineOutcome.EXISTED}

    @pytest.mark.parametrize("worksheet, product_nr, amount, error", [
        ("1500", "10", "1", WorksheetNotFound),
        ("950", "10", "1", WorksheetClosed),
        (None, "999", "1", ProductNotFound),
        (None, "10", "-1", InvalidAmount),
    ])
    def test_erp_refusals_have_their_reason_codes(self, integration, erp, worksheet,
                                                  product_nr, amount, error):
        line = order(worksheet=worksheet, product_nr=product_nr, amount=amount)
        with pytest.raises(error) as raised:
            integration.add_line(line, ADMIN)
        assert raised.value.reason_code == error.reason_code
        if line.worksheet != "1500":
            assert erp.lines_with(line.worksheet, line.uniqueid) == []

    def test_a_closed_worksheet_fails_every_line(self, integration):
        lines = [order("951"), order("951", product_nr="999")]
        results = integration.add_lines("951", lines, ADMIN)
        assert {result.reason_code for result in results.values()} == {"WORKSHEET_CLOSED"}

    def test_wrong_password_is_login_failed_with_scrubbed_artifacts(self, integration,
                                                                    artifact_dir, caplog):
        line = order()
        wrong = Credentials(CLERK.username, CLERK.password + "x")
        with caplog.at_level(logging.INFO, logger=LOG.name):
            with pytest.raises(LoginFailed) as raised:
                integration.add_line(line, wrong)
        assert raised.value.reason_code == "LOGIN_FAILED"
        saved = sorted(p for p in os.listdir(artifact_dir) if line.uniqueid in p)
        assert [os.path.splitext(p)[1] for p in saved] == [".html", ".png"]
        assert all("LOGIN_FAILED" in p for p in saved)
        assert "Invalid username or password" in (artifact_dir / saved[0]).read_text()
        for path in saved:
            assert b"Cl3rk" not in (artifact_dir / path).read_bytes()
        assert "Cl3rk" not in caplog.text
        assert str(artifact_dir / saved[0]) in caplog.text  # the paths are logged
        # the right password works on the same integration
        assert integration.add_line(order(), CLERK) is LineOutcome.CREATED

    def test_artifacts_of_a_logged_in_page_hide_the_password(self, integration, artifact_dir):
        line = order(product_nr="999")
        with pytest.raises(ProductNotFound):
            integration.add_line(line, CLERK)
        html_name = next(p for p in os.listdir(artifact_dir)
                         if line.uniqueid in p and p.endswith("_PRODUCT_NOT_FOUND.html"))
        html = (artifact_dir / html_name).read_text()
        assert "999" in html and "Cl3rk" not in html

    def test_session_lost_mid_visit_logs_in_again_and_adds_once(self, integration, erp):
        line = order()
        sheet = integration._open_worksheet(line.worksheet, ADMIN)
        integration._browser.driver.delete_all_cookies()  # logged out behind its back
        integration._write(sheet, line, ADMIN)
        assert len(erp.lines_with(line.worksheet, line.uniqueid)) == 1

    def test_dead_browser_is_transient_and_then_replaced(self, integration, erp):
        integration._browser_for(ADMIN).driver.quit()  # the browser crashed
        with pytest.raises(BrowserError):
            integration.add_line(order(), ADMIN)
        assert integration._browser is None
        line = order()
        assert integration.add_line(line, ADMIN) is LineOutcome.CREATED
        assert len(erp.lines_with(line.worksheet, line.uniqueid)) == 1

    def test_close_twice_is_safe_and_next_line_starts_afresh(self, integration, erp):
        integration.close()
        integration.close()
        line = order()
        assert integration.add_line(line, ADMIN) is LineOutcome.CREATED
        assert len(erp.lines_with(line.worksheet, line.uniqueid)) == 1

    def test_browser_is_recycled_after_n_orders(self, name, erp, tmp_path):
        integration = make_integration(name, erp.url, tmp_path, recycle_after_orders=3)
        sheet = str(next_worksheet())
        try:
            integration.add_lines(sheet, [order(sheet), order(sheet)], ADMIN)
            first = integration._browser
            integration.add_line(order(sheet), ADMIN)
            assert integration._browser is first
            integration.add_line(order(sheet), ADMIN)
            assert integration._browser is not first and integration._browser is not None
        finally:
            integration.close()
        assert len(erp.worksheet(sheet)["lines"]) == 4

    # -- other ERP or browser settings -----------------------------------------------------

    def test_erp_not_running_is_unavailable(self, name, tmp_path):
        integration = make_integration(name, closed_port_url(), tmp_path)
        try:
            with pytest.raises(ErpUnavailable) as raised:
                integration.add_line(order(), ADMIN)
            assert raised.value.reason_code == "ERP_UNAVAILABLE"
            assert {os.path.splitext(p)[1] for p in os.listdir(tmp_path)} == {".png", ".html"}
        finally:
            integration.close()

    def test_session_expiry_between_calls_logs_in_again(self, name, own_erp, tmp_path,
                                                        caplog):
        erp = own_erp(session_ttl=1.5)
        integration = make_integration(name, erp.url, tmp_path)
        first, second = order(), order()
        try:
            with caplog.at_level(logging.INFO, logger=LOG.name):
                assert integration.add_line(first, ADMIN) is LineOutcome.CREATED
                time.sleep(1.7)
                assert integration.add_line(second, ADMIN) is LineOutcome.CREATED
        finally:
            integration.close()
        assert caplog.text.count("logging in") == 2
        assert len(erp.lines_with(first.worksheet, first.uniqueid)) == 1
        assert len(erp.lines_with(second.worksheet, second.uniqueid)) == 1

    def test_timeout_after_submit_never_adds_twice(self, name, own_erp, tmp_path):
        erp = own_erp(save_delay=2.0)
        integration = make_integration(name, erp.url, tmp_path, page_load_timeout=1.0)
        line = order()
        try:
            with pytest.raises(ErpTimeout):  # read back: the ERP was still saving
                integration.add_line(line, ADMIN)
            deadline = time.monotonic() + 5  # the worker's backoff
            while not erp.lines_with(line.worksheet, line.uniqueid) and \
                    time.monotonic() < deadline:
                time.sleep(0.1)
            assert integration.add_line(line, ADMIN) is LineOutcome.EXISTED
        finally:
            integration.close()
        assert len(erp.lines_with(line.worksheet, line.uniqueid)) == 1

    def test_remote_webdriver(self, name, erp, tmp_path):
        with ChromedriverServer() as chromedriver:
            integration = make_integration(name, erp.url, tmp_path,
                                           selenium_remote_url=chromedriver.url)
            line = order()
            try:
                assert integration.add_line(line, ADMIN) is LineOutcome.CREATED
                assert integration.add_line(line, ADMIN) is LineOutcome.EXISTED
            finally:
                integration.close()
        assert len(erp.lines_with(line.worksheet, line.uniqueid)) == 1

    def test_under_chaos_retries_converge_to_one_line_per_order(self, name, own_erp,
                                                                 tmp_path):
        erp = own_erp(*CHAOS)
        integration = make_integration(name, erp.url, tmp_path)
        sheet = str(next_worksheet())
        lines = [order(sheet, product_nr=str(10 + i)) for i in range(6)]
        lines.append(order(sheet, product_nr="999"))
        try:
            results = add_until_settled(integration, sheet, lines, ADMIN)
        finally:
            integration.close()
        assert isinstance(results.pop(lines[-1].uniqueid), ProductNotFound)
        assert set(results.values()) <= {LineOutcome.CREATED, LineOutcome.EXISTED}
        references = [line["reference"] for line in erp.worksheet(sheet)["lines"]]
        assert sorted(references) == sorted(line.text for line in lines[:-1])

