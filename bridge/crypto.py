"""Credentials at rest: encrypted with Fernet (AES-128-CBC + HMAC) under ``SECRET_KEY``.

The queue file and the order records hold only the token this module makes; the
plaintext exists in memory in the worker, for the moment it logs into the ERP.
"""

import json

from cryptography.fernet import Fernet, InvalidToken

from bridge.exceptions import ConfigError, PermanentError
from integrations.base import Credentials


class CredentialBox:
    """Seals and opens :class:`~integrations.base.Credentials`."""

    def __init__(self, secret_key):
        try:
            self._fernet = Fernet(secret_key)
        except (ValueError, TypeError):
            raise ConfigError(
                "SECRET_KEY must be a Fernet key (32 url-safe base64 bytes); make one with "
                "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
            ) from None

    def seal(self, credentials):
        """:returns: an opaque ASCII token for ``credentials``"""
        plain = json.dumps({"u": credentials.username, "p": credentials.password})
        return self._fernet.encrypt(plain.encode("utf-8")).decode("ascii")

    def seal_text(self, text):
        """:returns: an opaque ASCII token for a bare secret string (an API token)"""
        return self._fernet.encrypt(text.encode("utf-8")).decode("ascii")

    def open_text(self, token):
        """:raises ConfigError: when the token was not sealed with this key"""
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, ValueError):
            raise ConfigError("a sealed secret cannot be decrypted with SECRET_KEY") from None

    def open(self, token):
        """:raises PermanentError: ``CREDENTIALS_UNREADABLE`` when the key has changed"""
        try:
            plain = json.loads(self._fernet.decrypt(token.encode("ascii")))
        except (InvalidToken, ValueError):
            raise PermanentError(
                "stored ERP credentials cannot be decrypted (was SECRET_KEY changed?)",
                reason_code="CREDENTIALS_UNREADABLE",
            ) from None
        return Credentials(plain["u"], plain["p"])
