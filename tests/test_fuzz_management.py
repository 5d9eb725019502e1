"""Fuzz the management API with schemathesis against its own ``/openapi.json``.

The real app on a real server (fleet/serve.py's handler, an ephemeral port, a real SQLite
registry), with hand-written fakes for supervisord and the instances, so every request is
answered by the management API's own code in milliseconds. Fails on any 5xx, any answer
that does not match the document, any request the document allows that is refused with
400, and any request it forbids that is accepted. ``FUZZ_EXAMPLES`` sets the generated
cases per operation (a few in ``make test``, 2,500 in ``make fuzz``).
"""

import pytest

from fleet.control import Fleet
from tests.fleet_helpers import fleet_settings_for_tests, management_server
from tests.fleet_fakes import FakeInstances, FakeSupervisor
from tests.fuzz_helpers import fuzz_examples, run

TOKEN = "management-token-for-fuzzing"


@pytest.fixture
def management(tmp_path):
    # thousands of requests a minute here: no limit to speak of
    settings = fleet_settings_for_tests(tmp_path, TOKEN, MANAGEMENT_RATE_LIMIT="1000000/minute")
    fleet = Fleet(settings, supervisor=FakeSupervisor(), instances=FakeInstances())
    with management_server(settings, fleet) as url:
        yield url


def test_fuzz_the_management_api(management):
    auth = {"Authorization": f"Bearer {TOKEN}"}
    report = run(management, fuzz_examples(), schema_headers=auth, headers=auth,
                 label="management API")
    print(report.summary())
    report.assert_clean()


def test_fuzz_the_management_api_without_a_token(management):
    report = run(management, max(1, fuzz_examples() // 5), schema_headers={"Authorization":
                 f"Bearer {TOKEN}"}, headers=None, label="management API, no token")
    print(report.summary())
    report.assert_clean()
