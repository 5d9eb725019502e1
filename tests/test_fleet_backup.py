"""manage.py backup DIR / restore DIR (fleet/backup.py): the fleet's data copied while
orders flow, and put back onto a stopped fleet."""

import os
import signal

import pytest

from service.settings import Settings
from fakes import FakeIntegration
from tests.erp_helpers import ErpSimServer
from tests.fleet_helpers import Fleet, Stream, fleet_env, wait_for

A = "Bennys Auto"
URL = "http://127.0.0.1:9"  # no ERP is reached in the first tests: a fake works the orders


def instance(env, workshop=A):
    from service.instance import Instance

    settings = Settings(workshop=workshop, port=1, api_token="unused", secret_key=env["SECRET_KEY"],
                        queue_dir=env["QUEUE_DIR"], log_dir=env["LOG_DIR"],
                        erp_username="admin", erp_password="admin")
    erp = FakeIntegration()
    return Instance(settings, make_integration=lambda: erp), erp


def place(inst, uniqueid):
    inst.submit({"workshop": A, "worksheet": "1", "product_nr": "10", "product_amount": "2",
                 "uniqueid": uniqueid, "username": None, "password": None})


@pytest.fixture
def fleet(tmp_path):
    fleet = Fleet(fleet_env(tmp_path))
    fleet.add(A, URL)
    yield fleet
    fleet.cleanup()


def test_a_backup_is_put_back_with_every_status_and_the_waiting_orders_worked_once(fleet, tmp_path):
    inst, erp = instance(fleet.env)
    for uniqueid in ("b-done", "b-waiting"):
        place(inst, uniqueid)
    inst.worker.make_integration = lambda: erp
    inst.store.move("b-done", "processing")
    inst.store.move("b-done", "created")
    out = fleet.manage("backup", tmp_path / "backup").stdout  # while the instance runs
    assert f"backup: 1 workshop(s) and the registry in {tmp_path / 'backup'}" in out
    place(inst, "b-after")  # after the backup: not in it
    inst.worker.burst()
    inst.close()

    result = fleet.manage("restore", tmp_path / "backup")
    assert "restore: 1 workshop(s)" in result.stdout and ".replaced-" in result.stdout
    inst, erp = instance(fleet.env)
    try:
        assert inst.store.get("b-done")["status"] == "created"
        assert inst.store.get("b-waiting")["status"] == "placed"
        assert inst.store.get("b-after") is None
        inst.worker.burst()
        assert inst.store.get("b-waiting")["status"] == "created"
    finally:
        inst.close()
    assert erp.calls == ["b-waiting"]
    assert fleet.manage("list").stdout.count(A) == 1  # the registry came back too


def test_a_restore_changes_nothing_while_a_process_runs_on_a_workshop(fleet, tmp_path):
    inst, _ = instance(fleet.env)
    place(inst, "r-1")
    fleet.manage("backup", tmp_path / "backup")
    place(inst, "r-2")
    try:  # the instance still holds its folder
        result = fleet.manage("restore", tmp_path / "backup", check=False)
        assert result.returncode == 2 and f"is held by pid {os.getpid()}" in result.stderr
        assert inst.store.get("r-2") is not None  # nothing changed
    finally:
        inst.close()


def test_bad_folders_are_one_line_and_exit_2(fleet, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    result = fleet.manage("backup", tmp_path / "full", check=False)
    assert result.returncode == 2 and "is not empty" in result.stderr
    result = fleet.manage("restore", tmp_path / "full", check=False)
    assert result.returncode == 2 and "is not a backup" in result.stderr


def test_a_backup_during_a_stream_of_orders_then_kill_9_and_a_restore_elsewhere(tmp_path):
    """The fleet runs; orders flow; a backup is taken; the fleet is killed with -9 and its
    data lost; the backup is restored into new folders and the fleet started there: every
    order answered 200 before the backup began is there, and every line is written once."""
    with ErpSimServer(save_delay=0.05) as erp:
        env = fleet_env(tmp_path / "first", RETRY_BASE_SECONDS="0.2", RETRY_MAX_SECONDS="1",
                        BROWSER_IDLE_SECONDS="1", STOP_WAIT_SECONDS="30")
        fleet = Fleet(env)
        fleet.add(A, erp.url)
        fleet.up(timeout=60)
        try:
            fleet.wait_health({A: "ok"}, timeout=60)
            orders = [(A, f"bk-{n}", 400 + n % 3) for n in range(12)]
            stream = Stream(fleet, orders)
            stream.thread.start()
            wait_for(lambda: len(stream.answered) >= 5, 60, 0.05, "the first orders")
            before = set(stream.answered)  # answered 200 before the backup began
            fleet.manage("backup", tmp_path / "backup")
            stream.thread.join(120)
        finally:  # the host dies: supervisord, the instances and their browsers
            os.killpg(fleet.up_process.pid, signal.SIGKILL)
            fleet.up_process.wait(10)
            for pid in _fleet_pids(env):  # each program leads a process group of its own
                try:
                    os.killpg(os.getpgid(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
        wait_for(lambda: not _fleet_pids(env), 30, 0.2, "the killed fleet to be gone")

        # elsewhere: new folders, the same SECRET_KEY
        moved = fleet_env(tmp_path / "second", SECRET_KEY=env["SECRET_KEY"],
                          RETRY_BASE_SECONDS="0.2", RETRY_MAX_SECONDS="1",
                          BROWSER_IDLE_SECONDS="1", STOP_WAIT_SECONDS="30")
        again = Fleet(moved)
        again.manage("restore", tmp_path / "backup")
        again.ports, again.tokens = fleet.ports, fleet.tokens
        again.up(timeout=60)
        try:
            again.wait_health({A: "ok"}, timeout=60)
            for uniqueid in before:
                status = wait_for(lambda: again.order_status(A, uniqueid) in ("created", "error")
                                  and again.order_status(A, uniqueid), 120, 0.2, uniqueid)
                assert status == "created", uniqueid
            for _, uniqueid, worksheet in orders:  # posted later or not: never twice
                assert len(erp.lines_with(worksheet, uniqueid)) <= 1, uniqueid
            for uniqueid in before:
                worksheet = next(w for _, u, w in orders if u == uniqueid)
                assert len(erp.lines_with(worksheet, uniqueid)) == 1, uniqueid
        finally:
            again.cleanup()
            fleet.cleanup()


def _fleet_pids(env):
    """The running processes of the fleet ``env`` started (its QUEUE_DIR in their environment)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/environ", "rb") as f:
                    if f"QUEUE_DIR={env['QUEUE_DIR']}\0".encode() in f.read():
                        with open(f"/proc/{entry}/stat", "rb") as s:
                            if s.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X"):
                                found.append(int(entry))
            except OSError:
                pass
    return found
