"""``ERP_SYSTEM=tryton`` end to end: a real Tryton (``python -m erp_tryton``), real headless
Chromium driving sao, every result checked through Tryton's own JSON-RPC API
(:mod:`erp_tryton.rpc`), never through the integration.

One server and one integration (one browser, logged in once) serve most tests; each test
writes on sales of its own. Tests that need other settings build their own.
"""

import logging
import os
import signal
import uuid
from decimal import Decimal

import pytest

from core.errors import (BrowserError, ErpTimeout, ErpUnavailable, InvalidAmount, LoginFailed,
                         ProductNotFound, ScreenChanged, UnexpectedPage, WorksheetClosed,
                         WorksheetNotFound)
from erp_helpers import closed_port_url, make_integration
from erp_tryton import rpc
from integrations import get_integration_class
from integrations.base import Credentials, ErpState, LineOutcome, OrderLine, Written
from stands import kill_browsers_of_this_process, settle
from tryton_helpers import TrytonServer, hide_sale_lines, tryton_build  # noqa: F401  (a fixture)

ADMIN = Credentials("admin", "admin")
OPTIONS = {"database": "workshop"}
_references = iter(range(100, 899))  # open worksheets, one or more per test


def line(worksheet, product="10", amount="2.125", uniqueid=None):
    return OrderLine(uniqueid or uuid.uuid4().hex[:12], str(worksheet), product, Decimal(amount))


def tryton_lines(server, worksheet):
    """``[(product code, quantity, description)]`` as Tryton's API reports them."""
    return [(found["product_code"], found["quantity"], found["description"])
            for found in rpc.worksheet_lines(server.url, worksheet)]


def expect(lines):
    return [(one.product_nr, one.product_amount, one.text) for one in lines]


def codes(results):
    return {uid: getattr(result, "reason_code", result) for uid, result in results.items()}


class OnLog(logging.Handler):
    """Run ``action`` once, when the integration logs a message containing ``marker``:
    a way to strike between two lines of one visit without touching the integration."""

    def __init__(self, marker, action):
        super().__init__()
        self.marker, self.action, self.done = marker, action, False

    def emit(self, record):
        if not self.done and self.marker in record.getMessage():
            self.done = True
            self.action()


@pytest.fixture(scope="module")
def server(tryton_build, tmp_path_factory):
    with TrytonServer(tmp_path_factory.mktemp("tryton")) as server:
        yield server


@pytest.fixture(scope="module")
def log():
    logger = logging.getLogger("test.tryton")
    logger.setLevel(logging.DEBUG)  # OnLog strikes on a debug message between two lines
    return logger


@pytest.fixture(scope="module")
def integration(server, log, tmp_path_factory):
    integration = build(server.url, tmp_path_factory.mktemp("artifacts"), log)
    yield integration
    integration.close()


def build(url, artifact_dir, log, **config):
    integration = make_integration("tryton", url, artifact_dir, options=OPTIONS, **config)
    integration.log = log
    return integration


def test_registered_and_declares_its_database_option():
    from integrations import options_of
    assert get_integration_class("tryton").name == "tryton"
    database, = options_of("tryton")
    assert (database.name, database.default, database.env_name) == (
        "database", "workshop", "ERP_OPTION_DATABASE")
    with pytest.raises(ValueError):
        database.check("work shop;drop")


def test_a_batch_on_one_sale_is_written_once_and_redelivery_adds_nothing(server, integration):
    worksheet = next(_references)
    lines = [line(worksheet, "10", "2.125"), line(worksheet, "150", "4"),
             line(worksheet, "7", "0.5"), line(worksheet, "203", "2")]
    results = integration.add_lines(worksheet, lines, ADMIN)
    assert codes(results) == {one.uniqueid: LineOutcome.CREATED for one in lines}
    assert tryton_lines(server, worksheet) == expect(lines)

    again = integration.add_lines(worksheet, lines, ADMIN)  # re-delivered
    assert codes(again) == {one.uniqueid: LineOutcome.EXISTED for one in lines}
    assert integration.add_line(lines[0], ADMIN) is LineOutcome.EXISTED
    assert tryton_lines(server, worksheet) == expect(lines)


