"""Test stands: one per ERP the contract tests run against, all offering one protocol.

A stand starts its ERP, knows its seeded data (an open worksheet per test, a closed
one, one that does not exist, an unknown product, an amount the ERP refuses), reads a
worksheet's lines **through the ERP's own read path** (never through the integration
under test), closes worksheets, expires sessions and builds the integration for it.
``tests/test_integration_contract.py`` runs unchanged against every stand in
:data:`STANDS`; adding an ERP to the contract is one class here.
"""

import glob
import json
import logging
import os
import signal
import tempfile
import time
from dataclasses import dataclass
from decimal import Decimal

from erp_helpers import ErpSimServer, make_integration, next_worksheet

LOG = logging.getLogger("test.integration")


@dataclass(frozen=True)
class Line:
    """A line as the ERP itself reports it."""

    product: str
    amount: Decimal
    text: str


class Stand:
    """The protocol. Subclasses fill in the class attributes and the methods."""

    name = None  # ERP_SYSTEM of the integration under test
    admin = None  # Credentials that log in
    closed_worksheet = None  # a worksheet that takes no more lines
    missing_worksheet = None  # a worksheet number the ERP does not have
    unknown_product = None  # a product number the ERP does not have
    products = ()  # product numbers the ERP sells (at least three)
    refused_amount = None  # (product, amount) the ERP itself refuses
    login_marker = "logging in"  # what the integration logs when it logs in
    #: what it logs when it logs in again after the ERP ended its session (None: the
    #: ERP's own page asks for the password and the integration answers it in place)
    relogin_marker = "logging in"
    poll_seconds = 0.02  # how often a test looks at the ERP's lines while a batch runs
    cases = None  # names of the contract's tests this stand runs (None: every one)

    def start(self, session_ttl=None):
        """Start the ERP. :returns: self"""
        raise NotImplementedError

    def stop(self):
        raise NotImplementedError

    def next_worksheet(self):
        """An open worksheet no other test of this process writes on."""
        raise NotImplementedError

    def lines(self, worksheet):
        """:returns: the worksheet's lines as :class:`Line` s, oldest first"""
        raise NotImplementedError

    def expire_sessions(self):
        """Log every user out behind the integration's back."""
        raise NotImplementedError

    def plant(self, worksheet, product, amount, text):
        """Store a line on ``worksheet`` behind the integration's back, through the ERP's
        own write path (a clerk's duplicate, a wrong line)."""
        raise NotImplementedError

    def change_screens(self, changed=True):
        """Show the ERP's screens changed, as after a vendor update (issue 27): fields,
        a button and the lines table's columns moved or renamed; ``changed=False``: as
        they were. :raises NotImplementedError: when this stand cannot (yet)"""
        raise NotImplementedError(f"the {self.name} stand cannot present a changed screen yet")

    def forget_writes(self):
        """Start the ERP's own record of the writes it received afresh (None: it keeps none)."""

    def writes(self):
        """The writes of lines (adds and deletes) the ERP received since
        :meth:`forget_writes`, by its own record; None when it keeps none."""
        return None

    def options(self):
        """The ERP's own options (``IntegrationConfig.options``)."""
        return {}

    def integration(self, artifact_dir, url=None, **config):
        """The integration under test, for this ERP (or for ``url``: e.g. nothing there)."""
        return make_integration(self.name, url or self.url, artifact_dir,
                                options=self.options(), **config)

    def lines_with(self, worksheet, uniqueid):
        return [line for line in self.lines(worksheet) if uniqueid in line.text.split()]


