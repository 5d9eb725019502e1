"""What every integration that drives a web UI does around its visits, whatever the ERP.

:class:`KeptBrowserIntegration` keeps one browser across calls (started on first use,
replaced on new credentials, after a crash and after ``recycle_after_orders`` orders),
turns whatever ends a visit into a result for every line not yet answered, and saves
the failed page. It knows no ERP's markup or workflow: the ERP's subclass writes
:meth:`~KeptBrowserIntegration._visit`, one visit to one worksheet.
"""

import abc
import time
from urllib.parse import urlsplit

from core import retry as policy
from core.errors import BridgeError, BrowserError, LineUnverified, TransientError, unconfirmed
from integrations.base import Integration, check_lines
from integrations.browser.artifacts import save_failure_artifacts
from integrations.browser.errors import BROWSER_FAILURES, map_webdriver_error
from integrations.parking import Parking
from integrations.browser.session import DEFAULT_WAIT_SECONDS, Browser
from integrations.verify import verify_visit


#: a remote session not there after this many seconds is reported as waiting for a free
#: slot: a session of the fleet's Grid starts in 0.5-1.5 s here (docs/fleet.md)
WAITING_AFTER_SECONDS = 3.0


#: a workshop's ERP session cookies, read before it parks a browser and put into the
#: next one it claims, so that its login is not done again on every claim (~0.4 CPU-s):
#: ``{(erp_url, credentials): [cookie, ...]}``. In this process's memory only -- never
#: in the parking, a file or a log: a session cookie is as good as the password.
_LOGINS = {}


