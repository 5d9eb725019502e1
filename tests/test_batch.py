"""Batch intake (``POST /create`` with ``{"orders": [...]}``, service/batch.py) and
``create_client.py --file``.

In-process tests use the real app, real SQLite records and queue, and the fake ERP of
tests/fakes.py. The end-to-end test runs ``api.py``, erp_sim and headless Chromium and
counts the lines through erp_sim's ``/_sim`` side door (run it under
``flock /tmp/browser.lock``).
"""

import json
import os
import sqlite3
import subprocess
import sys

import pytest

from service.app import create_app
from service.batch import MAX_BATCH_ORDERS
from conftest import WORKSHOP, replace
from instance_helpers import ROOT, RunningInstance
from erp_helpers import ErpSimServer, closed_port_url
from test_disk_full import fill, small_disk  # noqa: F401  (small_disk: the tmpfs fixture)

#: five orders the instance must refuse, each for its own reason
BAD = [
    ({"product_amount": "-1"}, "product_amount"),
    ({"product_nr": "no spaces allowed"}, "product_nr"),
    ({"workshop": "Another Workshop"}, "workshop"),
    ({"product_amount": "5000"}, "product_amount"),  # over MAX_PRODUCT_AMOUNT
    ({"worksheet": None}, "worksheet"),
]


def order(uniqueid, worksheet="7", **changes):
    body = {"workshop": WORKSHOP, "worksheet": worksheet, "product_nr": "10",
            "product_amount": "2.5", "uniqueid": uniqueid}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def hundred_with_five_bad(prefix, worksheets=("7",)):
    """100 orders; those at 10, 30, 50, 70 and 90 are bad. :returns: (orders, bad indexes)"""
    orders, bad = [], {}
    for n in range(100):
        orders.append(order(f"{prefix}-{n:03d}", worksheet=worksheets[n % len(worksheets)]))
        if n % 20 == 10:
            changes, field = BAD[len(bad)]
            orders[-1] = order(f"{prefix}-{n:03d}", **{"worksheet": worksheets[0], **changes})
            bad[n] = field
    return orders, bad


def stored(instance, prefix):
    with sqlite3.connect(instance.store.path) as db:
        return [r[0] for r in db.execute(
            "SELECT uniqueid FROM orders WHERE uniqueid LIKE ? ORDER BY seq", (prefix + "%",))]


# -- the answer ---------------------------------------------------------------------


def test_100_orders_with_5_bad_give_95_placed_and_5_failed_in_request_order(client, instance):
    orders, bad = hundred_with_five_bad("b")
    answer = client.post("/create", json={"orders": orders})
    assert answer.status_code == 207
    body = answer.get_json()
    assert body["counts"] == {"placed": 95, "existed": 0, "failed": 5}
    assert [r["index"] for r in body["results"]] == list(range(100))
    for n, result in enumerate(body["results"]):
        if n in bad:
            assert result["result"] == "failed" and result["error"] == "validation_failed"
            assert list(result["fields"]) == [bad[n]], result
            assert "status" not in result
        else:
            assert result == {"index": n, "uniqueid": f"b-{n:03d}", "result": "placed",
                              "status": "placed"}
    good = [f"b-{n:03d}" for n in range(100) if n not in bad]
    assert stored(instance, "b-") == good  # in request order, the bad ones not at all
    assert all(instance.store.is_queued(uniqueid) for uniqueid in good)
    assert sorted(p["uniqueid"] for p in instance.queue.pending_payloads()) == good


def test_no_failure_is_200_and_a_repost_is_existed_with_the_current_status(client, instance):
    orders = [order(f"ok-{n}") for n in range(3)]
    first = client.post("/create", json={"orders": orders})
    assert first.status_code == 200
    assert first.get_json()["counts"] == {"placed": 3, "existed": 0, "failed": 0}
    instance.store.move("ok-1", "processing")
    again = client.post("/create", json={"orders": orders})
    assert again.status_code == 200
    body = again.get_json()
    assert body["counts"] == {"placed": 0, "existed": 3, "failed": 0}
    assert [(r["result"], r["status"]) for r in body["results"]] == [
        ("existed", "placed"), ("existed", "processing"), ("existed", "placed")]
    assert len(instance.queue.pending_payloads()) == 3  # nothing queued twice


