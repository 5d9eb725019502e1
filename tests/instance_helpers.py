"""Start a real instance (``python api.py PORT WORKSHOP``) as a subprocess for
end-to-end tests: ephemeral port, its own folders, readiness polled with a deadline."""

import os
import signal
import socket
import subprocess
import sys
import time

import requests
from cryptography.fernet import Fernet

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: an order's final statuses
FINAL = ("created", "error")
#: seconds between two looks at every waiting order's own status in ``wait_final``
SWEEP_SECONDS = 5.0


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RunningInstance:
    """One ``api.py`` process. ``start()`` may be called again after it died
    (same port, token, key and folders), as supervisor would restart it."""

    def __init__(self, tmp_path, erp_url, workshop="Bennys Auto", **env):
        self.workshop = workshop
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = "test-token-" + os.urandom(6).hex()
        self.queue_dir = str(tmp_path / "task_queue")
        self.log_dir = str(tmp_path / "logs")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("ERP_", "API_"))}
        self.env.update(
            API_TOKEN=self.token, SECRET_KEY=Fernet.generate_key().decode(),
            ERP_SYSTEM="erp_sim", ERP_URL=erp_url, ERP_USERNAME="admin", ERP_PASSWORD="admin",
            QUEUE_DIR=self.queue_dir, LOG_DIR=self.log_dir, RETRY_BASE_SECONDS="0.2",
            RETRY_MAX_SECONDS="1", PAGE_LOAD_TIMEOUT="10", WAIT_TIMEOUT="5",
            # tests ask for statuses and the feed many times a second, far above OilMat's
            # 600/minute; tests/test_rate_limit.py passes a small RATE_LIMIT of its own
            RATE_LIMIT="1000000/minute",
        )
        if "SELENIUM_REMOTE_URL" in env:
            # Tests point it at a closed port so that orders fail without a browser; an
            # instance asks a pool that does not answer (a Grid restarting) again for
            # BROWSER_WAIT_SECONDS (60 s) before it fails: a second here, unless given.
            self.env["BROWSER_WAIT_SECONDS"] = "1"
        self.env.update({k: str(v) for k, v in env.items()})
        self.proc = None
        os.makedirs(tmp_path, exist_ok=True)
        self.stderr_path = str(tmp_path / f"instance-{self.port}.stderr")
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {self.token}"

    def start(self, timeout=20):
        stderr = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "api.py"), str(self.port), self.workshop],
            cwd=ROOT, env=self.env, stdout=stderr, stderr=stderr)
        stderr.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"instance exited with {self.proc.returncode}: {self.stderr()}")
            try:
                if requests.get(self.url + "/alive", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"instance not alive within {timeout} s: {self.stderr()}")

    def stderr(self):
        with open(self.stderr_path, encoding="utf-8", errors="replace") as handle:
            return handle.read()[-3000:]

    # -- API --------------------------------------------------------------------

    def create(self, **order):
        body = {"workshop": self.workshop, "worksheet": "1", "product_nr": "10",
                "product_amount": "5"}
        body.update(order)
        return self.session.post(self.url + "/create", json=body, timeout=10)

    def status(self, uniqueid):
        return self.session.get(self.url + "/get_order_status", params={"uniqueid": uniqueid},
                                timeout=10).json()

    def wait_final(self, uniqueids, timeout=120):
        """:returns: {uniqueid: record} once every order is created or error

        Follows the status feed (``GET /events``), as OilMat does, and asks for an
        order's record once the feed shows it final. It used to ask for every waiting
        order's status ten times a second: ~100 requests a second with 100 orders
        waiting (1,929 in an 18.9 s run of bench_instance's throughput), on the same
        two cores as the instance and browser being measured -- ten times what the
        default RATE_LIMIT lets one client ask, and with the browser pool it cost a
        busy workshop 13-25 % of its lines per minute (docs/benchmarks.md). Every order
        still waiting is asked for anyway every :data:`SWEEP_SECONDS`: a records file
        moved aside starts the feed's cursors again, and the feed is not what most of
        these tests check.
        """
        deadline = time.monotonic() + timeout
        pending = set(uniqueids)
        done = {}
        after, swept = 0, time.monotonic()
        while pending:
            final, after = self._final_in_feed(pending, after)
            if time.monotonic() - swept >= SWEEP_SECONDS:
                final, swept = set(pending), time.monotonic()
            for uniqueid in final:
                record = self.status(uniqueid)
                if record["status"] in FINAL:
                    done[uniqueid] = record
                    pending.discard(uniqueid)
            if pending and time.monotonic() > deadline:
                raise AssertionError(f"not final within {timeout} s: {sorted(pending)[:5]}")
            if pending:
                time.sleep(0.1)
        return done

    def _final_in_feed(self, pending, after):
        """:returns: (those of ``pending`` the feed shows final after cursor ``after``,
        the cursor to go on from)"""
        final = set()
        while True:
            answer = self.session.get(self.url + "/events",
                                      params={"after": after, "limit": 500}, timeout=10)
            if answer.status_code != 200:  # e.g. a full disk: the sweep still looks
                return final, after
            page = answer.json()
            final.update(e["uniqueid"] for e in page["events"]
                         if e["uniqueid"] in pending and e["status"] in FINAL)
            after = page["next"]
            if not page["more"]:
                return final, after

    # -- lifecycle --------------------------------------------------------------

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout=60):
        """SIGTERM and wait: :returns: the exit code"""
        # A kept-alive connection of ours would hold gunicorn's graceful stop for its
        # linger (STOP_KEEPALIVE_LINGER, 2 s) on every stop: hang up first, as a client
        # that is done does.
        self.session.close()
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode if self.proc else None
