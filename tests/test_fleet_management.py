"""The management API, on Flask's test client, with a hand-written fake supervisord and
fake instances (tests/fleet_fake_instance.py). The real thing: test_fleet_supervisor.py."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from urllib.parse import quote

import jsonschema_rs
import pytest
import requests
from cryptography.fernet import Fernet

from fleet import states
from fleet.control import Fleet
from fleet.management import MAX_BODY_BYTES, create_app
from fleet.openapi import build_document
from fleet.schemas import RegistrationSpec, parse
from fleet.settings import load_fleet_settings
from tests.fleet_fakes import FakeSupervisor
from tests.fleet_helpers import FAKE_INSTANCE, ROOT, fleet_env, free_port, wait_for

TOKEN = "management-token-for-tests"
B = "Bilverksted Ålesund"


@pytest.fixture
def fleet(tmp_path):
    settings = load_fleet_settings({
        "SECRET_KEY": Fernet.generate_key().decode(), "MANAGEMENT_TOKEN": TOKEN,
        "REGISTRY_DB": str(tmp_path / "r.db"), "SUPERVISOR_DIR": str(tmp_path / "sup"),
        "QUEUE_DIR": str(tmp_path / "q"), "LOG_DIR": str(tmp_path / "l"), "PROBE_TIMEOUT": "1"})
    return Fleet(settings, supervisor=FakeSupervisor())


@pytest.fixture
def client(fleet):
    client = create_app(fleet.settings, fleet).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
    return client


@pytest.fixture
def fake_instances():
    """Start fake instances: ``start(workshop, port, token, hang=False)``; all stopped after."""
    procs = []

    def start(workshop, port, token, hang=False):
        env = {**os.environ, "API_TOKEN": token, **({"FAKE_HANG_ALIVE": "1"} if hang else {})}
        proc = subprocess.Popen([sys.executable, FAKE_INSTANCE, str(port), workshop], cwd=ROOT,
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(proc)

        def listening():
            try:
                requests.head(f"http://127.0.0.1:{port}/", timeout=0.5)
                return True
            except requests.RequestException:
                return False
        wait_for(listening, 15, message=f"fake instance {workshop}")
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait(5)


def create(client, name, port=None, **extra):
    body = {"workshop": name, "erp_system": "erp_sim", "erp_url": "http://127.0.0.1:5080",
            "port": port or free_port(), "username": "admin", "password": "s3cret-pw", **extra}
    return client.post("/integrations", json=body)


def path(workshop, action=""):
    return f"/integrations/{quote(workshop, safe='')}" + (f"/{action}" if action else "")


def test_every_integrations_path_needs_the_management_token(client):
    for token in (None, "wrong", "Bearer wrong"):
        headers = {"Authorization": token} if token else {"Authorization": ""}
        r = client.get("/integrations", headers=headers)
        assert r.status_code == 401 and r.json["error"] == "UNAUTHORIZED"
    assert client.get("/").status_code == 200  # the page itself holds no data


def test_create_shows_the_token_once_and_never_a_secret_again(client, fleet):
    r = create(client, B, api_token="instance-token-abcdefgh")
    assert r.status_code == 201, r.json
    assert r.json["api_token"] == "instance-token-abcdefgh"
    assert r.json["integration"]["workshop"] == B and r.json["supervisor"] == "restarted"
    everything = json.dumps([client.get("/integrations").json, client.get(path(B)).json,
                             client.put(path(B), json={"erp_url": "http://x:1"}).json])
    assert "s3cret-pw" not in everything and "instance-token-abcdefgh" not in everything
    assert client.get(path(B)).json["workshop"] == B  # URL-encoded non-ASCII name


@pytest.mark.parametrize("body, field", [
    ({"erp_url": "ftp://nope"}, "erp_url"),
    ({"port": 80}, "port"),
    ({"erp_system": "sap"}, "erp_system"),
    ({"workshop": "a/b"}, "workshop"),
    ({"password": "line\nbreak"}, "password"),
    ({"surprise": 1}, "surprise"),
])
def test_bad_requests_are_clear_400s(client, body, field):
    body = dict(body)
    r = create(client, body.pop("workshop", "Bennys Auto"), **body)
    assert r.status_code == 400 and r.json["error"] == "INVALID_INTEGRATION"
    assert r.json["message"].startswith(field) and "line\nbreak" not in r.json["message"]


def test_bodies_that_are_not_json_objects(client):
    assert client.post("/integrations", data="x", content_type="text/plain").status_code == 415
    assert client.post("/integrations", json=[1, 2]).status_code == 400
    create(client, "Bennys Auto")
    assert client.put(path("Bennys Auto"), json={"port": "many"}).status_code == 400


@pytest.mark.parametrize("body", ["[" * 1000, '{"a":' * 1000, "[" * 100000, b"\xff\xfe{", "{",
                                  '{"workshop": "x" 1}', "1" * 5000])
def test_any_body_gets_a_4xx_json_answer(client, body):
    create(client, "Bennys Auto")
    for method, url in (("POST", "/integrations"), ("PUT", path("Bennys Auto"))):
        r = client.open(url, method=method, data=body, content_type="application/json")
        assert r.status_code == (413 if len(body) > MAX_BODY_BYTES else 400), r.data[:200]
        assert r.is_json and r.json["error"] in ("INVALID_INTEGRATION", "REQUEST_ENTITY_TOO_LARGE")


def test_405_names_the_allowed_methods(client):
    r = client.delete("/integrations")
    assert r.status_code == 405 and r.is_json
    assert set(r.headers["Allow"].split(", ")) >= {"GET", "POST"}


def test_names_are_normalised_and_lookalikes_are_one(client):
    assert create(client, "Bennys\u00a0 Auto").json["integration"]["workshop"] == "Bennys Auto"
    assert create(client, "Bennys Auto").status_code == 409
    assert client.get(path("Bennys\u00a0Auto")).json["workshop"] == "Bennys Auto"
    assert client.put(path(" Bennys\u2003Auto"), json={"port": free_port()}).status_code == 200
    for name in ("Bennys\u200bAuto", "-rf", "--help", "..", "a/b", "\ufeffBOM"):
        r = create(client, name)
        assert r.status_code == 400 and r.json["message"].startswith("workshop:"), (name, r.json)


#: text a user may type as a workshop name, each with what the API must decide
NAME_CORPUS = ["Bennys Auto", " Bennys  Auto ", "Bennys\u00a0Auto", "Garage %(here)s", "%(ENV_HOME)s",
               "a;b#c", "\"q\" 'x'", "...", ".x", "Ærlig ØST", "\U0001d505" * 100, "x" * 100, "x" * 101,
               "", " ", "\u3000", "-rf", " -x", ".", "..", " .. ", "a/b", "a\\b", "a\u200bb", "\ufeffx",
               "a\x01b", "a\tb", "a\nb", "a\x85b", "a\u2028b", "a\u202eb", "\U000e0001x", "\ue000"]


@pytest.mark.parametrize("name", NAME_CORPUS)
def test_the_documented_name_rule_is_the_one_applied(name):
    """A schema-valid name is accepted and a schema-invalid one refused, read by the JSON
    Schema validator schemathesis uses -- so the fuzzing never meets a disagreement."""
    schema = build_document()["components"]["schemas"]["RegistrationSpec"]["properties"]["workshop"]
    documented = jsonschema_rs.validator_for(schema).is_valid(name)
    try:
        parse(RegistrationSpec, {"workshop": name, "erp_system": "erp_sim",
                                "erp_url": "http://127.0.0.1:5080", "port": 5000})
        accepted = True
    except Exception:
        accepted = False
    assert documented == accepted


def test_every_route_is_documented(client):
    documented = {(m.upper(), p.replace("{", "<").replace("}", ">"))
                  for p, ops in build_document()["paths"].items() for m in ops}
    app = client.application
    routes = {(m, re.sub(r"<[^<>]+:(\w+)>", r"<\1>", r.rule))  # <path:uniqueid> is {uniqueid}
              for r in app.url_map.iter_rules() for m in r.methods - {"HEAD", "OPTIONS"}
              if r.endpoint.startswith("api.")}
    generic = ("PUT", "/integrations/<workshop>/<command>")
    assert routes - {generic} <= documented
    assert {p for m, p in documented if p.count("/") == 3} >= {
        f"/integrations/<workshop>/{c}" for c in ("start_worker", "stop_worker", "kill")}
    assert client.get("/openapi.json").json["openapi"] == "3.1.0"
    assert client.get("/openapi.json", headers={"Authorization": ""}).status_code == 401


def test_conflicts_and_unknowns(client, fleet):
    port = free_port()
    assert create(client, "Bennys Auto", port=port).status_code == 201
    assert create(client, "Bennys Auto").json["error"] == "DUPLICATE_INTEGRATION"
    assert create(client, "Garage Tre", port=port).status_code == 409
    r = create(client, "Garage Tre", port=fleet.settings.management_port)
    assert r.status_code == 409 and "MANAGEMENT_PORT" in r.json["message"]
    for method, p in (("GET", path("Nobody")), ("PUT", path("Nobody", "start")),
                      ("DELETE", path("Nobody")), ("PUT", path("Bennys Auto", "explode"))):
        assert client.open(p, method=method).status_code == 404


def test_reconfigure_and_activation_act_on_that_program_only(client, fleet):
    create(client, "Bennys Auto")
    create(client, B)
    fleet.supervisor.calls.clear()
    assert client.put(path(B), json={"password": "new"}).status_code == 200
    assert client.put(path(B, "deactivate")).json["integration"]["active"] is False
    r = client.put(path(B, "start"))  # inactive: activate it first
    assert r.status_code == 409 and r.json["error"] == "INTEGRATION_INACTIVE"
    assert client.put(path(B, "activate")).status_code == 200
    program = fleet.get(B).program
    assert fleet.supervisor.calls == [("apply", program)] * 3


def test_start_and_stop_go_through_supervisor(client, fleet):
    create(client, B)
    program = fleet.get(B).program
    assert client.put(path(B, "start")).json["process_state"] == "RUNNING"
    assert client.put(path(B, "stop")).json["process_state"] == "STOPPED"
    assert fleet.supervisor.calls[-2:] == [("start", program), ("stop", program)]


def test_delete_keeps_data_unless_asked(client, fleet):
    for name in ("Bennys Auto", B):
        create(client, name)
        queue = fleet.settings.queue_dir / name
        queue.mkdir(parents=True)
    assert client.delete(path("Bennys Auto")).json["data_deleted"] is False
    assert (fleet.settings.queue_dir / "Bennys Auto").exists()
    assert client.delete(path(B) + "?delete_data=true").json["data_deleted"] is True
    assert not (fleet.settings.queue_dir / B).exists()
    assert client.get("/integrations").json == {"integrations": []}
    assert client.delete(path(B) + "?delete_data=perhaps").status_code == 400
    create(client, B)
    assert client.delete(path(B) + "?delete-data=true").status_code == 400  # misspelt: refused
    assert client.get(path(B)).status_code == 200


def test_worker_commands_reach_the_instance_with_its_token(client, fleet, fake_instances):
    port = free_port()
    token = create(client, B, port=port).json["api_token"]
    fake_instances(B, port, token)
    fleet.supervisor.states[fleet.get(B).program] = states.RUNNING
    assert client.get(path(B)).json["health"] == states.OK
    r = client.put(path(B, "stop_worker"))
    assert r.status_code == 200 and r.json["instance"]["worker"] == "stopped"
    one = client.get(path(B)).json
    assert (one["health"], one["worker"], one["queue_length"]) == (states.WORKER_STOPPED, "stopped", 0)
    assert client.put(path(B, "kill")).status_code == 200
    wait_for(lambda: client.get(path(B)).json["alive"] is None, 10, 0.1, "the fake to exit")
    assert client.get(path(B)).json["health"] == states.UNREACHABLE  # supervisor still says RUNNING
    r = client.put(path(B, "start_worker"))
    assert r.status_code == 502 and r.json["error"] == "INSTANCE_UNREACHABLE"


def test_a_probe_reaches_the_instance_and_its_finding_shows_in_the_overview(
        client, fleet, fake_instances):
    port = free_port()
    token = create(client, B, port=port).json["api_token"]
    fake_instances(B, port, token)
    fleet.supervisor.states[fleet.get(B).program] = states.RUNNING
    assert client.get(path(B)).json["erp"] is None  # not probed yet
    r = client.post(path(B, "probe"))
    assert r.status_code == 200, r.json
    assert r.json["erp"]["state"] == "changed" and r.json["erp"]["held"]
    assert r.json["integration"]["workshop"] == B
    assert client.get(path(B)).json["erp"]["detail"] == "line form: no field 'product_nr'"
    client.put(path(B, "stop_worker"))
    r = client.post(path(B, "probe"))  # no worker, no probe: the instance's reason
    assert r.status_code == 502 and "worker is stopped" in r.json["message"]
    assert client.post(path("Nobody", "probe")).status_code == 404


def test_hung_instances_do_not_slow_the_overview(client, fleet, fake_instances):
    for n in range(6):
        port = free_port()
        token = create(client, f"Hung {n}", port=port).json["api_token"]
        fake_instances(f"Hung {n}", port, token, hang=True)
    started = time.monotonic()
    overview = client.get("/integrations").json["integrations"]
    assert time.monotonic() - started < 2 * fleet.settings.probe_timeout + 1
    assert [i["alive"] for i in overview] == [None] * 6


def test_the_overview_answers_while_supervisord_is_down(client, fleet):
    create(client, B)
    fleet.supervisor.up = False
    one = client.get(path(B)).json
    assert one["process"]["state"] == states.UNKNOWN and one["health"] == states.DOWN
    r = client.put(path(B, "start"))
    assert r.status_code == 503 and r.json["error"] == "SUPERVISOR_UNAVAILABLE"


def test_the_access_log_never_holds_a_query_string(tmp_path):
    """The real server (``python -m fleet.serve``), its log read back from the file."""
    env = fleet_env(tmp_path)
    url = f"http://127.0.0.1:{env['MANAGEMENT_PORT']}"
    log = tmp_path / "management.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "fleet.serve"], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: _answers(url), 20, 0.1, "the management API")
        auth = {"Authorization": f"Bearer {env['MANAGEMENT_TOKEN']}"}
        assert requests.get(url + "/integrations?token=secret-in-query-1", timeout=5).status_code == 401
        assert requests.get(url + "/integrations?token=secret-in-query-2", headers=auth,
                            timeout=5).status_code == 200
        with socket.create_connection(("127.0.0.1", int(env["MANAGEMENT_PORT"])), timeout=5) as s:
            s.sendall(b"GET /integrations?token=secret-in-query-3 HTTP/1.1 junk\r\n\r\n")
            s.recv(1000)
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(env["SUPERVISOR_DIR"], ignore_errors=True)
    text = log.read_text()
    assert '"GET /integrations" 401' in text and '"GET /integrations" 200' in text, text
    assert "secret-in-query" not in text and "token=" not in text, text


def _answers(url):
    try:
        return requests.get(url + "/", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def test_the_overview_page_is_sent_with_a_strict_policy_and_no_framing(client):
    """Issue 28, item 9: the overview had no Content-Security-Policy, X-Frame-Options or
    frame-ancestors, X-Content-Type-Options, Referrer-Policy."""
    first, second = client.get("/"), client.get("/")
    policy = first.headers["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", policy).group(1)
    assert nonce not in second.headers["Content-Security-Policy"]  # one per answer
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    assert f"script-src 'nonce-{nonce}'" in policy and "unsafe-inline" not in policy
    page = first.get_data(as_text=True)
    assert f'<script nonce="{nonce}">' in page and f'<style nonce="{nonce}">' in page
    assert page.count("<script") == 1 and page.count("<style") == 1
    assert first.headers["X-Frame-Options"] == "DENY"
    assert first.headers["X-Content-Type-Options"] == "nosniff"
    assert first.headers["Referrer-Policy"] == "no-referrer"


@pytest.mark.parametrize("query", ["status=error&status=error", "limit=5&limit=abc",
                                   "since=2026-12-01&since=2026-12-02"])
def test_a_query_parameter_given_twice_is_refused_not_read_as_its_first(client, query):
    """Issue 28, item 8: limit=5&limit=abc took the first."""
    assert create(client, B).status_code == 201
    name = query.split("=")[0]
    r = client.get(path(B, "orders?" + query))
    if name == "status":  # a list: the document and the instance take it repeated
        assert r.status_code != 400
        return
    assert r.status_code == 400 and r.json["error"] == "INVALID_QUERY"
    assert f"{name} must be given once" in r.json["message"]


def test_a_webhook_half_the_integration_cannot_complete_is_409_and_both_at_once_400(client):
    """Issue 28, item 8: a secret with webhook_url null is allowed by the document; on an
    integration with no URL stored it is a conflict with its state, not a bad request."""
    assert create(client, B).status_code == 201
    secret = "whsec_" + "A" * 32
    r = client.put(path(B), json={"webhook_secret": secret, "webhook_url": None})
    assert r.status_code == 409 and r.json["error"] == "WEBHOOK_INCOMPLETE", r.json
    assert "no webhook URL" in r.json["message"]
    r = client.put(path(B), json={"webhook_secret": secret, "webhook_url": ""})
    assert r.status_code == 400 and "removes the webhook" in r.json["message"]
    change = client.get("/openapi.json").json["components"]["schemas"]["RegistrationChange"]
    assert change["not"]["properties"]["webhook_url"] == {"const": ""}


@pytest.mark.parametrize("chunked", [False, True])
def test_a_body_of_exactly_64_kb_is_read_and_one_byte_more_is_413(tmp_path, chunked):
    """Issue 28, item 9, on the management API's real server: a chunked body over the
    limit was cut short without a word (400 "not valid JSON")."""
    from tests.fleet_fakes import FakeInstances
    from tests.fleet_helpers import fleet_settings_for_tests, management_server

    settings = fleet_settings_for_tests(tmp_path, TOKEN)
    fleet = Fleet(settings, supervisor=FakeSupervisor(), instances=FakeInstances())
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    with management_server(settings, fleet) as url:
        for size, expected in ((MAX_BODY_BYTES, 400), (MAX_BODY_BYTES + 1, 413)):
            empty = len(json.dumps({"pad": ""}))
            body = json.dumps({"pad": "x" * (size - empty)}).encode()
            assert len(body) == size
            r = requests.post(url + "/integrations", data=iter([body]) if chunked else body,
                              headers=headers, timeout=10)
            assert r.status_code == expected, (size, r.text)
            if expected == 413:
                assert r.json()["message"] == "the request body is larger than the limit of 64 KB"
            else:
                assert "workshop: Field required" in r.json()["message"]  # read whole
