"""core/crypto.py and service/reseal.py: what SECRET_KEY may be, fallbacks, rotation."""

import base64
import os
import subprocess
import sys
import textwrap

import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from core.crypto import (KDF_INFO, KDF_SALT, CredentialBox, Unreadable, fernet_key,
                           parse_fallbacks)
from core.errors import ConfigError, PermanentError
from service.reseal import Resealer
from service.unseal import open_sealed
from core.credentials import Credentials

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: a passphrase-style secret: 40 characters of text, not a Fernet key
PASSPHRASE = "the pump in bay three sings at midnight!"
OLD, NEW = Fernet.generate_key().decode(), "another secret of forty characters long."


def test_a_fernet_key_is_used_as_it_is():
    """Deployments from before keep their data: tokens of plain Fernet(key) open, and ours
    open with plain Fernet(key)."""
    key = Fernet.generate_key()
    box = CredentialBox(key.decode())
    assert box.open_text(Fernet(key).encrypt(b"tok").decode()) == "tok"
    assert Fernet(key).decrypt(box.seal_text("tok").encode()) == b"tok"
    assert fernet_key(key.decode()) == key


def test_a_long_secret_derives_its_key_with_hkdf_sha256():
    assert len(PASSPHRASE) == 40
    box = CredentialBox(PASSPHRASE)
    token = box.seal(Credentials("oilmat", "pw-Ø"))
    assert CredentialBox(PASSPHRASE).open(token) == Credentials("oilmat", "pw-Ø")
    # the documented derivation, so the key can be derived anywhere
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=KDF_SALT, info=KDF_INFO).derive(
        PASSPHRASE.encode())
    assert Fernet(base64.urlsafe_b64encode(raw)).decrypt(token.encode())
    with pytest.raises(PermanentError):
        CredentialBox(PASSPHRASE[:-1] + "?").open(token)


@pytest.mark.parametrize("secret,needle", [
    ("x" * 31, "at least 32 characters (this one has 31)"),
    ("short", "SECRET_KEY must be a Fernet key or any secret of at least 32"),
    ("", "SECRET_KEY is empty"),
    ("a" * 20 + "," + "b" * 20, "must not contain a comma"),
])
def test_a_short_or_listed_secret_is_refused_in_one_line(secret, needle):
    with pytest.raises(ConfigError) as error:
        CredentialBox(secret)
    message = str(error.value)
    assert needle in message and "\n" not in message
    assert not secret or secret not in message


def test_32_characters_are_enough():
    CredentialBox("x" * 32)


def test_fallbacks_open_and_secret_key_seals():
    old_token = CredentialBox(OLD).seal(Credentials("u", "p"))
    box = CredentialBox(NEW, [OLD])
    assert box.open(old_token) == Credentials("u", "p")
    with pytest.raises(PermanentError) as error:
        CredentialBox(NEW).open(old_token)
    assert error.value.reason_code == "CREDENTIALS_UNREADABLE"
    # what the box seals now is under SECRET_KEY alone
    assert CredentialBox(NEW).open(box.seal(Credentials("u", "p"))) == Credentials("u", "p")
    assert CredentialBox(NEW).open_text(box.seal_text("t")) == "t"
    with pytest.raises(ConfigError, match="SECRET_KEY or SECRET_KEY_FALLBACKS"):
        CredentialBox(OLD).open_text(box.seal_text("t"))


def test_rotate_reseals_once_and_reports_what_no_key_opens():
    box = CredentialBox(NEW, [OLD])
    old_token = CredentialBox(OLD).seal_text("tok")
    new_token = box.rotate(old_token)
    assert CredentialBox(NEW).open_text(new_token) == "tok"
    assert box.is_current(new_token) and not box.is_current(old_token)
    assert box.rotate(new_token) is None  # twice changes nothing
    with pytest.raises(Unreadable):
        box.rotate(CredentialBox(PASSPHRASE).seal_text("tok"))
    with pytest.raises(Unreadable):
        box.rotate("not a token at all")


def test_resealer_counts_each_token_once_and_keeps_copies_equal():
    box = CredentialBox(NEW, [OLD])
    old, current = CredentialBox(OLD).seal_text("a"), box.seal_text("b")
    stranger = CredentialBox(PASSPHRASE).seal_text("c")
    resealer = Resealer(box)
    first = resealer(old, "u-1")
    assert resealer(old, "u-1") == first  # the record's and the queue item's copy
    assert resealer(current, "u-2") is None and resealer(stranger, "u-3") is None
    assert resealer(None, "u-4") is None
    tally = resealer.tally
    assert (tally.resealed, tally.current, tally.unreadable) == (1, 1, ["u-3"])

    survey = Resealer(box, dry_run=True)
    assert survey(old, "u-1") is None
    assert survey.tally.resealed == 1


def test_fallbacks_setting_is_comma_separated_and_checked():
    assert parse_fallbacks(f" {OLD} ,, {PASSPHRASE},") == (OLD, PASSPHRASE)
    assert parse_fallbacks("") == ()
    with pytest.raises(ConfigError, match="SECRET_KEY_FALLBACKS item 2 must be") as error:
        parse_fallbacks(f"{OLD},tooshort")
    assert "tooshort" not in str(error.value)


def test_the_unseal_child_gets_the_fallbacks():
    """The fleet's sealed secrets open in the child under a fallback key (sent on stdin)."""
    old = CredentialBox(OLD)
    sealed = dict(api_token=old.seal_text("tok"), credentials=old.seal(Credentials("u", "p")))
    assert open_sealed(NEW, fallbacks=[OLD], **sealed) == {
        "api_token": "tok", "username": "u", "password": "p"}
    with pytest.raises(ConfigError, match="cannot be decrypted"):
        open_sealed(NEW, **sealed)


def test_checking_the_keys_does_not_load_cryptography():
    """An idle instance holds no cryptography (~7 MB); the keys are checked at start all
    the same, and derived at first use."""
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {ROOT!r})
        from core.crypto import CredentialBox
        box = CredentialBox({PASSPHRASE!r}, [{OLD!r}])
        print("cryptography" in sys.modules)
        box.seal_text("x")
        print("cryptography" in sys.modules)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=30)
    assert result.stdout.split() == ["False", "True"], result.stderr
