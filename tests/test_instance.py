"""Start-up reconciliation, records, queue compaction and log redaction (unit level:
real SQLite files, a fake ERP)."""

import logging
import os
import sqlite3

from service.instance import Instance, fingerprint
from core.errors import StorageUnavailable
from service.logs import setup
from orders.queue import OrderQueue
from orders.status import OrderStatus, can_move
from conftest import WORKSHOP, wait_for
from fakes import FakeIntegration


def new_order(uniqueid, **changes):
    order = {"workshop": WORKSHOP, "worksheet": "1", "product_nr": "10",
             "product_amount": "5", "uniqueid": uniqueid, "username": None, "password": None}
    order.update(changes)
    return order


def open_instance(settings, erp=None):
    erp = erp or FakeIntegration()
    return Instance(settings, make_integration=lambda: erp), erp


def test_transitions_are_the_written_ones():
    assert can_move("placed", "processing") and can_move("processing", "created")
    assert can_move("processing", "placed") and can_move("placed", "error")
    assert not can_move("created", "processing") and not can_move("placed", "created")
    # an operator acts on an order in error: retry (back to placed) or resolve (final)
    assert can_move("error", "placed") and can_move("error", "resolved")
    assert not can_move("error", "processing") and not can_move("error", "created")
    assert not any(can_move(final, to) for final in ("created", "resolved")
                   for to in ("placed", "processing", "created", "error", "resolved"))


def test_record_without_queue_item_is_queued_at_start(settings):
    """A crash between the record commit and the queue put loses nothing."""
    inst, _ = open_instance(settings)
    inst.store.add(new_order("orphan"), fingerprint(new_order("orphan")), None)  # no put
    inst.submit(new_order("normal"))
    inst.close()

    inst, erp = open_instance(settings)
    inst.worker.start()
    wait_for(lambda: inst.store.get("orphan")["status"] == "created")
    wait_for(lambda: inst.store.get("normal")["status"] == "created")
    inst.close()
    assert sorted(uid for *_, uid in erp.lines) == ["normal", "orphan"]
    assert erp.calls.count("orphan") == 1 and erp.calls.count("normal") == 1


def test_a_record_stored_as_queued_without_its_item_is_queued_at_start(settings):
    """The intake stores an order marked queued, then puts it: a crash in between (the
    record says queued, the queue has no item) is found by comparing with the queue."""
    inst, _ = open_instance(settings)
    order = new_order("marked")
    inst.store.add(order, fingerprint(order), None, queued=True)  # ... and the process died
    assert inst.store.is_queued("marked") and not inst.queue.pending_payloads()
    inst.close()

    inst, erp = open_instance(settings)
    assert [p["uniqueid"] for p in inst.queue.pending_payloads()] == ["marked"]
    inst.worker.start()
    wait_for(lambda: inst.store.get("marked")["status"] == "created")
    inst.close()
    assert erp.calls == ["marked"]


def test_order_processing_at_crash_is_resumed_once(settings):
    """Crash mid-order: persist-queue re-delivers the unacked item; the record goes back
    to placed and the worker processes it exactly once more."""
    inst, _ = open_instance(settings)
    inst.submit(new_order("mid"))
    row_id, payload = inst.queue.get(timeout=1)  # the worker took it ...
    inst.store.move("mid", OrderStatus.PROCESSING, expect=OrderStatus.PLACED)
    inst.queue.close()  # ... and the process died without ack
    inst.store.close()
    inst.hold.release()  # as the kernel drops it when the process dies

    inst, erp = open_instance(settings)
    record = inst.store.get("mid")
    assert record["status"] == "placed"
    assert record["history"][-1]["reason_text"] == "resumed after a restart"
    assert inst.queue.pending_payloads() == [payload]  # still exactly one queue item
    inst.worker.start()
    wait_for(lambda: inst.store.get("mid")["status"] == "created")
    inst.close()
    assert erp.calls == ["mid"]


