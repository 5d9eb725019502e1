"""service/settings.py: one place, one-line errors, sealed secrets from the fleet."""

import os
import sqlite3
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet

from core.crypto import CredentialBox
from core.errors import ConfigError, PermanentError
from service.settings import load_settings
from instance_helpers import ROOT, RunningInstance
from core.credentials import Credentials

KEY = Fernet.generate_key().decode()


def test_plain_settings_and_defaults():
    s = load_settings("5001", "Bennys Auto", env={"API_TOKEN": "tok-secret-77", "SECRET_KEY": KEY,
                                                  "ERP_URL": "http://erp/",
                                                  "ERP_PASSWORD": "pw-secret-88"})
    assert (s.port, s.workshop, s.erp_url, s.erp_system) == (5001, "Bennys Auto", "http://erp", "erp_sim")
    assert s.workshop_queue_dir == "task_queue/Bennys Auto"
    for secret in ("tok-secret-77", "pw-secret-88", KEY):
        assert secret not in repr(s)


def test_sealed_secrets_are_opened_with_the_key():
    box = CredentialBox(KEY)
    s = load_settings(5001, "B", env={
        "SECRET_KEY": KEY, "API_TOKEN_SEALED": box.seal_text("tok-123"),
        "ERP_CREDENTIALS_SEALED": box.seal(Credentials("oilmat", "pw-Ø-9"))})
    assert (s.api_token, s.erp_username, s.erp_password) == ("tok-123", "oilmat", "pw-Ø-9")


@pytest.mark.parametrize("env,needle", [
    ({"SECRET_KEY": KEY}, "API_TOKEN is not set"),
    ({"API_TOKEN": "t"}, "SECRET_KEY is not set"),
    ({"SECRET_KEY": KEY, "API_TOKEN_SEALED": "garbage"}, "cannot be decrypted"),
    ({"SECRET_KEY": KEY, "API_TOKEN": "t", "ERP_CREDENTIALS_SEALED": CredentialBox(
        Fernet.generate_key()).seal(Credentials("a", "b"))}, "ERP_CREDENTIALS_SEALED"),
    ({"SECRET_KEY": KEY, "API_TOKEN": "t", "RETRY_BASE_SECONDS": "soon"}, "RETRY_BASE_SECONDS"),
])
def test_bad_settings_are_config_errors(env, needle):
    with pytest.raises(ConfigError, match=needle):
        load_settings(5001, "B", env=env)


# -- SECRET_KEY: any 32+ character secret, and SECRET_KEY_FALLBACKS --------------------

#: 40 characters of text, not a Fernet key
PASSPHRASE = "forty characters of text; not a key!!!!!"


def test_a_passphrase_secret_key_and_fallbacks_are_read():
    """The fleet's tokens, sealed under the old key, open under the new SECRET_KEY with
    the old one in SECRET_KEY_FALLBACKS (in the unseal child)."""
    old = CredentialBox(KEY)
    s = load_settings(5001, "B", env={
        "SECRET_KEY": PASSPHRASE, "SECRET_KEY_FALLBACKS": f"{KEY}, {'y' * 32}",
        "API_TOKEN_SEALED": old.seal_text("tok-123"),
        "ERP_CREDENTIALS_SEALED": old.seal(Credentials("oilmat", "pw"))})
    assert (s.secret_key, s.secret_key_fallbacks) == (PASSPHRASE, (KEY, "y" * 32))
    assert (s.api_token, s.erp_username, s.erp_password) == ("tok-123", "oilmat", "pw")
    assert KEY not in repr(s) and PASSPHRASE not in repr(s)


@pytest.mark.parametrize("env,needle", [
    ({"SECRET_KEY": "x" * 31, "API_TOKEN": "t"}, "SECRET_KEY must be a Fernet key or any secret of at least 32"),
    ({"SECRET_KEY": KEY, "API_TOKEN": "t", "SECRET_KEY_FALLBACKS": f"{KEY},short"},
     "SECRET_KEY_FALLBACKS item 2"),
])
def test_short_secrets_are_refused(env, needle):
    with pytest.raises(ConfigError, match=needle):
        load_settings(5001, "B", env=env)