def test_a_batch_is_answered_as_its_orders_posted_one_by_one(client, instance):
    """Within a batch, a repeated uniqueid is a repost of the earlier order: existed with
    the same content, duplicate_uniqueid with other content; so is one stored before."""
    assert client.post("/create", json=order("known", product_amount="1")).status_code == 200
    answer = client.post("/create", json={"orders": [
        order("twice"), order("twice"), order("twice", product_amount="3"),
        order("known", product_amount="9"), order("known", product_amount="1")]})
    assert answer.status_code == 207
    results = answer.get_json()["results"]
    assert [(r["uniqueid"], r["result"], r.get("error")) for r in results] == [
        ("twice", "placed", None), ("twice", "existed", None),
        ("twice", "failed", "duplicate_uniqueid"), ("known", "failed", "duplicate_uniqueid"),
        ("known", "existed", None)]
    assert "different order" in results[2]["message"]
    assert answer.get_json()["counts"] == {"placed": 1, "existed": 2, "failed": 2}
    assert instance.store.get("twice")["product_amount"] == "2.5"  # the first one's


def test_every_order_failing_is_207_and_stores_nothing(client, instance):
    answer = client.post("/create", json={"orders": [{"uniqueid": "x"}, {"nothing": 1}]})
    assert answer.status_code == 207
    body = answer.get_json()
    assert body["counts"] == {"placed": 0, "existed": 0, "failed": 2}
    assert [r["uniqueid"] for r in body["results"]] == ["x", None]
    assert body["results"][1]["fields"]["uniqueid"] == "is required"
    assert stored(instance, "") == []


@pytest.mark.parametrize("orders,field", [
    ("not a list", "orders"),
    ([], "orders"),
    ([order(f"many-{n}") for n in range(MAX_BATCH_ORDERS + 1)], "orders"),
    ([order("fine"), 5], "orders[1]"),
])
def test_a_batch_that_is_not_1_to_100_orders_is_refused_whole(client, instance, orders, field):
    answer = client.post("/create", json={"orders": orders})
    assert answer.status_code == 400
    body = answer.get_json()
    assert body["error"] == "validation_failed" and list(body["fields"]) == [field]
    assert stored(instance, "") == []


def test_the_single_order_form_is_unchanged(client):
    answer = client.post("/create", json=order("single"))
    assert answer.status_code == 200
    assert answer.get_json() == {"uniqueid": "single", "status": "placed"}
    assert client.post("/create", json=order("single", product_amount="3")).status_code == 409


@pytest.mark.parametrize("body,named", [
    ({**order("single-a"), "orders": [order("in-batch-b")]}, "workshop, worksheet"),
    ({**order("single-c"), "orders": 3}, "uniqueid"),
    ({"orders": [order("in-batch-d")], "uniqueid": "e"}, "uniqueid"),
])
def test_a_body_that_is_both_an_order_and_a_batch_is_refused_whole(client, instance, body,
                                                                  named):
    """Issue 28, item 6: the single order was dropped without a word, or an extra
    "orders": 3 got "the batch cannot be taken"."""
    answer = client.post("/create", json=body)
    assert answer.status_code == 400
    refused = answer.get_json()
    assert refused["message"] == "the body is both an order and a batch"
    assert "not both" in refused["fields"]["orders"] and named in refused["fields"]["orders"]
    assert stored(instance, "") == []
    operation = client.get("/openapi.json").get_json()["paths"]["/create"]["post"]
    batch_form = operation["requestBody"]["content"]["application/json"]["schema"]["oneOf"][1]
    assert {"required": ["uniqueid"]} in batch_form["not"]["anyOf"]  # the document says so


