"""Per-ERP options (integrations.base.Option): declared by an ERP package, read by the
instance from ERP_OPTION_<NAME>, checked at start."""

import subprocess
import sys

import pytest

from service.settings import erp_options
from integrations import options_of
from integrations.base import Option, resolve_options
from test_api_cli import ROOT, run_api
from instance_helpers import free_port

DECLARED = (Option("database", default="workshop", pattern=r"[A-Za-z0-9_]{1,63}"),
            Option("api_key", pattern=r"\S{8,}", secret=True))


def test_options_are_read_from_erp_option_variables():
    env = {"ERP_OPTION_DATABASE": "shop2", "ERP_OPTION_API_KEY": "k" * 10, "ERP_OPTION_": "x",
           "ERP_OPTION_EMPTY": "", "ERP_URL": "http://x"}
    assert erp_options(env) == {"database": "shop2", "api_key": "k" * 10}


def test_defaults_are_filled_in_and_values_checked():
    assert resolve_options(DECLARED, {"api_key": "k" * 10}) == {"database": "workshop",
                                                                "api_key": "k" * 10}
    with pytest.raises(ValueError, match="required"):
        resolve_options(DECLARED, {})
    with pytest.raises(ValueError, match="database: 'no way'"):
        resolve_options(DECLARED, {"database": "no way", "api_key": "k" * 10})
    with pytest.raises(ValueError, match="unknown ERP option.*colour") as err:
        resolve_options(DECLARED, {"colour": "red", "api_key": "k" * 10})
    assert "api_key, database" in str(err.value)


def test_a_secret_value_is_never_repeated_in_the_error():
    with pytest.raises(ValueError) as err:
        resolve_options(DECLARED, {"api_key": "short"})
    assert "short" not in str(err.value)


def test_the_stand_in_erps_take_no_options_and_reading_them_loads_no_selenium():
    assert options_of("erp_sim") == () and options_of("erp_sim_spa") == ()
    code = ("import sys, integrations; integrations.options_of('erp_sim'); "
            "integrations.options_of('erp_sim_spa'); print('selenium' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=30)
    assert done.stdout.strip() == "False", done.stderr


def test_an_option_the_erp_does_not_take_stops_api_py_in_one_line(tmp_path):
    result = run_api([str(free_port()), "Bennys Auto"], tmp_path, ERP_OPTION_DATABASE="x")
    assert result.returncode == 2
    assert "unknown ERP option(s) database; this ERP takes: none" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_every_erp_package_is_found_by_its_folder_under_its_own_name():
    """Adding an ERP touches only its package: integrations/__init__.py lists nothing."""
    import pathlib

    import integrations
    from integrations import AVAILABLE, get_integration_class

    folder = pathlib.Path(integrations.__path__[0])
    packages = {p.name for p in folder.iterdir() if (p / "__init__.py").exists()}
    assert set(AVAILABLE) == packages - {"browser"}
    assert {"erp_sim", "erp_sim_spa", "tryton"} <= set(AVAILABLE)
    for name in AVAILABLE:
        assert get_integration_class(name).name == name