def test_a_queue_that_lost_its_last_commits_loses_nothing_and_writes_nothing_twice(settings):
    """The queue does not wait for the disk (orders/queue.py): a power cut can take back
    its last commits. Played here by putting back a copy of the queue taken earlier: the
    acks of two finished orders and the put of a waiting one are gone. The records, which
    do wait for the disk, decide: the waiting order is queued again, the finished one
    that comes back to the worker is skipped."""
    import shutil
    folder = os.path.join(settings.workshop_queue_dir, "queue")
    erp = FakeIntegration()
    inst, _ = open_instance(settings, erp)
    inst.submit(new_order("early"))
    inst.close()
    shutil.copytree(folder, folder + ".copy")  # closed: every commit is in data.db

    inst, _ = open_instance(settings, erp)
    inst.submit(new_order("late"))
    inst.worker.start()
    wait_for(lambda: inst.store.get("early")["status"] == "created")
    wait_for(lambda: inst.store.get("late")["status"] == "created")
    inst.worker.stop()
    inst.submit(new_order("waiting"))
    inst.close()
    assert [p["uniqueid"] for p in OrderQueue(folder).pending_payloads()] == ["waiting"]
    shutil.rmtree(folder)  # the acks of early and late and the put of waiting ...
    shutil.copytree(folder + ".copy", folder)  # ... taken back

    inst, _ = open_instance(settings, erp)
    assert sorted(p["uniqueid"] for p in inst.queue.pending_payloads()) == ["early", "waiting"]
    inst.worker.start()
    wait_for(lambda: inst.store.get("waiting")["status"] == "created")
    wait_for(lambda: not inst.queue.pending_payloads() if not inst.worker.current else False,
             message="the queue drained")
    inst.close()
    assert sorted(erp.calls) == ["early", "late", "waiting"]


def test_the_queue_commits_without_waiting_for_the_disk_and_the_records_with(settings):
    """What the test above relies on, and what the intake's rate is built on
    (docs/benchmarks.md): NORMAL (1) for the queue's connections, FULL (2) for the
    records'. A persist-queue upgrade that renames its connections fails here."""
    inst, _ = open_instance(settings)
    try:
        queue = inst.queue._q
        for conn in (queue._putter, queue._getter):
            assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1
        with inst.store.locked() as db:
            assert db.execute("PRAGMA synchronous").fetchone()[0] == 2
    finally:
        inst.close()


def test_order_finished_but_not_acked_is_not_written_again(settings):
    inst, _ = open_instance(settings)
    inst.submit(new_order("done"))
    inst.queue.get(timeout=1)
    inst.store.move("done", OrderStatus.PROCESSING, expect=OrderStatus.PLACED)
    inst.store.move("done", OrderStatus.CREATED)  # ERP written, then crash before ack
    inst.queue.close()
    inst.store.close()
    inst.hold.release()  # as the kernel drops it when the process dies

    inst, erp = open_instance(settings)
    inst.worker.start()
    wait_for(lambda: not inst.queue.pending_payloads() if not inst.worker.current else False,
             message="queue drained")
    inst.close()
    assert erp.calls == []


def test_logs_mask_known_secrets_and_password_shapes(settings):
    api_log, orderline_log = setup(settings, to_stderr=False)
    orderline_log.info("login with %s", settings.erp_password)
    api_log.info('body {"password": "hunter22", "x": 1} token=%s', settings.api_token)
    for handler in api_log.handlers + orderline_log.handlers:
        handler.flush()
    import glob
    text = "".join(open(p, encoding="utf-8").read() for p in glob.glob(settings.log_dir + "/*.log"))
    assert "default-erp-secret" not in text and "hunter22" not in text
    assert settings.api_token not in text
    assert "********" in text
    for logger in (api_log, orderline_log):
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
            handler.close()
    logging.getLogger("oilmat.api").propagate = True


