"""What each field of an order accepts: one rule, one message, and the same rule as an
OpenAPI schema.

The checks here and the schemas here are two readings of one rule, kept side by side so
that a request the published document allows is never refused (``tests/test_fields.py``
checks each pattern against its check). Plain Python, no pydantic: ``/create`` and the
query parameter of ``/get_order_status`` are checked with it (:func:`check_order`), and
pydantic, ~9 MB of memory in every instance that loads it, is loaded only for the API's
documents (:mod:`service.models`, whose order model is built from the same checks and
which ``tests/test_models.py`` holds to the same answers).

Amounts (``product_amount``) are read as a pump or a person writes them: ASCII digits
with at most one ``.`` or ``,`` as the decimal separator (Norwegian pumps write ``4,7``),
at most 3 decimals, more than 0 and at most the instance's ``MAX_PRODUCT_AMOUNT``.
A JSON number is taken at its value (``5``, ``2.5``, and ``1e3`` is 1000) under the same
rules; it is read from the body as written, so ``0.30000000000000004`` has 17 decimals and
is refused. The ERP is given the normalised value with a ``.`` (``"4.7"``, ``"1000"``).
"""

import re
from decimal import Decimal

#: worksheet and product numbers: what the ERPs we know use as keys
IDENTIFIER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,31}$"
#: OilMat's id of a pump event: printable ASCII without spaces
UNIQUEID_PATTERN = r"^[!-~]{1,128}$"
#: a uniqueid where a URL's path holds it (``/orders/<uniqueid>/artifacts``): any
#: uniqueid, percent-encoded as one segment. The documents once left ``%`` out (for a
#: client that does not encode), but the instance served such an order all the same
#: (an outside probe: GET /orders/%25/artifacts answered 200 outside the pattern); the
#: document says now what the instance does.
UNIQUEID_PATH_PATTERN = UNIQUEID_PATTERN
#: what the documents say of a uniqueid in a path
UNIQUEID_PATH_NOTE = ("the order's uniqueid as one percent-encoded path segment (a % is "
                      "written %25, a / %2F, and \".\" and \"..\" %2E and %2E%2E)")
#: an ERP login: no control characters (they cannot be typed into a login form)
USERNAME_PATTERN = r"^[^\u0000-\u001f\u007f]*$"
#: whole numbers given for worksheet, product_nr or uniqueid: 0 .. 10**18 - 1
MAX_WHOLE_NUMBER = 10**18 - 1
#: decimals an amount may have
MAX_DECIMALS = 3

NOT_A_NUMBER = "is not a number: write ASCII digits, like 5, 2.5 or 4,7"
SEPARATORS = ("must have at most one decimal separator ('.' or ','), between digits, and no "
              "thousands separators or spaces: write 5000, 4.7 or 4,7")
TOO_MANY_DECIMALS = f"must have at most {MAX_DECIMALS} decimals"
NOT_POSITIVE = "must be more than 0"
AMOUNT_TYPE = "must be a number like 5 or 2.5, as a string or a JSON number"

_DIGITS = frozenset("0123456789")
_SEPARATORS = frozenset(".,")
#: characters people use to group thousands; refused with the separators message
_GROUPING = frozenset("_ '\u00a0")


def _full(pattern):
    """A JSON-Schema pattern (anchored with ^ and $) as a Python regex matching whole
    strings only: Python's ``$`` would also match before a final newline."""
    return re.compile(pattern[1:-1] if pattern.startswith("^") and pattern.endswith("$")
                      else pattern)


_IDENTIFIER = _full(IDENTIFIER_PATTERN)
_UNIQUEID = _full(UNIQUEID_PATTERN)
_USERNAME = _full(USERNAME_PATTERN)


def _key_schema(pattern):
    return {"anyOf": [{"type": "string", "pattern": pattern},
                      {"type": "integer", "minimum": 0, "maximum": MAX_WHOLE_NUMBER}]}


IDENTIFIER_SCHEMA = _key_schema(IDENTIFIER_PATTERN)
UNIQUEID_SCHEMA = _key_schema(UNIQUEID_PATTERN)
USERNAME_SCHEMA = {"type": "string", "minLength": 1, "maxLength": 200,
                   "pattern": USERNAME_PATTERN}
PASSWORD_SCHEMA = {"type": "string", "maxLength": 200, "writeOnly": True}


def _key(value, regex, what):
    """A worksheet, product number or uniqueid, given as a string or a whole number.

    A whole number may be written ``558.0`` or ``5.58e2``: JSON (and JSON Schema's
    ``integer``) take it as the number 558, so it is ``"558"`` here too.
    """
    if isinstance(value, float):
        value = Decimal(repr(value))
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        if value > MAX_WHOLE_NUMBER:  # before int(): no int of 1E+999999
            raise ValueError(f"must be at most {MAX_WHOLE_NUMBER} as a number")
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError("must be a string or a whole number")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("must not be negative")
        if value > MAX_WHOLE_NUMBER:
            raise ValueError(f"must be at most {MAX_WHOLE_NUMBER} as a number")
        return str(value)
    if regex.fullmatch(value) is None:
        raise ValueError(f"must be {what}")
    return value