def test_codes_that_prefix_each_other_each_get_their_own_product(server, integration):
    """One dialog kept open for the whole batch ("Add and New"), each product picked from a
    completion started at once: "1" lists 1, 10-19, 100-199, ... and must still be 1."""
    worksheet = next(_references)
    lines = [line(worksheet, "100", "1"), line(worksheet, "10", "2"), line(worksheet, "1", "3"),
             line(worksheet, "10", "4"), line(worksheet, "101", "5")]
    results = integration.add_lines(worksheet, lines, ADMIN)
    assert codes(results) == {one.uniqueid: LineOutcome.CREATED for one in lines}
    assert tryton_lines(server, worksheet) == expect(lines)


def test_uniqueid_is_matched_as_a_whole_word(server, integration):
    worksheet = next(_references)
    longer = line(worksheet, uniqueid="abc1234")
    shorter = line(worksheet, "11", "1", uniqueid="abc123")
    assert integration.add_line(longer, ADMIN) is LineOutcome.CREATED
    assert integration.add_line(shorter, ADMIN) is LineOutcome.CREATED
    assert tryton_lines(server, worksheet) == expect([longer, shorter])


def test_refused_lines_fail_alone_and_the_others_are_written(server, integration):
    worksheet = next(_references)
    good, unknown, fraction, last = (line(worksheet, "12", "1.5"), line(worksheet, "9999"),
                                     line(worksheet, "201", "2.5"), line(worksheet, "13", "3"))
    results = integration.add_lines(worksheet, [good, unknown, fraction, last], ADMIN)
    assert results[good.uniqueid] is LineOutcome.CREATED
    assert isinstance(results[unknown.uniqueid], ProductNotFound)
    # Tryton rounds 2.5 of a product sold per Unit (0 digits) to 3: refused, not rounded
    assert isinstance(results[fraction.uniqueid], InvalidAmount)
    assert results[last.uniqueid] is LineOutcome.CREATED
    assert tryton_lines(server, worksheet) == expect([good, last])


def test_closed_and_missing_sales(server, integration):
    closed = line("950")
    assert isinstance(integration.add_lines("950", [closed], ADMIN)[closed.uniqueid],
                      WorksheetClosed)
    assert [found[2] for found in tryton_lines(server, "950")] == ["OilMat seed-950"]
    missing = line("5000")
    assert isinstance(integration.add_lines("5000", [missing], ADMIN)[missing.uniqueid],
                      WorksheetNotFound)


def test_a_sale_closed_after_a_first_visit_is_refused(server, integration):
    worksheet = next(_references)
    first, later = line(worksheet), line(worksheet, "14", "1")
    assert integration.add_line(first, ADMIN) is LineOutcome.CREATED  # its id is now known
    assert rpc.close_worksheet(server.url, worksheet) == "quotation"
    assert isinstance(integration.add_lines(worksheet, [later], ADMIN)[later.uniqueid],
                      WorksheetClosed)
    # the first order delivered again: its line is there, so it is answered, not refused
    assert integration.add_lines(worksheet, [first], ADMIN) == {
        first.uniqueid: LineOutcome.EXISTED}
    assert tryton_lines(server, worksheet) == expect([first])


def test_a_duplicate_on_a_closed_sale_is_line_unverified_with_a_screenshot(server,
                                                                             integration,
                                                                             tmp_path):
    worksheet = next(_references)
    twice = line(worksheet, "12", "1")
    client = server.client()
    client.add_line(worksheet, "12", Decimal("1"), twice.text)
    client.add_line(worksheet, "12", Decimal("1"), twice.text)
    assert rpc.close_worksheet(server.url, worksheet) == "quotation"
    result = integration.add_lines(worksheet, [twice], ADMIN)[twice.uniqueid]
    assert result.reason_code == "LINE_UNVERIFIED"
    shots = [name for name in os.listdir(integration.config.artifact_dir)
             if twice.uniqueid in name and name.endswith(".png")]
    assert shots, "no screenshot of the unverified line"
    assert len(tryton_lines(server, worksheet)) == 2  # nothing deleted on a closed sale


