"""bridge/models.py: the order model of one instance, and its schema, from its settings."""

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from core.errors import ConfigError
from bridge.models import field_errors, order_model
from bridge.settings import load_settings
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
