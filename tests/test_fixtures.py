"""The data files of earlier releases open with today's code (tests/fixtures/).

Each folder under tests/fixtures/ holds the files one release left behind
(tests/fixtures/write_fixtures.py): ``before-format-versions`` is the last release that
wrote no format version, ``format-1`` the first that did. Every later release keeps
them and adds its own when it changes a format (``registry-slugs``: the registry's
format 2, with the front door's slugs; ``registry-probe-worksheet``: format 3, with the
ERP probe's worksheet), so it proves that it still reads what its
predecessors wrote: registry, order records with their history and events, and the
queue. Each test works on a copy (opening an older file migrates it).
"""

import shutil
import sqlite3
from pathlib import Path

import pytest

from core.credentials import Credentials
from core.crypto import CredentialBox
from fleet.registry import FORMAT as REGISTRY_FORMAT, Registry
from orders.events import EventLog
from orders.queue import FORMAT as QUEUE_FORMAT, OrderQueue
from orders.records import FORMAT as RECORDS_FORMAT, OrderStore
from tests.fixtures.write_fixtures import KEY, ORDERS, WORKSHOP

FIXTURES = Path(__file__).parent / "fixtures"
RELEASES = sorted(p.name for p in FIXTURES.iterdir() if (p / "registry.db").is_file())


def test_there_are_fixtures_of_every_format_this_release_reads():
    assert "before-format-versions" in RELEASES
    assert f"format-{RECORDS_FORMAT.version}" in RELEASES  # this release's own files
    assert any(version(FIXTURES / name / "registry.db") == REGISTRY_FORMAT.version
               for name in RELEASES)


@pytest.fixture(params=RELEASES)
def release(request, tmp_path):
    copy = tmp_path / request.param
    shutil.copytree(FIXTURES / request.param, copy)
    return copy


def version(path):
    # Read-only and immutable, and closed here: ``with sqlite3.connect()`` only commits, so
    # a WAL database left open until garbage collection keeps a -wal file beside the
    # checked-in fixture, which vanished under a later copytree in CI.
    db = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        return db.execute("PRAGMA user_version").fetchone()[0]
    finally:
        db.close()


def test_the_registry_opens_with_every_integration_and_its_secrets(release):
    path = release / "registry.db"
    before = version(path)
    registry = Registry(path, KEY)
    integrations = {i.workshop: i for i in registry.all()}
    assert sorted(integrations) == ["Bennys Auto", "Garage Tre"]
    assert registry.credentials(integrations["Bennys Auto"]) == Credentials("admin", "fixture-password")
    assert registry.api_token(integrations["Garage Tre"]) == "fixture-token-2"
    assert integrations["Garage Tre"].webhook_url == "https://example.invalid/hook"
    assert registry.options(integrations["Garage Tre"]) == {"database": "workshop"}
    # format 2: the front door's slugs, given to the rows an older release wrote
    assert {w: i.slug for w, i in integrations.items()} == {"Bennys Auto": "bennys-auto",
                                                            "Garage Tre": "garage-tre"}
    # format 3: the ERP probe's worksheet ("" in what an older release wrote)
    assert integrations["Garage Tre"].probe_worksheet == ("P-1" if before >= 3 else "")
    assert integrations["Bennys Auto"].probe_worksheet == ""
    assert version(path) == REGISTRY_FORMAT.version
    assert (release / f"registry.db.v{before}.bak").is_file() == (before < REGISTRY_FORMAT.version)


def test_the_records_open_with_their_history_and_events(release):
    folder = release / "task_queue" / WORKSHOP
    store = OrderStore(str(folder / "orders.db"))
    try:
        statuses = {uniqueid: store.get(uniqueid)["status"] for uniqueid, *_ in ORDERS}
        assert statuses == {"fx-created": "created", "fx-error": "error",
                            "fx-resolved": "resolved", "fx-retried": "placed",
                            "fx-placed": "placed"}
        created = store.get("fx-created")
        assert created["product_amount"] == "4.75" and created["worksheet"] == "101"
        assert [h["status"] for h in created["history"]] == ["placed", "processing", "created"]
        assert store.count_repairs() == 1
        # a retried order is unqueued in the records until the sweep (or reconcile) puts it
        assert store.is_queued("fx-placed")
        assert [p["uniqueid"] for p in store.unqueued()] == ["fx-retried"]
        box = CredentialBox(KEY)
        assert box.open(store.payload("fx-placed")["credentials"]) == Credentials(
            "oilmat", "pw-fx-placed")
        events = EventLog(store, WORKSHOP).page(after=0, limit=500)["events"]
        assert {e["uniqueid"] for e in events} == {uniqueid for uniqueid, *_ in ORDERS}
        assert events[0]["type"] == "order.placed"
    finally:
        store.close()
    assert version(folder / "orders.db") == RECORDS_FORMAT.version


def test_the_queue_opens_with_the_waiting_orders(release):
    folder = release / "task_queue" / WORKSHOP / "queue"
    queue = OrderQueue(str(folder))
    try:
        assert [p["uniqueid"] for p in queue.pending_payloads()] == ["fx-retried", "fx-placed"]
    finally:
        queue.close()
    assert version(folder / "data.db") == QUEUE_FORMAT.version


def test_an_instance_on_them_works_the_waiting_orders_once(release, settings):
    from service.instance import Instance
    from conftest import replace
    from fakes import FakeIntegration

    erp = FakeIntegration()
    instance = Instance(replace(settings, workshop=WORKSHOP, queue_dir=str(release / "task_queue"),
                                secret_key=KEY, secret_key_fallbacks=()),
                        make_integration=lambda: erp)
    try:
        instance.worker.burst()
        assert instance.store.get("fx-placed")["status"] == "created"
        assert instance.store.get("fx-retried")["status"] == "created"
        assert instance.store.get("fx-error")["status"] == "error"
    finally:
        instance.close(worker_timeout=10)
    assert sorted(erp.calls) == ["fx-placed", "fx-retried"]
    assert erp.credentials_seen[0].username == "oilmat"
