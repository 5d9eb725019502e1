"""Run the fleet for tests: ``manage.py`` commands and ``manage.py up`` (a real
supervisord) as subprocesses, in temporary folders, on free ports, every wait bounded."""

import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import requests
from cryptography.fernet import Fernet

from tests.conftest import wait_for  # noqa: F401 - the project's one deadline helper, re-exported

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAKE_INSTANCE = os.path.join(ROOT, "tests", "fleet_fake_instance.py")
_TOKEN_LINE = re.compile(r"API token \(shown once.*\): (\S+)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fleet_settings_for_tests(tmp_path, management_token, **extra):
    """Fleet settings with every folder under ``tmp_path`` and a fresh ``SECRET_KEY``."""
    from fleet.settings import load_fleet_settings

    return load_fleet_settings({
        "SECRET_KEY": Fernet.generate_key().decode(), "MANAGEMENT_TOKEN": management_token,
        "REGISTRY_DB": str(tmp_path / "r.db"), "SUPERVISOR_DIR": str(tmp_path / "sup"),
        "QUEUE_DIR": str(tmp_path / "q"), "LOG_DIR": str(tmp_path / "l"),
        "BROWSER_POOL": "local", **extra})


@contextmanager
def management_server(settings, fleet):
    """The management app on a real server (fleet/serve.py's handler, a free port) in a
    thread, over ``fleet`` (a :class:`~fleet.control.Fleet`, on fakes or not).

    :returns: (as a context manager) its base URL
    """
    from fleet.management import create_app
    from fleet.serve import serve_app

    server = serve_app(create_app(settings, fleet), "127.0.0.1", 0)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # thousands of access-log lines
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(10)
        logging.getLogger("werkzeug").setLevel(logging.NOTSET)


def fleet_env(tmp_path, **extra):
    """Environment for ``manage.py`` with every file under ``tmp_path``.

    The supervisor folder goes under a short /tmp path: a unix socket path must stay
    under ~100 bytes, and pytest's tmp_path can be longer.

    Browsers are local (``BROWSER_POOL=local``, one Chromium per instance) unless
    ``extra`` says otherwise, whatever this machine has installed: the tests of the
    browser pool (tests/test_e2e_grid_pool.py) ask for it.
    """
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ERP_", "API_", "MANAGEMENT_", "REGISTRY_", "SUPERVISOR_",
                                "BROWSER_", "GRID_", "SELENIUM_"))}
    env.update(
        SECRET_KEY=Fernet.generate_key().decode(),
        REGISTRY_DB=str(tmp_path / "integrations.db"),
        SUPERVISOR_DIR=tempfile.mkdtemp(prefix="fleet-"),
        QUEUE_DIR=str(tmp_path / "task_queue"),
        LOG_DIR=str(tmp_path / "logs"),
        MANAGEMENT_TOKEN="mgmt-" + os.urandom(8).hex(),
        MANAGEMENT_PORT=str(free_port()),
        BROWSER_POOL="local",
        PYTHONUNBUFFERED="1",
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


class Fleet:
    """One fleet under test: its registry via ``manage.py``, its supervisord via ``up``."""

    def __init__(self, env):
        self.env = env
        self.url = f"http://127.0.0.1:{env['MANAGEMENT_PORT']}"
        self.tokens = {}  # workshop -> the instance token that `add` printed
        self.ports = {}
        self.up_process = None
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {env['MANAGEMENT_TOKEN']}"

    # -- manage.py --------------------------------------------------------------

    def manage(self, *args, check=True, stdin=None):
        result = subprocess.run([sys.executable, os.path.join(ROOT, "manage.py"), *map(str, args)],
                                cwd=ROOT, env=self.env, capture_output=True, text=True,
                                input=stdin, timeout=180)
        if check and result.returncode != 0:
            raise AssertionError(f"manage.py {args} -> {result.returncode}: {result.stderr}")
        return result

    def add(self, workshop, erp_url, port=None, *extra):
        port = port or free_port()
        result = self.manage("add", workshop, "--erp-system", "erp_sim", "--erp-url", erp_url,
                             "--port", port, "--username", "admin", "--password", "admin", *extra)
        self.tokens[workshop] = _TOKEN_LINE.search(result.stdout).group(1)
        self.ports[workshop] = port
        return result

    # -- supervisord ------------------------------------------------------------

    def up(self, timeout=30):
        """``manage.py up`` in the background; returns when the management API answers."""
        log = open(os.path.join(self.env["SUPERVISOR_DIR"], "up.out"), "ab")
        self.up_process = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "manage.py"), "up"], cwd=ROOT, env=self.env,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()

        def answers():
            if self.up_process.poll() is not None:
                raise AssertionError(f"manage.py up exited: {self.log_tail()}")
            try:
                return self.session.get(self.url + "/integrations", timeout=2).status_code == 200
            except requests.RequestException:
                return False
        wait_for(answers, timeout, 0.1, "the management API")
        return self

    def down(self, timeout=60):
        """SIGTERM to supervisord (what Ctrl-C does) and wait until it has stopped everything."""
        if self.up_process is None or self.up_process.poll() is not None:
            return
        self.up_process.send_signal(signal.SIGTERM)
        try:
            self.up_process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.up_process.pid, signal.SIGKILL)
            self.up_process.wait(10)
            raise AssertionError(f"supervisord did not stop within {timeout} s")

    def cleanup(self):
        try:
            self.down()
        finally:
            shutil.rmtree(self.env["SUPERVISOR_DIR"], ignore_errors=True)

    def log_tail(self):
        try:
            with open(os.path.join(self.env["SUPERVISOR_DIR"], "up.out"), errors="replace") as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    # -- the management API ----------------------------------------------------

    def api(self, method, path, **kwargs):
        kwargs.setdefault("timeout", 30)
        return self.session.request(method, self.url + path, **kwargs)

    def path(self, workshop, action=""):
        return f"/integrations/{quote(workshop, safe='')}" + (f"/{action}" if action else "")

    def overview(self):
        r = self.api("GET", "/integrations")
        assert r.status_code == 200, r.text
        return {i["workshop"]: i for i in r.json()["integrations"]}

    def wait_health(self, expected, timeout=30):
        """Wait until each named workshop has the given health (and "ok" ones are past
        supervisor's startsecs, i.e. RUNNING); :returns: the overview"""
        def matches():
            o = self.overview()
            return o if all(o[w]["health"] == h and (h != "ok" or o[w]["process"]["state"] == "RUNNING")
                            for w, h in expected.items()) else None
        return wait_for(matches, timeout, 0.25, f"health {expected}")

    # -- the instances ---------------------------------------------------------

    def instance(self, workshop, method, path, **kwargs):
        kwargs.setdefault("timeout", 10)
        headers = {"Authorization": f"Bearer {self.tokens[workshop]}"}
        return requests.request(method, f"http://127.0.0.1:{self.ports[workshop]}{path}",
                                headers=headers, **kwargs)

    def order(self, workshop, uniqueid, worksheet):
        r = self.instance(workshop, "POST", "/create", json={
            "workshop": workshop, "worksheet": str(worksheet), "product_nr": "10",
            "product_amount": "1", "uniqueid": uniqueid})
        assert r.status_code == 200, r.text
        return r.json()

    def order_status(self, workshop, uniqueid):
        try:
            r = self.instance(workshop, "GET", "/get_order_status", params={"uniqueid": uniqueid})
            return r.json().get("status") if r.status_code == 200 else None
        except requests.RequestException:
            return None


