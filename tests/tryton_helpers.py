"""The Tryton stand-up for tests: ``python -m erp_tryton`` as a real subprocess.

::

    from tryton_helpers import TrytonServer, tryton_build   # tryton_build: a fixture

    with TrytonServer(tmp_path) as server:
        server.client().worksheet_lines("5")

The first run on a machine installs trytond and sao into the cache and builds the seeded
template (about a minute here, a generous deadline below); later runs start in seconds.
"""

import subprocess
import sys
import time

import pytest

from erp_helpers import REPO_ROOT, ServerProcess
from erp_tryton import rpc

INSTALL_TIMEOUT = 900.0  # pip + npm + a database with `sale` activated, on a slow network
START_TIMEOUT = 60.0  # measured ~1.5 s once built


class TrytonServer(ServerProcess):
    """``python -m erp_tryton`` on a free port, its database in ``data_dir``.

    :param data_dir: the ``--data`` folder (kept: a second server may reuse it)
    :param extra_args: further command-line arguments
    """

    LISTENING = r"erp_tryton listening on (http://[^/\s]+)"
    HEALTH_PATH = "/"  # sao's page: trytond opens its port only once the database is loaded

    def __init__(self, data_dir, extra_args=(), startup_timeout=START_TIMEOUT):
        super().__init__([sys.executable, "-m", "erp_tryton", "--port", "0",
                          "--data", str(data_dir), *extra_args], startup_timeout)
        self.data_dir = str(data_dir)

    def client(self):
        """A logged-in :class:`erp_tryton.rpc.Client` as admin."""
        return rpc.Client(self.url).login()


@pytest.fixture(scope="session")
def tryton_build():
    """Install and seed the cached template once (the only slow step, the first time)."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "erp_tryton", "--prepare"], cwd=REPO_ROOT,
                   check=True, timeout=INSTALL_TIMEOUT)
    return time.monotonic() - started


#: a view inheriting the sale's form that removes its Lines list: an admin's
#: customisation done Tryton's own way (``ir.ui.view`` with ``inherit``)
_NO_LINES_ARCH = '<data><xpath expr="//field[@name=\'lines\']" position="replace"/></data>'


def hide_sale_lines(client):
    """Customise the sale's form without its Lines list, through JSON-RPC.

    :param client: an :class:`erp_tryton.rpc` client logged in as admin
    :returns: the ids of the views created (``client.model("ir.ui.view", "delete", ids)``
        undoes it)
    """
    form, = client.model("ir.ui.view", "search_read",
                         [("model", "=", "sale.sale"), ("type", "=", "form"),
                          ("inherit", "=", None)], 0, 1, None, ["id"])
    return client.model("ir.ui.view", "create", [{
        "model": "sale.sale", "inherit": form["id"], "priority": 100,
        "arch": _NO_LINES_ARCH}])
