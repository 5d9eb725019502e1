"""``GET /pool`` of the management API: what the overview says of the browser pool.
With a real Grid: tests/test_e2e_grid_pool.py."""

import pytest
from cryptography.fernet import Fernet

from fleet.control import Fleet
from fleet.management import create_app
from fleet.settings import load_fleet_settings
from tests.fleet_fakes import FakeInstances, FakeSupervisor
from tests.fleet_helpers import free_port

TOKEN = "management-token-for-the-pool"


def _client(tmp_path, **env):
    settings = load_fleet_settings({
        "SECRET_KEY": Fernet.generate_key().decode(), "MANAGEMENT_TOKEN": TOKEN,
        "REGISTRY_DB": str(tmp_path / "r.db"), "SUPERVISOR_DIR": str(tmp_path / "sup"),
        "QUEUE_DIR": str(tmp_path / "q"), "LOG_DIR": str(tmp_path / "l"), **env}, dotenv=False)
    fleet = Fleet(settings, supervisor=FakeSupervisor(), instances=FakeInstances())
    client = create_app(settings, fleet).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {TOKEN}"
    return client


def test_local_browsers_have_no_pool(tmp_path):
    assert _client(tmp_path, BROWSER_POOL="local").get("/pool").json == {"mode": "local",
                                                                         "up": None}


@pytest.mark.parametrize("env,mode", [({"SELENIUM_REMOTE_URL": "http://127.0.0.1:{port}"},
                                       "remote"), ({"GRID_PORT": "{port}"}, "grid")])
def test_a_grid_that_does_not_answer_is_shown_down(tmp_path, env, mode):
    port = str(free_port())
    env = {k: v.format(port=port) for k, v in env.items()}
    jar = tmp_path / "grid.jar"  # never run: only the settings look for it
    jar.write_bytes(b"")
    client = _client(tmp_path, BROWSER_POOL="grid", GRID_JAVA="/bin/true", GRID_JAR=str(jar),
                     **env)
    answer = client.get("/pool")
    assert answer.status_code == 200
    assert answer.json == {"mode": mode, "up": False}


def test_the_pool_needs_the_token(tmp_path):
    client = _client(tmp_path, BROWSER_POOL="local")
    assert client.get("/pool", headers={"Authorization": ""}).status_code == 401
