"""service/fields.py: each rule with its own message, and each published schema accepting
exactly what its check accepts (checked with jsonschema_rs, the validator schemathesis
uses, so the ECMA reading of the patterns is the one tested)."""

import itertools
import re
from decimal import Decimal

import jsonschema_rs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service import fields

MAX = Decimal("1000")


def accepted(check, value):
    try:
        check(value)
    except ValueError:
        return False
    return True


def amount_ok(value, maximum=MAX):
    return accepted(lambda v: fields.parse_amount(v, maximum), value)


# -- amounts: what is accepted, and how it reaches the ERP ----------------------------

@pytest.mark.parametrize("value,normalised", [
    ("5", "5"), ("4,7", "4.7"), ("4.7", "4.7"), ("2.500", "2.5"), ("0,001", "0.001"),
    ("007", "7"), ("1000", "1000"), ("1000,000", "1000"), ("999.999", "999.999"),
    (5, "5"), (2.5, "2.5"), (Decimal("2.50"), "2.5"), (Decimal("1E+3"), "1000"),
    (Decimal("0.001"), "0.001"),
])
def test_amounts_people_and_pumps_write_are_accepted(value, normalised):
    assert fields.parse_amount(value, MAX) == normalised


@pytest.mark.parametrize("value,message", [
    ("5_000", fields.SEPARATORS), ("5 000", fields.SEPARATORS), ("5'000", fields.SEPARATORS),
    ("1.000,5", fields.SEPARATORS), ("1..5", fields.SEPARATORS), ("5.", fields.SEPARATORS),
    (",5", fields.SEPARATORS), (" 5", fields.SEPARATORS),
    ("\u0665", fields.NOT_A_NUMBER), ("5\u0665", fields.NOT_A_NUMBER),  # Arabic-Indic five
    ("\uff15", fields.NOT_A_NUMBER), ("1e3", fields.NOT_A_NUMBER), ("NaN", fields.NOT_A_NUMBER),
    ("", fields.NOT_A_NUMBER), ("+5", fields.NOT_A_NUMBER), ("five", fields.NOT_A_NUMBER),
    ("-", fields.NOT_A_NUMBER), (float("nan"), fields.NOT_A_NUMBER),
    ("1.0001", fields.TOO_MANY_DECIMALS), ("2,5000", fields.TOO_MANY_DECIMALS),
    (0.1 + 0.2, fields.TOO_MANY_DECIMALS), (Decimal("0.30000000000000004"), fields.TOO_MANY_DECIMALS),
    (Decimal("1E-999999"), fields.TOO_MANY_DECIMALS),
    ("0", fields.NOT_POSITIVE), ("0,000", fields.NOT_POSITIVE), ("-3", fields.NOT_POSITIVE),
    ("-0", fields.NOT_POSITIVE), (-3, fields.NOT_POSITIVE), (0, fields.NOT_POSITIVE),
    (float("-inf"), fields.NOT_POSITIVE),
    ("1000.001", fields.over_maximum(MAX)), (1001, fields.over_maximum(MAX)),
    ("9" * 5000, fields.over_maximum(MAX)), (Decimal("1E+999999"), fields.over_maximum(MAX)),
    (float("inf"), fields.over_maximum(MAX)),
    (True, fields.AMOUNT_TYPE), (None, fields.AMOUNT_TYPE), ([5], fields.AMOUNT_TYPE),
])
def test_each_amount_rule_has_its_own_message(value, message):
    with pytest.raises(ValueError) as refused:
        fields.parse_amount(value, MAX)
    assert str(refused.value) == message


def test_the_maximum_is_named():
    assert fields.over_maximum(Decimal("1000")) == "is over the maximum of 1000 litres per line"
    assert "2.5 litres" in fields.over_maximum(Decimal("2.500"))


# -- the amount schema accepts exactly what parse_amount accepts ----------------------

MAXIMA = [Decimal(m) for m in ("1", "2.5", "10", "100.05", "999.999", "1000", "1234.56")]