def test_a_comment_line_carrying_the_uniqueid_is_deleted_and_the_line_written(server,
                                                                                integration):
    """sao's own trap: Add clicked while the Description has focus saves a comment line
    with no product and no quantity. Found on read-back, it is deleted and written again."""
    worksheet = next(_references)
    wanted = line(worksheet, "10", "2")
    client = server.client()
    client.model("sale.line", "create", [{"sale": client.sale(worksheet)["id"],
                                          "type": "comment", "description": wanted.text}])
    result = integration.add_lines(worksheet, [wanted], ADMIN)[wanted.uniqueid]
    assert result == Written(LineOutcome.EXISTED, ("removed 1 wrong line and wrote it again",))
    assert tryton_lines(server, worksheet) == expect([wanted])


def test_session_expired_between_visits_and_between_lines_of_one_visit(server, integration,
                                                                      log):
    worksheet = next(_references)
    first = line(worksheet)
    assert integration.add_line(first, ADMIN) is LineOutcome.CREATED
    assert rpc.expire_sessions(server.data_dir) >= 1
    batch = [line(worksheet, "15", "1"), line(worksheet, "16", "2"), line(worksheet, "17", "3")]
    # and once more after the first line of this visit is filled in
    strike = OnLog(f"line for order {batch[0].uniqueid} filled in",
                   lambda: rpc.expire_sessions(server.data_dir))
    log.addHandler(strike)
    try:
        results = integration.add_lines(worksheet, batch, ADMIN)
    finally:
        log.removeHandler(strike)
    assert strike.done
    assert codes(results) == {one.uniqueid: LineOutcome.CREATED for one in batch}
    assert tryton_lines(server, worksheet) == expect([first, *batch])


def test_browser_killed_mid_batch_is_transient_then_every_line_once(server, integration, log):
    worksheet = next(_references)
    batch = [line(worksheet, "20", "1"), line(worksheet, "21", "2"), line(worksheet, "22", "3")]
    strike = OnLog(f"line for order {batch[0].uniqueid} filled in",
                   kill_browsers_of_this_process)
    log.addHandler(strike)
    try:
        results = integration.add_lines(worksheet, batch, ADMIN)
    finally:
        log.removeHandler(strike)
    assert strike.done
    assert all(isinstance(results[one.uniqueid], BrowserError) for one in batch)
    final = settle(integration, worksheet, batch, ADMIN)
    assert all(result in (LineOutcome.CREATED, LineOutcome.EXISTED) for result in final.values())
    assert tryton_lines(server, worksheet) == expect(batch)


def test_wrong_password_is_login_failed(server, log, tmp_path):
    # Once only: Tryton answers every login with 429 after 5 failures within 10 minutes.
    integration = build(server.url, tmp_path, log)
    try:
        wrong = line(next(_references))
        result = integration.add_lines(wrong.worksheet, [wrong],
                                       Credentials("admin", "not-the-password"))
        assert isinstance(result[wrong.uniqueid], LoginFailed)
        assert "not-the-password" not in "".join(
            open(tmp_path / name, errors="replace").read() for name in os.listdir(tmp_path))
    finally:
        integration.close()
    assert rpc.worksheet_lines(server.url, wrong.worksheet) == []


def test_nothing_listening_is_erp_unavailable(log, tmp_path):
    integration = build(closed_port_url(), tmp_path, log)
    try:
        one = line(next(_references))
        assert isinstance(integration.add_lines(one.worksheet, [one], ADMIN)[one.uniqueid],
                          ErpUnavailable)
    finally:
        integration.close()


