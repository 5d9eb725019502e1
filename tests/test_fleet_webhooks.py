"""A workshop's webhook in the fleet: the registry (secret sealed), ``manage.py add/update
--webhook-url/--webhook-secret``, the launch file, and the instance settings made from
it (the secret opened by the ``service.unseal`` child)."""

import base64
import json
import os

import pytest
from cryptography.fernet import Fernet

from service.reseal import Resealer
from core.crypto import CredentialBox
from service.settings import load_settings
from fleet.registry import Registry
from test_fleet_options import (W, URL, env, files_the_fleet_wrote, launch_env, listed,  # noqa: F401
                                manage)
from tests.fleet_helpers import free_port

HOOK = "https://oilmat.example/hooks/bridge?tenant=7"
SECRET = "whsec_" + base64.b64encode(b"sealed-webhook-key-for-tests-32b").decode()
KEY = SECRET.removeprefix("whsec_")


@pytest.fixture
def registry(tmp_path):
    return Registry(tmp_path / "integrations.db", Fernet.generate_key().decode())


def test_the_webhook_round_trips_with_its_secret_sealed(registry):
    registry.add(W, "erp_sim", URL, 8101, "t" * 20, webhook_url=HOOK, webhook_secret=SECRET)
    found = registry.get(W)
    assert registry.webhook_secret(found) == SECRET
    public = found.public()
    assert public["webhook_url"] == HOOK and public["has_webhook_secret"] is True
    assert KEY not in repr(found) and KEY not in json.dumps(public)
    assert KEY.encode() not in registry.path.read_bytes()

    _, moved = registry.update(W, webhook_url="https://elsewhere.example/in")  # secret kept
    assert registry.webhook_secret(moved) == SECRET
    _, removed = registry.update(W, webhook_url="")  # no webhook: no secret either
    assert (removed.webhook_url, removed.webhook_secret) == ("", None)
    assert removed.public()["has_webhook_secret"] is False


def test_rotate_reseals_the_webhook_secret(tmp_path):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    Registry(tmp_path / "r.db", old).add(W, "erp_sim", URL, 8101, "t" * 20,
                                         webhook_url=HOOK, webhook_secret=SECRET)
    registry = Registry(tmp_path / "r.db", new, (old,))
    before = registry.get(W)
    assert registry.reseal(before, Resealer(CredentialBox(new, (old,)))) >= 1
    after = Registry(tmp_path / "r.db", new).get(W)  # opens without the old key now
    assert after.webhook_secret != before.webhook_secret
    assert Registry(tmp_path / "r.db", new).webhook_secret(after) == SECRET


def test_manage_py_hands_the_instance_its_webhook_sealed(env, capsys, monkeypatch):  # noqa: F811
    code, out, err = manage(capsys, monkeypatch, "add", W, "--erp-system", "erp_sim",
                            "--erp-url", URL, "--port", free_port(), "--webhook-url", HOOK,
                            "--webhook-secret", "-", stdin=SECRET + "\n")
    assert code == 0, err
    row = listed(capsys, monkeypatch)[W]
    assert row["webhook_url"] == HOOK and row["has_webhook_secret"] is True
    environment = launch_env(env)
    assert environment["WEBHOOK_URL"] == HOOK and environment["WEBHOOK_SECRET"] == ""
    assert environment["WEBHOOK_SECRET_SEALED"]
    assert KEY.encode() not in files_the_fleet_wrote(env)
    # the instance's settings, as api.py builds them from that environment
    settings = load_settings(8101, W, env={**environment, "SECRET_KEY": env["SECRET_KEY"]})
    assert (settings.webhook_url, settings.webhook_secret) == (HOOK, SECRET)

    code, _, err = manage(capsys, monkeypatch, "update", W, "--webhook-url", "")
    assert code == 0, err
    environment = launch_env(env)
    assert environment["WEBHOOK_URL"] == environment["WEBHOOK_SECRET_SEALED"] == ""
    assert load_settings(8101, W, env={**environment, "SECRET_KEY": env["SECRET_KEY"]}).webhook_url == ""


@pytest.mark.parametrize("argv, message", [
    (("--webhook-url", HOOK), "webhook_secret: is required with webhook_url"),
    (("--webhook-secret", SECRET), "webhook_url: is required with webhook_secret"),
    (("--webhook-url", HOOK, "--webhook-secret", "whsec_" + KEY[:20]), "webhook_secret: "),
    (("--webhook-url", HOOK, "--webhook-secret", KEY), "webhook_secret: "),
    (("--webhook-url", "ftp://x/", "--webhook-secret", SECRET), "webhook_url: is not an http(s) URL"),
])
def test_a_bad_webhook_is_one_line_that_never_repeats_the_secret(env, capsys, monkeypatch,  # noqa: F811
                                                                  argv, message):
    code, _, err = manage(capsys, monkeypatch, "add", W, "--erp-system", "erp_sim",
                          "--erp-url", URL, "--port", free_port(), *argv)
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert KEY[:20] not in err
    assert listed(capsys, monkeypatch) == {}


def test_a_secret_alone_needs_a_stored_url(env, capsys, monkeypatch):  # noqa: F811
    assert manage(capsys, monkeypatch, "add", W, "--erp-system", "erp_sim", "--erp-url", URL,
                  "--port", free_port())[0] == 0
    code, _, err = manage(capsys, monkeypatch, "update", W, "--webhook-secret", SECRET)
    assert code == 2 and "webhook_url: is required with webhook_secret" in err
    code, _, err = manage(capsys, monkeypatch, "update", W, "--webhook-url", HOOK)
    assert code == 2 and "webhook_secret: is required with webhook_url" in err
    code, _, err = manage(capsys, monkeypatch, "update", W, "--webhook-url", HOOK,
                          "--webhook-secret", SECRET)
    assert code == 0, err
    code, _, err = manage(capsys, monkeypatch, "update", W, "--webhook-secret",
                          "whsec_" + base64.b64encode(os.urandom(32)).decode())
    assert code == 0, err  # a new secret for the stored URL
