"""``python manage.py rotate-secrets`` on real files: a registry made by ``manage.py add``,
workshops' order records and queues made by :class:`service.instance.Instance`, and a real
supervisord running real instances (api.py with its worker left stopped, so no browser).

After the rotation everything must open under the new key alone.
"""

import os
import re
import sqlite3
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from core.crypto import CredentialBox
from service.instance import Instance
from core.hold import Hold
from core.names import file_name
from orders.queue import OrderQueue
from service.settings import Settings
from fleet.registry import Registry
from core.credentials import Credentials
from tests.conftest import wait_for
from tests.fakes import FakeIntegration
from tests.fleet_helpers import ROOT, Fleet, fleet_env

A, B, C = "Bennys Auto", "Bilverksted Ålesund", "Garage Tre"
URL = "http://127.0.0.1:9"  # no ERP is ever reached: no order is worked on but by a fake
OLD = Fernet.generate_key().decode()  # as deployments have it today
NEW = "a new secret key; forty characters long."  # a passphrase-style key
STRANGER = Fernet.generate_key().decode()  # under neither: unreadable
IDLE_INSTANCE = os.path.join(ROOT, "tests", "fleet_idle_instance.py")
ORDERS = {A: ["a-1", "a-2"], B: ["b-1", "b-2"], C: ["c-1", "c-2"]}
_FERNET_TOKEN = re.compile(r"gAAAAA[A-Za-z0-9_=-]+")


# -- helpers --------------------------------------------------------------------------

def instance_settings(env, workshop, key, fallbacks=()):
    return Settings(workshop=workshop, port=1, api_token="unused", secret_key=key,
                    secret_key_fallbacks=tuple(fallbacks), queue_dir=env["QUEUE_DIR"],
                    log_dir=env["LOG_DIR"], erp_username="", erp_password="")


def seed_orders(env, workshop, key, uniqueids, unreadable=None):
    """Queue orders the way an instance does, sealed under ``key`` (the worker stopped).

    Each order carries its own login; ``unreadable`` is sealed under a key nobody has.
    """
    instance = Instance(instance_settings(env, workshop, key),
                        make_integration=FakeIntegration)
    try:
        for uniqueid in [*uniqueids, *([unreadable] if unreadable else [])]:
            if uniqueid == unreadable:
                instance.box = CredentialBox(STRANGER)
            record, created = instance.submit({
                "workshop": workshop, "worksheet": "1", "product_nr": "10",
                "product_amount": "1", "uniqueid": uniqueid, "username": f"user-{uniqueid}",
                "password": f"pw-{uniqueid}"})
            assert created and record["status"] == "placed"
    finally:
        instance.close()


def stored(env, workshop):
    """:returns: ``(records, queue)``: ``{uniqueid: sealed credentials}`` of each file"""
    directory = Path(env["QUEUE_DIR"]) / file_name(workshop)
    with sqlite3.connect(directory / "orders.db") as db:
        records = dict(db.execute("SELECT uniqueid, credentials FROM orders"))
    queue = OrderQueue(str(directory / "queue"))
    try:
        items = {p["uniqueid"]: p["credentials"] for p in queue.pending_payloads()}
    finally:
        queue.close()
    return records, items


def assert_open_under_new_key_alone(env, tokens, workshop_orders, unreadable=()):
    """Registry, program files and every workshop's files open with ``NEW`` and no fallback."""
    box = CredentialBox(NEW)
    registry = Registry(env["REGISTRY_DB"], NEW)
    for integration in registry.all():
        assert registry.api_token(integration) == tokens[integration.workshop]
        assert registry.credentials(integration) == Credentials("admin", "admin")
    for path in (Path(env["SUPERVISOR_DIR"]) / "programs").iterdir():
        for token in _FERNET_TOKEN.findall(path.read_text()):
            box.open_text(token)  # raises when not under NEW
    for workshop, uniqueids in workshop_orders.items():
        records, queue = stored(env, workshop)
        assert records == queue  # one new token per order, the same in both files
        for uniqueid in uniqueids:
            assert box.open(records[uniqueid]) == Credentials(f"user-{uniqueid}", f"pw-{uniqueid}")
        for uniqueid in unreadable:
            if uniqueid in records:
                assert not CredentialBox(NEW, [OLD]).is_current(records[uniqueid])


