"""Checks on a posted order line, with the messages the ERP shows for each."""

import re
from decimal import Decimal

# Digits with at most one "." or "," -- what a person types; no exponents, NaN or signs.
_AMOUNT = re.compile(r"^-?(?:\d+(?:[.,]\d*)?|[.,]\d+)$", re.ASCII)
MAX_DECIMALS = 3

PRODUCT_REQUIRED = "Product number is required"
UNKNOWN_PRODUCT = "Unknown product number {}"
BAD_AMOUNT = "Amount must be a positive number"


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
    errors = []
    product = form.get("product_nr", "").strip()
    if not product:
        errors.append(PRODUCT_REQUIRED)
    elif not (product.isascii() and product.isdigit() and product_exists(int(product))):
        errors.append(UNKNOWN_PRODUCT.format(product))
    amount = parse_amount(form.get("amount", ""))
    if amount is None:
        errors.append(BAD_AMOUNT)
    values = {"product_nr": product, "amount": amount, "text": form.get("text", "").strip()}
    return values, errors
