"""Fixtures that start a real erp_sim server. Use them from a conftest or test module::

    pytest_plugins = ["tests.conftest_erp"]                      # in the top conftest.py
    from tests.conftest_erp import erp_server, erp_server_factory  # or import them

* ``erp_server`` (session scope): one server with the default settings (0.3 s save
  delay, 30 min sessions), shared by every test -- tests keep apart by using their
  own uniqueids. Its ``url`` is what ``IntegrationConfig.erp_url`` wants.
* ``erp_server_factory`` (function scope): ``erp_server_factory(session_ttl=2)``
  starts a server with other settings; every server it started is stopped after the test.

Both hand out :class:`tests.erp_helpers.ErpSimServer` objects.
"""

import pytest

from tests.erp_helpers import ErpSimServer


@pytest.fixture(scope="session")
def erp_server():
    with ErpSimServer() as server:
        yield server


@pytest.fixture
def erp_server_factory():
    servers = []

    def start(**options):
        server = ErpSimServer(**options).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