def test_the_document_describes_both_forms_and_207(client):
    operation = client.get("/openapi.json").get_json()["paths"]["/create"]["post"]
    forms = operation["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
    assert {"$ref": "#/components/schemas/CreateBatch"} in [f["allOf"][0] for f in forms]
    assert operation["responses"]["207"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/BatchAnswer"}


# -- one transaction ------------------------------------------------------------------


def test_a_storage_failure_in_the_middle_stores_none_of_the_batch(client, instance):
    """The 50th insert fails (a trigger on the real records file): the 49 before it are
    rolled back with it, the answer is 503, and the same batch goes through afterwards."""
    with sqlite3.connect(instance.store.path) as db:
        db.execute("CREATE TRIGGER fail_midway BEFORE INSERT ON orders WHEN NEW.uniqueid = "
                   "'mid-049' BEGIN SELECT RAISE(ABORT, 'simulated write failure'); END")
    orders = [order(f"mid-{n:03d}") for n in range(100)]
    answer = client.post("/create", json={"orders": orders})
    assert answer.status_code == 503
    assert answer.headers["Retry-After"].isdigit()
    body = answer.get_json()
    assert body["error"] == "storage_unavailable"
    assert "no order of this batch was stored" in body["message"]
    assert stored(instance, "mid-") == []
    assert instance.queue.pending_payloads() == []

    with sqlite3.connect(instance.store.path) as db:
        db.execute("DROP TRIGGER fail_midway")
    again = client.post("/create", json={"orders": orders})
    assert again.status_code == 200 and again.get_json()["counts"]["placed"] == 100
    assert len(stored(instance, "mid-")) == 100


class _FullQueue:
    """The queue's put fails as on a full disk (a fake for one method of the real queue)."""

    def __init__(self, queue):
        self.queue = queue

    def __getattr__(self, name):
        return getattr(self.queue, name)

    def put(self, payload):
        from core.errors import StorageUnavailable

        raise StorageUnavailable("the disk holding the queue is full")


def test_stored_but_not_queued_is_503_and_the_sweep_queues_them(client, instance):
    real = instance.queue
    instance.queue = _FullQueue(real)
    answer = client.post("/create", json={"orders": [order("sw-1"), order("sw-2")]})
    assert answer.status_code == 503
    assert "stored but not all could be queued" in answer.get_json()["message"]
    assert stored(instance, "sw-") == ["sw-1", "sw-2"]  # on disk all the same
    instance.queue = real
    assert instance.queue_stranded() == 2
    assert sorted(p["uniqueid"] for p in real.pending_payloads()) == ["sw-1", "sw-2"]
    repost = client.post("/create", json={"orders": [order("sw-1"), order("sw-2")]})
    assert repost.get_json()["counts"] == {"placed": 0, "existed": 2, "failed": 0}


def test_a_full_disk_stores_none_of_a_batch(settings, small_disk):
    """A real full file system (tmpfs): 503 and nothing of the batch; space again, the
    same batch is placed whole."""
    from service.instance import Instance
    from fakes import FakeIntegration

    inst = Instance(replace(settings, queue_dir=str(small_disk / "q")),
                    make_integration=FakeIntegration)
    test_client = create_app(inst).test_client()
    test_client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {settings.api_token}"
    filler = fill(small_disk)
    orders = [order(f"full-{n:03d}", username="u" * 150, password="p" * 150)
              for n in range(100)]
    answer = test_client.post("/create", json={"orders": orders})
    assert answer.status_code == 503, answer.get_json()
    assert stored(inst, "full-") == []
    os.remove(filler)
    again = test_client.post("/create", json={"orders": orders})
    assert again.status_code == 200 and again.get_json()["counts"]["placed"] == 100
    inst.close()


# -- create_client.py --file (no browser: the ERP is a closed port) -------------------


@pytest.fixture(scope="module")
def unreachable_erp_instance(tmp_path_factory):
    """Orders end in error within a second; a small RATE_LIMIT makes the client wait."""
    closed = closed_port_url()
    inst = RunningInstance(tmp_path_factory.mktemp("client-file"), closed,
                           SELENIUM_REMOTE_URL=closed, MAX_ATTEMPTS="1",
                           RATE_LIMIT="10/second").start()
    yield inst
    assert inst.stop() == 0, inst.stderr()


def run_client(instance, path, *extra):
    env = {**os.environ, "API_TOKEN": instance.token}
    return subprocess.run([sys.executable, os.path.join(ROOT, "create_client.py"), "--url",
                           instance.url, "--file", str(path), "--interval", "0.05",
                           "--timeout", "120", *extra],
                          capture_output=True, text=True, timeout=180, env=env)


def test_create_client_posts_a_file_in_batches_of_100_and_follows_every_order(
        unreachable_erp_instance, tmp_path):
    orders = [order(f"file-{n:03d}", worksheet="12") for n in range(120)]
    path = tmp_path / "orders.json"
    path.write_text(json.dumps(orders))
    result = run_client(unreachable_erp_instance, path)
    assert result.returncode == 1, result.stdout + result.stderr  # all ended in error
    assert "orders 1-100: 100 placed, 0 existed, 0 failed" in result.stdout
    assert "orders 101-120: 20 placed, 0 existed, 0 failed" in result.stdout
    assert "120 orders: 0 created, 120 error, 0 resolved, 0 refused, 0 still waiting" in result.stdout
    assert result.stdout.count(": error ") == 120
    assert "Traceback" not in result.stderr


def test_create_client_reports_refused_orders_and_takes_the_orders_object(
        unreachable_erp_instance, tmp_path):
    path = tmp_path / "orders.json"
    path.write_text(json.dumps({"orders": [order("obj-1"), order("obj-2", product_amount="0")]}))
    result = run_client(unreachable_erp_instance, path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "order #2 (obj-2): refused, validation_failed: product_amount must be more than 0" \
        in result.stdout
    assert "2 orders: 0 created, 1 error, 0 resolved, 1 refused" in result.stdout


@pytest.mark.parametrize("content,args,needle", [
    ("[]", (), "non-empty JSON list"),
    ("{not json", (), "cannot read"),
    ("[{}]", ("--worksheet", "5"), "leave out --workshop"),
])
def test_create_client_refuses_a_bad_file_or_mixed_arguments(unreachable_erp_instance, tmp_path,
                                                             content, args, needle):
    path = tmp_path / "orders.json"
    path.write_text(content)
    result = run_client(unreachable_erp_instance, path, *args)
    assert result.returncode == 2 and needle in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


# -- end to end: the 95 good orders become 95 lines on erp_sim ----------------------


@pytest.mark.e2e
def test_e2e_a_batch_of_100_with_5_bad_becomes_95_lines(tmp_path):
    worksheets = ("611", "612", "613", "614", "615")
    orders, bad = hundred_with_five_bad("e2e", worksheets)
    good = [o["uniqueid"] for n, o in enumerate(orders) if n not in bad]
    with ErpSimServer(save_delay=0.05) as erp:
        inst = RunningInstance(tmp_path / "inst", erp.url).start()
        try:
            answer = inst.session.post(inst.url + "/create", json={"orders": orders}, timeout=30)
            assert answer.status_code == 207, answer.text
            assert answer.json()["counts"] == {"placed": 95, "existed": 0, "failed": 5}
            assert [r["index"] for r in answer.json()["results"] if r["result"] == "failed"] \
                == sorted(bad)

            # the same file through create_client.py: all known, followed to the end
            path = tmp_path / "orders.json"
            path.write_text(json.dumps({"orders": orders}))
            result = run_client(inst, path, "--interval", "0.5", "--timeout", "300")
            assert result.returncode == 2, result.stdout + result.stderr  # 5 refused
            assert "orders 1-100: 0 placed, 95 existed, 5 failed" in result.stdout
            assert "100 orders: 95 created, 0 error, 0 resolved, 5 refused, 0 still waiting" in result.stdout
        finally:
            assert inst.stop() == 0, inst.stderr()
        lines = [line for sheet in worksheets for line in erp.worksheet(sheet)["lines"]]
    assert len(lines) == 95
    for uniqueid in good:
        assert sum(uniqueid in line["reference"].split() for line in lines) == 1, uniqueid