def test_a_hung_server_is_erp_timeout_and_nothing_is_doubled(tryton_build, log, tmp_path):
    with TrytonServer(tmp_path / "data") as server:
        integration = build(server.url, tmp_path / "artifacts", log, wait_timeout=3.0)
        try:
            worksheet = next(_references)
            first, stuck = line(worksheet), line(worksheet, "30", "1")
            assert integration.add_line(first, ADMIN) is LineOutcome.CREATED
            server.process.send_signal(signal.SIGSTOP)  # answers nothing, refuses nothing
            try:
                result = integration.add_lines(worksheet, [stuck], ADMIN)[stuck.uniqueid]
            finally:
                server.process.send_signal(signal.SIGCONT)
            assert isinstance(result, ErpTimeout)
            final = settle(integration, worksheet, [stuck], ADMIN)
            assert final[stuck.uniqueid] in (LineOutcome.CREATED, LineOutcome.EXISTED)
            assert tryton_lines(server, worksheet) == expect([first, stuck])
        finally:
            integration.close()


# -- in the user's language and locale (issue 25) -----------------------------------------

@pytest.fixture(scope="module")
def french(tryton_build, log, tmp_path_factory):
    """A stand-up whose admin works in French: a decimal comma and a (narrow) no-break
    space between thousands, every label and dialog in French."""
    with TrytonServer(tmp_path_factory.mktemp("tryton-fr"), ["--language", "fr"],
                      startup_timeout=180) as server:
        assert server.client().context["language"] == "fr"
        integration = build(server.url, tmp_path_factory.mktemp("artifacts-fr"), log)
        try:
            yield server, integration
        finally:
            integration.close()


def test_amounts_in_a_decimal_comma_locale_land_as_ordered(french):
    server, integration = french
    worksheet = next(_references)
    lines = [line(worksheet, "10", "1234.567"),  # shown "1 234,567" (3 digits per litre)
             line(worksheet, "11", "4.75"), line(worksheet, "12", "0.001"),
             line(worksheet, "206", "12.5"), line(worksheet, "207", "0.01"),  # 2 per kg
             line(worksheet, "202", "3")]  # 0 per unit
    refused = [line(worksheet, "201", "2.5"),  # sao would make it 3
               line(worksheet, "208", "1.005")]  # and this 1.01 (or 1.00)
    results = integration.add_lines(worksheet, lines + refused, ADMIN)
    assert codes(results) == {**{one.uniqueid: LineOutcome.CREATED for one in lines},
                              **{one.uniqueid: "INVALID_AMOUNT" for one in refused}}
    assert tryton_lines(server, worksheet) == expect(lines)  # read through JSON-RPC
    again = integration.add_lines(worksheet, lines, ADMIN)  # read back in French too
    assert codes(again) == {one.uniqueid: LineOutcome.EXISTED for one in lines}


def test_refusals_keep_their_reason_codes_in_french(french):
    server, integration = french
    worksheet = next(_references)
    cases = {"950": WorksheetClosed, "5000": WorksheetNotFound}
    for sheet, error in cases.items():
        one = line(sheet)
        assert isinstance(integration.add_lines(sheet, [one], ADMIN)[one.uniqueid], error)
    unknown = line(worksheet, "9999")
    assert isinstance(integration.add_lines(worksheet, [unknown], ADMIN)[unknown.uniqueid],
                      ProductNotFound)
    assert tryton_lines(server, worksheet) == []


