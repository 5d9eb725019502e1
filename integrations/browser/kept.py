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
from core.errors import (BridgeError, BrowserError, LineUnverified, LoginFailed, ScreenChanged,
                         TransientError, UnexpectedPage, WorksheetClosed, WorksheetNotFound,
                         unconfirmed)
from integrations.base import ErpState, Integration, LineOutcome, Probe, Written, check_lines
from integrations.browser.snapshot import save_failure_artifacts
from integrations.browser.errors import BROWSER_FAILURES, map_webdriver_error
from integrations.browser.life import BrowserLife
from integrations.verify import KnownLines, check_known, verify_visit


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
        # lines verified per worksheet: what a read of its lines must still show
        self.known = KnownLines()

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

    @property
    def can_probe(self):
        return type(self)._probe_screens is not KeptBrowserIntegration._probe_screens

    def probe(self, worksheet, credentials):
        """The ERP's subclass checks its screens (:meth:`_probe_screens`); this turns
        what ends the check into a :class:`~integrations.base.Probe`, and saves the page
        of a changed screen like a failure's."""
        checked = []
        try:
            self._browser_for(credentials)
            note = self._probe_screens(worksheet, credentials, checked)
        except ScreenChanged as exc:
            paths = self._save_page("probe", exc.reason_code, credentials)
            return Probe(ErpState.CHANGED, exc.reason_text, tuple(checked), tuple(paths))
        except LoginFailed as exc:
            return Probe(ErpState.LOGIN_FAILED, exc.reason_text, tuple(checked))
        except (WorksheetNotFound, WorksheetClosed) as exc:
            # the probe's worksheet, not the ERP's screens: nothing to hold orders for
            return Probe(ErpState.OK, f"worksheet {worksheet}: {exc.reason_code}: "
                                      f"{exc.reason_text}; checked {', '.join(checked)} only "
                                      f"(set PROBE_WORKSHEET to an open worksheet)",
                         tuple(checked))
        except UnexpectedPage as exc:  # a page it does not know where one it knows belongs
            paths = self._save_page("probe", ScreenChanged.reason_code, credentials)
            return Probe(ErpState.CHANGED, exc.reason_text, tuple(checked), tuple(paths))
        except BridgeError as exc:
            if isinstance(exc, BrowserError):
                self.close()
            return Probe(ErpState.UNREACHABLE, f"{exc.reason_code}: {exc.reason_text}",
                         tuple(checked))
        except BROWSER_FAILURES as exc:
            error = map_webdriver_error(exc)
            self.close()
            return Probe(ErpState.UNREACHABLE, f"{error.reason_code}: {error.reason_text}",
                         tuple(checked))
        if worksheet is None:
            return Probe(ErpState.OK, f"no worksheet to open (PROBE_WORKSHEET is not set and "
                                      f"nothing was written yet): checked "
                                      f"{', '.join(checked)} only", tuple(checked))
        if note:  # the worksheet is a poor choice, the screens are fine
            return Probe(ErpState.OK, f"worksheet {worksheet}: {note}; checked "
                                      f"{', '.join(checked)} (set PROBE_WORKSHEET to an open "
                                      f"worksheet of a customer)", tuple(checked))
        return Probe(ErpState.OK, f"checked {', '.join(checked)} (worksheet {worksheet})",
                     tuple(checked))

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

    def _probe_screens(self, worksheet, credentials, checked):
        """Check, reading only, every screen the visits rely on, appending each screen's
        name to ``checked`` once it passed: log in, find and open ``worksheet`` (None: as
        far as possible without one), open the add-line form and leave it unsaved, read
        the lines, and check them with :meth:`_check_read`. Writes nothing, ever.

        :returns: None, or what makes ``worksheet`` a poor one to probe though every
            screen passed (e.g. ``"belongs to no customer"``): said in ``detail``, the
            state stays ``ok`` and nothing is held

        :raises core.errors.ScreenChanged: naming the screen and what is missing or
            different
        :raises core.errors.IntegrationError: as a visit would (login refused, worksheet
            closed, ERP down)
        """
        raise NotImplementedError

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
        worksheet = str(lines[0].worksheet).strip()
        mine = {line.uniqueid for line in lines}
        doubted = self.known.doubted(mine)
        try:
            verify_visit(lines, results, read, delete, rewrite, self.log,
                         known=self.known.on(worksheet, besides=mine), doubted=doubted)
        except ScreenChanged:
            self.known.doubt([uid for uid in mine if uid in doubted or isinstance(
                results.get(uid), (LineOutcome, Written))])
            raise
        for line in lines:
            if isinstance(results.get(line.uniqueid), LineUnverified):
                self._failed(results[line.uniqueid], [line], credentials)
        self.known.remember(worksheet, [
            line for line in lines
            if isinstance(results.get(line.uniqueid), (LineOutcome, Written))])

    def _check_read(self, worksheet, seen, besides=()):
        """Check the lines just read from ``worksheet`` against those verified on it
        before (:func:`integrations.verify.check_known`), before anything is written or
        judged on them: by a visit's first read and by the probe.

        :raises ScreenChanged: when none of them reads as verified
        """
        check_known(seen, self.known.on(str(worksheet).strip(), besides=besides))

    def trust_screens(self):
        self.known.forget()

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

    def _save_page(self, name, reason_code, credentials):
        """Save the browser's page as ``<name>``'s failure (password scrubbed).
        :returns: the paths saved (none without a browser, or when saving failed)"""
        if self._browser is None:
            return []
        try:
            return save_failure_artifacts(self._browser.driver, self.config.artifact_dir,
                                          name, reason_code, secrets=[credentials.password])
        except Exception as exc:  # a failure report must not hide the failure
            self.log.warning("could not save failure artifacts: %s", type(exc).__name__)
            return []

    def _failed(self, error, lines, credentials):
        """Save the failed page (password scrubbed) and log it."""
        paths = []
        if not isinstance(error, BrowserError):
            paths = self._save_page(lines[0].uniqueid, error.reason_code, credentials)
        self.log.warning("worksheet %s, order %s failed: %s: %s%s", lines[0].worksheet,
                         ", ".join(line.uniqueid for line in lines), error.reason_code,
                         error.reason_text, f" (saved {', '.join(paths)})" if paths else "")
