"""The parking of idle Grid sessions (integrations/browser/parking.py): files only, no browser.
The same with a real Grid and Chromium: tests/test_e2e_parking.py."""

import os
import stat
import threading
import time

from integrations.browser.parking import PARK_SECONDS, POOL_STATE_SECONDS, Parking


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        return self.now


def test_a_parked_session_is_claimed_once_and_the_warmest_first(tmp_path):
    clock = Clock()
    parking = Parking(tmp_path / "p", now=clock)
    parking.park("old", {"browserName": "chrome"}, orders=3)
    clock.now += 1
    parking.park("new", {"browserName": "chrome"}, orders=7)
    assert parking.parked() == 2
    first = parking.claim()
    assert (first["session_id"], first["orders"], first["capabilities"]) == (
        "new", 7, {"browserName": "chrome"})
    assert parking.claim()["session_id"] == "old"
    assert parking.claim() is None and parking.parked() == 0
    assert os.listdir(tmp_path / "p") == ["waiting"]  # no claim or temporary file left


def test_many_claimers_at_once_never_share_a_session(tmp_path):
    parking = Parking(tmp_path / "p")
    for n in range(200):
        parking.park(f"s{n}", {})
    claimed, lock, start = [], threading.Lock(), threading.Barrier(8)

    def claimer():
        mine = Parking(tmp_path / "p")  # as another instance: its own object
        start.wait()
        while (record := mine.claim()) is not None:
            with lock:
                claimed.append(record["session_id"])
    threads = [threading.Thread(target=claimer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(claimed) == sorted(f"s{n}" for n in range(200))


def test_a_session_parked_too_long_is_not_handed_out_but_given_to_be_quit(tmp_path):
    clock = Clock()
    parking = Parking(tmp_path / "p", now=clock)
    parking.park("stale", {})
    clock.now += PARK_SECONDS + 1
    parking.park("fresh", {})
    assert parking.claim()["session_id"] == "fresh"
    assert parking.claim() is None and parking.parked() == 1  # left to be quit
    assert [record["session_id"] for record in parking.take_stale()] == ["stale"]
    assert parking.take_stale() == [] and parking.parked() == 0


def test_a_damaged_file_is_removed_and_passed_over(tmp_path):
    parking = Parking(tmp_path / "p")
    now = time.time()  # fresh names: claim reads them
    (tmp_path / "p" / f"{now:.6f}-broken.json").write_text("{not json")
    (tmp_path / "p" / f"{now:.6f}-no-id.json").write_text('{"capabilities": {}}')
    assert parking.claim() is None and parking.parked() == 0
    (tmp_path / "p" / "not-a-time.json").write_text('{"session_id": "x"}')
    assert parking.claim() is None and parking.take_stale() == [{"session_id": "x"}]


def test_the_parking_is_readable_by_its_owner_only(tmp_path):
    parking = Parking(tmp_path / "p")
    parking.park("s", {})
    assert stat.S_IMODE(os.stat(tmp_path / "p").st_mode) == 0o700
    (entry,) = [name for name in os.listdir(tmp_path / "p") if name.endswith(".json")]
    assert stat.S_IMODE(os.stat(tmp_path / "p" / entry).st_mode) == 0o600


def test_waiters_are_counted_while_they_wait_and_leftovers_are_dropped(tmp_path):
    clock = Clock()
    parking = Parking(tmp_path / "p", now=clock)
    with parking.waiter():
        with Parking(tmp_path / "p").waiter():
            assert parking.waiting() == 2
        assert parking.waiting() == 1
    assert parking.waiting() == 0
    leftover = tmp_path / "p" / "waiting" / "4242-dead"
    leftover.touch()
    os.utime(leftover, (0, 0))  # a waiter that died an hour ago
    clock.now = 10_000.0
    assert parking.waiting() == 0 and not leftover.exists()


def test_the_published_pool_state_is_read_while_fresh_then_the_grid_is_asked(tmp_path,
                                                                            monkeypatch):
    asked = []
    monkeypatch.setattr("integrations.browser.parking.pool_status",
                        lambda url, timeout: asked.append(url) or {"from": "the grid"})
    clock = Clock()
    parking = Parking(tmp_path / "p", now=clock)
    assert parking.pool_status("http://grid") == {"from": "the grid"}  # nothing published
    state = {"slots": 2, "in_use": 1, "waiting": 0, "nodes": 1}
    parking.publish_pool_state(state)
    clock.now += POOL_STATE_SECONDS
    assert Parking(tmp_path / "p", now=clock).pool_status("http://grid") == state
    parking.publish_pool_state(None)  # the janitor found the Grid down: so do we
    assert parking.pool_status("http://grid") is None
    assert asked == ["http://grid"]
    clock.now += POOL_STATE_SECONDS + 0.1  # the janitor stopped publishing
    assert parking.pool_status("http://grid") == {"from": "the grid"}
    (tmp_path / "p" / "pool.state").write_text('{"at": 1000000, "state": {"slots"')
    assert parking.pool_status("http://grid") == {"from": "the grid"}
    assert asked == ["http://grid"] * 3


def test_the_published_pool_state_is_never_taken_for_a_parked_session(tmp_path):
    parking = Parking(tmp_path / "p", now=lambda: time.time() + 2 * PARK_SECONDS)
    parking.publish_pool_state({"slots": 1, "in_use": 0, "waiting": 0, "nodes": 1})
    assert parking.parked() == 0
    assert parking.claim() is None and parking.take_stale() == []
    assert sorted(os.listdir(tmp_path / "p")) == ["pool.state", "waiting"]
    assert stat.S_IMODE(os.stat(tmp_path / "p" / "pool.state").st_mode) == 0o600
