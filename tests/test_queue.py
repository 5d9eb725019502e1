"""The queue (orders/queue.py): persist-queue's SQLiteAckQueue under the instance, with real
SQLite files. Moved from test_instance.py; every assertion kept."""

import glob
import os
import sqlite3
import threading
import time

import pytest

from orders.queue import OrderQueue
from conftest import wait_for
from core.errors import ConfigError, StorageUnavailable
from test_instance import new_order, open_instance


def test_acked_rows_are_deleted(settings):
    inst, _ = open_instance(settings)
    for n in range(5):
        inst.submit(new_order(f"a{n}"))
    inst.worker.start()
    wait_for(lambda: inst.store.count_active() == 0)
    wait_for(lambda: _queue_rows(settings) == 0, message="acked rows compacted")
    inst.close()


def _queue_rows(settings):
    path = glob.glob(os.path.join(settings.workshop_queue_dir, "queue", "*"))
    db = [p for p in path if p.endswith("data.db")][0]
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT COUNT(*) FROM ack_queue_default").fetchone()[0]


def test_empty_queue_get_returns_none_after_the_timeout(settings):
    inst, _ = open_instance(settings)
    assert inst.queue.get(timeout=0.05) is None
    inst.close()


def test_a_waiting_get_returns_as_soon_as_an_item_is_put(tmp_path):
    """The worker waits long (workers.worker.IDLE_POLL_SECONDS) when idle: a put ends
    the wait at once, and so does wake (the worker's stop)."""
    queue = OrderQueue(str(tmp_path / "q"))
    try:
        timer = threading.Timer(0.2, queue.put, args=({"uniqueid": "u-1"},))
        started = time.monotonic()
        timer.start()
        row_id, payload = queue.get(timeout=30)
        assert payload == {"uniqueid": "u-1"} and time.monotonic() - started < 5
        queue.ack(row_id)

        timer = threading.Timer(0.2, queue.wake)
        started = time.monotonic()
        timer.start()
        assert queue.get(timeout=30) is None
        assert time.monotonic() - started < 5
    finally:
        queue.close()


def test_an_item_put_between_two_gets_is_not_missed(tmp_path):
    queue = OrderQueue(str(tmp_path / "q"))
    try:
        assert queue.get(timeout=0) is None
        queue.put({"uniqueid": "u-2"})
        assert queue.get(timeout=0)[1] == {"uniqueid": "u-2"}
    finally:
        queue.close()


def test_a_failed_put_is_storage_unavailable(tmp_path):
    queue = OrderQueue(str(tmp_path / "q"))

    def full(item):
        raise sqlite3.OperationalError("database or disk is full")
    queue._q.put = full
    with pytest.raises(StorageUnavailable, match="cannot be written"):
        queue.put({"uniqueid": "x"})
    queue.close()


def test_a_damaged_queue_file_is_a_config_error_naming_its_folder(tmp_path):
    folder = tmp_path / "q"
    folder.mkdir()
    (folder / "data.db").write_bytes(b"not a database" * 500)
    with pytest.raises(ConfigError) as err:
        OrderQueue(str(folder))
    assert str(folder) in str(err.value) and "move that folder aside" in str(err.value)