@pytest.mark.parametrize("maximum", MAXIMA, ids=str)
def test_amount_pattern_matches_every_short_string_the_check_accepts(maximum):
    validator = jsonschema_rs.validator_for(fields.amount_schema(maximum))
    for length in range(1, 6):
        for chars in itertools.product("0129.,5-", repeat=length):
            text = "".join(chars)
            assert validator.is_valid(text) == amount_ok(text, maximum), text


@settings(max_examples=300, deadline=None)
@given(maximum=st.sampled_from(MAXIMA),
       value=st.one_of(st.text(alphabet="0123456789.,-_ e\u0665\n", max_size=12),
                       st.integers(-10, 10**6), st.floats(allow_nan=False),
                       st.decimals(places=3, min_value=-5, max_value=5000),
                       st.decimals(allow_nan=False, allow_infinity=False)))
def test_amount_schema_and_check_agree(maximum, value):
    validator = jsonschema_rs.validator_for(fields.amount_schema(maximum))
    as_json = float(value) if isinstance(value, Decimal) else value
    if isinstance(value, Decimal) and Decimal(repr(as_json)) != value:
        return  # a Decimal a JSON client could not send as a double
    assert validator.is_valid(as_json) == amount_ok(value, maximum), repr(value)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), maximum=st.sampled_from(MAXIMA))
def test_strings_generated_from_the_pattern_are_accepted(data, maximum):
    # what schemathesis does: draw strings from the pattern, expect them accepted
    pattern = fields.amount_pattern(maximum)
    assert amount_ok(data.draw(st.from_regex(re.compile(pattern), fullmatch=True)), maximum)


def test_the_maximum_must_be_at_least_one_with_three_decimals():
    for bad in ("0.5", "10.0001"):
        with pytest.raises(ValueError):
            fields.amount_pattern(Decimal(bad))


# -- worksheet, product number, uniqueid, username -------------------------------------

@pytest.mark.parametrize("value,normalised", [
    ("558", "558"), (558, "558"), ("A-12/3", "A-12/3"), (558.0, "558"),
    (Decimal("558.0"), "558"), (Decimal("5.58E+2"), "558"), (0, "0"),
])
def test_identifiers_as_text_or_whole_numbers(value, normalised):
    assert fields.identifier(value) == normalised


@pytest.mark.parametrize("value,needle", [
    (True, "a string or a whole number"), (None, "a string or a whole number"),
    (2.5, "a string or a whole number"), ([558], "a string or a whole number"),
    (-5, "must not be negative"), (10**18, "at most"), (Decimal("1E+999999"), "at most"),
    (" 558", "1-32 letters"), ("558\n", "1-32 letters"), ("", "1-32 letters"),
    ("x" * 33, "1-32 letters"), ("\u0665", "1-32 letters"),
])
def test_identifier_refusals_name_the_rule(value, needle):
    with pytest.raises(ValueError, match=re.escape(needle)):
        fields.identifier(value)


JSON_VALUES = st.one_of(st.text(max_size=40), st.text(alphabet="ab1-. \n", max_size=35),
                        st.integers(), st.floats(allow_nan=False, allow_infinity=False),
                        st.booleans(), st.none(), st.lists(st.integers(), max_size=2))


@settings(max_examples=300, deadline=None)
@given(value=JSON_VALUES)
def test_key_schemas_and_checks_agree(value):
    for schema, check in ((fields.IDENTIFIER_SCHEMA, fields.identifier),
                          (fields.UNIQUEID_SCHEMA, fields.uniqueid),
                          (fields.USERNAME_SCHEMA, fields.username),
                          (fields.PASSWORD_SCHEMA, fields.password)):
        assert jsonschema_rs.validator_for(schema).is_valid(value) == accepted(check, value), \
            (schema, value)


def test_usernames_without_control_characters():
    assert fields.username("Ådne Ørsta") == "Ådne Ørsta"
    for bad in ("", "a\x00b", "tab\there", "x" * 201):
        with pytest.raises(ValueError):
            fields.username(bad)


def test_workshop_must_be_the_one_served():
    check = fields.workshop("Bennys Auto")
    assert check("Bennys Auto") == "Bennys Auto"
    with pytest.raises(ValueError, match="the workshop this instance serves"):
        check("Bennys Auto ")