def work_off(env, workshop, uniqueids):
    """The worker of an instance on ``NEW`` alone opens the queued orders' logins."""
    erp = FakeIntegration()
    instance = Instance(instance_settings(env, workshop, NEW), make_integration=lambda: erp)
    try:
        instance.worker.start()
        wait_for(lambda: all(instance.store.get(u)["status"] == "created" for u in uniqueids),
                 timeout=20, message="orders created")
    finally:
        instance.close()
    assert {u: c for u, c in zip(erp.calls, erp.credentials_seen)} == {
        u: Credentials(f"user-{u}", f"pw-{u}") for u in uniqueids}


def rotate(fleet):
    result = fleet.manage("rotate-secrets", check=False)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def line(output, workshop):
    return next(l for l in output.splitlines() if l.startswith(f"{workshop}: "))


def states(fleet):
    return {w: (i["process"]["state"], i["process"]["pid"]) for w, i in fleet.overview().items()}


@pytest.fixture
def fleet(tmp_path):
    fleet = Fleet(fleet_env(tmp_path, SECRET_KEY=OLD, API_SCRIPT=IDLE_INSTANCE,
                            STOP_WAIT_SECONDS=20))
    yield fleet
    fleet.cleanup()


def new_key_with_old_as_fallback(fleet):
    fleet.env.update(SECRET_KEY=NEW, SECRET_KEY_FALLBACKS=OLD)


# -- without supervisord: every workshop re-sealed in place ----------------------------

def test_rotation_without_supervisord(fleet):
    fleet.add(A, URL)
    fleet.add(B, URL, None, "--inactive")
    seed_orders(fleet.env, A, OLD, ORDERS[A], unreadable="a-lost")
    seed_orders(fleet.env, B, OLD, ORDERS[B])
    lost_before = stored(fleet.env, A)[0]["a-lost"]
    new_key_with_old_as_fallback(fleet)

    result = rotate(fleet)
    assert result.returncode == 1, result  # done, but one token opens under no key
    out = result.stdout
    assert line(out, A) == (f"{A}: 4 re-sealed, 0 already under SECRET_KEY, 1 unreadable; "
                            "re-sealed (not running)")
    assert line(out, B).startswith(f"{B}: 4 re-sealed, 0 already under SECRET_KEY, 0 unreadable")
    assert f"unreadable under every key, left as it is: {A}/a-lost" in out
    assert out.splitlines()[-1] == (
        "rotate-secrets: 2 workshop(s): 0 restarted, 2 re-sealed while not running, "
        "0 untouched; 8 secret(s) re-sealed, 0 already under SECRET_KEY, 1 unreadable")
    assert lost_before not in out and OLD not in out + result.stderr

    assert_open_under_new_key_alone(fleet.env, fleet.tokens, {A: ORDERS[A], B: ORDERS[B]},
                                    unreadable=["a-lost"])
    assert stored(fleet.env, A)[0]["a-lost"] == lost_before  # left as it was
    before = stored(fleet.env, A), stored(fleet.env, B)

    again = rotate(fleet)  # idempotent: nothing left to re-seal, nothing rewritten
    assert again.returncode == 1
    assert line(again.stdout, A) == (f"{A}: 0 re-sealed, 4 already under SECRET_KEY, "
                                     "1 unreadable; nothing to re-seal")
    assert (stored(fleet.env, A), stored(fleet.env, B)) == before

    work_off(fleet.env, B, ORDERS[B])


def test_bad_keys_are_one_line_and_exit_2(fleet):
    for env, needle in (({"SECRET_KEY": "x" * 31}, "at least 32 characters (this one has 31)"),
                        ({"SECRET_KEY_FALLBACKS": f"{OLD},short"}, "SECRET_KEY_FALLBACKS item 2")):
        fleet.env.update(env)
        result = fleet.manage("rotate-secrets", check=False)
        assert result.returncode == 2 and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and needle in result.stderr
        fleet.env.update(SECRET_KEY=OLD, SECRET_KEY_FALLBACKS="")


# -- under supervisord: a rolling restart ------------------------------------------------