class ErpSimStand(Stand):
    """erp_sim, our stand-in, in one of its two flavours; read through ``/_sim``."""

    closed_worksheet = "950"
    missing_worksheet = "1500"
    unknown_product = "999"
    products = ("10", "11", "12", "150")
    refused_amount = ("10", "-1")  # erp_sim refuses a negative amount

    def __init__(self, name, flavor):
        from integrations.base import Credentials

        self.name, self.flavor = name, flavor
        self.admin = Credentials("admin", "admin")
        self.server = None

    def start(self, session_ttl=None, save_delay=0.05, extra_args=()):
        self.server = ErpSimServer(flavor=self.flavor, session_ttl=session_ttl,
                                   save_delay=save_delay, extra_args=extra_args).start()
        self.url = self.server.url
        return self

    def stop(self):
        self.server.stop()

    def next_worksheet(self):
        return next_worksheet()

    def lines(self, worksheet):
        return [Line(str(line["product_nr"]), Decimal(line["amount"]), line["reference"])
                for line in self.server.worksheet(worksheet)["lines"]]

    def expire_sessions(self):
        self.server.expire_sessions()

    def plant(self, worksheet, product, amount, text):
        self.server.plant_line(worksheet, product, str(amount), text)

    def change_screens(self, changed=True):
        self.server.set_ui_revision(2 if changed else 1)

    def forget_writes(self):
        self.server.clear_requests()

    def writes(self):
        return self.server.line_writes()


class TrytonStand(Stand):
    """A real Tryton with its sao web client (``python -m erp_tryton``), its admin working
    in ``language``; read through Tryton's JSON-RPC API. The first start on a machine
    installs it (cached).

    :param language: the admin's language (``--language``; loaded with Tryton's own
        ``trytond-admin -l``)
    :param series: the Tryton series (``--series``: 8.0, or 7.0 LTS)
    :param core_only: run only the contract's :data:`CORE_CASES` on this stand (make
        test keeps the matrix short; make chaos runs every case everywhere)
    """

    name = "tryton"
    closed_worksheet = "950"  # sales 900-999 are quoted
    missing_worksheet = "1500"
    unknown_product = "999"
    products = ("10", "11", "12", "150")
    refused_amount = ("201", "2.5")  # products 201-205 are sold per Unit, 0 decimals
    poll_seconds = 0.2  # each look is an RPC call on the ERP the browser is using
    relogin_marker = None  # sao asks for the password in a dialog; answered in place
    #: the contract's cases that prove exactly-once, every reason code and the repair
    CORE_CASES = ("test_registered_under_its_name",
                  "test_adds_one_line_then_reports_it_existed",
                  "test_a_batch_on_one_worksheet_gives_each_line_its_own_result",
                  "test_erp_refusals_have_their_reason_codes",
                  "test_a_closed_worksheet_fails_every_line",
                  "test_duplicates_and_wrong_lines_are_repaired_through_the_ui")
    # (a refused login is recognised by sao's error type, not words: the English stand
    # proves it in make test, every language in make chaos)
    _prepared = set()  # the (series, language) builds this process has made sure of

    def __init__(self, language="en", series="8.0", core_only=False):
        from integrations.base import Credentials

        self.admin = Credentials("admin", "admin")
        self.language, self.series = language, series
        self.cases = self.CORE_CASES if core_only else None
        self._sheets = iter(range(1, 900))  # draft sales with Reference 1-899

    def start(self, session_ttl=None):
        from tryton_helpers import INSTALL_TIMEOUT, TrytonServer

        build = ["--series", self.series, "--language", self.language]
        if tuple(build) not in TrytonStand._prepared:  # install and seed once (cached)
            import subprocess
            import sys

            subprocess.run([sys.executable, "-m", "erp_tryton", "--prepare", *build],
                           check=True, timeout=INSTALL_TIMEOUT, capture_output=True)
            TrytonStand._prepared.add(tuple(build))
        args = build + (["--session-ttl", str(session_ttl)] if session_ttl else [])
        self.server = TrytonServer(tempfile.mkdtemp(prefix="tryton-stand-"), args).start()
        self.url = self.server.url
        self._client = self.server.client()
        return self

    def stop(self):
        self.server.stop()

    def next_worksheet(self):
        return str(next(self._sheets))

    def lines(self, worksheet):
        return [Line(line["product_code"], line["quantity"], line["description"] or "")
                for line in self._client.worksheet_lines(worksheet)]

    def expire_sessions(self):
        from erp_tryton import rpc

        rpc.expire_sessions(self.server.data_dir)

    def plant(self, worksheet, product, amount, text):
        self._client.add_line(worksheet, product, Decimal(str(amount)), text)

    def options(self):
        return {"database": "workshop"}

    def change_screens(self, changed=True):
        """As an admin customises Tryton: a view inheriting the sale's form that removes
        its Lines list (Tryton's own way, ``ir.ui.view`` with ``inherit``); deleted again
        for ``changed=False``. make test leaves the contract's drift cases out on Tryton
        (``TRYTON_MATRIX=1``, make chaos, runs them): tests/test_integration_tryton.py's
        customised-form test covers the same there, in one stand-up."""
        if not os.environ.get("TRYTON_MATRIX"):
            raise NotImplementedError("Tryton's drift cases run under make chaos "
                                      "(TRYTON_MATRIX=1); make test covers them in "
                                      "test_integration_tryton.py")
        from tryton_helpers import hide_sale_lines

        custom = getattr(self, "_custom_view", None)
        if changed and custom is None:
            self._custom_view = hide_sale_lines(self._client)
        elif not changed and custom is not None:
            self._client.model("ir.ui.view", "delete", custom)
            self._custom_view = None


