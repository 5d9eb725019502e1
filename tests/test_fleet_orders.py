"""fleet/orders.py through the management API (Flask's test client), with hand-written
fake instances holding failed orders. The real thing, in Chromium against a real fleet:
test_fleet_failed_orders_browser.py."""

import csv
import io
import re

import pytest
from cryptography.fernet import Fernet

from fleet import orders as fleet_orders
from fleet.control import Fleet
from fleet.management import create_app
from fleet.settings import load_fleet_settings
from tests.fleet_fakes import FakeInstances, FakeSupervisor
from tests.test_fleet_management import TOKEN, create, path

W = "Bennys Auto"


def _order(uniqueid, **extra):
    return {"uniqueid": uniqueid, "status": "error", "worksheet": "901", "product_nr": "10",
            "product_amount": "5", "reason_code": "WORKSHEET_CLOSED", "attempts": 1,
            "reason_text": "Worksheet 901 is closed", "created_at": "2026-12-01T08:00:00.000+00:00",
            "updated_at": "2026-12-01T08:00:01.000+00:00", **extra}


@pytest.fixture
def instances():
    return FakeInstances(orders=[_order(f"o-{n}") for n in range(7)] + [
        _order("=HYPERLINK(\"http://evil\")", reason_text="+cmd|' /C calc'!A0")])


@pytest.fixture
def client(tmp_path, instances):
    settings = load_fleet_settings({
        "SECRET_KEY": Fernet.generate_key().decode(), "MANAGEMENT_TOKEN": TOKEN,
        "REGISTRY_DB": str(tmp_path / "r.db"), "SUPERVISOR_DIR": str(tmp_path / "sup"),
        "QUEUE_DIR": str(tmp_path / "q"), "LOG_DIR": str(tmp_path / "l")}, dotenv=False)
    fleet = Fleet(settings, supervisor=FakeSupervisor(), instances=instances)
    client = create_app(settings, fleet).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
    assert create(client, W, api_token="instance-token-abcdefgh").status_code == 201
    return client


def test_failed_orders_are_listed_per_workshop(client, instances):
    r = client.get(path(W, "orders?status=error&limit=3&since=2026-12-01"))
    assert r.status_code == 200
    assert r.json["workshop"] == W
    assert [o["uniqueid"] for o in r.json["orders"]] == ["o-0", "o-1", "o-2"]
    assert r.json["more"] is True
    port, method, instance_path, query = instances.requests[-1]
    assert (method, instance_path) == ("GET", "orders")
    assert query == {"status": "error", "limit": 3, "since": "2026-12-01T00:00:00.000+00:00"}


@pytest.mark.parametrize("query,field", [("status=broken", "status"), ("since=monday", "since"),
                                         ("limit=501", "limit"), ("colour=red", "colour")])
def test_bad_parameters_are_refused_before_the_instance_is_asked(client, instances, query, field):
    r = client.get(path(W, "orders?" + query))
    assert r.status_code == 400 and r.json["error"] == "INVALID_QUERY"
    assert field in r.json["message"]
    assert instances.requests == []


def test_retry_and_resolve_reach_the_instance_with_the_note(client, instances):
    r = client.put(path(W, "orders/o-1/retry?note=reopened by Kari"))
    assert r.status_code == 200 and r.json["order"]["status"] == "placed"
    assert instances.requests[-1][1:] == ("PUT", "retry", {"uniqueid": "o-1",
                                                          "note": "reopened by Kari"})
    r = client.put(path(W, "orders/o-2/resolve"))
    assert r.status_code == 200 and r.json["order"]["status"] == "resolved"


def test_the_instances_refusal_is_passed_on(client):
    r = client.put(path(W, "orders/nope/retry"))
    assert r.status_code == 404 and r.json["error"] == "NOT_FOUND"
    assert client.put(path(W, "orders/a%20b/retry")).status_code == 400
    assert client.put(path(W, "orders/o-1/retry?note=" + "x" * 501)).status_code == 400


def test_an_inactive_workshop_is_409(client):
    client.put(path(W, "deactivate"))
    assert client.get(path(W, "orders")).status_code == 409


