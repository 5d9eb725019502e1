"""The order records (orders/records.py): a file deleted, replaced or damaged under a
running instance, and the queued flag. Real SQLite files throughout."""

import os
import shutil
import sqlite3

import pytest

from core.errors import ConfigError, RecordsDamaged
from orders.records import DuplicateConflict, OrderStore, fingerprint


def order(uniqueid):
    return {"workshop": "W", "worksheet": "1", "product_nr": "10", "product_amount": "5",
            "uniqueid": uniqueid, "username": None}


def add(store, uniqueid):
    return store.add(order(uniqueid), fingerprint(order(uniqueid)), None)


def remove_db(path):
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)


def test_a_file_deleted_while_running_is_written_back_with_every_order(tmp_path):
    """SQLite itself goes on writing into the deleted inode: without the guard every
    order accepted afterwards would be gone at the next start."""
    path = str(tmp_path / "orders.db")
    store = OrderStore(path)
    add(store, "before")
    remove_db(path)
    add(store, "after")  # the write that notices, and writes the file back first
    store.close()

    reopened = OrderStore(path)
    assert reopened.get("before")["status"] == "placed"
    assert reopened.get("after")["status"] == "placed"
    reopened.close()


def test_a_file_replaced_while_running_is_refused_loudly(tmp_path, caplog):
    path = str(tmp_path / "orders.db")
    store = OrderStore(path)
    add(store, "a")
    other = OrderStore(str(tmp_path / "other.db"))
    other.close()
    os.replace(tmp_path / "other.db", path)
    with pytest.raises(RecordsDamaged, match="replaced"):
        add(store, "b")
    with pytest.raises(RecordsDamaged):  # and it stays refused: no silent success later
        store.get("a")
    assert any(r.levelname == "CRITICAL" for r in caplog.records)
    store.close()


def test_damage_found_while_running_is_records_damaged(tmp_path):
    path = str(tmp_path / "orders.db")
    store = OrderStore(path)
    for n in range(300):  # enough rows for pages beyond the header
        add(store, f"o{n}")
    store.close()
    store = OrderStore(path)
    # overwrite the pages behind the header, in place (same inode)
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.seek(4096)
        f.write(b"\xff" * (size - 4096))
    with pytest.raises(RecordsDamaged, match="damaged"):
        for n in range(300):
            store.get(f"o{n}")
    store.close()


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_file_at_start_is_a_config_error_naming_it(tmp_path, damage):
    path = str(tmp_path / "orders.db")
    if damage == "garbage":
        with open(path, "wb") as f:
            f.write(os.urandom(8192))
    else:
        store = OrderStore(path)
        for n in range(500):
            add(store, f"o{n}")
        store.close()
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) // 3)
    with pytest.raises(ConfigError) as err:
        OrderStore(path)
    message = str(err.value)
    assert path in message and "move it aside" in message
    assert "\n" not in message


def test_new_orders_are_unqueued_until_marked(tmp_path):
    store = OrderStore(str(tmp_path / "orders.db"))
    add(store, "a")
    assert not store.is_queued("a")
    assert [p["uniqueid"] for p in store.unqueued()] == ["a"]
    store.mark_queued("a")
    assert store.is_queued("a") and store.unqueued() == []
    store.close()


def test_a_file_from_before_the_queued_column_counts_its_orders_as_queued(tmp_path):
    path = str(tmp_path / "orders.db")
    store = OrderStore(path)
    add(store, "old")
    store.close()
    with sqlite3.connect(path) as db:  # the schema as it was, before formats were written
        db.execute("ALTER TABLE orders DROP COLUMN queued")
        db.execute("PRAGMA user_version=0")
    store = OrderStore(path)
    assert store.is_queued("old") and store.unqueued() == []
    add(store, "new")  # a new order is still unqueued until its put succeeded
    assert [p["uniqueid"] for p in store.unqueued()] == ["new"]
    store.close()


