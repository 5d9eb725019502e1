"""Acting on failed orders (service/views/failed.py): retry, resolve, the order listing and
the failure artifacts, through Flask's test client with the fake ERP."""

import os
from datetime import datetime, timedelta, timezone

import pytest

from service.instance import Instance
from conftest import wait_for
from core.errors import ErpUnavailable, WorksheetClosed
from integrations.artifacts import artifact_stem
from test_api import order, status


def _fail(client, erp, uniqueid, error=None):
    """Post an order that the fake ERP refuses once with ``error``; wait for ``error``."""
    erp.failures[uniqueid] = [error or WorksheetClosed("Worksheet 558 is closed")]
    client.post("/create", json=order(uniqueid=uniqueid))
    client.put("/start_worker")
    wait_for(lambda: status(client, uniqueid)["status"] == "error", message="error")


def _events(client, uniqueid):
    page = client.get("/events?limit=500").get_json()
    return [e for e in page["events"] if e["uniqueid"] == uniqueid]


def test_retry_puts_a_failed_order_back_and_it_is_created(client, erp):
    _fail(client, erp, "r-1")
    assert client.get("/alive").get_json()["failed"] == 1

    answer = client.put("/retry?uniqueid=r-1&note=worksheet reopened")
    assert answer.status_code == 200
    wait_for(lambda: status(client, "r-1")["status"] == "created", message="created")

    record = status(client, "r-1")
    assert [h["status"] for h in record["history"]] == [
        "placed", "processing", "error", "placed", "processing", "created"]
    assert record["history"][3]["note"] == "worksheet reopened"
    assert "WORKSHEET_CLOSED" in record["history"][3]["reason_text"]
    assert record["attempts"] == 1  # fresh attempts; the earlier ones are in the history
    assert erp.lines == [("558", "10", 5, "r-1")]
    assert client.get("/alive").get_json()["failed"] == 0
    types = [e["type"] for e in _events(client, "r-1")]
    assert types == ["order.placed", "order.processing", "order.error", "order.placed",
                     "order.processing", "order.created"]
    assert _events(client, "r-1")[3]["note"] == "worksheet reopened"


def test_a_retried_order_whose_line_was_written_gets_no_second_line(client, erp):
    # an earlier attempt wrote the line, then failed before it could read it back
    erp.lines.append(("558", "10", 5, "r-2"))
    _fail(client, erp, "r-2")
    client.put("/retry?uniqueid=r-2")
    wait_for(lambda: status(client, "r-2")["status"] == "created", message="created")
    assert erp.lines == [("558", "10", 5, "r-2")]


def test_retry_after_the_attempt_limit_gives_fresh_attempts(client, erp, settings):
    erp.failures["r-3"] = [ErpUnavailable("down")] * settings.max_attempts
    client.post("/create", json=order(uniqueid="r-3"))
    client.put("/start_worker")
    wait_for(lambda: status(client, "r-3")["status"] == "error", timeout=20, message="error")
    assert status(client, "r-3")["attempts"] == settings.max_attempts

    assert client.put("/retry?uniqueid=r-3").status_code == 200
    wait_for(lambda: status(client, "r-3")["status"] == "created", message="created")
    assert [line[3] for line in erp.lines] == ["r-3"]


def test_resolve_ends_a_failed_order_for_good(client, erp):
    _fail(client, erp, "s-1")
    answer = client.put("/resolve", query_string={"uniqueid": "s-1",
                                                   "note": "typed in by hand, Kari"})
    assert answer.status_code == 200
    record = answer.get_json()
    assert record["status"] == "resolved"
    assert record["reason_code"] == "WORKSHEET_CLOSED"  # why it needed a person
    assert record["history"][-1]["note"] == "typed in by hand, Kari"
    assert _events(client, "s-1")[-1]["type"] == "order.resolved"

    again = client.put("/retry?uniqueid=s-1")
    assert again.status_code == 409 and again.get_json()["error"] == "not_failed"
    assert client.put("/resolve?uniqueid=s-1").status_code == 409
    assert erp.lines == []


@pytest.mark.parametrize("path", ["/retry", "/resolve"])
def test_only_failed_known_orders_can_be_acted_on(client, path):
    assert client.put(path + "?uniqueid=nope").status_code == 404
    missing = client.put(path)
    assert missing.status_code == 400 and "uniqueid" in missing.get_json()["fields"]
    assert client.put(path + "?uniqueid=a%20b").status_code == 400
    client.post("/create", json=order(uniqueid="p-1"))  # placed: the worker is stopped
    busy = client.put(path + "?uniqueid=p-1")
    assert busy.status_code == 409 and "placed" in busy.get_json()["message"]
    too_long = client.put(path + "?uniqueid=p-1&note=" + "x" * 501)
    assert too_long.status_code == 400 and "note" in too_long.get_json()["fields"]
    control = client.put(path + "?uniqueid=p-1&note=a%0Ab")
    assert control.status_code == 400 and "note" in control.get_json()["fields"]