class KeptBrowserIntegration(Integration):
    """An :class:`Integration` that writes through one browser it keeps between calls."""

    def __init__(self, config, logger):
        super().__init__(config, logger)
        self._browser = None  # started on first use
        self._credentials = None  # what the browser's session is logged in with
        self._orders_on_browser = 0
        self._starting_since = None  # monotonic time a browser was asked for, until it came
        self._wait_seconds = DEFAULT_WAIT_SECONDS
        self._cancel = None
        # uniqueids of this visit's lines that may be on the worksheet: their write was
        # sent, or they were seen there (_sending, verified_or_retried)
        self._maybe_on_sheet = set()
        # Sessions shared with the fleet's other workshops (integrations.parking).
        self._parking = (Parking(config.browser_park_dir)
                         if config.browser_park_dir and config.selenium_remote_url else None)

    def wait_for_browsers(self, seconds, cancel=None):
        """How long a new session may wait for a free slot of a remote pool, and the
        event that ends such a wait (the worker's ``BROWSER_WAIT_SECONDS`` and its stop:
        the worker decides when a browser is held and for how long)."""
        self._wait_seconds, self._cancel = seconds, cancel

    @property
    def browser_state(self):
        """``none``, ``starting``, ``waiting`` (a remote session not there after
        ``WAITING_AFTER_SECONDS``: queued for a free slot of the pool) or ``ready``.
        Read from other threads (``/alive``); only the worker's thread changes it."""
        since = self._starting_since
        if since is not None:
            waited = time.monotonic() - since
            remote = bool(self.config.selenium_remote_url)
            return "waiting" if remote and waited >= WAITING_AFTER_SECONDS else "starting"
        return "none" if self._browser is None else "ready"

    # -- the interface ----------------------------------------------------------------

    def add_line(self, line, credentials):
        result = self.add_lines(line.worksheet, [line], credentials)[line.uniqueid]
        if isinstance(result, Exception):
            raise result
        return result

    def add_lines(self, worksheet, lines, credentials):
        results = {}
        if not lines:
            return results
        self._maybe_on_sheet = set()

        def visit():
            self._count_orders(len(lines), credentials)
            self._visit(str(worksheet).strip(), lines, credentials, results)

        self._guarded(visit, worksheet, lines, results, credentials)
        # A line sent (or seen) whose visit failed may be on the sheet: say so, so that
        # the worker reads the sheet before such an order ends in error.
        for uniqueid in self._maybe_on_sheet:
            if isinstance(results.get(uniqueid), TransientError):
                results[uniqueid] = unconfirmed(results[uniqueid])
        return results

    can_look = True

    def look(self, worksheet, lines, credentials):
        results = {}

        def read():
            self._browser_for(credentials)
            seen = self._read_lines(str(worksheet).strip(), credentials)
            results.update({line.uniqueid: check_lines(seen, line) for line in lines})

        self._guarded(read, worksheet, lines, results, credentials)
        return results

    def _guarded(self, action, worksheet, lines, results, credentials):
        """Run ``action()``; whatever ends it becomes the result of every line without
        one (:meth:`_fail_rest`), Selenium's errors mapped, a bug's browser replaced."""
        try:
            action()
        except BridgeError as exc:
            self._fail_rest(exc, lines, results, credentials)
        except BROWSER_FAILURES as exc:
            self._fail_rest(map_webdriver_error(exc), lines, results, credentials)
        except Exception as exc:
            # A bug, not the ERP: a fresh browser is still the safe way on.
            self.log.exception("worksheet %s: unexpected error", worksheet)
            self._fail_rest(policy.as_bridge_error(exc), lines, results, credentials)
            self.close()

    def close(self):
        self._release(park=False)

    def park_browser(self):
        """Give the browser back for the fleet's other workshops to use (wiped, parked:
        :mod:`integrations.parking`); quit it when there is no parking, or when
        it is due for recycling. :returns: whether it was parked"""
        return self._release(park=True)

    def _release(self, park):
        """Drop the browser: parked (with ``park``, when it can be) or quit."""
        browser, credentials = self._browser, self._credentials
        self._browser, self._credentials = None, None
        self._browser_closed()
        if browser is None:
            return False
        recycle = self.config.recycle_after_orders
        if park and self._parking is not None and not 0 < recycle <= self._orders_on_browser:
            if credentials is not None:  # logged in: its ERP session, for its next claim
                try:
                    _LOGINS[self._login_key(credentials)] = browser.cookies()
                except Exception:  # no cookies: the next visit logs in
                    _LOGINS.pop(self._login_key(credentials), None)
            if browser.park(self._orders_on_browser):  # one it could not park, it quit
                self.log.info("browser parked for the fleet's other workshops")
                return True
        else:
            browser.quit()
        self.log.info("browser closed")
        return False

    # -- what the ERP's subclass writes ---------------------------------------------------

    @abc.abstractmethod
    def _visit(self, worksheet, lines, credentials, results):
        """Write ``lines`` onto ``worksheet`` in one visit, filling ``results``
        (``{uniqueid: LineOutcome or IntegrationError}``) as it goes. An exception ends
        the visit: every line without a result then gets it."""

    @abc.abstractmethod
    def _read_lines(self, worksheet, credentials):
        """The lines of ``worksheet`` as the ERP's UI shows them now, as
        :class:`~integrations.base.SeenLine` s; nothing written (:meth:`look`)."""

    def _sending(self, line):
        """Called right before ``line``'s write leaves the browser: from now on, a failure
        of the visit leaves the line possibly on the worksheet."""
        self._maybe_on_sheet.add(line.uniqueid)

    def _browser_started(self):
        """Called after a new browser started (before it is used)."""

    def _browser_closed(self):
        """Called when the browser is dropped: forget what was tied to it."""

    # -- the browser ----------------------------------------------------------------------

    def _count_orders(self, count, credentials):
        if self._orders_on_browser + count > self.config.recycle_after_orders > 0:
            self.log.info("recycling the browser after %d orders", self._orders_on_browser)
            self.close()
        self._browser_for(credentials)
        self._orders_on_browser += count

    def _browser_for(self, credentials):
        """The kept browser, started when there is none; a fresh one for new credentials."""
        if self._browser is not None and self._credentials not in (None, credentials):
            self.close()  # reconfigured credentials: drop the old user's session
        if self._browser is None:
            started = self._starting_since = time.monotonic()
            try:
                self._browser = Browser(self.config, self._wait_seconds, self._cancel, self.log,
                                        self._parking)
            finally:
                self._starting_since = None
            claimed = self._browser.claimed
            self._orders_on_browser = claimed.get("orders", 0) if claimed else 0
            cookies = _LOGINS.get(self._login_key(credentials)) if claimed else None
            if cookies and self._browser.restore_cookies(cookies):
                self._credentials = credentials  # unless the ERP asks again (expired)
            self._browser_started()
            # Only host and port: a Grid URL may carry a user and password.
            remote = urlsplit(self.config.selenium_remote_url)
            where = f"remote {remote.hostname}:{remote.port}" if remote.hostname else "local"
            if claimed:
                self.log.info("browser claimed from the fleet's parking (%s) in %.1fs",
                              where, time.monotonic() - started)
            else:
                self.log.info("browser started (%s) in %.1fs", where, time.monotonic() - started)
        return self._browser

    def _login_key(self, credentials):
        return self.config.erp_url, credentials

    # -- verified writes ------------------------------------------------------------------

    def _verify_visit(self, lines, results, credentials, read, delete, rewrite):
        """:func:`integrations.verify.verify_visit` with this ERP's ``read``, ``delete`` and
        ``rewrite``; a line it cannot confirm gets its failure page saved, like any failure."""
        verify_visit(lines, results, read, delete, rewrite, self.log)
        for line in lines:
            if isinstance(results.get(line.uniqueid), LineUnverified):
                self._failed(results[line.uniqueid], [line], credentials)

    # -- failures -------------------------------------------------------------------------

    def _fail_rest(self, error, lines, results, credentials):
        """``error`` ends the visit: every line without a result gets it."""
        rest = [line for line in lines if line.uniqueid not in results]
        for line in rest:
            results[line.uniqueid] = error
        if rest:
            self._failed(error, rest, credentials)
        if isinstance(error, BrowserError):
            self.close()

    def _failed(self, error, lines, credentials):
        """Save the failed page (password scrubbed) and log it."""
        paths = []
        if self._browser is not None and not isinstance(error, BrowserError):
            try:
                paths = save_failure_artifacts(self._browser.driver, self.config.artifact_dir,
                                               lines[0].uniqueid, error.reason_code,
                                               secrets=[credentials.password])
            except Exception as exc:  # a failure report must not hide the failure
                self.log.warning("could not save failure artifacts: %s", type(exc).__name__)
        self.log.warning("worksheet %s, order %s failed: %s: %s%s", lines[0].worksheet,
                         ", ".join(line.uniqueid for line in lines), error.reason_code,
                         error.reason_text, f" (saved {', '.join(paths)})" if paths else "")
