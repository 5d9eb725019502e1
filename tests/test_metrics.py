"""``GET /metrics`` of an instance (service/metrics.py) and of the management API
(fleet/metrics.py): Prometheus' text format, read back with prometheus_client's own
parser; the counts checked against the order records (real SQLite) and the ERP fake."""

import logging
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from werkzeug.serving import make_server

from service.app import create_app
from service.instance import Instance
from conftest import WORKSHOP, replace, wait_for
from core.errors import ProductNotFound, RecordsDamaged, WorksheetClosed
from fakes import FakeIntegration
from tests.fleet_fakes import FakeSupervisor
from tests.fleet_helpers import fleet_settings_for_tests, management_server
from instance_helpers import RunningInstance, free_port
from webhook_receiver import Receiver

ROOT = Path(__file__).resolve().parent.parent
SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # 24 bytes, base64

#: every family an instance promises (docs/api.md, Metrics), with its type
PROMISED = {
    "oilmat_instance_info": "gauge",
    "oilmat_worker_running": "gauge",
    "oilmat_records_ok": "gauge",
    "oilmat_orders": "gauge",
    "oilmat_order_errors": "gauge",
    "oilmat_queue_length": "gauge",
    "oilmat_queue_oldest_age_seconds": "gauge",
    "oilmat_order_repairs": "counter",
    "oilmat_events_stored": "gauge",
    "oilmat_events_unacknowledged": "gauge",
    "oilmat_webhook_backlog": "gauge",
    "oilmat_webhook_failing_tries": "gauge",
    "oilmat_webhook_state": "gauge",
    "oilmat_order_create_to_created_seconds": "histogram",
    "oilmat_erp_visit_seconds": "histogram",
    "oilmat_erp_line_seconds": "histogram",
    "oilmat_browser_starts": "counter",
    "oilmat_webhook_deliveries": "counter",
    "process_resident_memory_bytes": "gauge",
}


def parse(text):
    """:returns: ``{family name: family}`` as prometheus_client's parser reads them"""
    return {f.name: f for f in text_string_to_metric_families(text)}