def test_rolling_rotation_under_supervisord(fleet):
    for workshop in (A, B, C):
        fleet.add(workshop, URL)
        seed_orders(fleet.env, workshop, OLD, ORDERS[workshop])
    # step 1 of the procedure: the fleet restarted with the new key, the old as fallback
    new_key_with_old_as_fallback(fleet)
    fleet.up()
    wait_for(lambda: all(s == "RUNNING" for s, _ in states(fleet).values()), 30, 0.2,
             "every instance running on the old tokens, through the fallback")
    assert fleet.api("PUT", fleet.path(C, "stop")).status_code == 200
    wait_for(lambda: states(fleet)[C][0] == "STOPPED", 30, 0.2, "C stopped")
    before = states(fleet)

    result = rotate(fleet)
    assert result.returncode == 0, result
    for workshop in (A, B):
        assert line(result.stdout, workshop) == (
            f"{workshop}: 4 re-sealed, 0 already under SECRET_KEY, 0 unreadable; "
            "stopped, re-sealed and started again")
    assert line(result.stdout, C).endswith("re-sealed (not running)")
    after = states(fleet)
    for workshop in (A, B):  # restarted, and running again
        assert after[workshop][0] == "RUNNING" and after[workshop][1] != before[workshop][1]
    assert after[C][0] == "STOPPED"  # a stopped instance is not started behind the admin's back

    again = rotate(fleet)  # nothing to do: nothing restarted
    assert again.returncode == 0, again
    assert "0 restarted" in again.stdout.splitlines()[-1]
    assert states(fleet) == after

    fleet.down()
    assert_open_under_new_key_alone(fleet.env, fleet.tokens, ORDERS)
    work_off(fleet.env, A, ORDERS[A])

    # the last step: the fallback dropped; the whole fleet starts on the new key alone
    fleet.env.pop("SECRET_KEY_FALLBACKS")
    fleet.up()
    wait_for(lambda: all(s == "RUNNING" for s, _ in states(fleet).values()), 30, 0.2,
             "every instance running on the new key alone")


def test_rotation_stops_at_an_instance_that_does_not_come_back(fleet):
    """supervisord still runs with the old environment (the fleet was not restarted): the
    first restarted instance cannot open its re-sealed token. The rotation stops there,
    in one line, before a second workshop is touched; done right, it goes on from there."""
    for workshop in (A, B):
        fleet.add(workshop, URL)
        seed_orders(fleet.env, workshop, OLD, ORDERS[workshop])
    fleet.up()  # on OLD alone
    wait_for(lambda: all(s == "RUNNING" for s, _ in states(fleet).values()), 30, 0.2, "running")
    before = states(fleet)

    new_key_with_old_as_fallback(fleet)
    result = rotate(fleet)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert f"workshop {A!r} did not come back after re-sealing" in result.stderr
    assert "restart the fleet with SECRET_KEY and SECRET_KEY_FALLBACKS" in result.stderr
    assert states(fleet)[B] == before[B]  # untouched, still running
    assert not CredentialBox(NEW).is_current(stored(fleet.env, B)[0]["b-1"])

    fleet.down()
    fleet.up()  # now with NEW, OLD as fallback
    wait_for(lambda: all(s == "RUNNING" for s, _ in states(fleet).values()), 30, 0.2, "running")
    result = rotate(fleet)
    assert result.returncode == 0, result
    assert line(result.stdout, A).endswith("nothing to re-seal")  # done the first time
    assert line(result.stdout, B).endswith("stopped, re-sealed and started again")
    fleet.down()
    assert_open_under_new_key_alone(fleet.env, fleet.tokens, {A: ORDERS[A], B: ORDERS[B]})


def test_rotation_does_not_rewrite_a_workshop_another_process_holds(fleet):
    """One workshop, one instance (core/hold.py): an api.py supervisord does not know of
    (run by hand, say) keeps the rotation off its files, and the line names it."""
    fleet.add(A, URL)
    seed_orders(fleet.env, A, OLD, ORDERS[A])
    before = stored(fleet.env, A)
    new_key_with_old_as_fallback(fleet)
    folder = Path(fleet.env["QUEUE_DIR"]) / file_name(A)
    with Hold.take(folder, "api.py", 5991):
        result = rotate(fleet)
        assert result.returncode == 2, result
        assert f"is held by pid {os.getpid()} (api.py on port 5991, since" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert stored(fleet.env, A) == before
    assert rotate(fleet).returncode == 0  # once it is gone, the rotation goes through
    assert_open_under_new_key_alone(fleet.env, fleet.tokens, {A: ORDERS[A]})


def test_remove_with_delete_data_keeps_the_data_another_process_holds(fleet):
    fleet.add(A, URL)
    seed_orders(fleet.env, A, OLD, ORDERS[A])
    folder = Path(fleet.env["QUEUE_DIR"]) / file_name(A)
    with Hold.take(folder, "api.py", 5991):
        result = fleet.manage("remove", A, "--delete-data", check=False)
        assert result.returncode == 2 and "removed from the registry, but its data is kept" in result.stderr
        assert f"held by pid {os.getpid()}" in result.stderr
        assert (folder / "orders.db").is_file()
    fleet.add(A, URL)
    fleet.manage("remove", A, "--delete-data")
    assert not folder.exists()
