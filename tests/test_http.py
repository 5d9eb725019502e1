"""service/http.py: the strict JSON body parser, one message per kind of bad body."""

from decimal import Decimal

import pytest

from service.http import BodyError, parse_json


@pytest.mark.parametrize("raw,needle", [
    (b"[" * 1000, "nests arrays or objects too deeply"),
    (b'{"a": ' * 100_000, "nests arrays or objects too deeply"),
    (b'{"uniqueid": "a", "uniqueid": "b"}', "the key 'uniqueid' appears twice"),
    (b'{"product_amount": NaN}', "NaN is not a JSON number"),
    (b"[Infinity]", "Infinity is not a JSON number"),
    (b"-Infinity", "-Infinity is not a JSON number"),
    (b"9" * 5000, "longer than 100 characters"),
    (b"1e99999999999999999999999", "out of range"),
    (b'{"a": "\xff"}', "not valid UTF-8 (byte 7)"),
    ('{"a": 1}'.encode("utf-16"), "not valid UTF-8"),
    (b'"\\ud800"', "lone surrogate"),
    (b'{"\\udfff": 1}', "lone surrogate"),
    (b"{not json", "not valid JSON: Expecting property name"),
    (b"", "not valid JSON: Expecting value (line 1, column 1)"),
])
def test_bad_bodies_are_refused_with_the_reason(raw, needle):
    with pytest.raises(BodyError) as refused:
        parse_json(raw)
    assert needle in str(refused.value)


def test_what_json_allows_is_read_as_written():
    assert parse_json(b'\xef\xbb\xbf{"a": 2.50, "b": 5}') == {"a": Decimal("2.50"), "b": 5}
    assert parse_json(b"1e999999") == Decimal("1E+999999")  # huge, but the model refuses it
    assert parse_json(b'"\\ud83d\\ude00"') == "\U0001f600"  # a surrogate pair is one letter
    assert parse_json(b"[" * 50 + b"]" * 50)  # moderate nesting is fine