def value(families, name, sample=None, **labels):
    """The value of the one sample of ``name`` (or ``sample``) with these labels."""
    sample = sample or name
    found = [s.value for s in families[name].samples
             if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, (name, sample, labels, families[name].samples)
    return found[0]


def scrape(client):
    answer = client.get("/metrics")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.content_type.startswith("text/plain")
    return parse(answer.get_data(as_text=True))


def order(uniqueid, worksheet="1", product_nr="10"):
    return {"workshop": WORKSHOP, "worksheet": worksheet, "product_nr": product_nr,
            "product_amount": "5", "uniqueid": uniqueid}


@pytest.fixture
def worked(client, instance, erp):
    """An instance with orders in every state: 3 created (one after a repair), 2 in error
    (two reasons), 1 processing, 2 placed."""
    erp.failures = {"closed": [WorksheetClosed("closed")], "noprod": [ProductNotFound("no")]}
    erp.repairs = {"c2": ["deleted a duplicate line"]}
    for uniqueid, worksheet in (("c1", "1"), ("c2", "1"), ("c3", "2"), ("closed", "3"),
                                ("noprod", "4")):
        assert client.post("/create", json=order(uniqueid, worksheet)).status_code == 200
    instance.worker.burst()
    for uniqueid in ("w1", "w2", "w3"):
        assert client.post("/create", json=order(uniqueid)).status_code == 200
    assert instance.store.move("w1", "processing", expect="placed")
    return instance


def test_every_promised_family_parses_and_counts_match_the_records(worked, client, erp):
    families = scrape(client)
    assert {name: families[name].type for name in PROMISED if name in families} == PROMISED
    statuses = {uniqueid: client.get("/get_order_status", query_string={"uniqueid": uniqueid})
                .get_json()["status"] for uniqueid in ("c1", "c2", "c3", "closed", "noprod",
                                                      "w1", "w2", "w3")}
    for status in ("placed", "processing", "created", "error"):
        assert value(families, "oilmat_orders", status=status) == \
            list(statuses.values()).count(status), status
    assert value(families, "oilmat_orders", status="created") == 3
    assert value(families, "oilmat_order_errors", reason_code="WORKSHEET_CLOSED") == 1
    assert value(families, "oilmat_order_errors", reason_code="PRODUCT_NOT_FOUND") == 1
    assert value(families, "oilmat_queue_length") == client.get("/queue").get_json()["length"] == 3
    assert 0 < value(families, "oilmat_queue_oldest_age_seconds") < 60
    assert value(families, "oilmat_order_repairs", "oilmat_order_repairs_total") == 1
    assert value(families, "oilmat_instance_info", workshop=WORKSHOP, erp_system="erp_sim") == 1
    assert value(families, "oilmat_records_ok") == 1
    # the in-process figures: one visit per worksheet, one line per order in them
    visits, lines = len(erp.visits), sum(len(ids) for _, ids in erp.visits)
    assert visits == 4 and lines == 5
    h = "oilmat_erp_visit_seconds"
    assert value(families, h, h + "_count") == visits
    assert value(families, h, h + "_bucket", le="+Inf") == visits
    h = "oilmat_erp_line_seconds"
    assert value(families, h, h + "_count") == lines
    h = "oilmat_order_create_to_created_seconds"
    assert value(families, h, h + "_count") == 3
    assert 0 <= value(families, h, h + "_sum") < 60
    assert value(families, "oilmat_browser_starts", "oilmat_browser_starts_total") == 0


def test_the_outbox_figures_are_the_feeds(worked, client):
    families = scrape(client)
    page = client.get("/events", query_string={"after": 0, "limit": 500}).get_json()
    stored = len(page["events"])
    assert value(families, "oilmat_events_stored") == stored
    assert value(families, "oilmat_events_unacknowledged") == stored
    assert client.put("/events/ack", query_string={"cursor": page["events"][4]["cursor"]}
                      ).status_code == 200
    families = scrape(client)
    assert value(families, "oilmat_events_unacknowledged") == stored - 5
    assert value(families, "oilmat_webhook_state", state="off") == 1
    assert value(families, "oilmat_webhook_backlog") == 0


def test_counts_from_the_records_survive_a_restart(worked, settings, client):
    before = scrape(client)
    worked.close(worker_timeout=10)
    again = Instance(settings, make_integration=FakeIntegration)
    try:
        after = parse(again.metrics.render()[0].decode())
    finally:
        again.close(worker_timeout=10)
    # processing -> placed at the restart (reconcile): the queue is the same
    for status, moved in (("placed", 1), ("processing", -1), ("created", 0), ("error", 0)):
        assert value(after, "oilmat_orders", status=status) == \
            value(before, "oilmat_orders", status=status) + moved
    for name, sample in (("oilmat_queue_length", None), ("oilmat_order_repairs",
                                                         "oilmat_order_repairs_total")):
        assert value(after, name, sample) == value(before, name, sample)
    # the in-process histograms start again from zero
    h = "oilmat_erp_visit_seconds"
    assert value(after, h, h + "_count") == 0


def test_only_with_the_token(instance, client):
    anonymous = create_app(instance).test_client()
    answer = anonymous.get("/metrics")
    assert answer.status_code == 401 and answer.get_json()["error"] == "unauthorized"
    wrong = anonymous.get("/metrics", headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status_code == 401
    assert anonymous.get("/alive").status_code == 200  # the one public endpoint stays so


def test_browser_starts_are_counted_through_the_observer_the_worker_attaches(settings):
    """An integration tells of a browser it started through the observer the worker
    hands it (Integration.attach): counted, not read from log text."""

    class StartingErp(FakeIntegration):
        def attach(self, stop, observer):
            self.observer = observer

        def add_lines(self, worksheet, lines, credentials):
            if not self.visits:
                self.observer.browser_started()
            return super().add_lines(worksheet, lines, credentials)

    erp = StartingErp()
    inst = Instance(settings, make_integration=lambda: erp)
    try:
        for uniqueid, worksheet in (("a", "1"), ("b", "2")):
            inst.submit({**order(uniqueid, worksheet), "username": None, "password": None})
        inst.worker.burst()
        families = parse(inst.metrics.render()[0].decode())
        assert value(families, "oilmat_browser_starts", "oilmat_browser_starts_total") == 1
    finally:
        inst.close(worker_timeout=10)


def test_webhook_deliveries_and_failures(settings):
    receiver = Receiver(SECRET).start()
    receiver.answer = 503
    inst = Instance(replace(settings, webhook_url=receiver.url, webhook_secret=SECRET,
                            webhook_backoff_seconds=0.05, webhook_backoff_max_seconds=0.1,
                            webhook_timeout_seconds=2.0), make_integration=FakeIntegration)
    try:
        inst.submit({**order("h1"), "username": None, "password": None})
        inst.webhooks.start()
        wait_for(lambda: receiver.count(503) >= 2, message="two refused deliveries")
        receiver.answer = 200
        wait_for(lambda: inst.webhooks.state()["backlog"] == 0, message="the backlog delivered")
        families = parse(inst.metrics.render()[0].decode())
        sample = "oilmat_webhook_deliveries_total"
        assert value(families, "oilmat_webhook_deliveries", sample, result="failed") == \
            receiver.count(503)
        assert value(families, "oilmat_webhook_deliveries", sample, result="delivered") == \
            receiver.count(200) == 1
        assert value(families, "oilmat_webhook_deliveries", sample, result="gone") == 0
        assert value(families, "oilmat_webhook_state", state="enabled") == 1
        assert value(families, "oilmat_webhook_backlog") == 0
    finally:
        inst.close(worker_timeout=10)
        receiver.stop()


def test_a_damaged_records_file_is_a_figure_not_a_500(instance, client):
    instance.store._damage = RecordsDamaged("damaged (test)")  # as _use() keeps it
    families = scrape(client)
    assert value(families, "oilmat_records_ok") == 0
    assert "oilmat_orders" not in families


def test_a_real_instance_answers_over_http(tmp_path):
    """api.py on a real port; the ERP and the browser endpoint are closed ports, so each
    order ends in error fast, without a browser."""
    closed = f"http://127.0.0.1:{free_port()}"
    inst = RunningInstance(tmp_path, closed, SELENIUM_REMOTE_URL=closed, MAX_ATTEMPTS="1").start()
    try:
        for uniqueid in ("r1", "r2"):
            assert inst.create(uniqueid=uniqueid).status_code == 200
        final = inst.wait_final(["r1", "r2"], timeout=60)
        assert requests.get(inst.url + "/metrics", timeout=10).status_code == 401
        answer = inst.session.get(inst.url + "/metrics", timeout=10)
    finally:
        assert inst.stop() == 0
    assert answer.status_code == 200
    assert answer.headers["Content-Type"].startswith("text/plain; version=")
    families = parse(answer.text)
    assert set(PROMISED) <= set(families)
    reasons = [record["reason_code"] for record in final.values()]
    assert value(families, "oilmat_orders", status="error") == 2
    assert value(families, "oilmat_order_errors", reason_code=reasons[0]) == reasons.count(
        reasons[0])
    assert value(families, "oilmat_worker_running") == 1
    assert value(families, "process_resident_memory_bytes") > 10 * 2 ** 20


@pytest.mark.e2e
def test_real_chromium_on_erp_sim_is_counted(tmp_path):
    """api.py, erp_sim and headless Chromium: one browser start, one visit, three lines
    on the worksheet as the ERP's own read path shows them, three orders /create to created."""
    from erp_helpers import ErpSimServer

    with ErpSimServer(save_delay=0.05) as erp:
        inst = RunningInstance(tmp_path, erp.url).start()
        try:
            inst.session.put(inst.url + "/stop_worker", timeout=30)  # one batch: one visit
            ids = [f"m{n}" for n in range(3)]
            for uniqueid in ids:
                assert inst.create(uniqueid=uniqueid, worksheet="561").status_code == 200
            inst.session.put(inst.url + "/start_worker", timeout=30)
            final = inst.wait_final(ids, timeout=90)
            families = parse(inst.session.get(inst.url + "/metrics", timeout=10).text)
        finally:
            inst.stop()
        assert all(record["status"] == "created" for record in final.values())
        assert all(len(erp.lines_with(561, uniqueid)) == 1 for uniqueid in ids)
    assert value(families, "oilmat_browser_starts", "oilmat_browser_starts_total") == 1
    h = "oilmat_order_create_to_created_seconds"
    assert value(families, h, h + "_count") == 3
    assert value(families, "oilmat_erp_visit_seconds", "oilmat_erp_visit_seconds_count") == 1
    assert value(families, "oilmat_erp_line_seconds", "oilmat_erp_line_seconds_count") == 3
    assert value(families, "oilmat_orders", status="created") == 3


# -- the fleet's view -------------------------------------------------------------------


@contextmanager
def serving(inst):
    """An instance's app on a real HTTP server in a thread: ``(port, token)``."""
    server = make_server("127.0.0.1", 0, create_app(inst), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        thread.join(10)


def test_the_management_api_labels_every_instance_by_workshop(tmp_path, settings):
    """Two real instances over HTTP; a third workshop registered with nothing on its port,
    a fourth whose port serves another workshop (one not registered), a fifth inactive
    (not scraped)."""
    from fleet.control import Fleet

    names = ("Bennys Auto", "Bilverksted Ålesund")
    instances = []
    for n, name in enumerate((*names, "Someone Else")):
        inst = Instance(replace(settings, workshop=name, api_token=f"token-{n}-xyz",
                                queue_dir=str(tmp_path / f"q{n}")),
                        make_integration=FakeIntegration)
        for k in range(n + 1):  # one order at the first, two at the second
            inst.submit({**order(f"o{k}"), "workshop": name, "username": None, "password": None})
        inst.worker.burst()
        instances.append(inst)
    management_token = "management-token-metrics"
    fleet = Fleet(fleet_settings_for_tests(tmp_path / "fleet", management_token,
                                           PROBE_TIMEOUT="2"), supervisor=FakeSupervisor())
    try:
        with serving(instances[0]) as port0, serving(instances[1]) as port1, \
                serving(instances[2]) as port2:
            for name, port, token in ((names[0], port0, "token-0-xyz"),
                                      (names[1], port1, "token-1-xyz"),
                                      ("Down Garage", free_port(), "t-down-123"),
                                      ("Impostor", port2, "token-2-xyz")):
                fleet.registry.add(name, "erp_sim", "http://127.0.0.1:5080", port, token)
            fleet.registry.add("Asleep", "erp_sim", "http://127.0.0.1:5080", free_port(),
                               "t-asleep-1", active=False)
            with management_server(fleet.settings, fleet) as url:
                assert requests.get(url + "/metrics", timeout=10).status_code == 401
                answer = requests.get(url + "/metrics", timeout=10, headers={
                    "Authorization": f"Bearer {management_token}"})
    finally:
        for inst in instances:
            inst.close(worker_timeout=10)
    assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("text/plain")
    families = parse(answer.text)
    up = {s.labels["workshop"]: s.value for s in families["oilmat_fleet_instance_up"].samples}
    assert up == {names[0]: 1, names[1]: 1, "Down Garage": 0, "Impostor": 0}
    for name, created in zip(names, (1, 2)):
        assert value(families, "oilmat_orders", status="created", workshop=name) == created
        h = "oilmat_erp_visit_seconds"
        assert value(families, h, h + "_count", workshop=name) == 1
    # every sample carries a workshop, and only the two that answered
    workshops = {s.labels.get("workshop") for f in families.values() for s in f.samples}
    assert workshops == {*names, "Down Garage", "Impostor"}
    assert {s.labels["workshop"] for s in families["oilmat_orders"].samples} == set(names)
