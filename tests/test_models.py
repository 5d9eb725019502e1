"""service/models.py: the order model of one instance, and its schema, from its settings."""

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as settings_of_hypothesis
from hypothesis import strategies as st
from cryptography.fernet import Fernet
from pydantic import ValidationError

from core.errors import ConfigError
from service import fields
from service.models import field_errors, order_model
from service.settings import load_settings
from conftest import WORKSHOP, replace

ORDER = {"workshop": WORKSHOP, "worksheet": "558", "product_nr": "10",
         "product_amount": "5", "uniqueid": "u-1"}


def errors(settings, **changes):
    with pytest.raises(ValidationError) as refused:
        order_model(settings).model_validate({**ORDER, **changes})
    return field_errors(refused.value)


def test_values_are_normalised_for_the_erp(settings):
    order = order_model(settings).model_validate(
        {**ORDER, "worksheet": 558, "product_amount": "4,7", "uniqueid": 4001.0})
    assert (order.worksheet, order.product_amount, order.uniqueid) == ("558", "4.7", "4001")


def test_the_schema_names_the_served_workshop_and_the_maximum(settings):
    schema = order_model(replace(settings, max_product_amount=250.0)).model_json_schema()
    assert schema["properties"]["workshop"]["const"] == WORKSHOP
    amount = schema["properties"]["product_amount"]
    assert amount["anyOf"][1]["maximum"] == 250 and "250" in amount["description"]
    assert "username" not in schema["required"]  # the instance has a default login


def test_without_a_default_login_username_is_required(settings):
    no_login = replace(settings, erp_username="")
    assert "username" in order_model(no_login).model_json_schema()["required"]
    assert errors(no_login) == {"username": "is required"}
    assert errors(no_login, username=None) == {"username": "must be a string"}


def test_the_maximum_is_this_instances(settings):
    small = replace(settings, max_product_amount=50.0)
    assert errors(small, product_amount=60) == {
        "product_amount": "is over the maximum of 50 litres per line"}
    assert order_model(settings).model_validate({**ORDER, "product_amount": 60})


def test_one_reason_per_field(settings):
    found = errors(settings, workshop="Other", worksheet=True, product_nr=-1,
                   product_amount="5_000", uniqueid="a b", username="", password=5)
    assert found == {
        "workshop": "must be 'Bennys Auto': the workshop this instance serves",
        "worksheet": "must be a string or a whole number",
        "product_nr": "must not be negative",
        "product_amount": "must have at most one decimal separator ('.' or ','), between "
                          "digits, and no thousands separators or spaces: write 5000, 4.7 "
                          "or 4,7",
        "uniqueid": "must be 1-128 printable ASCII characters without spaces, or a whole "
                    "number",
        "username": "must be 1-200 characters",
        "password": "must be a string",
    }


def test_models_are_built_once_per_instance_kind(settings):
    assert order_model(settings) is order_model(replace(settings, port=5002))
    assert order_model(settings) is not order_model(replace(settings, workshop="Other"))


def test_max_product_amount_is_read_from_the_environment():
    env = {"API_TOKEN": "t", "SECRET_KEY": Fernet.generate_key().decode()}
    assert load_settings(5001, WORKSHOP, env=env).max_product_amount == 1000
    assert load_settings(5001, WORKSHOP, env={**env, "MAX_PRODUCT_AMOUNT": "2.5"}) \
        .max_product_amount == 2.5
    for bad in ("0.5", "1.0005", "lots", "nan", "inf"):
        with pytest.raises(ConfigError, match="MAX_PRODUCT_AMOUNT"):
            load_settings(5001, WORKSHOP, env={**env, "MAX_PRODUCT_AMOUNT": bad})


# -- the plain check /create uses is the model's rule ----------------------------------

_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 10**19), st.floats(allow_nan=True),
    st.decimals(allow_nan=False, places=4), st.text(max_size=8),
    st.sampled_from(["5", "4,7", "0", "-1", "1e3", "5_000", " 5", "558", "a b", WORKSHOP,
                     "x" * 201, "\u0007", ""]),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=2), st.integers(),
                                                          max_size=1))
_BODIES = st.dictionaries(st.sampled_from(list(fields.ORDER_FIELDS) + ["extra"]), _VALUES)


def _model_answer(settings, body):
    try:
        return order_model(settings).model_validate(body).model_dump(), {}
    except ValidationError as exc:
        return None, field_errors(exc)


@pytest.mark.parametrize("default_login", [True, False])
@settings_of_hypothesis(max_examples=300, deadline=None,
                        suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=_BODIES)
def test_check_order_answers_as_the_order_model_does(settings, default_login, changes):
    """/create checks with service.fields.check_order (no pydantic in an instance that
    only takes orders); the documents publish service.models' model: the two agree on
    every order, valid or not, down to each field's reason and the order they come in."""
    settings = replace(settings, max_product_amount=250.0,
                       erp_username="admin" if default_login else "")
    body = {**ORDER, **changes}
    expected = _model_answer(settings, body)
    found = fields.check_order(body, *fields.order_rules(settings))
    assert found == expected
    assert list(found[1]) == list(expected[1])  # the same order of fields


@pytest.mark.parametrize("missing", fields.ORDER_FIELDS)
def test_check_order_names_a_missing_field_as_the_model_does(settings, missing):
    for login in ("admin", ""):
        instance = replace(settings, erp_username=login)
        body = {key: value for key, value in {**ORDER, "username": "u", "password": "p"}.items()
                if key != missing}
        assert fields.check_order(body, *fields.order_rules(instance)) == \
            _model_answer(instance, body)
