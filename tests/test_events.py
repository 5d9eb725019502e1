"""The events outbox (orders/events.py) and the feed (GET /events, PUT /events/ack):
events written with the status change in one transaction, their types, cursor paging,
acknowledgement and retention. Real SQLite files; the API through Flask's test client."""

import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from service.app import create_app
from orders.events import CursorAhead, EventLog, event_type
from orders.records import OrderStore, fingerprint
from orders.status import OrderStatus
from core.errors import StorageUnavailable


def order(uniqueid):
    return {"workshop": "W", "worksheet": "1", "product_nr": "10", "product_amount": "5",
            "uniqueid": uniqueid, "username": None}


def add(store, uniqueid):
    return store.add(order(uniqueid), fingerprint(order(uniqueid)), None)


@pytest.fixture
def store(tmp_path):
    store = OrderStore(str(tmp_path / "orders.db"))
    yield store
    store.close()


@pytest.fixture
def log(store):
    return EventLog(store, "Bennys Auto")


def everything(log):
    return log.page(after=0, limit=500)["events"]


def later(days):
    return datetime.now(timezone.utc) + timedelta(days=days)


# -- one event per history row, in the same transaction ------------------------------

def test_each_status_change_is_one_event_with_its_type(store, log):
    add(store, "ok")
    store.move("ok", OrderStatus.PROCESSING)
    store.note_attempt("ok", "ERP_TIMEOUT", "no answer in 10 s")
    store.note_attempt("ok")  # an attempt without a failure writes no history: no event
    store.move("ok", OrderStatus.CREATED)
    add(store, "bad")
    store.move("bad", OrderStatus.PROCESSING)
    store.move("bad", OrderStatus.ERROR, "WORKSHEET_CLOSED", "closed")
    add(store, "waiting")
    store.move("waiting", OrderStatus.PROCESSING)
    store.move("waiting", OrderStatus.PLACED, reason_text="resumed after a restart")
    store.clear_placed()

    seen = [(e["uniqueid"], e["type"], e["status"], e["reason_code"], e["attempts"])
            for e in everything(log)]
    assert seen == [
        ("ok", "order.placed", "placed", None, 0),
        ("ok", "order.processing", "processing", None, 0),
        ("ok", "order.retrying", "processing", "ERP_TIMEOUT", 1),
        ("ok", "order.created", "created", None, 2),
        ("bad", "order.placed", "placed", None, 0),
        ("bad", "order.processing", "processing", None, 0),
        ("bad", "order.error", "error", "WORKSHEET_CLOSED", 0),
        ("waiting", "order.placed", "placed", None, 0),
        ("waiting", "order.processing", "processing", None, 0),
        ("waiting", "order.placed", "placed", None, 0),
        ("waiting", "order.error", "error", "CLEARED", 0),
    ]
    events = everything(log)
    assert [e["cursor"] for e in events] == sorted({e["cursor"] for e in events})
    assert len({e["id"] for e in events}) == len(events)
    assert all(e["id"].startswith("evt_") and "." not in e["id"] for e in events)
    assert all(e["workshop"] == "Bennys Auto" for e in events)
    # the same rows, the same times as the order's own history
    history = store.get("ok")["history"]
    assert [h["at"] for h in history] == [e["at"] for e in events[:4]]


def test_a_history_row_that_changes_no_status_is_a_note():
    assert event_type(None, "placed") == "order.placed"
    assert event_type("placed", "processing") == "order.processing"
    assert event_type("processing", "processing") == "order.retrying"
    assert event_type("created", "created") == "order.note"  # e.g. a repair noted
    assert event_type("error", "placed") == "order.placed"  # a retried order
    assert event_type("processing", "resolved") == "order.resolved"  # a status added later


def test_an_event_that_cannot_be_written_undoes_its_status_change(store, log, tmp_path):
    """One transaction: if the event is not stored, neither is the change."""
    add(store, "a")
    side = sqlite3.connect(str(tmp_path / "orders.db"))
    side.execute("CREATE TRIGGER no_events BEFORE INSERT ON events "
                 "BEGIN SELECT RAISE(ABORT, 'the event could not be written'); END")
    side.commit()
    with pytest.raises(StorageUnavailable):
        store.move("a", OrderStatus.PROCESSING)
    with pytest.raises(StorageUnavailable):
        add(store, "b")
    side.execute("DROP TRIGGER no_events")
    side.commit()
    side.close()
    assert store.get("a")["status"] == "placed"
    assert [h["status"] for h in store.get("a")["history"]] == ["placed"]
    assert store.get("b") is None
    assert [e["type"] for e in everything(log)] == ["order.placed"]


def test_events_survive_reopening_the_file(tmp_path):
    path = str(tmp_path / "orders.db")
    store = OrderStore(path)
    add(store, "a")
    store.move("a", OrderStatus.PROCESSING)
    store.close()
    reopened = OrderStore(path)
    try:
        assert [e["type"] for e in everything(EventLog(reopened, "W"))] == [
            "order.placed", "order.processing"]
    finally:
        reopened.close()


# -- the feed: paging and acknowledgement ------------------------------------------

