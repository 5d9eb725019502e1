"""Per-ERP options in the fleet: the registry, ``manage.py --option``, the management API,
the launch files, the instance that starts from one, and ``rotate-secrets``.

The fleet must carry options without knowing any ERP, so most tests use a made-up ERP
(``tests/fleet_fake_erp.py``: ``database`` with a default, ``api_key`` required and
secret), registered in ``integrations.AVAILABLE`` by the ``fake_erp`` fixture.
"""

import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import jsonschema_rs
import pytest
from cryptography.fernet import Fernet

import integrations
from core.crypto import CredentialBox
from core.names import program_name
from service.reseal import Resealer
from fleet import cli, launch
from fleet.control import Fleet
from fleet.management import create_app
from fleet.openapi import build_document
from fleet.registry import MASK, Registry
from fleet.rotate import rotate_secrets
from fleet.settings import load_fleet_settings
from fleet.supervisor_conf import launch_path, render_program
from tests import fleet_fake_erp
from tests.fleet_fakes import FakeSupervisor
from tests.fleet_helpers import ROOT, fleet_env, free_port

URL = "http://127.0.0.1:5080"
SECRET = "k3y-only-in-the-sealed-box"
W = "Bennys Auto"
OPTIONS_INSTANCE = os.path.join(ROOT, "tests", "fleet_options_instance.py")


@pytest.fixture
def fake_erp(monkeypatch):
    fleet_fake_erp.register(integrations.AVAILABLE)
    yield fleet_fake_erp.NAME
    integrations.AVAILABLE.pop(fleet_fake_erp.NAME, None)


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A fleet's environment, set in this process, for ``manage.py`` run in-process."""
    env = fleet_env(tmp_path, API_SCRIPT=OPTIONS_INSTANCE)
    for key in [k for k in os.environ if k.startswith(("ERP_", "API_", "MANAGEMENT_"))]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    yield env
    shutil.rmtree(env["SUPERVISOR_DIR"], ignore_errors=True)