def identifier(value):
    """Check a worksheet or product number. :returns: it as a string
    :raises ValueError: with the rule it breaks"""
    return _key(value, _IDENTIFIER, "1-32 letters, digits or . _ / - (starting with a letter "
                                    "or digit), or a whole number")


def uniqueid(value):
    """Check a uniqueid. :returns: it as a string :raises ValueError: with the rule"""
    return _key(value, _UNIQUEID, "1-128 printable ASCII characters without spaces, "
                                  "or a whole number")


def username(value):
    """Check an ERP login name. :raises ValueError: with the rule it breaks"""
    if not isinstance(value, str):
        raise ValueError("must be a string")
    if not 1 <= len(value) <= USERNAME_SCHEMA["maxLength"]:
        raise ValueError("must be 1-200 characters")
    if _USERNAME.fullmatch(value) is None:
        raise ValueError("must not contain control characters")
    return value


def password(value):
    """Check an ERP password: any text up to 200 characters (it is never shown)."""
    if not isinstance(value, str):
        raise ValueError("must be a string")
    if len(value) > PASSWORD_SCHEMA["maxLength"]:
        raise ValueError("must be at most 200 characters")
    return value


def workshop(served):
    """:returns: a check that a value is exactly ``served``, the instance's workshop"""
    def check(value):
        if value != served:
            raise ValueError(f"must be {served!r}: the workshop this instance serves")
        return value
    return check


def over_maximum(maximum):
    return f"is over the maximum of {format_amount(maximum)} litres per line"


def format_amount(value):
    """``Decimal('4.700')`` -> ``'4.7'``; ``Decimal('1E+3')`` -> ``'1000'``"""
    return format(Decimal(value).normalize(), "f")


def parse_amount(value, maximum):
    """Check an amount and normalise it for the ERP.

    :param value: a string, an int or a :class:`~decimal.Decimal` (how the body parser
        reads JSON numbers with a fraction); a float is read by its shortest form
    :param maximum: the largest amount allowed (``MAX_PRODUCT_AMOUNT``)
    :returns: the amount as digits with a ``.`` separator, e.g. ``"4.7"``
    :raises ValueError: with the message of the first rule it breaks, in this order:
        not a number, separators, too many decimals, not positive, over the maximum
    """
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        raise ValueError(AMOUNT_TYPE)
    if isinstance(value, str):
        return _parse_amount_text(value, maximum)
    if isinstance(value, float):
        value = Decimal(repr(value))  # repr: the shortest text that reads back as value
    number = Decimal(value)
    if not number.is_finite():
        raise ValueError(NOT_A_NUMBER if number.is_nan() else
                         NOT_POSITIVE if number < 0 else over_maximum(maximum))
    return _check_amount(number, _decimals(number), maximum)


def _parse_amount_text(text, maximum):
    negative = text.startswith("-")
    body = text[1:] if negative else text
    chars = set(body)
    if not chars & _DIGITS or not chars <= _DIGITS | _SEPARATORS | _GROUPING:
        raise ValueError(NOT_A_NUMBER)
    separators = sum(body.count(mark) for mark in _SEPARATORS)
    if chars & _GROUPING or separators > 1 or body[0] in _SEPARATORS \
            or body[-1] in _SEPARATORS:
        raise ValueError(SEPARATORS)
    whole, _, fraction = body.replace(",", ".").partition(".")
    if len(fraction) > MAX_DECIMALS:
        raise ValueError(TOO_MANY_DECIMALS)
    whole = whole.lstrip("0")
    if negative and (whole or fraction.strip("0")):
        raise ValueError(NOT_POSITIVE)
    if len(whole) > 30:  # no Decimal of a 60 KB string of digits: it is over any maximum
        raise ValueError(over_maximum(maximum))
    return _check_amount(Decimal(f"{whole or 0}.{fraction or 0}"), 0, maximum)


def _decimals(number):
    """Decimals of ``number`` at its value: 2.500 has 1, 1E+3 has 0; no context needed."""
    sign, digits, exponent = number.as_tuple()
    while len(digits) > 1 and digits[-1] == 0:
        digits, exponent = digits[:-1], exponent + 1
    return max(0, -exponent)


def _check_amount(number, decimals, maximum):
    if decimals > MAX_DECIMALS:
        raise ValueError(TOO_MANY_DECIMALS)
    if number <= 0:
        raise ValueError(NOT_POSITIVE)
    if number > maximum:
        raise ValueError(over_maximum(maximum))
    return format_amount(number)


# -- the amount rules as a JSON schema ---------------------------------------------