def test_pages_follow_the_cursor_without_gaps_or_repeats(store, log):
    for n in range(120):
        add(store, f"o{n}")
    seen, after, pages = [], 0, 0
    while True:
        page = log.page(after=after, limit=50)
        pages += 1
        seen += [e["uniqueid"] for e in page["events"]]
        assert page["next"] >= after
        after = page["next"]
        if not page["more"]:
            break
    assert seen == [f"o{n}" for n in range(120)] and pages == 3
    empty = log.page(after=after)
    assert empty == {"events": [], "next": after, "more": False}


def test_without_after_the_feed_starts_after_the_acknowledged_cursor(store, log):
    for n in range(5):
        add(store, f"o{n}")
    events = everything(log)
    assert log.ack(events[2]["cursor"]) == events[2]["cursor"]
    assert [e["uniqueid"] for e in log.page()["events"]] == ["o3", "o4"]
    assert log.ack(events[0]["cursor"]) == events[2]["cursor"]  # a late ack changes nothing
    with pytest.raises(CursorAhead):
        log.ack(events[-1]["cursor"] + 1)
    assert log.ack(events[-1]["cursor"]) == events[-1]["cursor"]
    assert log.page()["events"] == []


# -- retention ------------------------------------------------------------------------

def test_only_acknowledged_old_delivered_events_are_pruned(store, log):
    for n in range(6):
        add(store, f"o{n}")
    cursors = [e["cursor"] for e in everything(log)]
    log.ack(cursors[3])
    assert log.prune(7) == 0  # acknowledged, but young
    assert log.prune(7, now=later(8), delivered=cursors[1]) == 2  # the webhook holds 3, 4
    assert [e["uniqueid"] for e in everything(log)] == ["o2", "o3", "o4", "o5"]
    assert log.prune(7, now=later(8)) == 2  # no webhook: acknowledged and old is enough
    assert [e["uniqueid"] for e in everything(log)] == ["o4", "o5"]
    assert log.prune(7, max_days=90, now=later(60)) == 0  # not acknowledged: kept
    assert log.prune(7, max_days=90, now=later(91)) == 2  # ... up to EVENT_MAX_DAYS
    assert everything(log) == []


def test_a_cursor_is_never_given_twice_after_pruning(store, log):
    add(store, "a")
    last = everything(log)[-1]["cursor"]
    log.ack(last)
    assert log.prune(0, now=later(1)) == 1
    add(store, "b")
    assert everything(log)[0]["cursor"] == last + 1
    with pytest.raises(CursorAhead):  # acknowledging is checked against every cursor given
        log.ack(last + 2)


# -- the HTTP side ---------------------------------------------------------------------

def test_the_feed_over_http(client, instance):
    for n in range(3):
        add(instance.store, f"o{n}")
    page = client.get("/events", query_string={"after": 0, "limit": 2}).get_json()
    assert [e["uniqueid"] for e in page["events"]] == ["o0", "o1"] and page["more"] is True
    assert set(page["events"][0]) == {"cursor", "id", "type", "workshop", "uniqueid", "status",
                                      "reason_code", "reason_text", "note", "attempts", "at"}
    answer = client.put("/events/ack", query_string={"cursor": page["next"]})
    assert answer.status_code == 200 and answer.get_json() == {"acked": page["next"]}
    rest = client.get("/events").get_json()
    assert [e["uniqueid"] for e in rest["events"]] == ["o2"] and rest["more"] is False
    ahead = client.put("/events/ack", query_string={"cursor": rest["next"] + 1})
    assert ahead.status_code == 409 and ahead.get_json()["error"] == "cursor_ahead"


@pytest.mark.parametrize("method,path,query,field", [
    ("get", "/events", {"after": "-1"}, "after"),
    ("get", "/events", {"after": "1.5"}, "after"),
    ("get", "/events", {"after": "x"}, "after"),
    ("get", "/events", {"after": "9" * 20}, "after"),
    ("get", "/events", {"limit": "0"}, "limit"),
    ("get", "/events", {"limit": "501"}, "limit"),
    ("get", "/events", {"limit": " 5"}, "limit"),
    ("put", "/events/ack", {}, "cursor"),
    ("put", "/events/ack", {"cursor": ""}, "cursor"),
    ("put", "/events/ack", {"cursor": "+3"}, "cursor"),
])
def test_bad_parameters_are_400_naming_the_field(client, method, path, query, field):
    answer = getattr(client, method)(path, query_string=query)
    assert answer.status_code == 400
    body = answer.get_json()
    assert body["error"] == "validation_failed" and field in body["fields"]


@pytest.mark.parametrize("method,path", [("get", "/events"), ("put", "/events/ack")])
def test_the_feed_needs_the_token(instance, method, path):
    answer = getattr(create_app(instance).test_client(), method)(path, query_string={"cursor": 0})
    assert answer.status_code == 401


def test_alive_shows_the_webhook_off_without_a_url(client, instance):
    assert client.get("/alive").get_json()["webhook"] == {
        "state": "off", "backlog": 0, "failures": 0, "next_try": None}