def manage(capsys, monkeypatch, *argv, stdin=""):
    """``manage.py ARGV`` in this process (so the fake ERP is known): ``(code, out, err)``."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def listed(capsys, monkeypatch):
    code, out, _ = manage(capsys, monkeypatch, "list", "--json")
    assert code == 0
    return {row["workshop"]: row for row in json.loads(out)}


def launch_env(env, workshop=W):
    _, environment = launch.read(launch_path(load_fleet_settings(env), program_name(workshop)))
    return environment


def files_the_fleet_wrote(env):
    paths = [*Path(env["SUPERVISOR_DIR"]).rglob("*"), *Path(env["REGISTRY_DB"]).parent.glob("*.db*")]
    return b"".join(p.read_bytes() for p in paths if p.is_file())


def add_fake(capsys, monkeypatch, *options, stdin="", workshop=W):
    return manage(capsys, monkeypatch, "add", workshop, "--erp-system", "fake_erp", "--erp-url",
                  URL, "--port", free_port(), *options, stdin=stdin)


# -- the registry ---------------------------------------------------------------------

@pytest.fixture
def registry(tmp_path):
    return Registry(tmp_path / "integrations.db", Fernet.generate_key().decode())


def test_options_round_trip_with_the_secret_ones_sealed(registry):
    registry.add(W, "fake_erp", URL, 8101, "t" * 20,
                 options={"database": "shop2", "api_key": SECRET}, secret={"api_key"})
    found = registry.get(W)
    assert registry.options(found) == {"database": "shop2", "api_key": SECRET}
    assert found.public()["options"] == {"api_key": MASK, "database": "shop2"}
    assert SECRET not in repr(found) and SECRET not in json.dumps(found.public())
    assert SECRET.encode() not in registry.path.read_bytes()
    # replacing the options: a secret that did not change keeps its token (no restart)
    _, after = registry.update(W, options={"api_key": SECRET}, secret={"api_key"})
    assert after.sealed_options() == found.sealed_options() and after.plain_options() == {}
    _, after = registry.update(W, options={"api_key": "another-key"}, secret={"api_key"})
    assert after.sealed_options() != found.sealed_options()
    assert registry.options(after) == {"api_key": "another-key"}


def test_a_registry_from_before_options_gets_the_column(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:  # the schema as released before options existed
        db.execute("""CREATE TABLE integrations (workshop TEXT PRIMARY KEY, name_key TEXT NOT
            NULL UNIQUE, erp_system TEXT NOT NULL, erp_url TEXT NOT NULL, username TEXT,
            credentials TEXT, api_token TEXT NOT NULL, active INTEGER NOT NULL, port INTEGER
            NOT NULL UNIQUE, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)""")
        db.execute("INSERT INTO integrations VALUES ('Old Garage', 'old_garage', 'erp_sim', ?, "
                   "NULL, NULL, 'x', 1, 8200, 't', 't')", (URL,))
    registry = Registry(path, Fernet.generate_key().decode())
    Registry(path, registry._box._keys[0])  # opening it again changes nothing
    old = registry.get("Old Garage")
    assert old.options == {} and old.public()["options"] == {}
    registry.add(W, "tryton", URL, 8201, "t" * 20, options={"database": "shop2"})
    assert registry.get(W).public()["options"] == {"database": "shop2"}


# -- manage.py ------------------------------------------------------------------------

def test_add_update_and_remove_options_with_a_secret_from_stdin(fake_erp, env, capsys, monkeypatch):
    code, out, err = add_fake(capsys, monkeypatch, "--option", "database=shop2", "--password",
                              "-", "--option", "api_key=-", stdin="pw\n" + SECRET + "\n")
    assert code == 0, err
    assert listed(capsys, monkeypatch)[W]["options"] == {"api_key": MASK, "database": "shop2"}
    code, out, _ = manage(capsys, monkeypatch, "list")
    assert "database=shop2 api_key=********" in out or "api_key=******** database=shop2" in out
    registry = Registry(env["REGISTRY_DB"], env["SECRET_KEY"])
    assert registry.options(registry.get(W)) == {"database": "shop2", "api_key": SECRET}
    assert registry.credentials(registry.get(W)).password == "pw"  # stdin read in order
    assert SECRET.encode() not in files_the_fleet_wrote(env)

    code, _, err = manage(capsys, monkeypatch, "update", W, "--option", "database=")  # removed
    assert code == 0, err
    assert listed(capsys, monkeypatch)[W]["options"] == {"api_key": MASK}
    assert launch_env(env)["ERP_OPTION_DATABASE"] == ""  # the ERP's default applies
    code, _, err = manage(capsys, monkeypatch, "update", W, "--option", "api_key=-",
                          stdin="a-new-key-123\n")
    assert code == 0, err
    assert registry.options(registry.get(W)) == {"api_key": "a-new-key-123"}


@pytest.mark.parametrize("argv, message", [
    ((), "options: option api_key is required (ERP_OPTION_API_KEY)"),
    (("--option", "api_key=" + SECRET, "--option", "database=no way"),
     "options: option database: 'no way' does not match [A-Za-z0-9_]{1,63} (letters, digits and _)"),
    (("--option", "api_key=short"), "options: option api_key: does not match"),
    (("--option", "api_key=" + SECRET, "--option", "colour=red"),
     "options: unknown ERP option(s) colour; this ERP takes: api_key, database"),
    (("--option", "api_key"), "--option must be NAME=VALUE"),
    (("--option", "Api-Key=x"), "options.Api-Key.[key]: must be a lower-case option name"),
])
def test_a_bad_option_is_one_line_naming_it_and_its_rule(fake_erp, env, capsys, monkeypatch,
                                                         argv, message):
    code, out, err = add_fake(capsys, monkeypatch, *argv)
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert "short" not in err.replace("api_key=short", "")  # a secret value is never repeated
    assert listed(capsys, monkeypatch) == {}


def test_changing_the_erp_rechecks_the_stored_options(fake_erp, env, capsys, monkeypatch):
    assert add_fake(capsys, monkeypatch, "--option", "api_key=" + SECRET)[0] == 0
    code, _, err = manage(capsys, monkeypatch, "update", W, "--erp-system", "erp_sim")
    assert code == 2 and "options: unknown ERP option(s) api_key; this ERP takes: none" in err
    assert SECRET not in err
    code, _, err = manage(capsys, monkeypatch, "update", W, "--erp-system", "erp_sim",
                          "--option", "api_key=")
    assert code == 0, err
    row = listed(capsys, monkeypatch)[W]
    assert (row["erp_system"], row["options"]) == ("erp_sim", {})
    code, _, err = manage(capsys, monkeypatch, "update", W, "--erp-system", "fake_erp")
    assert code == 2 and "option api_key is required" in err


def test_manage_py_refuses_an_option_the_erp_does_not_take(tmp_path):
    env = fleet_env(tmp_path)
    try:
        result = subprocess.run(
            [sys.executable, os.path.join(ROOT, "manage.py"), "add", W, "--erp-system", "erp_sim",
             "--erp-url", URL, "--port", str(free_port()), "--option", "database=shop2"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    finally:
        shutil.rmtree(env["SUPERVISOR_DIR"], ignore_errors=True)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "options: unknown ERP option(s) database; this ERP takes: none" in result.stderr


# -- the management API ---------------------------------------------------------------

TOKEN = "management-token-for-tests"


@pytest.fixture
def client(tmp_path, fake_erp):
    settings = load_fleet_settings({
        "SECRET_KEY": Fernet.generate_key().decode(), "MANAGEMENT_TOKEN": TOKEN,
        "REGISTRY_DB": str(tmp_path / "r.db"), "SUPERVISOR_DIR": str(tmp_path / "sup"),
        "QUEUE_DIR": str(tmp_path / "q"), "LOG_DIR": str(tmp_path / "l"), "PROBE_TIMEOUT": "1"})
    client = create_app(settings, Fleet(settings, supervisor=FakeSupervisor())).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
    client.fleet_settings = settings
    return client


def post(client, **options):
    return client.post("/integrations", json={
        "workshop": W, "erp_system": "fake_erp", "erp_url": URL, "port": free_port(),
        "options": options})


def test_the_api_creates_and_changes_options_and_never_shows_a_secret(client):
    r = post(client, database="shop2", api_key=SECRET)
    assert r.status_code == 201, r.json
    assert r.json["integration"]["options"] == {"api_key": MASK, "database": "shop2"}
    path = "/integrations/Bennys%20Auto"
    assert client.get(path).json["options"] == {"api_key": MASK, "database": "shop2"}
    r = client.put(path, json={"options": {"database": "", "api_key": "a-new-key-123"}})
    assert r.status_code == 200 and r.json["integration"]["options"] == {"api_key": MASK}
    answers = json.dumps([client.get("/integrations").json, client.get(path).json, r.json])
    assert SECRET not in answers and "a-new-key-123" not in answers
    registry = Registry(client.fleet_settings.registry_db, client.fleet_settings.secret_key)
    assert registry.options(registry.get(W)) == {"api_key": "a-new-key-123"}


@pytest.mark.parametrize("method, body, message", [
    ("POST", {"database": "shop2"}, "options: option api_key is required"),
    ("POST", {"api_key": "short"}, "options: option api_key: does not match"),
    ("POST", {"api_key": SECRET, "colour": "red"}, "options: unknown ERP option(s) colour"),
    ("POST", {"api_key": 12345678}, "options.api_key: Input should be a valid string"),
    ("PUT", {"api_key": ""}, "options: option api_key is required"),
    ("PUT", {"database": "no way"}, "options: option database: 'no way' does not match"),
    ("PUT", {"database\u0000": "x"}, "options.database\u0000.[key]: must be a lower-case"),
])
def test_bad_options_are_400s_with_the_reason(client, method, body, message):
    if method == "PUT":
        assert post(client, api_key=SECRET).status_code == 201
        r = client.put("/integrations/Bennys%20Auto", json={"options": body})
    else:
        r = post(client, **body)
    assert r.status_code == 400 and r.json["error"] == "INVALID_INTEGRATION", r.json
    assert r.json["message"].startswith(message), r.json["message"]
    assert "short" not in r.json["message"]


def test_a_change_of_erp_is_refused_while_an_option_does_not_fit_it(client):
    assert post(client, api_key=SECRET).status_code == 201
    r = client.put("/integrations/Bennys%20Auto", json={"erp_system": "erp_sim"})
    assert r.status_code == 400 and "unknown ERP option(s) api_key" in r.json["message"]
    r = client.put("/integrations/Bennys%20Auto", json={"erp_system": "erp_sim",
                                                        "options": {"api_key": ""}})
    assert r.status_code == 200 and r.json["integration"]["options"] == {}


def test_the_document_says_which_options_each_erp_takes():
    document = build_document()
    schemas = document["components"]["schemas"]
    change = schemas["RegistrationChange"]["properties"]["options"]["anyOf"][0]
    assert change["type"] == "object" and change["additionalProperties"]["type"] == "string"
    assert schemas["Registration"]["properties"]["options"]["additionalProperties"] == {"type": "string"}
    spec = jsonschema_rs.validator_for(schemas["RegistrationSpec"])
    body = {"workshop": W, "erp_system": "erp_sim", "erp_url": URL, "port": 5001}
    assert spec.is_valid(body) and spec.is_valid({**body, "options": {}})
    assert not spec.is_valid({**body, "options": {"database": "shop2"}})  # erp_sim takes none
    assert not spec.is_valid({**body, "options": {"x": 1}})


# -- the launch file and the instance -------------------------------------------------

def test_the_launch_file_holds_the_options_and_no_plaintext_secret(registry, tmp_path, fake_erp):
    settings = load_fleet_settings({"SECRET_KEY": registry._box._keys[0],
                                    "SUPERVISOR_DIR": str(tmp_path / "sup")})
    integration = registry.add(W, "fake_erp", URL, 8101, "t" * 20,
                               options={"database": "shop2", "api_key": SECRET}, secret={"api_key"})
    _, text = render_program(settings, integration)
    assert SECRET not in text
    environment = json.loads(text)["environment"]
    assert environment["ERP_OPTION_DATABASE"] == "shop2"
    assert environment["ERP_OPTION_API_KEY"] == ""  # the secret is only in its sealed form
    sealed = json.loads(environment["ERP_OPTIONS_SEALED"])
    assert CredentialBox(registry._box._keys[0]).open_text(sealed["api_key"]) == SECRET
    other = registry.add("Garage Tre", "erp_sim", URL, 8102, "t" * 20)
    environment = json.loads(render_program(settings, other)[1])["environment"]
    # every option any ERP declares is set, so a stray .env cannot fill one in
    assert environment["ERP_OPTION_DATABASE"] == environment["ERP_OPTION_API_KEY"] == ""
    assert environment["ERP_OPTIONS_SEALED"] == ""


def test_an_instance_started_from_its_launch_file_gets_its_options(fake_erp, env, capsys,
                                                                    monkeypatch):
    assert add_fake(capsys, monkeypatch, "--option", "api_key=-", stdin=SECRET + "\n")[0] == 0
    path = next(Path(env["SUPERVISOR_DIR"], "programs").glob("*.json"))
    # a stray value in the environment the fleet runs in must not reach the instance
    started = subprocess.run([sys.executable, "-m", "fleet.launch", str(path)], cwd=ROOT,
                             env={**env, "ERP_OPTION_DATABASE": "another_workshops_db"},
                             capture_output=True, text=True, timeout=60)
    assert started.returncode == 0, started.stderr
    assert json.loads(started.stdout) == {"api_key": SECRET, "database": "workshop"}
    log = next(Path(env["LOG_DIR"]).glob("*_api.log")).read_text()
    assert "ERP options" in log and SECRET not in log and "********" in log


# -- rotate-secrets -------------------------------------------------------------------

def test_rotate_secrets_reseals_a_secret_option(tmp_path, fake_erp):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    base = {"REGISTRY_DB": str(tmp_path / "r.db"), "SUPERVISOR_DIR": str(tmp_path / "sup"),
            "QUEUE_DIR": str(tmp_path / "q"), "LOG_DIR": str(tmp_path / "l")}
    before = Fleet(load_fleet_settings({**base, "SECRET_KEY": old}), supervisor=FakeSupervisor())
    before.registry.add(W, "fake_erp", URL, 8101, "t" * 20, options={"api_key": SECRET},
                        secret={"api_key"})
    supervisor = FakeSupervisor()
    supervisor.up = False  # the fleet is stopped: everything is re-sealed in place
    fleet = Fleet(load_fleet_settings({**base, "SECRET_KEY": new, "SECRET_KEY_FALLBACKS": old}),
                  supervisor=supervisor)
    out = io.StringIO()
    assert rotate_secrets(fleet, out) == 0
    assert f"{W}: 2 re-sealed" in out.getvalue()  # the API token and the option
    alone = Registry(base["REGISTRY_DB"], new)
    assert alone.options(alone.get(W)) == {"api_key": SECRET}
    sealed = json.loads(launch.read(next(Path(base["SUPERVISOR_DIR"], "programs").glob("*.json")))
                        [1]["ERP_OPTIONS_SEALED"])
    assert CredentialBox(new).open_text(sealed["api_key"]) == SECRET
    again = Resealer(CredentialBox(new, [old]))
    assert alone.reseal(alone.get(W), again) == 0 and again.tally.current == 2