def _api(tmp_path, env, *args):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("ERP_", "API_", "SECRET_"))},
           "QUEUE_DIR": str(tmp_path / "q"), "LOG_DIR": str(tmp_path / "logs"), **env}
    return subprocess.run([sys.executable, os.path.join(ROOT, "api.py"), *args], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=30)


def test_api_py_refuses_a_short_secret_key_in_one_line(tmp_path):
    result = _api(tmp_path, {"API_TOKEN": "t0ken", "SECRET_KEY": "s3cret-but-31-characters-long!!"},
                  "5001", "Bennys Auto")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "api.py: error: SECRET_KEY must be a Fernet key or any secret of at least 32 characters "
        "(this one has 31); make one with python -c 'import secrets; "
        "print(secrets.token_urlsafe(32))'"]


def test_an_instance_runs_on_a_passphrase_secret_key(tmp_path):
    """api.py end to end on a 40-character text SECRET_KEY: its sealed token opens under
    the old key kept in SECRET_KEY_FALLBACKS, an order is taken over HTTP, and its
    credentials are stored sealed under the passphrase alone."""
    instance = RunningInstance(tmp_path, "http://127.0.0.1:9", SECRET_KEY=PASSPHRASE,
                               SECRET_KEY_FALLBACKS=KEY,
                               API_TOKEN_SEALED=CredentialBox(KEY).seal_text("sealed-tok-0123"))
    instance.session.headers["Authorization"] = "Bearer sealed-tok-0123"
    instance.start()
    try:
        # no order is worked on (no browser): the worker is stopped before the order comes
        assert instance.session.put(instance.url + "/stop_worker", timeout=10).status_code == 200
        answer = instance.create(uniqueid="pass-1", username="oilmat", password="pw-pass-1")
        assert answer.status_code == 200, answer.text
    finally:
        assert instance.stop() == 0, instance.stderr()
    with sqlite3.connect(os.path.join(instance.queue_dir, "Bennys Auto", "orders.db")) as db:
        (token,), = db.execute("SELECT credentials FROM orders WHERE uniqueid='pass-1'")
    assert CredentialBox(PASSPHRASE).open(token) == Credentials("oilmat", "pw-pass-1")
    with pytest.raises(PermanentError):
        CredentialBox(KEY).open(token)


WHSEC = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="


@pytest.mark.parametrize("setting,field,value,changes", [
    ("WEBHOOK_URL", "webhook_url", "https://user:pw-secret-5@hooks.example/in",
     {"webhook_secret": WHSEC}),
    ("WEBHOOK_URL", "webhook_url", "http://hooks example/in", {"webhook_secret": WHSEC}),
    ("ERP_URL", "erp_url", "ftp://erp.example", {}),
    ("ERP_PASSWORD", "password", "pw-secret-5\nmore", {"username": "oilmat"}),
    ("ERP_USERNAME", "username", "oil\tmat", {}),
])
def test_the_instance_and_the_fleet_refuse_the_same_values_in_the_same_words(
        setting, field, value, changes):
    """Issue 28, item 10: a hand-run instance took a WEBHOOK_URL with user:pass@ and an
    ERP password with control characters, both of which the fleet refused."""
    from fleet.errors import InvalidRegistration
    from fleet.schemas import RegistrationSpec, parse

    env = {"API_TOKEN": "tok-secret-77", "SECRET_KEY": KEY, setting: value}
    if "webhook_secret" in changes:
        env["WEBHOOK_SECRET"] = changes["webhook_secret"]
    with pytest.raises(ConfigError) as instance_refused:
        load_settings(5001, "Bennys Auto", env=env)
    spec = {"workshop": "Bennys Auto", "erp_system": "erp_sim", "erp_url": "http://erp",
            "port": 5001, **changes, field: value}
    with pytest.raises(InvalidRegistration) as fleet_refused:
        parse(RegistrationSpec, spec)
    reason = str(instance_refused.value).removeprefix(f"{setting} ")
    assert str(fleet_refused.value) == f"{field}: {reason}"
    assert "pw-secret-5" not in reason
    if "@" in value:
        assert "user or password" in reason
