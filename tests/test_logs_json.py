"""``LOG_FORMAT=json`` (service/logs.py): every log line of the instance one JSON object,
``workshop`` on each, ``uniqueid`` on each line about one order, secrets masked -- in
the files and on stderr, gunicorn's lines too."""

import glob
import json
import logging
import re
import socket

import pytest

from service.instance import Instance
from service.logs import API_LOGGER, FLASK_LOGGER, ORDERLINE_LOGGER, setup
from conftest import WORKSHOP, replace
from core.errors import ConfigError, WorksheetClosed
from fakes import FakeIntegration
from instance_helpers import RunningInstance, free_port
from test_api_cli import run_api

#: "order <uniqueid>" as the worker and the integrations write it
_ORDER = re.compile(r"\border (\S+?)[:, ]")


def json_lines(text):
    """:returns: every non-empty line parsed; fails on the first that is not JSON"""
    lines = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                lines.append(json.loads(line))
            except ValueError:
                pytest.fail(f"line {number} is not JSON: {line[:200]}")
    return lines


def check_order_lines(entries, uniqueids):
    """Each line naming one order carries it as ``uniqueid``; every line its workshop."""
    about = 0
    for entry in entries:
        assert entry["workshop"] == WORKSHOP, entry
        assert {"time", "level", "logger", "thread", "message"} <= set(entry)
        named = [u for u in _ORDER.findall(entry["message"] + " ") if u in uniqueids]
        if named:
            about += 1
            assert entry.get("uniqueid") == named[0], entry
    return about


class LoggingErp(FakeIntegration):
    """The fake ERP, logging as the integrations do (``worksheet %s: ... order %s``)."""

    def __init__(self, logger, **kwargs):
        super().__init__(**kwargs)
        self.log = logger

    def add_line(self, line, credentials):
        self.log.info("logging in with password=%s", credentials.password)  # masked
        outcome = super().add_line(line, credentials)
        self.log.info("worksheet %s: line added for order %s", line.worksheet, line.uniqueid)
        return outcome


@pytest.fixture
def json_logs(settings):
    """``(api logger, orderline logger)`` writing JSON to the files only; reset after."""
    loggers = setup(replace(settings, log_format="json"), to_stderr=False)
    yield loggers
    for name in (API_LOGGER, FLASK_LOGGER, ORDERLINE_LOGGER):
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
            handler.close()
        logger.propagate = True
        logger.setLevel(logging.NOTSET)


def test_every_line_is_json_with_workshop_and_uniqueid(settings, json_logs):
    api_log, orderline_log = json_logs
    erp = LoggingErp(orderline_log, failures={"shut": [WorksheetClosed("the worksheet is closed")]})
    inst = Instance(settings, make_integration=lambda: erp, orderline_logger=orderline_log)
    try:
        for uniqueid, worksheet in (("a1", "7"), ("a2", "7"), ("shut", "8")):
            inst.submit({"workshop": WORKSHOP, "worksheet": worksheet, "product_nr": "10",
                         "product_amount": "5", "uniqueid": uniqueid, "username": None,
                         "password": None})
        inst.worker.burst()
        api_log.info("token=%s and %s", settings.api_token, settings.erp_password)
    finally:
        inst.close(worker_timeout=10)
    for handler in api_log.handlers + orderline_log.handlers:
        handler.flush()
    text = "".join(open(p, encoding="utf-8").read() for p in glob.glob(settings.log_dir + "/*.log"))
    entries = json_lines(text)
    assert check_order_lines(entries, {"a1", "a2", "shut"}) == 5  # 2 added, 2 created, 1 failed
    # the visit of worksheet 7 names both of its orders on every line logged during it
    visit = [e for e in entries if e["message"].startswith("worksheet 7: 2 order(s)")]
    assert visit and visit[0]["uniqueids"] == ["a1", "a2"] and visit[0]["worksheet"] == "7"
    failed = [e for e in entries if e["message"].startswith("order shut failed")]
    assert failed and failed[0]["uniqueid"] == "shut" and failed[0]["level"] == "ERROR"
    for secret in (settings.erp_password, settings.api_token):
        assert secret not in text
    assert "password=********" in text


def test_text_stays_the_default(settings):
    api_log, _ = setup(settings, to_stderr=False)
    try:
        api_log.info("plain")
        for handler in api_log.handlers:
            handler.flush()
        line = open(glob.glob(settings.log_dir + "/*_api.log")[0], encoding="utf-8").read()
        assert re.match(r"\d{4}-\d\d-\d\d .* INFO oilmat.api \[MainThread\] plain$", line.strip())
    finally:
        for handler in list(api_log.handlers):
            api_log.removeHandler(handler)
            handler.close()
        for name in (API_LOGGER, FLASK_LOGGER, ORDERLINE_LOGGER):
            logging.getLogger(name).handlers.clear()
            logging.getLogger(name).propagate = True


def test_a_real_instance_logs_json_everywhere(tmp_path):
    """api.py with LOG_FORMAT=json: its stderr (api, orderline, gunicorn, libraries) and
    both files are JSON lines. The ERP and the browser endpoint are closed ports, so each
    order fails fast without a browser."""
    closed = f"http://127.0.0.1:{free_port()}"
    inst = RunningInstance(tmp_path, closed, SELENIUM_REMOTE_URL=closed, MAX_ATTEMPTS="1",
                           LOG_FORMAT="json", ERP_PASSWORD="erp-pass-not-in-logs").start()
    try:
        assert inst.create(uniqueid="j1").status_code == 200
        assert inst.create(uniqueid="j2", username="bob", password="order-pass-hidden"
                           ).status_code == 200
        inst.wait_final(["j1", "j2"], timeout=60)
        with socket.create_connection(("127.0.0.1", inst.port), timeout=5) as raw:
            raw.sendall(b"NOT HTTP\r\n\r\n")  # gunicorn refuses it and logs a warning
            raw.recv(1000)
        assert inst.session.put(inst.url + "/clear_queue", timeout=10).status_code == 200
    finally:
        assert inst.stop() == 0
    stderr = open(inst.stderr_path, encoding="utf-8").read()
    files = "".join(open(p, encoding="utf-8").read() for p in glob.glob(inst.log_dir + "/*.log"))
    entries = json_lines(stderr)
    json_lines(files)
    assert {"oilmat.api", "oilmat.orderline", "oilmat_bridge", "gunicorn.error"} <= \
        {e["logger"] for e in entries}
    assert check_order_lines(entries, {"j1", "j2"}) >= 4
    created = [e for e in entries if e["message"].startswith("create j2")]
    assert created and created[0]["uniqueid"] == "j2"
    for secret in ("erp-pass-not-in-logs", "order-pass-hidden", inst.token):
        assert secret not in stderr and secret not in files


def test_a_bad_log_format_stops_the_instance_with_one_line(tmp_path):
    result = run_api([str(free_port()), WORKSHOP], tmp_path, LOG_FORMAT="yaml")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "api.py: error: LOG_FORMAT must be one of text, json, got 'yaml'"]


def test_the_management_api_takes_the_same_setting(tmp_path):
    from fleet.settings import load_fleet_settings

    assert load_fleet_settings({"LOG_FORMAT": "JSON"}).log_format == "json"
    assert load_fleet_settings({}).log_format == "text"
    with pytest.raises(ConfigError, match="LOG_FORMAT must be one of text, json"):
        load_fleet_settings({"LOG_FORMAT": "xml"})
