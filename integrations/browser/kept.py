"""What every integration that drives a web UI does around its visits, whatever the ERP.

:class:`KeptBrowserIntegration` visits through the browser its
:class:`~integrations.browser.life.BrowserLife` keeps (started or claimed on first use,
replaced on new credentials, after a crash and after ``recycle_after_orders`` orders,
given back when the worker is idle), turns whatever ends a visit into a result for
every line not yet answered, and saves the failed page. It knows no ERP's markup or
workflow: the ERP's subclass writes :meth:`~KeptBrowserIntegration._visit`, one visit
to one worksheet.
"""

import abc

from core import retry as policy
from core.errors import BridgeError, BrowserError, LineUnverified, TransientError, unconfirmed
from integrations.base import Integration, check_lines
from integrations.browser.snapshot import save_failure_artifacts
from integrations.browser.errors import BROWSER_FAILURES, map_webdriver_error
from integrations.browser.life import BrowserLife
from integrations.verify import verify_visit


class KeptBrowserIntegration(Integration):
    """An :class:`Integration` that writes through one browser it keeps between calls."""

    def __init__(self, config, logger, life=None):
        """:param life: the :class:`~integrations.browser.life.BrowserLife` (tests);
            built here by default"""
        super().__init__(config, logger)
        self.browsers = life or BrowserLife(config, logger, on_new=self._browser_started,
                                            on_release=self._browser_closed)
        # uniqueids of this visit's lines that may be on the worksheet: their write was
        # sent, or they were seen there (_sending, verified_or_retried)
        self._maybe_on_sheet = set()

    @property
    def _browser(self):
        """The browser of the visit (None between browsers)."""
        return self.browsers.browser

    @property
    def _credentials(self):
        """What the browser's session is logged in with (the flows set it at login, and
        None when the ERP asks again)."""
        return self.browsers.credentials

    @_credentials.setter
    def _credentials(self, credentials):
        self.browsers.credentials = credentials

    # -- its life beside the worker (integrations.base.Integration) -----------------------

    def attach(self, stop, observer):
        self.browsers.attach(stop, observer)

    @property
    def holding(self):
        return self.browsers.holding

    @property
    def browser_state(self):
        return self.browsers.state

    def idle(self, seconds):
        self.browsers.idle(seconds)

    def pause(self, seconds):
        self.browsers.pause(seconds)

    def poll_seconds(self):
        return self.browsers.poll_seconds()

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
        self.browsers.close()

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
        self.browsers.for_orders(count, credentials)

    def _browser_for(self, credentials):
        """The kept browser, started when there is none; a fresh one for new credentials."""
        return self.browsers.get(credentials)

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