class Stream:
    """Orders posted one after another to each workshop, as OilMat does: a post that gets
    no answer (the instance is being replaced) is posted again with the same uniqueid."""

    def __init__(self, fleet, orders):
        self.fleet, self.orders, self.answered = fleet, orders, {}
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        for workshop, uniqueid, worksheet in self.orders:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    r = self.fleet.instance(workshop, "POST", "/create", timeout=5, json={
                        "workshop": workshop, "worksheet": str(worksheet), "product_nr": "10",
                        "product_amount": "1", "uniqueid": uniqueid})
                    if r.status_code == 200:
                        self.answered[uniqueid] = r.json()["status"]
                        break
                except requests.RequestException:
                    pass
                time.sleep(0.2)
            time.sleep(0.15)


def dumps(data):
    return json.dumps(data, ensure_ascii=False)


class StandaloneGrid:
    """The fleet's Grid (same TOML, same launcher, same Java options), outside supervisord."""

    def __init__(self, workdir, slots=2):
        from fleet.settings import load_fleet_settings

        port = free_port()
        self.settings = load_fleet_settings({
            "SUPERVISOR_DIR": str(workdir), "BROWSER_POOL": "grid", "BROWSER_SLOTS": str(slots),
            "GRID_PORT": str(port)}, dotenv=False)
        self.url = f"http://127.0.0.1:{port}"
        self.process = None

    def __enter__(self):
        from fleet import grid

        Path(grid.config_path(self.settings)).write_text(grid.standalone_toml(self.settings))
        self.log = open(Path(self.settings.supervisor_dir) / "grid.log", "wb")
        self.process = subprocess.Popen(grid.standalone_argv(self.settings), stdout=self.log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/status", timeout=1).json()["value"]["ready"]:
                    return self
            except (requests.RequestException, ValueError):
                pass
            time.sleep(0.2)
        self.__exit__()
        raise RuntimeError("the Grid did not become ready within 60 s")

    def __exit__(self, *exc):
        os.killpg(self.process.pid, 15)
        self.process.wait(20)
        self.log.close()
