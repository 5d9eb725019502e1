"""Checks on a posted order line, with the messages the ERP shows for each."""

import re
from decimal import Decimal

# Digits with at most one "." or "," -- what a person types; no exponents, NaN or signs.
_AMOUNT = re.compile(r"^-?(?:\d+(?:[.,]\d*)?|[.,]\d+)$", re.ASCII)
MAX_DECIMALS = 3

PRODUCT_REQUIRED = "Product number is required"
UNKNOWN_PRODUCT = "Unknown product number {}"
BAD_AMOUNT = "Amount must be a positive number"


def whole_number(text):
    """``text`` as a non-negative int if it is ASCII digits that fit SQLite's integer,
    else ``None`` (so that a 25-digit number is "not found", never a 500)."""
    if text.isascii() and text.isdigit() and len(text) <= 18:
        return int(text)
    return None


def parse_amount(raw):
    """The amount as a normalised string ("5", "2.5"), or ``None`` when invalid."""
    raw = raw.strip()
    if not _AMOUNT.match(raw):
        return None
    value = Decimal(raw.replace(",", "."))
    if value <= 0 or -value.as_tuple().exponent > MAX_DECIMALS:
        return None
    return format(value.normalize(), "f")


def check_line(form, product_exists):
    """Validate an add-line form.

    :param form: the posted fields ``product_nr``, ``amount``, ``text``
    :param product_exists: callable taking a product number (int) -> bool
    :returns: ``(values, errors)``: the cleaned values and a list of messages
    """
    values, fields = check_line_fields(form, product_exists)
    return values, list(fields.values())


def check_line_fields(form, product_exists):
    """:func:`check_line`, with each message under the field it is about.

    :returns: ``(values, {field: message})``
    """
    fields = {}
    product = form.get("product_nr", "").strip()
    if not product:
        fields["product_nr"] = PRODUCT_REQUIRED
    elif (nr := whole_number(product)) is None or not product_exists(nr):
        fields["product_nr"] = UNKNOWN_PRODUCT.format(product)
    amount = parse_amount(form.get("amount", ""))
    if amount is None:
        fields["amount"] = BAD_AMOUNT
    values = {"product_nr": product, "amount": amount, "text": form.get("text", "").strip()}
    return values, fields
