"""Open the fleet's sealed secrets in a short-lived child process.

An instance under the fleet is handed its API token and ERP login sealed (see
:mod:`service.settings`) and must open them at start. Opening them in the instance
itself would keep cryptography loaded for good: ~7 MB of the RSS of every idle
instance, for two decryptions. The child opens them with the same
:class:`~core.crypto.CredentialBox` and exits. The key and the tokens go in on its
stdin and the plaintext comes back on its stdout, so no secret is ever on a command
line; the child costs ~50 ms at start.

    python -m service.unseal   # stdin: {"key", "fallbacks", "api_token", "credentials",
                              #         "options"}; stdout: the answer

``fallbacks`` are ``SECRET_KEY_FALLBACKS``: a secret sealed under an older key still
opens while a rotation is under way (``manage.py rotate-secrets``).

Under the fleet there is no child: :mod:`fleet.launch`, the short-lived Python that
``exec`` api.py, opens them first (:func:`hand_over`) and leaves the answer in a pipe
whose descriptor api.py inherits (``BRIDGE_UNSEALED_FD``), never in the environment or on
a command line; ``exec`` drops the launcher's cryptography with the rest of it. The child
was a Python start of its own: 0.077 CPU-s per instance measured while 200 started at
once on 2 cores. The answer is taken only for the very request the instance would have
sent the child (a SHA-256 of it travels along); anything else, and the child runs.
"""

import hashlib
import json
import os
import stat
import subprocess
import sys

from core.crypto import CredentialBox, parse_fallbacks
from core.errors import BridgeError, ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: seconds the child may take; it needs well under one
TIMEOUT_SECONDS = 30
#: the environment variable naming the pipe that fleet.launch left the answer in
HANDOVER_FD = "BRIDGE_UNSEALED_FD"
#: the settings that hold sealed secrets
SEALED = ("API_TOKEN_SEALED", "ERP_CREDENTIALS_SEALED", "ERP_OPTIONS_SEALED",
          "WEBHOOK_SECRET_SEALED")
#: a pipe takes at least 64 KiB before its writer blocks, and nobody reads it before exec
_PIPE_ROOM = 60_000


def _request(secret_key, api_token, credentials, fallbacks, options, webhook_secret):
    return json.dumps({"key": secret_key, "fallbacks": list(fallbacks), "api_token": api_token,
                       "credentials": credentials, "options": options,
                       "webhook_secret": webhook_secret})


def _digest(request):
    return hashlib.sha256(request.encode("utf-8")).hexdigest()


def sealed_in(env):
    """Whether ``env`` holds any sealed secret (:data:`SEALED`)."""
    return any(env.get(name) for name in SEALED)


def _request_of(env):
    """The request for ``env``'s sealed secrets: the one text both the launcher and the
    instance make of the same environment, so that the digests agree.

    :raises ConfigError: when ``SECRET_KEY_FALLBACKS`` is malformed
    """
    return _request(env.get("SECRET_KEY", ""), env.get("API_TOKEN_SEALED"),
                    env.get("ERP_CREDENTIALS_SEALED"),
                    parse_fallbacks(env.get("SECRET_KEY_FALLBACKS", "")),
                    env.get("ERP_OPTIONS_SEALED"), env.get("WEBHOOK_SECRET_SEALED"))


def hand_over(env):
    """Open ``env``'s sealed secrets here and leave the answer in a pipe (for
    :mod:`fleet.launch`, just before it ``exec`` api.py with ``env``).

    :returns: the pipe's read end, inheritable, to be named by :data:`HANDOVER_FD`; None
        when there is nothing to open, or it did not fit (api.py's child then opens them)
    """
    if not env.get("SECRET_KEY") or not sealed_in(env):
        return None
    try:
        request = _request_of(env)
    except ConfigError:
        return None  # the instance says so itself
    try:
        answer = _open(json.loads(request))
    except ConfigError as exc:
        answer = {"error": str(exc)}
    except Exception:  # a key that is no key, a damaged token: the child reports it
        return None
    data = json.dumps({"request": _digest(request), "answer": answer}).encode("utf-8")
    if len(data) > _PIPE_ROOM:
        return None
    read, write = os.pipe()
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(write, view):]
    finally:
        os.close(write)
    os.set_inheritable(read, True)
    return read


def _handed_over(request):
    """The answer fleet.launch left for exactly ``request``, else None. The descriptor
    is read once, closed, and its name leaves the environment (no child inherits it)."""
    fd = os.environ.pop(HANDOVER_FD, None)
    if fd is None:
        return None
    try:
        fd = int(fd)
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return None
        with os.fdopen(fd, "rb") as pipe:
            handed = json.loads(pipe.read(_PIPE_ROOM + 1))
    except (ValueError, OSError):
        return None
    if not isinstance(handed, dict) or handed.get("request") != _digest(request):
        return None
    answer = handed.get("answer")
    return answer if isinstance(answer, dict) else None


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
    return _answer(_request(secret_key, api_token, credentials, fallbacks, options,
                            webhook_secret))


def open_sealed_env(env):
    """:func:`open_sealed` for the secrets of ``env`` (``SECRET_KEY``,
    ``SECRET_KEY_FALLBACKS`` and the :data:`SEALED` settings): what an instance's settings
    call, with the same request :func:`hand_over` made of the launcher's environment.

    :raises ConfigError: with a one-line reason when a secret cannot be opened
    """
    return _answer(_request_of(env))


def _answer(request):
    """The answer to ``request``: the one fleet.launch handed over, else the child's."""
    answer = _handed_over(request)
    if answer is not None:
        if "error" in answer:
            raise ConfigError(answer["error"])
        return answer
    failed = "cannot open the sealed secrets: python -m service.unseal"
    try:
        child = subprocess.run([sys.executable, "-m", "service.unseal"], input=request, text=True,
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
