"""``python api.py PORT WORKSHOP``: configuration errors are one line and exit code 2."""

import os
import socket
import subprocess
import sys
import textwrap

import pytest
from cryptography.fernet import Fernet

from core.crypto import CredentialBox
from instance_helpers import RunningInstance, free_port
from core.credentials import Credentials

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_api(args, tmp_path, **env_changes):
    env = {k: v for k, v in os.environ.items()
           if k not in ("API_TOKEN", "SECRET_KEY", "ERP_SYSTEM", "QUEUE_DIR", "LOG_DIR")}
    env.update(API_TOKEN="t0ken", SECRET_KEY=Fernet.generate_key().decode(),
               QUEUE_DIR=str(tmp_path / "q"), LOG_DIR=str(tmp_path / "logs"))
    for key, value in env_changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    # run from tmp_path so no developer's .env is picked up
    return subprocess.run([sys.executable, os.path.join(ROOT, "api.py"), *args],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30)


@pytest.fixture
def taken_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.parametrize("args,env,needle", [
    (["notaport", "Bennys Auto"], {}, "PORT must be a whole number"),
    (["70000", "Bennys Auto"], {}, "between 1 and 65535"),
    (["5001", "Bennys Auto"], {"API_TOKEN": None}, "API_TOKEN is not set"),
    (["5001", "Bennys Auto"], {"SECRET_KEY": "short"}, "SECRET_KEY must be a Fernet key"),
    (["5001", "Bennys Auto"], {"API_TOKEN_SEALED": CredentialBox(Fernet.generate_key()).seal_text(
        "t")}, "a sealed secret cannot be decrypted with SECRET_KEY"),
    (["5001", "Bennys Auto"], {"ERP_CREDENTIALS_SEALED": CredentialBox(
        Fernet.generate_key()).seal(Credentials("a", "b"))}, "ERP_CREDENTIALS_SEALED"),
    (["5001", "Bennys Auto"], {"ERP_SYSTEM": "sap_gui_9"}, "ERP_SYSTEM 'sap_gui_9' is unknown"),
    (["5001", "Bennys Auto"], {"QUEUE_DIR": "/proc/forbidden"}, "QUEUE_DIR"),
    (["5001", "Bennys Auto"], {"MAX_ATTEMPTS": "many"}, "MAX_ATTEMPTS must be a whole number"),
])
def test_bad_configuration_is_one_line_and_exit_2(tmp_path, args, env, needle):
    result = run_api(args, tmp_path, **env)
    assert result.returncode == 2, result.stderr
    assert needle in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_taken_port_is_exit_2(tmp_path, taken_port):
    result = run_api([str(taken_port), "Bennys Auto"], tmp_path)
    assert result.returncode == 2 and "cannot listen on" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_arguments_is_usage_and_exit_2(tmp_path):
    result = run_api([], tmp_path)
    assert result.returncode == 2 and "usage: api.py [-h] PORT WORKSHOP" in result.stderr


#: run inside a fresh interpreter, since this test module has cryptography loaded already
_IDLE_THEN_ORDER = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[1])
    import api
    settings, instance, app, listener = api.build(api._parse(sys.argv[2:]))
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = "Bearer " + settings.api_token
    assert settings.erp_username == "oilmat", settings.erp_username
    assert client.get("/alive").status_code == 200
    idle = {m for m in ("pydantic", "cryptography") if m in sys.modules}
    answer = client.post("/create", json={
        "workshop": settings.workshop, "worksheet": "1", "product_nr": "10",
        "product_amount": "5", "uniqueid": "u-1", "username": "a", "password": "b"})
    assert answer.status_code == 200, answer.get_json()
    busy = {m for m in ("pydantic", "cryptography") if m in sys.modules}
    instance.close()
    listener.close()
    print(sorted(idle), sorted(busy))
