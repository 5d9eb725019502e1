"""Run a real erp_sim server (or a standalone chromedriver) in a subprocess, for tests.

::

    from tests.erp_helpers import ErpSimServer

    with ErpSimServer(session_ttl=2, save_delay=0) as erp:
        requests.get(erp.url + "/_sim/health")
        erp.worksheet(5)["lines"]

The server binds port 0 (the OS picks a free port, so there is no race with other
tests) and prints the port it got; :meth:`ServerProcess.start` reads that line, then
polls a health URL (``/_sim/health``, chromedriver's ``/status``) until it answers,
all within ``startup_timeout`` seconds. Its output goes to a log file, never a pipe,
so a chatty server can never block.
"""

import itertools
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from decimal import Decimal

import requests

from erp_sim.app import create_app
from erp_sim.config import SimConfig

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sim_app(folder, **options):
    """A fresh stand-in ERP as a Flask app in this process, for the test client.

    :param folder: where its SQLite file goes (a test's ``tmp_path``)
    :param options: :class:`erp_sim.SimConfig` fields; ``save_delay`` is 0 unless given
    """
    options.setdefault("save_delay", 0)
    return create_app(SimConfig(db_path=os.path.join(folder, "erp.sqlite"), **options))


class ServerProcess:
    """A server subprocess that prints the URL it listens on; a context manager.

    Subclasses set :attr:`LISTENING` (a regex whose group 1 is the base URL) and
    :attr:`HEALTH_PATH`, and build the command line.

    :param command: the argv to run (from the repository root)
    :param startup_timeout: seconds allowed from spawn to a healthy answer
    """

    LISTENING = None
    HEALTH_PATH = "/"

    def __init__(self, command, startup_timeout=15.0):
        self.command = command
        self.startup_timeout = startup_timeout
        self.process = None
        self.url = None  # "http://127.0.0.1:PORT", set by start()
        self._workdir = None

    @property
    def port(self):
        return int(self.url.rsplit(":", 1)[1])

    @property
    def log_path(self):
        return os.path.join(self._workdir, "server.log")

    def start(self):
        """Spawn the server and wait until it is healthy.

        :returns: ``self``
        :raises RuntimeError: when it exits or is not healthy in time (with its log)
        """
        self._workdir = tempfile.mkdtemp(prefix="server-test-")
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        deadline = time.monotonic() + self.startup_timeout
        try:
            while not self._healthy():
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.command[0]} exited with {self.process.returncode}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.command[0]} not healthy within "
                                       f"{self.startup_timeout}s")
                time.sleep(0.05)
        except RuntimeError as exc:
            log_text = self.log_text()
            self.stop()
            raise RuntimeError(f"{exc}; its log:\n{log_text}") from None
        return self

    def _healthy(self):
        if self.url is None:
            found = re.search(self.LISTENING, self.log_text())
            if not found:
                return False
            self.url = self._url_from(found)
        try:
            return requests.get(self.url + self.HEALTH_PATH, timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def _url_from(self, match):
        return match.group(1)

    def stop(self):
        """Terminate the server (kill it if it does not stop in 5 s) and remove its files."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self._workdir:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def log_text(self):
        """Everything the server printed so far."""
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except (OSError, TypeError):
            return ""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()


class ErpSimServer(ServerProcess):
    """``python -m erp_sim`` on a free port.

    :param session_ttl: ``--session-ttl`` seconds, or ``None`` for the default
    :param save_delay: ``--save-delay`` seconds, or ``None`` for the default
    :param db_path: ``--db`` file, or ``None`` for a temporary one
    :param flavor: ``--flavor`` ("classic" or "spa"), or ``None`` for the default
    :param extra_args: further command-line arguments (chaos flags, ``--user``)
    :param startup_timeout: seconds allowed from spawn to a healthy answer
    :param ui_revision: ``--ui-revision`` (1 or 2), or ``None`` for the default
    """

    LISTENING = r"erp_sim listening on (http://[^/\s]+)"
    HEALTH_PATH = "/_sim/health"

    def __init__(self, session_ttl=None, save_delay=None, db_path=None, flavor=None,
                 extra_args=(), startup_timeout=15.0, ui_revision=None):
        args = ["--port", "0"]
        for flag, value in (("--session-ttl", session_ttl), ("--save-delay", save_delay),
                            ("--db", db_path), ("--flavor", flavor),
                            ("--ui-revision", ui_revision)):
            if value is not None:
                args += [flag, str(value)]
        super().__init__([sys.executable, "-m", "erp_sim", *args, *extra_args],
                         startup_timeout)

    def worksheet(self, number):
        """The ``/_sim/worksheets/<number>`` JSON: number, status and lines."""
        response = requests.get(f"{self.url}/_sim/worksheets/{number}", timeout=5)
        response.raise_for_status()
        return response.json()

    def plant_line(self, number, product_nr="10", amount="5", text="OilMat planted"):
        """Store a line directly (``POST /_sim/worksheets/<number>/lines``): a duplicate
        or a wrong line for the integration to find. :returns: the line, with its ``id``"""
        response = requests.post(f"{self.url}/_sim/worksheets/{number}/lines", timeout=5,
                                 json={"product_nr": product_nr, "amount": amount, "text": text})
        response.raise_for_status()
        return response.json()

    def requests_handled(self):
        """``GET /_sim/requests``: what the ERP handled, oldest first (method, path,
        status, arrival ``at``; ``text`` of line posts)."""
        response = requests.get(f"{self.url}/_sim/requests", timeout=5)
        response.raise_for_status()
        return response.json()["requests"]

    def line_writes(self):
        """The writes of lines among :meth:`requests_handled`: both flavours' adds (POST
        .../lines) and deletes (classic POST .../lines/ID/delete, SPA DELETE
        .../lines/ID) -- whatever reached a line's address but a read."""
        return [entry for entry in self.requests_handled()
                if entry["method"] in ("POST", "DELETE") and "/lines" in entry["path"]]

    def set_customer(self, number, customer):
        """Give worksheet ``number`` another customer, ``""`` for none."""
        requests.put(f"{self.url}/_sim/worksheets/{number}/customer", timeout=5,
                     json={"customer": customer}).raise_for_status()

    def clear_requests(self):
        """Forget the requests handled so far (``DELETE /_sim/requests``)."""
        requests.delete(f"{self.url}/_sim/requests", timeout=5).raise_for_status()

    def set_ui_revision(self, revision):
        """Switch the screens' revision while the ERP runs (``PUT /_sim/ui_revision``):
        2 moves and renames what the integration relies on, 1 is as always."""
        requests.put(f"{self.url}/_sim/ui_revision", json={"revision": revision},
                     timeout=5).raise_for_status()

    def expire_sessions(self):
        """End every login (``POST /_sim/sessions/expire``)."""
        requests.post(f"{self.url}/_sim/sessions/expire", timeout=5).raise_for_status()

    def set_status(self, number, status):
        """Open or close a worksheet (``PUT /_sim/worksheets/<number>/status``)."""
        requests.put(f"{self.url}/_sim/worksheets/{number}/status", timeout=5,
                     json={"status": status}).raise_for_status()

    def lines_with(self, number, uniqueid):
        """The lines of worksheet ``number`` whose reference carries ``uniqueid`` as a word."""
        return [line for line in self.worksheet(number)["lines"]
                if uniqueid in line["reference"].split()]


