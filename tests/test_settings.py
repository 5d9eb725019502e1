"""bridge/settings.py: one place, one-line errors, sealed secrets from the fleet."""

import pytest
from cryptography.fernet import Fernet

from bridge.crypto import CredentialBox
from bridge.exceptions import ConfigError
from bridge.settings import load_settings
from integrations.base import Credentials

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