def test_a_customised_sale_form_is_a_changed_screen_held_then_written_once_when_back(
        tryton_build, log, tmp_path):
    """A Tryton whose sale form an admin customised without the Lines list (a view that
    inherits the form, as Tryton's own customisation does): the probe says ``changed``
    naming what is missing, a visit writes nothing and answers ERP_SCREEN_CHANGED (the
    worker holds the orders); with the customisation gone, the probe passes and the line
    is written once -- read through JSON-RPC; customised again while the same browser keeps
    sao loaded, the next probe says ``changed`` again. A closed or unknown probe worksheet
    is no changed screen."""
    with TrytonServer(tmp_path / "data") as server:
        client = server.client()
        custom = hide_sale_lines(client)
        integration = build(server.url, tmp_path / "artifacts", log)
        try:
            one = line(next(_references))
            probe = integration.probe(one.worksheet, ADMIN)
            assert probe.state == ErpState.CHANGED and "no field lines" in probe.detail
            assert any(path.endswith(".png") for path in probe.artifacts)
            result = integration.add_lines(one.worksheet, [one], ADMIN)[one.uniqueid]
            assert isinstance(result, ScreenChanged), result
            assert "no field lines" in result.reason_text
            assert tryton_lines(server, one.worksheet) == []
            client.model("ir.ui.view", "delete", custom)
            # the same browser: sao keeps the views it loaded, the probe loads it anew
            probe = integration.probe(one.worksheet, ADMIN)
            assert probe.state == ErpState.OK, probe
            assert probe.checked == ("login", "search", "worksheet", "line form", "lines")
            assert tryton_lines(server, one.worksheet) == []  # the probe wrote nothing
            for worksheet, code in (("950", "WORKSHEET_CLOSED"), ("5000", "WORKSHEET_NOT_FOUND")):
                probe = integration.probe(worksheet, ADMIN)
                assert probe.state == ErpState.OK and code in probe.detail, probe
            assert integration.probe(None, ADMIN).checked == ("login", "search")
            assert integration.add_lines(one.worksheet, [one], ADMIN) == {
                one.uniqueid: LineOutcome.CREATED}
            # customised while a browser keeps sao loaded after a visit: the next probe sees it
            custom = hide_sale_lines(client)
            probe = integration.probe(one.worksheet, ADMIN)
            assert probe.state == ErpState.CHANGED and "no field lines" in probe.detail, probe
            client.model("ir.ui.view", "delete", custom)
        finally:
            integration.close()
        assert tryton_lines(server, one.worksheet) == expect([one])


@pytest.mark.parametrize("text, number_format, amount", [
    ("4,750", {"decimal": ",", "group": "."}, "4.75"),
    ("1.234,567 l", {"decimal": ",", "group": "."}, "1234.567"),
    ("1\u202f234,5", {"decimal": ",", "group": "\u202f"}, "1234.5"),  # French
    ("1'234.5", {"decimal": ".", "group": "'"}, "1234.5"),
    ("1,234.5l", {"decimal": ".", "group": ","}, "1234.5"),
    ("\u06f4\u066b\u06f7\u06f5", {"decimal": "\u066b", "group": "\u066c"}, "4.75"),  # Persian
    ("\u22122,5", {"decimal": ",", "group": "."}, "-2.5"),
    ("", {"decimal": ",", "group": "."}, None),
])
def test_quantities_are_read_in_the_locale_sao_writes_them_in(text, number_format, amount):
    from integrations.tryton.pages import parse_quantity
    assert parse_quantity(text, number_format) == (None if amount is None else Decimal(amount))


@pytest.mark.parametrize("failure, dialog, code", [
    ({"status": 429, "method": "login"}, "message-dialog", "ERP_UNAVAILABLE"),
    ({"status": 502, "method": "model.sale.sale.write"}, "message-dialog", "ERP_UNAVAILABLE"),
    ({"status": 200, "kind": "empty"}, "warning-dialog", "ERP_UNAVAILABLE"),
    ({"status": 200, "kind": "KeyError: 'x'"}, "error-dialog", "ERP_UNAVAILABLE"),  # crash
    ({"status": 200, "kind": "ConcurrencyException"}, "concurrency-dialog", "WORKSHEET_LOCKED"),
    ({"status": 200, "kind": "UserError", "domain": False,
      "method": "model.sale.sale.write"}, "warning-dialog", "WORKSHEET_CLOSED"),
    ({"status": 200, "kind": "UserError", "domain": True,
      "method": "model.sale.sale.write"}, "warning-dialog", "PRODUCT_NOT_FOUND"),
    ({"status": 200, "kind": "UserError", "domain": False,
      "method": "model.sale.sale.quote"}, "warning-dialog", "UNEXPECTED_PAGE"),
    ({"status": 200, "kind": "UserWarning"}, "user-warning-dialog", "UNEXPECTED_PAGE"),
    (None, "error-dialog", "ERP_UNAVAILABLE"),
    (None, "message-dialog", "UNEXPECTED_PAGE"),
])
def test_refusals_are_told_apart_by_what_tryton_sent_not_by_words(failure, dialog, code):
    from integrations.tryton.messages import erp_error
    error = erp_error([{"kind": dialog, "text": "Irgendein übersetzter Text"}], failure)
    assert error.reason_code == code
    assert "Irgendein übersetzter Text" in error.reason_text  # shown to people, not matched