class ChromedriverServer(ServerProcess):
    """A standalone ``chromedriver`` on a free port: a stand-in for a Selenium Grid,
    for ``IntegrationConfig.selenium_remote_url``.

    :param path: the chromedriver binary
    """

    LISTENING = r"ChromeDriver was started successfully on port (\d+)"
    HEALTH_PATH = "/status"

    def __init__(self, path="/usr/bin/chromedriver", startup_timeout=15.0):
        super().__init__([path, "--port=0"], startup_timeout)

    def _url_from(self, match):
        return f"http://127.0.0.1:{match.group(1)}"


def closed_port_url():
    """``http://127.0.0.1:PORT`` of a port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# -- integrations under test -------------------------------------------------------------------

LOG = logging.getLogger("test.integration")
_worksheets = itertools.count(200)  # a worksheet of its own for each test that writes


def next_worksheet():
    """A worksheet number (as a string) no other test of this process writes on."""
    return str(next(_worksheets))


def order(worksheet=None, product_nr="10", amount="5", uniqueid=None):
    """An :class:`~integrations.base.OrderLine` with a fresh uniqueid (and worksheet)."""
    from integrations.base import OrderLine
    return OrderLine(uniqueid=uniqueid or uuid.uuid4().hex[:12],
                     worksheet=str(worksheet or next_worksheet()),
                     product_nr=product_nr, product_amount=Decimal(amount))


def make_integration(name, url, artifact_dir, **options):
    """Integration ``name`` for the ERP at ``url``, with short waits unless told otherwise."""
    from integrations import get_integration_class
    from integrations.base import IntegrationConfig
    options.setdefault("wait_timeout", 5.0)
    options.setdefault("page_load_timeout", 10.0)
    config = IntegrationConfig(erp_url=url, artifact_dir=str(artifact_dir), **options)
    return get_integration_class(name)(config, LOG)
