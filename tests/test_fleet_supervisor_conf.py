"""The generated supervisord configuration, read back by supervisor's own parser."""

import os
import shlex
import stat
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from supervisor.options import ServerOptions

from core.errors import ConfigError
from core.names import program_name
from service.settings import load_settings
from fleet import launch
from fleet.registry import Registry
from fleet.schemas import RegistrationSpec, parse as parse_spec
from fleet.settings import load_fleet_settings
from fleet.supervisor_conf import check_config_value, render_program, write_config

TRICKY = ["pa,ss w%rd", 'say "hi" now', "it's", "Å ø $HOME `x` \\n", "a;b#c", "=x=,y",
          "%(here)s", "%%(here)s %(ENV_HOME)s", "'quoted'", "both ' and \"", "x ;y #z"]
#: what users may type into a workshop name or an ERP URL, that supervisor's format reads
#: as something else: its %-expansion (and %(here)s even when escaped), comments, quotes
HOSTILE_NAMES = ["Garage %(here)s", "%(ENV_HOME)s", "100 %", "%% Bil", "a ;b #c", "x;y#z",
                 '"Bennys" \'Auto\'', "'quoted'", "Ærlig $HOME `id`", "=x=,y", "[program:x]",
                 "\U0001d505" * 100]
HOSTILE_URLS = ["http://127.0.0.1:5080/%(here)s", "http://h/%(ENV_HOME)s?a=%%&b=%", "http://h/;x#y"]


@pytest.fixture
def settings(tmp_path):
    env = {"SECRET_KEY": Fernet.generate_key().decode(), "REGISTRY_DB": str(tmp_path / "r.db"),
           "SUPERVISOR_DIR": str(tmp_path / "sup"), "QUEUE_DIR": str(tmp_path / "q"),
           "LOG_DIR": str(tmp_path / "l"), "MANAGEMENT_PORT": "7123",
           # whatever this machine has installed; the Grid's section: tests/test_fleet_grid.py
           "BROWSER_POOL": "local"}
    return load_fleet_settings(env)


def parse(conf_path):
    """What supervisord itself makes of the file: ``{program: ProcessConfig}``."""
    options = ServerOptions()
    options.realize(args=["-c", str(conf_path)])
    return {group.name: group.process_configs[0] for group in options.process_group_configs}


def write(settings, integrations, url="http://127.0.0.1:5080"):
    registry = Registry(settings.registry_db, settings.secret_key)
    programs = {}
    for i, (workshop, password, active) in enumerate(integrations):
        item = registry.add(workshop, "erp_sim", url, 9000 + i,
                            f"token-{i:016d}", username="admin", password=password, active=active)
        if active:
            programs[item.program] = render_program(settings, item)
    return write_config(settings, programs)


def launched(program):
    """What ``fleet.launch`` would exec for a parsed program: ``(argv, environment)``."""
    argv = shlex.split(program.command)
    assert argv[1:3] == ["-m", "fleet.launch"]
    command, environment = launch.read(argv[3])
    return command, {**program.environment, **environment}


@pytest.mark.parametrize("password", TRICKY)
def test_names_and_passwords_reach_the_program_unchanged_and_sealed(settings, password):
    workshop = "Bilverksted Ålesund's"
    conf = write(settings, [(workshop, password, True)])
    command, environment = launched(parse(conf)[program_name(workshop)])
    assert command[-3:] == ["--", "9000", workshop]
    # the instance opens what the registry sealed, with the SECRET_KEY it inherits
    instance = load_settings(9000, workshop, env={**environment,
                                                  "SECRET_KEY": settings.secret_key})
    assert (instance.erp_username, instance.erp_password) == ("admin", password)
    assert instance.api_token == "token-0000000000000000"
    assert environment["ERP_PASSWORD"] == environment["API_TOKEN"] == ""
    assert "SECRET_KEY" not in environment
    for path in [*Path(settings.supervisor_dir).rglob("*.conf"),
                 *Path(settings.supervisor_dir).rglob("*.json")]:
        text = path.read_text("utf-8")
        assert "token-0000000000000000" not in text and settings.secret_key not in text
        assert len(password) < 4 or password not in text
    assert environment["QUEUE_DIR"] == str(settings.queue_dir)
    program = parse(conf)[program_name(workshop)]
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