def test_a_sao_series_the_integration_does_not_know_is_unexpected_page():
    """Read from the page (``Sao.__version__``): 7.0 and 8.0 known, anything else refused
    before a line is written on screens that may differ."""
    from integrations.tryton.series import SERIES, series_of
    assert set(SERIES) == {"7.0", "8.0"}
    assert series_of("7.0.56")["counter"] == "label" and series_of("8.0.11") is SERIES["8.0"]
    for version in ("8.2.0", "6.0.40", "", "garbage"):
        with pytest.raises(ScreenChanged, match="does not know"):  # held, not failed
            series_of(version)


def test_a_login_in_a_language_tryton_has_not_loaded_still_writes_right(tryton_build, log,
                                                                        tmp_path):
    """The admin's language set to Italian behind Tryton's back, without its translations
    (Tryton itself refuses that through its preferences): sao then mixes English labels
    with Italian words and numbers (1.234,5). The integration relies on neither."""
    import contextlib
    import sqlite3
    from erp_tryton.install import Build, install_database
    install_database(Build(log=lambda line: None), str(tmp_path / "data"))
    with contextlib.closing(sqlite3.connect(tmp_path / "data" / "workshop.sqlite")) as db, db:
        assert db.execute("SELECT translatable FROM ir_lang WHERE code = 'it'").fetchone() == (0,)
        db.execute("UPDATE res_user SET language = (SELECT id FROM ir_lang WHERE code = 'it')"
                   " WHERE login = 'admin'")
    with TrytonServer(tmp_path / "data") as server:
        assert server.client().context["language"] == "it"
        integration = build(server.url, tmp_path / "artifacts", log)
        try:
            worksheet = next(_references)
            lines = [line(worksheet, "10", "1234.5"), line(worksheet, "206", "2.25")]
            results = integration.add_lines(worksheet, lines, ADMIN)
            closed = line("950")
            refused = integration.add_lines("950", [closed], ADMIN)[closed.uniqueid]
        finally:
            integration.close()
        assert codes(results) == {one.uniqueid: LineOutcome.CREATED for one in lines}
        assert tryton_lines(server, worksheet) == expect(lines)
        assert isinstance(refused, WorksheetClosed)


def test_a_page_that_is_not_sao_is_unexpected_page_not_a_slow_erp(log, tmp_path):
    """Something else answers at ERP_URL (a proxy's placeholder, another app): said as
    such, with a screenshot, instead of ERP_TIMEOUT."""
    import http.server
    import threading

    class Placeholder(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b"<html><body><h1>Wartungsarbeiten</h1></body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Placeholder)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    integration = build(f"http://127.0.0.1:{httpd.server_address[1]}", tmp_path, log,
                        wait_timeout=3.0)
    try:
        one = line(next(_references))
        result = integration.add_lines(one.worksheet, [one], ADMIN)[one.uniqueid]
    finally:
        integration.close()
        httpd.shutdown()
    assert isinstance(result, ScreenChanged), result  # the orders are held, not failed
    assert result.reason_code == "ERP_SCREEN_CHANGED"
    assert "no request was running" in result.reason_text
    assert any(name.endswith(".png") for name in os.listdir(tmp_path))