def amount_schema(maximum):
    """The OpenAPI schema of ``product_amount`` for an instance with this maximum.

    :param maximum: a :class:`~decimal.Decimal` of at least 1 with at most 3 decimals
    """
    return {"anyOf": [
        {"type": "string", "pattern": amount_pattern(maximum),
         "description": "ASCII digits with one '.' or ',' as decimal separator"},
        {"type": "number", "exclusiveMinimum": 0, "maximum": _json_number(maximum),
         "multipleOf": 0.001},
    ]}


def _json_number(value):
    value = Decimal(value)
    return int(value) if value == value.to_integral_value() else float(value)


def amount_pattern(maximum):
    """A regex matching exactly the strings :func:`parse_amount` accepts for ``maximum``.

    The accepted strings are: optional leading zeros, a whole part, and optionally a
    separator and 1-3 decimals; the value more than 0 and at most ``maximum``. In
    regex terms (``N`` the whole part of the maximum, ``f`` its 3 decimals):
    a whole part 1..N-1 with any decimals, or 0 with decimals not all zero, or exactly
    N with decimals at most ``f``.
    """
    maximum = Decimal(maximum)
    if maximum < 1 or _decimals(maximum) > MAX_DECIMALS:
        raise ValueError("the maximum amount must be at least 1, with at most 3 decimals")
    whole = int(maximum)
    top = str(whole)
    frac = format(maximum - whole, ".3f")[2:]  # '0.500' -> '500'
    sep = "[.,]"
    any_fraction = f"(?:{sep}[0-9]{{1,{MAX_DECIMALS}}})?"
    nonzero_fraction = f"{sep}(?:[1-9][0-9]{{0,2}}|0[1-9][0-9]?|00[1-9])"
    branches = [f"0+{nonzero_fraction}"]  # 0,5 or 00.05: below 1, so below any maximum
    below = _digits_below(top)  # whole parts 1..N-1 without leading zeros
    if below:
        branches.append(f"0*(?:{below}){any_fraction}")
    branches.append(f"0*{top}(?:{sep}(?:{_fraction_at_most(frac)}))?")
    return "^(?:" + "|".join(branches) + ")$"


def _digits_below(top):
    """A regex for the whole numbers 1 .. int(top) - 1, written without leading zeros."""
    parts = []
    length = len(top)
    if length > 1:  # fewer digits than top
        parts.append(f"[1-9][0-9]{{0,{length - 2}}}" if length > 2 else "[1-9]")
    for position, digit in enumerate(top):
        low = 1 if position == 0 else 0
        if int(digit) > low:
            rest = length - position - 1
            tail = f"[0-9]{{{rest}}}" if rest else ""
            parts.append(f"{top[:position]}[{low}-{int(digit) - 1}]{tail}")
    return "|".join(parts)


def _fraction_at_most(frac):
    """A regex for 1-3 decimals whose value is at most 0.``frac`` (``frac``: 3 digits)."""
    parts = []
    for length in range(1, MAX_DECIMALS + 1):
        bound = frac[:length]
        parts.append(bound)
        for position, digit in enumerate(bound):
            if int(digit) > 0:
                rest = length - position - 1
                tail = f"[0-9]{{{rest}}}" if rest else ""
                parts.append(f"{bound[:position]}[0-{int(digit) - 1}]{tail}")
    return "|".join(parts)


def order_rules(settings):
    """What of an instance's settings decides a valid order: ``(workshop, maximum,
    login_required)``, as :func:`check_order` and :func:`service.models.order_model` take it."""
    return (settings.workshop, Decimal(repr(float(settings.max_product_amount))),
            not settings.erp_username)


#: an order's fields, in the order :func:`check_order` reports their problems (the
#: order of :class:`service.models.CreateOrder`)
ORDER_FIELDS = ("workshop", "worksheet", "product_nr", "product_amount", "uniqueid",
                "username", "password")


def check_order(body, served, maximum, login_required):
    """Check one order (a JSON object) as the instance's order model does.

    :param served: the instance's workshop
    :param maximum: ``MAX_PRODUCT_AMOUNT`` as a :class:`~decimal.Decimal`
    :param login_required: the instance has no default ERP login: ``username`` is required
    :returns: ``(order, problems)``: the normalised order (every field of
        :data:`ORDER_FIELDS`, ``None`` for an absent optional one) and ``{}``, or
        ``None`` and ``{field: reason}``, one reason a field. Other keys are ignored.
    """
    checks = (workshop(served), identifier, identifier,
              lambda value: parse_amount(value, maximum), uniqueid, username, password)
    optional = {"password"} if login_required else {"username", "password"}
    order, problems = {}, {}
    for name, check in zip(ORDER_FIELDS, checks):
        value = body.get(name)
        if value is None and name in optional:
            order[name] = None
        elif name not in body:
            problems[name] = "is required"
        else:
            try:
                order[name] = check(value)
            except ValueError as exc:
                problems[name] = str(exc)
    return (None, problems) if problems else (order, {})
