"""Rate limits (core/ratelimit.py): ``RATE_LIMIT`` on the instance, ``MANAGEMENT_RATE_LIMIT``
on the management API. 429 after the limit, in the API's own JSON error shape, with
``Retry-After``; counted per token, and per address for requests without a valid one;
``/alive`` never limited; the token never a key in plaintext; the 429 as documented."""

import hashlib
import os
import time

import pytest
import requests
import schemathesis

from service.app import create_app as instance_app
from conftest import replace
from core.errors import ConfigError
from core.ratelimit import check_rate_limit
from erp_helpers import closed_port_url
from fleet.control import Fleet
from fleet.settings import load_fleet_settings
from instance_helpers import RunningInstance
from test_api_cli import run_api
from tests.fleet_fakes import FakeInstances, FakeSupervisor
from tests.fleet_helpers import fleet_settings_for_tests, management_server

LIMIT = 5


@pytest.fixture
def instance_over_http(tmp_path):
    closed = closed_port_url()
    inst = RunningInstance(tmp_path, closed, SELENIUM_REMOTE_URL=closed,
                           RATE_LIMIT=f"{LIMIT}/minute").start()
    yield inst
    assert inst.stop() == 0, inst.stderr()


def assert_limited(answer, code="rate_limited"):
    assert answer.status_code == 429, answer.text
    assert answer.headers["Content-Type"] == "application/json"
    body = answer.json()
    assert body["error"] == code and f"{LIMIT} per 1 minute" in body["message"]
    assert 1 <= int(answer.headers["Retry-After"]) <= 60
    return body


def test_the_instance_answers_429_after_the_limit_per_token(instance_over_http):
    inst = instance_over_http
    for _ in range(LIMIT):
        assert inst.session.get(inst.url + "/queue", timeout=10).status_code == 200
    assert_limited(inst.session.get(inst.url + "/queue", timeout=10))
    # one allowance for the whole API, not one per endpoint
    assert_limited(inst.create(uniqueid="over-the-limit"))
    # /alive is never limited: ILX polls it
    for _ in range(3):
        assert requests.get(inst.url + "/alive", timeout=10).status_code == 200
    # other clients without the token have their own count (per address): still 401
    assert requests.get(inst.url + "/queue", timeout=10).status_code == 401
    logs = "".join(open(os.path.join(inst.log_dir, name), errors="replace").read()
                   for name in os.listdir(inst.log_dir) if name.endswith(".log"))
    assert inst.token not in logs + inst.stderr()


def test_wrong_tokens_are_limited_per_address_and_do_not_use_up_the_token(instance_over_http):
    inst = instance_over_http
    wrong = {"Authorization": "Bearer guess-" + "x" * 20}
    for n in range(LIMIT):
        headers = {} if n % 2 else wrong  # no token and a wrong one count alike
        assert requests.get(inst.url + "/queue", headers=headers, timeout=10).status_code == 401
    assert_limited(requests.get(inst.url + "/queue", headers=wrong, timeout=10))
    assert_limited(requests.get(inst.url + "/queue", timeout=10))
    assert inst.session.get(inst.url + "/queue", timeout=10).status_code == 200


def test_the_429_is_as_the_document_says(instance_over_http):
    """schemathesis validates a real 429 against the instance's own /openapi.json."""
    inst = instance_over_http
    document = inst.session.get(inst.url + "/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(document)
    limited = [path for path, ops in document["paths"].items()
               for op in ops.values() if "429" in op["responses"]]
    assert set(document["paths"]) - set(limited) == {"/alive"}
    while (answer := inst.session.get(inst.url + "/queue", timeout=10)).status_code != 429:
        pass
    case = schema["/queue"]["GET"].Case()
    case.validate_response(answer)  # raises when status, headers or body do not conform


def test_the_window_moves_and_the_client_may_go_on_after_retry_after(settings, instance):
    instance.settings = replace(settings, rate_limit="2/second")
    client = instance_app(instance).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {settings.api_token}"
    assert [client.get("/queue").status_code for _ in range(3)] == [200, 200, 429]
    wait = int(client.get("/queue").headers["Retry-After"])
    assert wait == 1
    time.sleep(wait + 0.05)
    assert client.get("/queue").status_code == 200


def test_the_token_is_never_a_key_in_plaintext(settings, instance):
    app = instance_app(instance)
    client = app.test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {settings.api_token}"
    client.get("/queue")
    keys = " ".join(app.extensions["ratelimit"].events)  # moving window: hits per key
    assert settings.api_token not in keys
    assert hashlib.sha256(settings.api_token.encode()).hexdigest() in keys


@pytest.mark.parametrize("value", ["lots", "0/minute", "600/fortnight", "-1/second"])
def test_a_bad_rate_limit_stops_the_instance_with_one_line(tmp_path, value):
    result = run_api(["5001", "Bennys Auto"], tmp_path, RATE_LIMIT=value)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and "RATE_LIMIT" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("value", ["600/minute", "10/second;600/minute", "5 per 2 seconds"])
def test_flask_limiter_notation_is_accepted(value):
    assert check_rate_limit("RATE_LIMIT", value) == value


# -- the management API ------------------------------------------------------------

TOKEN = "management-token-for-the-limit"


@pytest.fixture
def management(tmp_path):
    settings = fleet_settings_for_tests(tmp_path, TOKEN, MANAGEMENT_RATE_LIMIT=f"{LIMIT}/minute")
    fleet = Fleet(settings, supervisor=FakeSupervisor(), instances=FakeInstances())
    with management_server(settings, fleet) as url:
        yield url


def test_the_management_api_answers_429_after_its_limit(management):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for _ in range(LIMIT):
        assert requests.get(management + "/integrations", headers=auth, timeout=10).ok
    answer = requests.get(management + "/integrations", headers=auth, timeout=10)
    assert_limited(answer, code="RATE_LIMITED")
    # without the token: counted per address, so still 401 for now
    assert requests.get(management + "/integrations", timeout=10).status_code == 401
    document = requests.get(management + "/openapi.json", headers=auth, timeout=10)
    assert document.status_code == 429


def test_anonymous_traffic_does_not_lock_the_page_or_the_token_out(management):
    """Issue 28, item 7: 620 requests without a token made GET / answer 429 for a minute
    to everyone from that address (behind a proxy: to everyone)."""
    for _ in range(LIMIT * 3):
        requests.get(management + "/integrations", timeout=10)
    assert requests.get(management + "/integrations", timeout=10).status_code == 429
    for _ in range(LIMIT * 3):  # the page and what it is made of: never limited
        page = requests.get(management + "/", timeout=10)
        assert page.status_code == 200 and "<script" in page.text
    auth = {"Authorization": f"Bearer {TOKEN}"}  # the token's budget is its own
    assert requests.get(management + "/integrations", headers=auth, timeout=10).ok


def test_a_bad_management_rate_limit_is_a_config_error():
    with pytest.raises(ConfigError, match="MANAGEMENT_RATE_LIMIT must be a rate like"):
        load_fleet_settings({"MANAGEMENT_RATE_LIMIT": "fast"})
