"""service/unseal.py: the sealed secrets opened by fleet.launch and handed over in a pipe,
else by a child process."""

import json
import os
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet

from service import unseal
from core.credentials import Credentials
from core.crypto import CredentialBox
from core.errors import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEY = Fernet.generate_key().decode()
BOX = CredentialBox(KEY)


def sealed_env(**more):
    return {"SECRET_KEY": KEY, "API_TOKEN_SEALED": BOX.seal_text("t0ken"),
            "ERP_CREDENTIALS_SEALED": BOX.seal(Credentials("oilmat", "pw")), **more}


def open_like_settings(env):
    """service.settings' call."""
    return unseal.open_sealed_env(env)


@pytest.fixture
def no_child(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the child ran")
    monkeypatch.setattr(unseal.subprocess, "run", refuse)


def test_the_launcher_s_answer_is_taken_and_no_child_runs(monkeypatch, no_child):
    env = sealed_env()
    fd = unseal.hand_over(env)
    monkeypatch.setenv(unseal.HANDOVER_FD, str(fd))
    assert open_like_settings(env) == {"api_token": "t0ken", "username": "oilmat",
                                       "password": "pw"}
    assert unseal.HANDOVER_FD not in os.environ  # no child of the instance inherits it
    with pytest.raises(OSError):
        os.fstat(fd)  # read once and closed


def test_an_answer_for_another_request_is_not_taken(monkeypatch):
    fd = unseal.hand_over(sealed_env())
    monkeypatch.setenv(unseal.HANDOVER_FD, str(fd))
    other = sealed_env(API_TOKEN_SEALED=BOX.seal_text("another"))
    assert open_like_settings(other)["api_token"] == "another"  # the child opened it


def test_a_secret_that_does_not_open_is_the_same_error_either_way(monkeypatch):
    env = sealed_env(API_TOKEN_SEALED=CredentialBox(Fernet.generate_key()).seal_text("x"))
    with pytest.raises(ConfigError) as by_child:
        open_like_settings(env)
    monkeypatch.setenv(unseal.HANDOVER_FD, str(unseal.hand_over(env)))
    monkeypatch.setattr(unseal.subprocess, "run", None)  # would fail: not called
    with pytest.raises(ConfigError) as handed:
        open_like_settings(env)
    assert str(handed.value) == str(by_child.value) and "cannot be decrypted" in str(handed.value)


def test_a_descriptor_that_is_not_a_pipe_is_not_read(monkeypatch, tmp_path):
    with open(tmp_path / "file", "w+") as other:
        other.write(json.dumps({"request": "x", "answer": {"api_token": "forged"}}))
        other.flush()
        monkeypatch.setenv(unseal.HANDOVER_FD, str(other.fileno()))
        assert open_like_settings(sealed_env())["api_token"] == "t0ken"


def test_nothing_sealed_is_nothing_handed_over():
    assert unseal.hand_over({"SECRET_KEY": KEY, "API_TOKEN": "plain"}) is None
    assert unseal.hand_over({"API_TOKEN_SEALED": BOX.seal_text("t")}) is None  # no key


# What api.py does with its settings, in a process fleet.launch execs: the child must not run.
_INSTANCE = """
import subprocess, sys
sys.path.insert(0, sys.argv[1])
def refuse(*a, **k):
    raise SystemExit("the service.unseal child ran")
subprocess.run = refuse
from service.settings import load_settings
s = load_settings(5001, "Bennys Auto", dotenv=False)
print(s.api_token, s.erp_username, s.erp_password, "cryptography" in sys.modules)
"""


def test_an_instance_started_by_fleet_launch_gets_its_secrets_in_the_pipe(tmp_path):
    environment = {**sealed_env(), "QUEUE_DIR": str(tmp_path / "q"), "LOG_DIR": str(tmp_path / "l")}
    launch = tmp_path / "launch.json"
    launch.write_text(json.dumps({"argv": [sys.executable, "-c", _INSTANCE, ROOT],
                                  "environment": environment}), encoding="ascii")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ERP_", "API_", "SECRET_"))}
    result = subprocess.run([sys.executable, "-m", "fleet.launch", str(launch)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    # and the launcher's cryptography went with it at exec
    assert result.stdout.split() == ["t0ken", "oilmat", "pw", "False"]