""")


def test_an_instance_loads_pydantic_never_for_orders_and_cryptography_at_the_first(tmp_path):
    """They are ~16 MB of an instance's RSS: the first order loads cryptography (its
    login is sealed), pydantic only the API's documents (service/fields.check_order
    checks orders), which an instance of a fleet of hundreds is rarely asked for.

    The instance is started the fleet's way, with sealed secrets, opened in a helper
    process (service/unseal.py).
    """
    key = Fernet.generate_key().decode()
    box = CredentialBox(key)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ERP_", "API_"))}
    env.update(SECRET_KEY=key, API_TOKEN_SEALED=box.seal_text("t0ken"),
               ERP_CREDENTIALS_SEALED=box.seal(Credentials("oilmat", "pw")),
               QUEUE_DIR=str(tmp_path / "q"), LOG_DIR=str(tmp_path / "logs"))
    args = [sys.executable, "-c", _IDLE_THEN_ORDER, ROOT, str(free_port()), "Bennys Auto"]
    result = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[] ['cryptography']"


@pytest.mark.parametrize("damaged", ["orders.db", "queue/data.db"])
def test_a_damaged_file_at_start_is_one_line_naming_it_and_exit_2(tmp_path, damaged):
    folder = tmp_path / "q" / "Bennys Auto"
    (folder / "queue").mkdir(parents=True)
    (folder / damaged).write_bytes(b"this is not a database " * 400)
    result = run_api([str(free_port()), "Bennys Auto"], tmp_path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "damaged" in result.stderr and "move" in result.stderr
    assert str(folder / damaged.split("/")[0]) in result.stderr


@pytest.mark.parametrize("argv", [["not-a-port"], [], ["--help"]])
def test_main_leaves_the_collector_on_whatever_happens(argv, monkeypatch, tmp_path):
    # api.main turns the cyclic collector off while it starts (start-up CPU); an early
    # exit must not leave a process, or a test importing api, without one
    import gc

    import api

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QUEUE_DIR", str(tmp_path / "q"))
    assert gc.isenabled()
    try:
        with pytest.raises(SystemExit):  # argparse: usage or help
            api.main(argv)
    finally:
        enabled = gc.isenabled()
        gc.enable()
        gc.unfreeze()
    assert enabled


def test_main_leaves_the_collector_on_after_a_configuration_error(monkeypatch, tmp_path):
    import gc

    import api

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("API_TOKEN", raising=False)
    monkeypatch.delenv("API_TOKEN_SEALED", raising=False)
    try:
        assert api.main([str(free_port()), "Bennys Auto"]) == 2
    finally:
        enabled = gc.isenabled()
        gc.enable()
        gc.unfreeze()
    assert enabled


def test_a_second_instance_of_a_running_workshop_exits_2_naming_the_holder(tmp_path):
    """One workshop, one running instance (core/hold.py): the second api.py, on another
    port with the same QUEUE_DIR, says who holds the workshop and opens nothing."""
    first = RunningInstance(tmp_path, "http://127.0.0.1:9").start()
    try:
        second_port = free_port()
        result = subprocess.run(
            [sys.executable, os.path.join(ROOT, "api.py"), str(second_port), first.workshop],
            cwd=ROOT, env=first.env, capture_output=True, text=True, timeout=30)
        assert result.returncode == 2, result.stderr
        line, = result.stderr.strip().splitlines()
        assert f"pid {first.proc.pid} (api.py on port {first.port}, since 20" in line, line
        assert "Traceback" not in result.stderr
        with socket.socket() as sock:  # it never listened: the port is free
            sock.bind(("127.0.0.1", second_port))
        assert first.session.get(first.url + "/alive", timeout=5).json()["worker"] == "running"
    finally:
        assert first.stop() == 0
    # the hold went with the first: the same workshop starts again at once
    RunningInstance.start(first).stop()


def test_order_records_of_a_newer_release_are_refused_in_one_line(tmp_path):
    """core/fileformat.py: api.py exits 2 and changes nothing in the file."""
    import sqlite3

    folder = tmp_path / "q" / "Bennys Auto"
    folder.mkdir(parents=True)
    with sqlite3.connect(folder / "orders.db") as db:
        db.execute("CREATE TABLE orders (uniqueid TEXT PRIMARY KEY)")
        db.execute("PRAGMA user_version=99")
    result = run_api([str(free_port()), "Bennys Auto"], tmp_path)
    assert result.returncode == 2, result.stderr
    assert "is of format 99, written by a newer release" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