# -- storage faults (issue 8: no order stranded or lost) ------------------------------


def _client(inst):
    from service.app import create_app

    client = create_app(inst).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {inst.settings.api_token}"
    return client


def _body(uniqueid):
    return {k: v for k, v in new_order(uniqueid).items() if v is not None}


def _fail_puts(inst, times):
    """Make the next ``times`` puts of persist-queue fail the way a full disk does."""
    real_put, left = inst.queue._q.put, [times]

    def put(item):
        if left[0]:
            left[0] -= 1
            raise sqlite3.OperationalError("database or disk is full")
        return real_put(item)

    inst.queue._q.put = put


def test_a_failed_put_after_the_record_is_503_and_queued_without_a_restart(settings):
    inst, erp = open_instance(settings)
    client = _client(inst)
    _fail_puts(inst, 1)
    answer = client.post("/create", json=_body("boundary"))
    assert answer.status_code == 503
    assert answer.headers["Retry-After"].isdigit()
    assert answer.get_json()["error"] == "storage_unavailable"
    assert "stored" in answer.get_json()["message"]
    inst.worker.start()  # the sweep queues it: no restart, no repost needed
    wait_for(lambda: inst.store.get("boundary")["status"] == "created")
    inst.close()
    assert erp.calls == ["boundary"]


def test_a_failed_put_whose_record_cannot_be_unmarked_is_queued_by_the_sweep(settings):
    """A full disk may refuse the put and then the record's unmarking too: the order is
    remembered as stranded, and the sweep and a repost still queue it."""
    inst, erp = open_instance(settings)
    client = _client(inst)
    _fail_puts(inst, 1)
    real = inst.store.set_queued

    def full(uniqueid, queued):
        raise StorageUnavailable("the disk holding the records is full")

    inst.store.set_queued = full
    assert client.post("/create", json=_body("stuck")).status_code == 503
    inst.store.set_queued = real
    assert inst.store.is_queued("stuck") and not inst.queue.pending_payloads()
    assert client.post("/create", json=_body("stuck")).status_code == 200  # a repost puts it
    assert [p["uniqueid"] for p in inst.queue.pending_payloads()] == ["stuck"]
    assert inst.queue_stranded() == 0  # and only once
    inst.worker.start()
    wait_for(lambda: inst.store.get("stuck")["status"] == "created")
    inst.close()
    assert erp.calls == ["stuck"]


def test_a_repost_of_a_stored_but_unqueued_order_queues_it(settings):
    inst, erp = open_instance(settings)
    client = _client(inst)
    _fail_puts(inst, 1)
    assert client.post("/create", json=_body("again")).status_code == 503
    repost = client.post("/create", json=_body("again"))
    assert repost.status_code == 200 and repost.get_json()["status"] == "placed"
    assert [p["uniqueid"] for p in inst.queue.pending_payloads()] == ["again"]
    assert client.post("/create", json=_body("again")).status_code == 200  # not queued twice
    assert len(inst.queue.pending_payloads()) == 1
    inst.worker.start()
    wait_for(lambda: inst.store.get("again")["status"] == "created")
    inst.close()
    assert erp.calls == ["again"]


def test_a_failed_record_write_is_503_and_stores_nothing(settings):
    inst, erp = open_instance(settings)
    client = _client(inst)
    # SQLite's own "disk full": the file may not grow past its present size
    inst.store._db.execute("PRAGMA max_page_count=1")
    answers = {}
    for n in range(500):
        answers[f"o{n}"] = client.post("/create", json=_body(f"o{n}"))
        if answers[f"o{n}"].status_code != 200:
            break
    refused = f"o{n}"
    assert answers[refused].status_code == 503 and answers[refused].headers["Retry-After"]
    assert "full" in answers[refused].get_json()["message"]
    inst.store._db.execute("PRAGMA max_page_count=1073741823")
    assert client.get(f"/get_order_status?uniqueid={refused}").status_code == 404
    assert [p["uniqueid"] for p in inst.queue.pending_payloads()] == list(answers)[:-1]
    inst.close()


