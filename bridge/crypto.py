"""Credentials at rest: encrypted with Fernet (AES-128-CBC + HMAC) under ``SECRET_KEY``.

The queue file and the order records hold only the token this module makes; the
plaintext exists in memory in the worker, for the moment it logs into the ERP.
"""

import base64
import binascii
import json

from bridge.exceptions import ConfigError, PermanentError
from integrations.base import Credentials


class CredentialBox:
    """Seals and opens :class:`~integrations.base.Credentials`."""

    def __init__(self, secret_key):
        # cryptography is imported at the first seal or open, not here: it is ~7 MB of
        # RSS (mostly its Rust extension), and an idle instance seals and opens nothing.
        # The key is checked now all the same, as Fernet() checks it, so a bad
        # SECRET_KEY still stops the instance at start.
        try:
            valid = len(base64.urlsafe_b64decode(secret_key)) == 32
        except (binascii.Error, ValueError, TypeError):
            valid = False
        if not valid:
            raise ConfigError(
                "SECRET_KEY must be a Fernet key (32 url-safe base64 bytes); make one with "
                "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
            )
        self._secret_key = secret_key
        self._fernet = None

    def _cipher(self):
        # A request thread sealing and the worker opening may both build one at first
        # use; they are equal, so which one is kept does not matter.
        if self._fernet is None:
            from cryptography.fernet import Fernet

            self._fernet = Fernet(self._secret_key)
        return self._fernet

    def _decrypt(self, token):
        """:raises ValueError: when ``token`` was not sealed with this key"""
        from cryptography.fernet import InvalidToken

        try:
            return self._cipher().decrypt(token.encode("ascii"))
        except InvalidToken:
            raise ValueError("not sealed with this key") from None

    def seal(self, credentials):
        """:returns: an opaque ASCII token for ``credentials``"""
        plain = json.dumps({"u": credentials.username, "p": credentials.password})
        return self._cipher().encrypt(plain.encode("utf-8")).decode("ascii")

    def seal_text(self, text):
        """:returns: an opaque ASCII token for a bare secret string (an API token)"""
        return self._cipher().encrypt(text.encode("utf-8")).decode("ascii")

    def open_text(self, token):
        """:raises ConfigError: when the token was not sealed with this key"""
        try:
            return self._decrypt(token).decode("utf-8")
        except ValueError:
            raise ConfigError("a sealed secret cannot be decrypted with SECRET_KEY") from None

    def open(self, token):
        """:raises PermanentError: ``CREDENTIALS_UNREADABLE`` when the key has changed"""
        try:
            plain = json.loads(self._decrypt(token))
        except ValueError:
            raise PermanentError(
                "stored ERP credentials cannot be decrypted (was SECRET_KEY changed?)",
                reason_code="CREDENTIALS_UNREADABLE",
            ) from None
        return Credentials(plain["u"], plain["p"])
