"""Start-up reconciliation, records, queue compaction and log redaction (unit level:
real SQLite files, a fake ERP)."""

import logging
import sqlite3

from bridge.instance import Instance, fingerprint
from bridge.logs import setup
from bridge.status import OrderStatus, can_move
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
    assert not can_move("created", "processing") and not can_move("error", "placed")
    assert not can_move("placed", "created")


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


def test_order_processing_at_crash_is_resumed_once(settings):
    """Crash mid-order: persist-queue re-delivers the unacked item; the record goes back
    to placed and the worker processes it exactly once more."""
    inst, _ = open_instance(settings)
    inst.submit(new_order("mid"))
    row_id, payload = inst.queue.get(timeout=1)  # the worker took it ...
    inst.store.move("mid", OrderStatus.PROCESSING, expect=OrderStatus.PLACED)
    inst.queue.close()  # ... and the process died without ack
    inst.store.close()

    inst, erp = open_instance(settings)
    record = inst.store.get("mid")
    assert record["status"] == "placed"
    assert record["history"][-1]["reason_text"] == "resumed after a restart"
    assert inst.queue.pending_payloads() == [payload]  # still exactly one queue item
    inst.worker.start()
    wait_for(lambda: inst.store.get("mid")["status"] == "created")
    inst.close()
    assert erp.calls == ["mid"]


def test_order_finished_but_not_acked_is_not_written_again(settings):
    inst, _ = open_instance(settings)
    inst.submit(new_order("done"))
    inst.queue.get(timeout=1)
    inst.store.move("done", OrderStatus.PROCESSING, expect=OrderStatus.PLACED)
    inst.store.move("done", OrderStatus.CREATED)  # ERP written, then crash before ack
    inst.queue.close()
    inst.store.close()

    inst, erp = open_instance(settings)
    inst.worker.start()
    wait_for(lambda: not inst.queue.pending_payloads() if not inst.worker.current else False,
             message="queue drained")
    inst.close()
    assert erp.calls == []


def test_acked_rows_are_deleted(settings):
    inst, _ = open_instance(settings)
    for n in range(5):
        inst.submit(new_order(f"a{n}"))
    inst.worker.start()
    wait_for(lambda: inst.store.count_active() == 0)
    wait_for(lambda: _queue_rows(settings) == 0, message="acked rows compacted")
    inst.close()


def _queue_rows(settings):
    import glob
    import os
    path = glob.glob(os.path.join(settings.workshop_queue_dir, "queue", "*"))
    db = [p for p in path if p.endswith("data.db")][0]
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT COUNT(*) FROM ack_queue_default").fetchone()[0]


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


def test_empty_queue_get_returns_none_after_the_timeout(settings):
    inst, _ = open_instance(settings)
    assert inst.queue.get(timeout=0.05) is None
    inst.close()