def test_records_deleted_under_a_running_instance_lose_no_order(settings):
    inst, _ = open_instance(settings)
    client = _client(inst)
    for n in range(3):
        assert client.post("/create", json=_body(f"before{n}")).status_code == 200
    path = os.path.join(settings.workshop_queue_dir, "orders.db")
    for suffix in ("", "-wal", "-shm"):
        os.remove(path + suffix)
    for n in range(2):
        assert client.post("/create", json=_body(f"after{n}")).status_code == 200
    inst.close()

    inst, erp = open_instance(settings)  # the next start sees every order
    inst.worker.start()
    expected = [f"before{n}" for n in range(3)] + [f"after{n}" for n in range(2)]
    for uniqueid in expected:
        wait_for(lambda: inst.store.get(uniqueid)["status"] == "created", message=uniqueid)
    inst.close()
    assert sorted(erp.calls) == sorted(expected)


def test_queue_items_whose_records_are_missing_are_rebuilt_not_dropped(settings):
    inst, _ = open_instance(settings)
    client = _client(inst)
    client.post("/create", json=_body("plain"))
    client.post("/create", json=dict(_body("own-login"), username="bob", password="pw-bob"))
    inst.close()
    path = os.path.join(settings.workshop_queue_dir, "orders.db")
    for suffix in ("", "-wal", "-shm"):  # moved aside, as the start-up error tells
        if os.path.exists(path + suffix):
            os.rename(path + suffix, path + suffix + ".damaged")

    inst, erp = open_instance(settings)
    client = _client(inst)
    inst.worker.start()
    wait_for(lambda: (inst.store.get("plain") or {}).get("status") == "created")
    wait_for(lambda: (inst.store.get("own-login") or {}).get("status") == "created")
    record = inst.store.get("own-login")
    assert "rebuilt" in record["history"][0]["reason_text"]
    # the rebuilt record is the same order: an identical repost is not a conflict
    repost = client.post("/create", json=dict(_body("own-login"), username="bob",
                                               password="pw-bob"))
    assert repost.status_code == 200 and repost.get_json()["status"] == "created"
    inst.close()
    assert sorted(erp.calls) == ["own-login", "plain"]
    seen = dict(zip(erp.calls, erp.credentials_seen))
    assert seen["own-login"].username == "bob" and seen["own-login"].password == "pw-bob"


def test_records_replaced_while_running_give_503_and_alive_says_why(settings):
    inst, _ = open_instance(settings)
    client = _client(inst)
    client.post("/create", json=_body("first"))
    path = os.path.join(settings.workshop_queue_dir, "orders.db")
    sqlite3.connect(path + ".new").close()
    os.replace(path + ".new", path)
    answer = client.post("/create", json=_body("second"))
    assert answer.status_code == 503 and answer.headers["Retry-After"]
    assert "replaced" in answer.get_json()["message"]
    assert client.get("/get_order_status?uniqueid=first").status_code == 503
    alive = client.get("/alive")
    assert alive.status_code == 200 and "replaced" in alive.get_json()["storage"]
    assert alive.get_json()["queue_length"] is None
    inst.close()


def test_two_queue_items_of_one_order_make_one_line(settings):
    """A sweep and a repost racing could put an order twice: the worker works it once."""
    inst, _ = open_instance(settings)
    inst.submit(new_order("twice"))
    inst.queue.put(inst.store.payload("twice"))
    inst, erp = inst, inst.worker.make_integration()
    inst.worker.start()
    wait_for(lambda: inst.store.get("twice")["status"] == "created")
    wait_for(lambda: not inst.queue.pending_payloads() if not inst.worker.current else False,
             message="queue drained")
    inst.close()
    assert erp.calls == ["twice"]
