"""A really full file system under QUEUE_DIR (a 32 MB tmpfs, filled up): every answer is
200 or 503, every order answered 200 is written exactly once, an order answered 503 is
either unknown or written once after a repost -- without a restart."""

import os
import subprocess

import pytest

from service.app import create_app
from service.instance import Instance
from conftest import WORKSHOP, replace, wait_for
from fakes import FakeIntegration


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(path):
    """Write a filler file until the file system is full. :returns: the filler's path"""
    filler = path / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 4096, 512, 1):  # big steps, then the last few bytes
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


def body(uniqueid):
    return {"workshop": WORKSHOP, "worksheet": "7", "product_nr": "10",
            "product_amount": "2.5", "uniqueid": uniqueid, "username": "bob",
            "password": "pw-" + uniqueid}


def test_disk_full_strands_and_loses_nothing(settings, small_disk):
    settings = replace(settings, queue_dir=str(small_disk / "task_queue"))
    erp = FakeIntegration()
    inst = Instance(settings, make_integration=lambda: erp)
    client = create_app(inst).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {settings.api_token}"
    for n in range(5):  # some orders before the disk fills
        assert client.post("/create", json=body(f"early{n}")).status_code == 200
    filler = fill(small_disk)

    answers = {}
    for n in range(300):
        uniqueid = f"full{n}"
        answers[uniqueid] = client.post("/create", json=body(uniqueid))
    codes = {a.status_code for a in answers.values()}
    assert codes <= {200, 503}, codes
    refused = [u for u, a in answers.items() if a.status_code == 503]
    assert refused, "the disk never filled up"
    for uniqueid in refused:
        answer = answers[uniqueid]
        assert answer.headers["Retry-After"].isdigit()
        assert answer.get_json()["error"] == "storage_unavailable"

    os.remove(filler)  # space again; the instance was never restarted
    for uniqueid in refused:  # OilMat retries what got 503
        again = client.post("/create", json=body(uniqueid))
        assert again.status_code == 200, again.get_json()
    inst.worker.start()
    expected = ["early0", "early1", "early2", "early3", "early4", *answers]
    wait_for(lambda: all(inst.store.get(u, with_history=False)["status"] == "created"
                         for u in expected), timeout=30, message="every order created")
    inst.close()
    assert sorted(erp.calls) == sorted(expected)  # each exactly once


def test_health_metrics_and_the_fleet_say_the_disk_is_full_as_the_log_does(
        settings, small_disk):
    """Issue 28, item 2: with the disk full, /create answered 503 and the log said
    "worker paused: disk full", but /alive said storage ok and worker running, and
    /metrics oilmat_records_ok 1."""
    from fleet import states
    from fleet.control import Fleet

    settings = replace(settings, queue_dir=str(small_disk / "task_queue"))
    erp = FakeIntegration()
    inst = Instance(settings, make_integration=lambda: erp)
    client = create_app(inst).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {settings.api_token}"
    inst.worker.start()
    healthy = client.get("/alive").get_json()
    assert (healthy["storage"], healthy["worker"]) == ("ok", "running")
    filler = fill(small_disk)
    try:
        assert client.post("/create", json=body("on-a-full-disk")).status_code == 503
        alive = client.get("/alive").get_json()
        assert alive["worker"] == "paused"
        assert "is full" in alive["storage"] and str(small_disk) in alive["storage"]
        scrape = client.get("/metrics").get_data(as_text=True)
        assert "oilmat_records_ok 0.0" in scrape and "oilmat_worker_running 0.0" in scrape
        assert "oilmat_orders{" in scrape  # the records still read: the rest is there
        integration = type("I", (), {"active": True, "program": "p", "public": lambda self: {}})()
        health = Fleet._health(integration, {"p": {"state": "RUNNING", "pid": 1}}, alive, None)
        assert health["health"] == states.STORAGE
    finally:
        os.remove(filler)
    again = client.get("/alive").get_json()  # room again: no restart needed
    assert (again["storage"], again["worker"]) == ("ok", "running")
    assert "oilmat_records_ok 1.0" in client.get("/metrics").get_data(as_text=True)
    inst.close()