#: one stand per ERP, by the name of its integration
STANDS = {
    "erp_sim": lambda: ErpSimStand("erp_sim", "classic"),
    "erp_sim_spa": lambda: ErpSimStand("erp_sim_spa", "spa"),
    "tryton": TrytonStand,
}


def contract_stands():
    """What the contract runs against: every stand of :data:`STANDS`, and Tryton as
    workshops run it too, by names starting with the integration's (``tryton-de``).
    make test: Tryton 8.0 in German (a decimal comma) besides English, and Tryton 7.0 LTS
    in French (a comma, and a narrow no-break space between thousands), both on the core
    cases (exactly once, every reason code, the repair: make test's 25 minutes); with
    ``TRYTON_MATRIX=1`` (make chaos) both series in each of :data:`MATRIX_LANGUAGES` on
    every case."""
    stands = {**STANDS, "tryton-de": lambda: TrytonStand("de", core_only=True),
              "tryton-7.0-fr": lambda: TrytonStand("fr", "7.0", core_only=True)}
    if os.environ.get("TRYTON_MATRIX"):  # make chaos: every case, both series x 4 languages
        stands.update({f"tryton-{series}-{language}-matrix":
                       (lambda series=series, language=language: TrytonStand(language, series))
                       for series in ("8.0", "7.0") for language in MATRIX_LANGUAGES})
    return stands


#: the languages of make chaos's matrix: each writes 4,75 with a decimal comma
MATRIX_LANGUAGES = ("de", "fr", "es", "nl")


def kill_browsers_of_this_process():
    """Crash every browser this test process started: chromedriver and Chromium, as
    an out-of-memory kill would. Found through the owner file each local browser's
    profile holds (integrations.browser.orphans), so no integration's internals are used.

    :returns: how many processes were killed
    """
    from integrations.browser.orphans import OWNER_FILE, PROFILE_PREFIX, cmdline

    killed = 0
    for profile in glob.glob(os.path.join(tempfile.gettempdir(), PROFILE_PREFIX + "*")):
        try:
            with open(os.path.join(profile, OWNER_FILE)) as f:
                owner = json.load(f)
        except (OSError, ValueError):
            continue
        if owner["owner"] != os.getpid():
            continue
        flag = f"--user-data-dir={profile}"
        pids = [owner["chromedriver"]] + [
            int(pid) for pid in os.listdir("/proc") if pid.isdigit() and flag in cmdline(pid)]
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except OSError:
                pass
    return killed


def settle(integration, worksheet, lines, credentials, rounds=25, pause=0.2):
    """Call add_lines again for the lines that failed transiently, like the worker does.

    :returns: ``{uniqueid: final result}``
    """
    from core.errors import TransientError

    final, pending = {}, list(lines)
    for _ in range(rounds):
        results = integration.add_lines(worksheet, pending, credentials)
        assert set(results) == {line.uniqueid for line in pending}
        final.update(results)
        pending = [line for line in pending if isinstance(results[line.uniqueid], TransientError)]
        if not pending:
            return final
        time.sleep(pause)  # the worker's backoff
    raise AssertionError(f"still failing after {rounds} rounds: {final}")
