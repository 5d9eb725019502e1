"""Query parameters of the instance's endpoints: each read by one rule, and a wrong one
answered 400 with its name and the rule (never a 500).

Each is given at most once (:func:`one`), except a list (:func:`choices`). Whole
numbers are ASCII digits (no sign, no spaces), times RFC 3339 (a date, or a date
and time with its zone), texts single-line. The OpenAPI document states the same rules
(service/openapi.py), and the fuzz test holds the two together.
"""

import re
from datetime import datetime, timedelta, timezone

from flask import request

from service.http import error_response

_DIGITS = re.compile(r"[0-9]{1,19}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class BadParam(ValueError):
    """A query parameter breaks its rule; ``name`` says which."""

    def __init__(self, name, reason):
        super().__init__(reason)
        self.name = name

    def response(self, message="invalid query parameter"):
        return error_response(400, "validation_failed", message, {self.name: str(self)})


def one(name, required=False):
    """The query parameter ``name`` as given; None when absent.

    A parameter given twice (``limit=5&limit=abc``) is refused, not read as its first:
    which one the client meant cannot be known, and the documents say once.

    :raises BadParam: given more than once, or absent and ``required``
    """
    values = request.args.getlist(name)
    if len(values) > 1:
        raise BadParam(name, f"must be given once, not {len(values)} times")
    if not values and required:
        raise BadParam(name, "is required as a query parameter")
    return values[0] if values else None


def whole(name, low, high, default=None, required=False):
    """The query parameter ``name`` as a whole number from ``low`` to ``high``."""
    raw = one(name, required)
    if raw is None:
        return default
    if not _DIGITS.fullmatch(raw) or not low <= int(raw) <= high:
        raise BadParam(name, f"must be a whole number from {low} to {high}")
    return int(raw)


def text(name, max_length, required=False):
    """A single line of at most ``max_length`` characters, stripped; None when absent
    or empty (and not required)."""
    raw = one(name, required) or ""
    if len(raw) > max_length:
        raise BadParam(name, f"must be at most {max_length} characters")
    if _CONTROL.search(raw):
        raise BadParam(name, "must be one line without control characters")
    if not raw.strip():
        if required:
            raise BadParam(name, "must not be empty")
        return None
    return raw.strip()


def choices(name, allowed):
    """A comma-separated list of values from ``allowed`` (also given as repeated
    parameters); an empty tuple when absent."""
    found = []
    for raw in request.args.getlist(name):
        for value in raw.split(","):
            if value not in allowed:
                raise BadParam(name, f"must be one or more of {', '.join(allowed)}, "
                                     "separated by commas")
            if value not in found:
                found.append(value)
    return tuple(found)


#: RFC 3339: a full date, or a date-time with seconds and a zone (``Z`` or ``+hh:mm``)
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_DATE_TIME = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})"
                        r"(?:\.([0-9]+))?(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))")
#: the pattern of both, for the OpenAPI document
MOMENT_FORMATS = ({"type": "string", "format": "date"},
                  {"type": "string", "format": "date-time"})


def _parse_moment(raw):
    """:returns: the UTC datetime of an RFC 3339 date (midnight UTC) or date-time
    :raises ValueError: when it is neither"""
    if len(raw) > 64:
        raise ValueError(raw)
    date = _DATE.fullmatch(raw)
    if date:
        return datetime(*map(int, date.groups()), tzinfo=timezone.utc)
    full = _DATE_TIME.fullmatch(raw)
    if not full:
        raise ValueError(raw)
    day, hour, minute, second, fraction, zulu, sign, off_h, off_m = full.groups()
    year, month, mday = map(int, _DATE.fullmatch(day).groups())
    if int(off_h or 0) > 23 or int(off_m or 0) > 59:
        raise ValueError(raw)
    # second 60 is a leap second (RFC 3339 allows it): the records' clock has none
    when = datetime(year, month, mday, int(hour), int(minute), min(int(second), 59),
                    int((fraction or "0")[:6].ljust(6, "0")))
    offset = timedelta(hours=int(off_h or 0), minutes=int(off_m or 0))
    try:
        return (when - offset if sign != "-" else when + offset).replace(tzinfo=timezone.utc)
    except OverflowError:  # past year 1 or 9999 in UTC: the same as the ends of time
        return datetime.min.replace(tzinfo=timezone.utc) if sign != "-" else \
            datetime.max.replace(tzinfo=timezone.utc)


def moment(name):
    """An RFC 3339 date (``2026-12-01``: midnight UTC) or date-time
    (``2026-12-01T08:00:00Z``, ``...+01:00``), as the UTC text the records hold
    (``2026-12-01T08:00:00.000+00:00``); None when absent."""
    raw = one(name)
    if raw is None:
        return None
    try:
        when = _parse_moment(raw)
    except ValueError:
        raise BadParam(name, "must be an RFC 3339 date (2026-12-01) or date-time "
                             "(2026-12-01T08:00:00Z)") from None
    return when.isoformat(timespec="milliseconds")