def test_a_retry_survives_a_crash_before_its_queue_item(client, instance, settings, erp):
    _fail(client, erp, "c-1")
    instance.worker.stop()
    record, moved = instance.store.retry("c-1", "reopened")  # the process dies here
    assert moved and record["status"] == "placed"
    instance.close(worker_timeout=5)

    again = Instance(settings, make_integration=lambda: erp)  # the restart
    try:
        again.worker.start()
        wait_for(lambda: again.store.get("c-1")["status"] == "created", message="created")
    finally:
        again.close(worker_timeout=10)
    assert [line[3] for line in erp.lines] == ["c-1"]


# -- GET /orders ------------------------------------------------------------------

def test_orders_lists_by_status_a_page_at_a_time(client, erp):
    for n in range(5):
        client.post("/create", json=order(uniqueid=f"l-{n}"))
    _fail(client, erp, "l-bad-1")
    _fail(client, erp, "l-bad-2")
    wait_for(lambda: client.get("/alive").get_json()["queue_length"] == 0)

    failed = client.get("/orders?status=error").get_json()
    assert [o["uniqueid"] for o in failed["orders"]] == ["l-bad-1", "l-bad-2"]
    assert failed["more"] is False
    assert all(o["reason_code"] == "WORKSHEET_CLOSED" for o in failed["orders"])

    seen, after = [], 0
    while True:
        page = client.get(f"/orders?limit=3&after={after}").get_json()
        seen += [o["uniqueid"] for o in page["orders"]]
        after = page["next"]
        if not page["more"]:
            break
    assert seen == [f"l-{n}" for n in range(5)] + ["l-bad-1", "l-bad-2"]
    both = client.get("/orders?status=created,error").get_json()["orders"]
    assert len(both) == 7


def test_orders_since_and_until_bound_when_they_were_posted(client):
    client.post("/create", json=order(uniqueid="t-1"))
    now = datetime.now(timezone.utc)
    later = (now + timedelta(hours=1)).isoformat()
    earlier = (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert len(client.get("/orders", query_string={"since": earlier}).get_json()["orders"]) == 1
    assert client.get("/orders", query_string={"since": later}).get_json()["orders"] == []
    assert client.get("/orders", query_string={"until": earlier}).get_json()["orders"] == []
    today = now.date().isoformat()
    assert len(client.get("/orders", query_string={"since": today}).get_json()["orders"]) == 1


@pytest.mark.parametrize("query,field", [
    ("status=failed", "status"), ("status=error,", "status"), ("since=yesterday", "since"),
    ("until=2026-13-01", "until"), ("since=2026-12-01T08:00", "since"),
    ("limit=0", "limit"), ("limit=501", "limit"), ("after=-1", "after")])
def test_orders_refuses_bad_parameters_by_name(client, query, field):
    answer = client.get("/orders?" + query)
    assert answer.status_code == 400
    assert field in answer.get_json()["fields"]


# -- artifacts --------------------------------------------------------------------

def _artifact(settings, uniqueid, reason, ext, content, minutes=0):
    os.makedirs(settings.artifact_dir, exist_ok=True)
    when = datetime.now(timezone.utc) - timedelta(minutes=minutes)
    path = artifact_stem(settings.artifact_dir, uniqueid, reason, when) + "." + ext
    with open(path, "wb") as f:
        f.write(content)
    return os.path.basename(path)


def test_artifacts_are_listed_and_served_safely(client, settings, erp):
    _fail(client, erp, "a/1")
    png = _artifact(settings, "a/1", "WORKSHEET_CLOSED", "png", b"\x89PNG fake", minutes=1)
    page = _artifact(settings, "a/1", "WORKSHEET_CLOSED", "html", b"<script>alert(1)</script>")
    _artifact(settings, "a/10", "WORKSHEET_CLOSED", "png", b"another order's")
    _artifact(settings, "a/1_2", "LOGIN_FAILED", "png", b"and another's")

    listing = client.get("/orders/a/1/artifacts")
    assert listing.status_code == 200
    found = listing.get_json()["artifacts"]
    assert [(a["name"], a["kind"], a["reason_code"]) for a in found] == [
        (png, "screenshot", "WORKSHEET_CLOSED"), (page, "page", "WORKSHEET_CLOSED")]

    shot = client.get(f"/orders/a/1/artifacts/{png}")
    assert shot.status_code == 200 and shot.data == b"\x89PNG fake"
    assert shot.mimetype == "image/png"
    assert "attachment" not in shot.headers.get("Content-Disposition", "")
    html = client.get(f"/orders/a/1/artifacts/{page}")
    assert html.headers["Content-Disposition"].startswith("attachment")
    assert "sandbox" in html.headers["Content-Security-Policy"]
    assert html.headers["X-Content-Type-Options"] == "nosniff"

    other = [n for n in os.listdir(settings.artifact_dir) if "a_10" in n][0]
    assert client.get(f"/orders/a/1/artifacts/{other}").status_code == 404
    for name in ("..%2F..%2Ftask_queue", "%2E%2E", "orders.db"):
        assert client.get(f"/orders/a/1/artifacts/{name}").status_code == 404
    assert client.get("/orders/nope/artifacts").status_code == 404
    assert client.get("/orders/a/1/artifacts").headers["Content-Type"].startswith(
        "application/json")


def test_artifacts_need_the_token(instance, settings):
    from service.app import create_app

    answer = create_app(instance).test_client().get("/orders/x/artifacts")
    assert answer.status_code == 401
