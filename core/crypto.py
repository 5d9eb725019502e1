"""Credentials at rest: encrypted with Fernet (AES-128-CBC + HMAC) under ``SECRET_KEY``.

The queue file and the order records hold only the token this module makes; the
plaintext exists in memory in the worker, for the moment it logs into the ERP.

Keys. ``SECRET_KEY`` is either a Fernet key (44 characters of url-safe base64, as
``Fernet.generate_key()`` makes; used as it is, so deployments from before keep their
data) or any other secret of at least :data:`MIN_SECRET_LENGTH` characters, from which
the Fernet key is derived with HKDF-SHA256 (RFC 5869) under a fixed salt and info
string. HKDF, not PBKDF2: a secret of 32 characters or more needs no stretching to be
out of reach of guessing, and the derivation runs in every process that opens a token
(each instance, each ``service.unseal`` child, ``manage.py``), where PBKDF2 at a cost
that matters would add tenths of a second to each start. HKDF does not make a short
passphrase strong: generate the secret (``secrets.token_urlsafe(32)``).

Rotation, as Django does it: tokens open under ``SECRET_KEY`` or any of
``SECRET_KEY_FALLBACKS``; new tokens are always sealed under ``SECRET_KEY``;
:meth:`CredentialBox.rotate` re-seals an old token (``manage.py rotate-secrets``).
"""

import base64
import binascii
import json

from core.credentials import Credentials
from core.errors import ConfigError, PermanentError

#: a secret that is not a Fernet key must be at least this long
MIN_SECRET_LENGTH = 32

#: HKDF's salt and info: fixed, because every process must derive the same key from the
#: same secret; "v1" names the scheme, should it ever change
KDF_SALT = b"oilmat-bridge"
KDF_INFO = b"oilmat-bridge SECRET_KEY -> Fernet key v1"

_MAKE_ONE = "make one with python -c 'import secrets; print(secrets.token_urlsafe(32))'"


class Unreadable(ValueError):
    """A token that opens under neither ``SECRET_KEY`` nor any fallback."""


def is_fernet_key(secret):
    """Whether ``secret`` is used as a Fernet key as it is.

    The same lenient test Fernet itself applies (url-safe base64 of 32 bytes), so every
    key that worked before key derivation existed is still taken as it is.
    """
    try:
        return len(base64.urlsafe_b64decode(secret)) == 32
    except (binascii.Error, ValueError, TypeError):
        return False


def check_secret(secret, name="SECRET_KEY"):
    """Refuse a secret that is neither a Fernet key nor long enough; never echo it.

    :param name: the setting, for the message (``SECRET_KEY_FALLBACKS item 2``)
    :raises ConfigError: with a one-line reason
    """
    if not isinstance(secret, str) or not secret:
        raise ConfigError(f"{name} is empty")
    if "," in secret:
        # it could not be listed in SECRET_KEY_FALLBACKS (comma-separated) when rotated
        raise ConfigError(f"{name} must not contain a comma")
    if not is_fernet_key(secret) and len(secret) < MIN_SECRET_LENGTH:
        raise ConfigError(
            f"{name} must be a Fernet key or any secret of at least {MIN_SECRET_LENGTH} "
            f"characters (this one has {len(secret)}); {_MAKE_ONE}")
    return secret


def parse_fallbacks(text):
    """``SECRET_KEY_FALLBACKS`` -> a tuple of checked secrets (comma-separated, blanks around
    each ignored, empty items skipped).

    :raises ConfigError: naming the item (by position) that is not a usable secret
    """
    items = [item.strip() for item in (text or "").split(",")]
    items = [item for item in items if item]
    for n, item in enumerate(items, 1):
        check_secret(item, f"SECRET_KEY_FALLBACKS item {n}")
    return tuple(items)


def _text(secret):
    # Fernet.generate_key() gives bytes; settings give str
    return secret.decode("ascii", "replace") if isinstance(secret, bytes) else secret


