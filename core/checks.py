"""The checks the instance and the fleet both make of a setting, in one place.

The fleet refuses a bad value when it is configured (``manage.py add``, the management
API, through :mod:`fleet.schemas`); an instance run by hand refuses it at start
(:mod:`service.settings`). Both use these patterns and these messages, so a value is
good or bad the same way in both, and said to be bad in the same words (a hand-run
instance took a ``WEBHOOK_URL`` with ``user:pass@``, whose every delivery then failed with
a misleading name-resolution error, and an ERP password with control characters, both of
which the fleet refused).

Standard library only, and no table built at import: an instance starts with this.
"""

import re
from urllib.parse import urlsplit

#: what ``str.isspace()`` holds true for (the characters ``str.split()`` splits on)
SPACE_CLASS = ("\\t-\\r\\u001c- \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f"
               "\\u205f\\u3000")
#: Unicode's control characters (category Cc)
CONTROL_CLASS = "\\u0000-\\u001f\\u007f-\\u009f"

_PORT = r"(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
#: http(s), an ASCII host name or address (IDN hosts in their xn-- form), an optional port,
#: then anything but whitespace and control characters; no ``user:password@``
URL_PATTERN = (f"[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9.-]+(?::{_PORT})?"
               f"(?:[/?#][^{SPACE_CLASS}{CONTROL_CLASS}]*)?")
#: an ERP login: typed into a login form, so no control characters (a line break submits it)
SECRET_PATTERN = f"[^{CONTROL_CLASS}]*"

_URL = re.compile(URL_PATTERN)
_SECRET = re.compile(SECRET_PATTERN)


def url_problem(value):
    """:returns: why ``value`` is not a URL :data:`URL_PATTERN` takes"""
    try:
        parts = urlsplit(value)
    except ValueError:
        parts = None
    if parts is None or parts.scheme.lower() not in ("http", "https"):
        return "is not an http(s) URL"
    if "@" in parts.netloc:
        return ("must not hold a user or password (user:password@): the address only; "
                "a webhook is authenticated by its signature")
    return "must be http(s)://host[:port][/path] with an ASCII host name and no spaces"


def secret_problem(_value):
    """:returns: why a login (name or password) is refused; never the value"""
    return "must not contain line breaks or other control characters"


def check_url(value):
    """:raises ValueError: with :func:`url_problem` unless :data:`URL_PATTERN` takes it"""
    if not _URL.fullmatch(value):
        raise ValueError(url_problem(value))
    return value


def check_secret(value):
    """:raises ValueError: with :func:`secret_problem` for control characters"""
    if not _SECRET.fullmatch(value):
        raise ValueError(secret_problem(value))
    return value
