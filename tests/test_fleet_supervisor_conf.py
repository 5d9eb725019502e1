"""The generated supervisord configuration, read back by supervisor's own parser."""

import os
import shlex
import stat
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from supervisor.options import ServerOptions

from bridge.names import program_name
from bridge.settings import load_settings
from fleet.registry import Registry
from fleet.settings import load_fleet_settings
from fleet.supervisor_conf import check_config_value, render_program, write_config

TRICKY = ["pa,ss w%rd", 'say "hi" now', "it's", "Å ø $HOME `x` \\n", "a;b#c", "=x=,y"]


@pytest.fixture
def settings(tmp_path):
    env = {"SECRET_KEY": Fernet.generate_key().decode(), "REGISTRY_DB": str(tmp_path / "r.db"),
           "SUPERVISOR_DIR": str(tmp_path / "sup"), "QUEUE_DIR": str(tmp_path / "q"),
           "LOG_DIR": str(tmp_path / "l"), "MANAGEMENT_PORT": "7123"}
    return load_fleet_settings(env)


def parse(conf_path):
    """What supervisord itself makes of the file: ``{program: ProcessConfig}``."""
    options = ServerOptions()
    options.realize(args=["-c", str(conf_path)])
    return {group.name: group.process_configs[0] for group in options.process_group_configs}


def write(settings, integrations):
    registry = Registry(settings.registry_db, settings.secret_key)
    programs = {}
    for i, (workshop, password, active) in enumerate(integrations):
        item = registry.add(workshop, "erp_sim", "http://127.0.0.1:5080", 9000 + i,
                            f"token-{i:016d}", username="admin", password=password, active=active)
        if active:
            programs[item.program] = render_program(settings, item)
    return write_config(settings, programs)


@pytest.mark.parametrize("password", TRICKY)
def test_names_and_passwords_reach_the_program_unchanged_and_sealed(settings, password):
    workshop = "Bilverksted Ålesund's"
    conf = write(settings, [(workshop, password, True)])
    program = parse(conf)[program_name(workshop)]
    argv = shlex.split(program.command)
    assert argv[-2:] == ["9000", workshop]
    # the instance opens what the registry sealed, with the SECRET_KEY it inherits
    instance = load_settings(9000, workshop, env={**program.environment,
                                                  "SECRET_KEY": settings.secret_key})
    assert (instance.erp_username, instance.erp_password) == ("admin", password)
    assert instance.api_token == "token-0000000000000000"
    assert program.environment["ERP_PASSWORD"] == program.environment["API_TOKEN"] == ""
    assert "SECRET_KEY" not in program.environment
    for path in Path(settings.supervisor_dir).rglob("*.conf"):
        text = path.read_text("utf-8")
        assert "token-0000000000000000" not in text and settings.secret_key not in text
        assert len(password) < 4 or password not in text
    assert program.environment["QUEUE_DIR"] == str(settings.queue_dir)
    assert program.autorestart is not True  # "unexpected": exit 0 after /kill stays down
    assert program.exitcodes == [0] and program.stopsignal == 15
    assert program.stopwaitsecs == settings.stop_wait_seconds


def test_only_active_integrations_get_a_program_and_stale_files_go(settings):
    conf = write(settings, [("Bennys Auto", "pw", True), ("Garage Tre", "pw", False)])
    assert set(parse(conf)) == {"management", program_name("Bennys Auto")}
    write_config(settings, {})
    assert set(parse(conf)) == {"management"}


def test_files_are_private(settings):
    conf = write(settings, [("Bennys Auto", "pw", True)])
    assert stat.S_IMODE(os.stat(settings.supervisor_dir).st_mode) == 0o700
    for path in [conf, *Path(settings.supervisor_dir, "programs").glob("*.conf")]:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_management_program_gets_paths_but_not_secrets(settings):
    conf = write(settings, [])
    program = parse(conf)["management"]
    assert program.environment["REGISTRY_DB"] == str(settings.registry_db)
    assert "SECRET_KEY" not in program.environment and "MANAGEMENT_TOKEN" not in program.environment
    assert settings.secret_key not in conf.read_text()


@pytest.mark.parametrize("value", ["a\nb", "a ;comment", "x #y", "'quoted'", "both ' and \""])
def test_values_supervisor_would_change_are_refused(value):
    with pytest.raises(ValueError):
        check_config_value(value)


def test_a_socket_path_too_long_is_a_config_error(settings):
    from bridge.exceptions import ConfigError
    with pytest.raises(ConfigError, match="too long"):
        write_config(replace(settings, supervisor_dir=Path("/tmp/" + "x" * 120)), {})