def fernet_key(secret):
    """:returns: the Fernet key (url-safe base64 bytes) that ``secret`` stands for"""
    if is_fernet_key(secret):
        return secret.encode("ascii")
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=KDF_SALT,
               info=KDF_INFO).derive(secret.encode("utf-8"))
    return base64.urlsafe_b64encode(raw)


class CredentialBox:
    """Seals and opens :class:`~integrations.base.Credentials` and bare secret strings.

    :param secret_key: ``SECRET_KEY``; every new token is sealed under it
    :param fallbacks: ``SECRET_KEY_FALLBACKS``: older keys, tried for opening only
    :raises ConfigError: when a key is neither a Fernet key nor long enough
    """

    def __init__(self, secret_key, fallbacks=()):
        # cryptography is imported at the first seal or open, not here: it is ~7 MB of
        # RSS (mostly its Rust extension), and an idle instance seals and opens nothing.
        # The keys are checked now all the same, so a bad one still stops the
        # instance at start.
        self._keys = (check_secret(_text(secret_key)),) + tuple(
            check_secret(_text(k), f"SECRET_KEY_FALLBACKS item {n}")
            for n, k in enumerate(fallbacks, 1))
        self._ciphers = None

    def _cipher(self):
        """:returns: ``(MultiFernet over every key, Fernet of SECRET_KEY alone)``"""
        # A request thread sealing and the worker opening may both build them at first
        # use; they are equal, so which pair is kept does not matter.
        if self._ciphers is None:
            from cryptography.fernet import Fernet, MultiFernet

            fernets = [Fernet(fernet_key(k)) for k in self._keys]
            self._ciphers = (MultiFernet(fernets), fernets[0])
        return self._ciphers

    def _run(self, method, token):
        """``method`` (a decrypt or rotate of a cipher from :meth:`_cipher`) on ``token``.

        :raises Unreadable: when ``token`` was sealed under none of the keys (or is no
            token at all)
        """
        from cryptography.fernet import InvalidToken

        try:
            return method(token.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError, AttributeError):
            raise Unreadable("not sealed under SECRET_KEY or a fallback") from None

    def _decrypt(self, token):
        return self._run(self._cipher()[0].decrypt, token)

    def seal(self, credentials):
        """:returns: an opaque ASCII token for ``credentials``"""
        plain = json.dumps({"u": credentials.username, "p": credentials.password})
        return self._cipher()[0].encrypt(plain.encode("utf-8")).decode("ascii")

    def seal_text(self, text):
        """:returns: an opaque ASCII token for a bare secret string (an API token)"""
        return self._cipher()[0].encrypt(text.encode("utf-8")).decode("ascii")

    def open_text(self, token):
        """:raises ConfigError: when the token was sealed under none of the keys"""
        try:
            return self._decrypt(token).decode("utf-8")
        except Unreadable:
            raise ConfigError(
                "a sealed secret cannot be decrypted with SECRET_KEY or SECRET_KEY_FALLBACKS") from None

    def open(self, token):
        """:raises PermanentError: ``CREDENTIALS_UNREADABLE`` when no key opens it"""
        try:
            plain = json.loads(self._decrypt(token))
        except ValueError:  # Unreadable, or not our JSON
            raise PermanentError(
                "stored ERP credentials cannot be decrypted with SECRET_KEY or "
                "SECRET_KEY_FALLBACKS (was SECRET_KEY changed without keeping the old "
                "one as a fallback?)",
                reason_code="CREDENTIALS_UNREADABLE",
            ) from None
        return Credentials(plain["u"], plain["p"])

    def is_current(self, token):
        """:returns: whether ``token`` opens under ``SECRET_KEY`` itself"""
        try:
            self._run(self._cipher()[1].decrypt, token)
        except Unreadable:
            return False
        return True

    def rotate(self, token):
        """Re-seal ``token`` under ``SECRET_KEY`` (MultiFernet.rotate).

        :returns: the new token, or None when ``token`` is under ``SECRET_KEY`` already
            (so rotating twice changes nothing)
        :raises Unreadable: when no key opens it
        """
        if self.is_current(token):
            return None
        return self._run(self._cipher()[0].rotate, token).decode("ascii")
