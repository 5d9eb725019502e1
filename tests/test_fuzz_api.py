"""schemathesis against a real instance (``api.py`` on an ephemeral port): every
request its ``/openapi.json`` allows is accepted, every answer is documented, no 5xx.

Run once with the API token and once without. The instance's ERP and its Selenium
endpoint are closed ports: orders are stored and queued, and an order the worker takes
fails fast with a transient error -- no browser is ever started (checked). ``PUT /kill``
is left out of the run with the token, since it ends the instance; without the token
it must answer 401 like the rest.

``make test`` runs a few cases per operation (``FUZZ_EXAMPLES``, default 25, fixed
seed); ``make fuzz`` runs 2500 and prints the number of requests (``pytest -s``).
"""

import os

import pytest

from fuzz_helpers import fuzz_examples, run
from instance_helpers import RunningInstance, free_port


@pytest.fixture(scope="module")
def instance(tmp_path_factory):
    closed = f"http://127.0.0.1:{free_port()}"
    inst = RunningInstance(tmp_path_factory.mktemp("fuzz-api"), closed,
                           SELENIUM_REMOTE_URL=closed, RETRY_BASE_SECONDS="0.05",
                           RETRY_MAX_SECONDS="0.2", MAX_ATTEMPTS="2").start()
    inst.auth = {"Authorization": f"Bearer {inst.token}"}
    yield inst
    assert inst.stop() == 0, inst.stderr()


def _children(pid):
    """Command lines of the processes whose parent is ``pid``."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as stat:
                if int(stat.read().rsplit(")", 1)[1].split()[1]) != pid:
                    continue
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                found.append(cmdline.read().replace(b"\0", b" ").decode(errors="replace"))
        except (OSError, ValueError, IndexError):
            continue  # not a process, or gone meanwhile
    return found


def _check(instance, report):
    print(f"\n{report.summary()}")
    report.assert_clean()
    assert instance.proc.poll() is None, "the instance died"
    assert "Traceback" not in instance.stderr()
    assert not [cmd for cmd in _children(instance.proc.pid) if "chrom" in cmd]


def test_every_request_the_document_allows_is_accepted(instance):
    report = run(instance.url, fuzz_examples(), schema_headers=instance.auth,
                 headers=instance.auth, exclude=[("PUT", "/kill")],
                 label="instance API with the token")
    _check(instance, report)


def test_without_the_token_nothing_but_alive_answers(instance):
    instance.session.put(instance.url + "/stop_worker", timeout=30)  # a steady queue
    before = instance.session.get(instance.url + "/queue", timeout=10).json()["length"]
    report = run(instance.url, fuzz_examples(), schema_headers=instance.auth,
                 label="instance API without a token")
    _check(instance, report)
    assert instance.session.get(instance.url + "/queue", timeout=10).json()["length"] == before