def test_csv_export_pages_through_every_order_and_defuses_formulas(client, instances,
                                                                  monkeypatch):
    monkeypatch.setattr(fleet_orders, "PAGE", 3)  # three pages for eight orders
    r = client.get(path(W, "orders.csv?since=2026-12-01&until=2026-12-02"))
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in r.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    assert [row["uniqueid"] for row in rows[:7]] == [f"o-{n}" for n in range(7)]
    assert rows[7]["uniqueid"].startswith("'=HYPERLINK")
    assert rows[7]["reason_text"].startswith("'+cmd")
    assert rows[0]["reason_code"] == "WORKSHEET_CLOSED" and rows[0]["attempts"] == "1"
    pages = [q for _, m, p, q in instances.requests if p == "orders"]
    assert [q["after"] for q in pages] == [0, 3, 6]
    assert all(q["since"].startswith("2026-12-01") for q in pages)


_FORMULA_START = tuple("=+-@\t\r")


@pytest.mark.parametrize("uniqueid", ["y;=cmd|'/Ccalc'!A0;", "a,+b", "a;@SUM(1)", "x;-2+3"])
def test_csv_export_quotes_every_field_and_defuses_every_cell_a_split_could_make(
        client, instances, uniqueid):
    """Issue 28, item 4: a spreadsheet splitting on ';' (the Norwegian default) or ','
    must find no cell that starts a formula, quotes honoured or not."""
    instances.orders[:] = [_order(uniqueid, reason_text="Worksheet 901; =1+1, -closed")]
    text = client.get(path(W, "orders.csv")).get_data(as_text=True)
    lines = text.splitlines()
    for line in lines:  # every field quoted
        assert re.fullmatch(r'"([^"]|"")*"(,"([^"]|"")*")*', line), line
    for line in lines:
        for delimiter in ";,":
            for quoting in (csv.QUOTE_MINIMAL, csv.QUOTE_NONE):
                for cell in next(csv.reader([line], delimiter=delimiter, quoting=quoting)):
                    assert not cell.strip('" ').startswith(_FORMULA_START), (delimiter, cell)
    row = next(csv.DictReader(io.StringIO(text)))
    assert row["uniqueid"] == uniqueid.replace(";=", ";'=").replace(",+", ",'+").replace(
        ";@", ";'@").replace(";-", ";'-")


# -- every uniqueid, "." and ".." included, against a real instance (issue 28, item 5) --

@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """The management app (test client) over a real ``api.py`` whose orders "." , ".."
    and "%" ended in error (its browser is a closed port, one attempt each)."""
    from fleet.instances import Instances
    from instance_helpers import RunningInstance, free_port
    from conftest import wait_for

    tmp = tmp_path_factory.mktemp("dots")
    closed = f"http://127.0.0.1:{free_port()}"
    inst = RunningInstance(tmp / "instance", closed, SELENIUM_REMOTE_URL=closed,
                           MAX_ATTEMPTS="1").start()
    for uniqueid in (".", "..", "%"):
        assert inst.create(uniqueid=uniqueid).status_code == 200
    wait_for(lambda: all(inst.status(u)["status"] == "error" for u in (".", "..", "%")),
             timeout=60, message="the orders in error")
    settings = load_fleet_settings({
        "SECRET_KEY": Fernet.generate_key().decode(), "MANAGEMENT_TOKEN": TOKEN,
        "REGISTRY_DB": str(tmp / "r.db"), "SUPERVISOR_DIR": str(tmp / "sup"),
        "QUEUE_DIR": str(tmp / "q"), "LOG_DIR": str(tmp / "l")}, dotenv=False)
    fleet = Fleet(settings, supervisor=FakeSupervisor(), instances=Instances())
    client = create_app(settings, fleet).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
    # in the registry as the running instance is (the port is taken: by it)
    fleet.registry.add(inst.workshop, "erp_sim", closed, inst.port, inst.token)
    yield client, inst
    inst.stop()


@pytest.mark.parametrize("uniqueid", [".", "..", "%"])
def test_every_uniqueid_reaches_its_order_through_the_management_api(real, uniqueid):
    client, inst = real
    encoded = {".": "%2E", "..": "%2E%2E", "%": "%25"}[uniqueid]
    r = client.get(path(W, f"orders/{encoded}/artifacts"))
    assert r.status_code == 200 and r.json["uniqueid"] == uniqueid, r.json
    query = {"uniqueid": uniqueid}
    r = client.get(path(W, "artifacts"), query_string=query)
    assert r.status_code == 200 and r.json["uniqueid"] == uniqueid, r.json
    r = client.put(path(W, "retry"), query_string={**query, "note": "by query"})
    assert r.status_code == 200 and r.json["order"]["uniqueid"] == uniqueid, r.json
    assert inst.status(uniqueid)["status"] in ("placed", "processing", "error")
    assert client.put(path(W, "resolve"), query_string={}).status_code == 400  # which order?
