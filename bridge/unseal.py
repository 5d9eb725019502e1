"""Open the fleet's sealed secrets in a short-lived child process.

An instance under the fleet is handed its API token and ERP login sealed (see
:mod:`bridge.settings`) and must open them at start. Opening them in the instance
itself would keep cryptography loaded for good: ~7 MB of the RSS of every idle
instance, for two decryptions. The child opens them with the same
:class:`~core.crypto.CredentialBox` and exits. The key and the tokens go in on its
stdin and the plaintext comes back on its stdout, so no secret is ever on a command
line; the child costs ~50 ms at start.

    python -m bridge.unseal   # stdin: {"key", "fallbacks", "api_token", "credentials",
                              #         "options"}; stdout: the answer

``fallbacks`` are ``SECRET_KEY_FALLBACKS``: a secret sealed under an older key still
opens while a rotation is under way (``manage.py rotate-secrets``).
"""

import json
import os
import subprocess
import sys

from core.crypto import CredentialBox
from core.errors import BridgeError, ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: seconds the child may take; it needs well under one
TIMEOUT_SECONDS = 30


def open_sealed(secret_key, api_token=None, credentials=None, fallbacks=(), options=None,
                webhook_secret=None):
    """Open ``API_TOKEN_SEALED``, ``ERP_CREDENTIALS_SEALED``, ``ERP_OPTIONS_SEALED`` and
    ``WEBHOOK_SECRET_SEALED`` (any may be empty).

    :param fallbacks: ``SECRET_KEY_FALLBACKS``, tried after ``secret_key``
    :param options: ``ERP_OPTIONS_SEALED``: a JSON object ``{name: token}``
    :param webhook_secret: ``WEBHOOK_SECRET_SEALED``
    :returns: ``{"api_token": ..., "username": ..., "password": ..., "options": {name:
        value}, "webhook_secret": ...}`` with the keys of the secrets that were given
    :raises ConfigError: with a one-line reason when a secret cannot be opened
    """
    request = json.dumps({"key": secret_key, "fallbacks": list(fallbacks), "api_token": api_token,
                          "credentials": credentials, "options": options,
                          "webhook_secret": webhook_secret})
    failed = "cannot open the sealed secrets: python -m bridge.unseal"
    try:
        child = subprocess.run([sys.executable, "-m", "bridge.unseal"], input=request, text=True,
                               capture_output=True, cwd=ROOT, timeout=TIMEOUT_SECONDS)
    except (OSError, subprocess.SubprocessError) as exc:
        raise ConfigError(f"{failed}: {exc}") from None
    try:
        answer = json.loads(child.stdout)
    except ValueError:
        last = (child.stderr.strip().splitlines() or [f"exit code {child.returncode}"])[-1]
        raise ConfigError(f"{failed}: {last}") from None
    if "error" in answer:
        raise ConfigError(answer["error"])
    return answer


def _open(request):
    box = CredentialBox(request["key"], request.get("fallbacks") or ())
    answer = {}
    if request.get("api_token"):
        answer["api_token"] = box.open_text(request["api_token"])
    if request.get("credentials"):
        try:
            credentials = box.open(request["credentials"])
        except BridgeError as exc:
            raise ConfigError(f"ERP_CREDENTIALS_SEALED: {exc}") from None
        answer["username"], answer["password"] = credentials.username, credentials.password
    if request.get("options"):
        answer["options"] = _open_options(box, request["options"])
    if request.get("webhook_secret"):
        try:
            answer["webhook_secret"] = box.open_text(request["webhook_secret"])
        except ConfigError as exc:
            raise ConfigError(f"WEBHOOK_SECRET_SEALED: {exc}") from None
    return answer


def _open_options(box, text):
    """``ERP_OPTIONS_SEALED`` -> ``{name: value}``; an error names the option, not its value."""
    try:
        tokens = json.loads(text)
    except ValueError:
        tokens = None
    if not isinstance(tokens, dict) or not all(isinstance(t, str) for t in tokens.values()):
        raise ConfigError("ERP_OPTIONS_SEALED must be a JSON object {name: sealed value}")
    options = {}
    for name, token in tokens.items():
        try:
            options[name] = box.open_text(token)
        except ConfigError as exc:
            raise ConfigError(f"ERP_OPTIONS_SEALED: option {name}: {exc}") from None
    return options


def main():
    try:
        answer = _open(json.load(sys.stdin))
    except ConfigError as exc:
        answer = {"error": str(exc)}
    json.dump(answer, sys.stdout)


if __name__ == "__main__":
    main()