def test_the_payload_holds_what_a_rebuild_needs(tmp_path):
    store = OrderStore(str(tmp_path / "orders.db"))
    o = dict(order("p"), username="bob")
    store.add(o, fingerprint(o), "sealed-token")
    payload = store.payload("p")
    assert payload == {"uniqueid": "p", "worksheet": "1", "product_nr": "10",
                       "product_amount": "5", "username": "bob", "credentials": "sealed-token"}
    store.close()
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_concurrent_adds_share_commits_and_are_each_decided_as_if_alone(tmp_path):
    """The intake's group commit (orders/groupcommit.py) on a real file: 40 writers at
    once, among them repeats and conflicting reuses of a uniqueid. Each new order is
    stored once, a repeat finds it, a conflict is refused, and fewer commits ran than
    orders were added."""
    import threading
    import time
    store = OrderStore(str(tmp_path / "orders.db"))
    add(store, "taken")
    groups = []
    run_group = store._adds._run_group


    def slow_disk(group):  # a commit that waits for the disk a while: 40 arrive meanwhile
        groups.append(len(group))
        run_group(group)
        time.sleep(0.01)

    store._adds._run_group = slow_disk
    other = dict(order("taken"), product_amount="7")
    posts = [order(f"o-{n}") for n in range(30)] + [order(f"o-{n}") for n in range(5)] \
        + [other] * 5
    answers, start = [None] * len(posts), threading.Barrier(len(posts))

    def post(i):
        start.wait()
        try:
            answers[i] = store.add(posts[i], fingerprint(posts[i]), None)
        except DuplicateConflict as exc:
            answers[i] = exc

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(posts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    created = [a[0]["uniqueid"] for a in answers if isinstance(a, tuple) and a[1]]
    repeats = [a[0]["uniqueid"] for a in answers if isinstance(a, tuple) and not a[1]]
    conflicts = [a for a in answers if isinstance(a, DuplicateConflict)]
    assert sorted(created) == sorted(f"o-{n}" for n in range(30))
    assert sorted(repeats) == sorted(f"o-{n}" for n in range(5))
    assert len(conflicts) == 5
    assert store.count_active() == 31
    assert sum(groups) == len(posts) and len(groups) < len(posts)
    store.close()
    reopened = OrderStore(str(tmp_path / "orders.db"))  # on disk, every one
    assert reopened.count_active() == 31
    assert reopened.get("taken")["product_amount"] == "5"
    reopened.close()


def test_what_alive_asks_costs_the_same_with_a_long_history(tmp_path):
    """``/alive`` and ``/metrics`` ask for the last error and the number of repairs at
    every call; they used to read the whole history (10 ms at 50,000 orders). Counted
    in SQLite's own steps (a progress handler), not in time: the same with 40 finished
    orders as with 4,000 once the history is indexed."""
    store = OrderStore(str(tmp_path / "orders.db"))

    def finish(first, last):  # created orders; four of the first forty after a repair
        with store.locked() as db, db:
            db.execute("BEGIN")
            for n in range(first, last):
                uid = f"h-{n}"
                db.execute("INSERT INTO history (uniqueid, status, at, reason_text)"
                           " VALUES (?, 'created', '2026-01-01', ?)",
                           (uid, "repaired: amount" if n % 10 == 0 and n < 40 else None))

    def steps():
        counted = [0]

        def count():
            counted[0] += 1
            return 0
        with store.locked() as db:
            db.set_progress_handler(count, 10)
        store.last_error(), store.count_repairs(), store.last_success()
        with store.locked() as db:
            db.set_progress_handler(None, 10)
        return counted[0]

    finish(0, 40)
    few = steps()
    assert store.count_repairs() == 4
    finish(40, 4000)
    assert store.count_repairs() == 4
    many = steps()
    assert many <= few + 2, (few, many)  # was ~1,000 times more before the indexes
    store.close()