def test_hostile_names_and_urls_never_reach_supervisor_files_and_come_back_exact(settings):
    specs = [parse_spec(RegistrationSpec, {"workshop": name, "erp_system": "erp_sim",
                                          "erp_url": HOSTILE_URLS[n % len(HOSTILE_URLS)],
                                          "port": 9000 + n})
             for n, name in enumerate(HOSTILE_NAMES)]  # all accepted
    registry = Registry(settings.registry_db, settings.secret_key)
    programs = {}
    for spec in specs:
        item = registry.add(spec.workshop, spec.erp_system, spec.erp_url, spec.port, "t" * 20)
        programs[item.program] = render_program(settings, item)
    conf = write_config(settings, programs)
    parsed = parse(conf)  # supervisor's own parser reads every program: no fleet-wide outage
    assert set(parsed) == {"management", *programs}
    for spec in specs:
        command, environment = launched(parsed[program_name(spec.workshop)])
        assert command[-2:] == [str(spec.port), spec.workshop]
        assert environment["ERP_URL"] == spec.erp_url
    sections = "".join(p.read_text("utf-8") for p in Path(settings.supervisor_dir).rglob("*.conf"))
    assert sections.isascii() and "%(" not in sections.replace("%%(", "")


def test_a_changed_launch_file_is_a_changed_section(settings):
    """supervisord restarts a program only when its section changes: the digest does that."""
    registry = Registry(settings.registry_db, settings.secret_key)
    item = registry.add("Bennys Auto", "erp_sim", "http://127.0.0.1:5080", 9000, "t" * 20)
    _, after = registry.update("Bennys Auto", erp_url="http://127.0.0.1:5081")
    assert render_program(settings, item)[0] != render_program(settings, after)[0]
    assert render_program(settings, item) == render_program(settings, item)


@pytest.mark.parametrize("value", ["a\nb", "a ;comment", "x #y", "'quoted'", "both ' and \""])
def test_values_supervisor_would_change_are_refused(value):
    with pytest.raises(ValueError):
        check_config_value(value)


def test_an_installation_path_with_here_is_a_config_error(settings):
    with pytest.raises(ConfigError, match="here"):
        write_config(replace(settings, supervisor_dir=Path("/tmp/%(here)s")), {})


def test_a_socket_path_too_long_is_a_config_error(settings):
    with pytest.raises(ConfigError, match="too long"):
        write_config(replace(settings, supervisor_dir=Path("/tmp/" + "x" * 120)), {})


def test_an_instance_and_the_grid_do_not_inherit_the_management_token(tmp_path, monkeypatch):
    """Issue 28, item 3: under ``manage.py up`` every instance had MANAGEMENT_TOKEN in
    /proc/<pid>/environ. The real launcher execs a program that prints its environment."""
    import json
    import subprocess
    import sys

    from fleet import grid

    spec = tmp_path / "program.json"
    spec.write_text(json.dumps({"argv": [sys.executable, "-c",
                                         "import json, os; print(json.dumps(dict(os.environ)))"],
                                "environment": {"WORKSHOP_SETTING": "x"}}), "ascii")
    parent = {**os.environ, "MANAGEMENT_TOKEN": "mgmt-token-secret-1234",
              "SECRET_KEY": Fernet.generate_key().decode()}
    started = subprocess.run([sys.executable, "-m", "fleet.launch", str(spec)],
                             cwd=Path(launch.__file__).parent.parent, env=parent,
                             capture_output=True, text=True, timeout=30)
    assert started.returncode == 0, started.stderr
    child = json.loads(started.stdout)
    assert "MANAGEMENT_TOKEN" not in child and "mgmt-token-secret-1234" not in started.stdout
    assert child["SECRET_KEY"] == parent["SECRET_KEY"]  # it opens its sealed secrets
    assert child["WORKSHOP_SETTING"] == "x"

    execs = []
    monkeypatch.setattr(os, "environ", parent)
    monkeypatch.setattr(os, "execvpe", lambda *args: execs.append(args))
    grid.exec_java(["java", "-jar", "grid.jar"])
    (_, _, environment), = execs
    assert not {"MANAGEMENT_TOKEN", "SECRET_KEY"} & set(environment)
    assert environment["SE_OFFLINE"] == "true"
