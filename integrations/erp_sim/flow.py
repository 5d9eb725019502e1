"""erp_sim's flow (``ERP_SYSTEM=erp_sim``), also used by its single-page flavour
(``erp_sim_spa``): the same ERP behind two user interfaces, so one flow and two sets of
page objects. Other ERPs have their own flow (see ``integrations/tryton/``); what all
share is the browser primitives of :mod:`integrations.browser` and the retry policy of
:mod:`core.retry`.

One visit writes a batch of lines onto one worksheet: open the worksheet (logging in
when the ERP asks) -- by the search form's own address where it is a GET form (classic),
else through the search form (SPA) --, read its lines once, then for each line not
yet there fill in the form and submit it. A flavour's page module must offer what
:class:`~integrations.erp_sim.screens.Screens` lists (written in code, checked when a
flavour's class is defined).

Errors are classified once: Selenium's by :func:`integrations.browser.map_webdriver_error`,
the ERP's words by the flavour's message table. Within a visit, trouble the ERP has
answered (a 5xx page, a lock, a lost session, a re-rendered page) is retried a few
times; everything else goes back to the worker, which retries with backoff.

Exactly once: whenever the outcome of a submit is uncertain, the worksheet is read
back and the line is submitted again only when no line carries its uniqueid -- and
never within the visit after a timeout, since that request may still be running.
"""

import time
from decimal import Decimal
from urllib.parse import urljoin

from selenium.common.exceptions import StaleElementReferenceException

from core.errors import (BrowserError, ErpTimeout, IntegrationError, InvalidAmount,
                         PermanentError, ProductNotFound, TransientError)
from core import retry as policy
from integrations.base import LineOutcome, SeenLine
from integrations.browser import BROWSER_FAILURES, KeptBrowserIntegration, map_webdriver_error
from integrations.erp_sim import pages as classic_pages
from integrations.erp_sim.screens import Screens, has_line_with, search_result
from integrations.verify import verified_or_retried

#: errors the ERP *answered* with, retried at once within the visit (core.retry, rule 2)
_RETRY_IN_VISIT = (*policy.IN_VISIT, StaleElementReferenceException)
#: refusals of one line; the other lines of the visit go on (any other error ends it)
_LINE_REFUSALS = (ProductNotFound, InvalidAmount)


class ErpSimIntegration(KeptBrowserIntegration):
    """erp_sim driven through its web pages in Chromium (the classic flavour).

    The browser is started on first use and kept, logged in, across calls; it is
    replaced after a crash and after ``config.recycle_after_orders`` orders.
    """

    name = "erp_sim"
    #: the flavour's page objects: a module offering what :class:`Screens` lists
    pages = classic_pages

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        Screens.check(cls.pages)

    # -- one visit ----------------------------------------------------------------------

    def _visit(self, worksheet, lines, credentials, results):
        """Write ``lines`` onto ``worksheet``, filling ``results`` as it goes."""
        with verified_or_retried(results, self._maybe_on_sheet):
            self._write_all(worksheet, lines, credentials, results)

    def _write_all(self, worksheet, lines, credentials, results):
        sheet = self._open_worksheet(worksheet, credentials)
        seen = self._seen(sheet)
        self._check_read(worksheet, seen, besides={line.uniqueid for line in lines})
        present = [one.text for one in seen]
        for line in lines:
            if line.uniqueid in results:
                continue  # the same order twice in one batch
            if has_line_with(present, line.uniqueid):
                self.log.info("worksheet %s: line for order %s already there", worksheet,
                              line.uniqueid)
                results[line.uniqueid] = LineOutcome.EXISTED
                continue
            try:
                sheet = self._write(sheet, line, credentials)
            except _LINE_REFUSALS as exc:
                results[line.uniqueid] = exc
                self._failed(exc, [line], credentials)
                continue
            present.append(line.text)
            results[line.uniqueid] = LineOutcome.CREATED
            self.log.info("worksheet %s: line added for order %s", worksheet, line.uniqueid)
        self._verify(sheet, lines, results, credentials)

    def _verify(self, sheet, lines, results, credentials):
        """Read the worksheet back and repair it (:func:`integrations.verify.verify_visit`).

        The page shown after the visit's last write is the read-back: erp_sim draws it
        from its database after the save (classic: the page the save redirects to; spa:
        the sheet the save answers with), so a line stored twice -- Chromium resending
        a POST whose connection closed before the answer -- shows there twice.
        """
        shown = [sheet]

        def read():
            return self._seen(shown[0])

        def delete(doomed):
            for one in doomed:
                shown[0] = self._delete(shown[0], one.ref, lines[0].worksheet, credentials)

        def rewrite(line):
            shown[0] = self._write(shown[0], line, credentials)

        self._verify_visit(lines, results, credentials, read, delete, rewrite)

    def _probe_screens(self, worksheet, credentials, checked):
        """Log in (when the ERP asks), check the search form, open ``worksheet`` as a
        visit does, open its add-line form (the SPA's dialog) and check it, leaving it
        unsaved, then check and read the lines table. Every page object checks what it
        relies on (:mod:`integrations.erp_sim.screens`); nothing is typed into a form
        that sends a line or a delete."""
        search = self._load(self.pages.START_PATH, credentials, self.pages.SearchPage)
        checked.append("login")
        search.check()
        checked.append("search")
        if worksheet is None:
            return None
        sheet = self._open_worksheet(worksheet, credentials)
        checked.append("worksheet")
        refusal = [m for m in (sheet.closed_message(), sheet.locked_message()) if m]
        if not refusal:  # a sheet that takes no lines shows no add-line form to check
            sheet.inspect_line_form()
            checked.append("line form")
        self._check_read(worksheet, self._seen(sheet))
        checked.append("lines")
        if refusal:
            raise self.pages.erp_error(refusal)
        if sheet.customer() == "":
            return "belongs to no customer"
        return None

    def _read_lines(self, worksheet, credentials):
        return self._seen(self._open_worksheet(worksheet, credentials))

    @staticmethod
    def _seen(sheet):
        """The lines the worksheet page ``sheet`` shows, as :class:`SeenLine` s."""
        return [SeenLine(one.product_nr, one.amount, one.text, one.line_id)
                for one in sheet.line_rows()]

    def _delete(self, sheet, line_id, worksheet, credentials):
        """Delete line ``line_id`` through the UI; :returns: the worksheet page after it.

        Whatever the outcome, the next read-back decides: a delete that did not happen
        is found again, one that happened twice (a resent POST) finds the line gone."""
        try:
            return sheet.delete_line(line_id)
        except (IntegrationError, StaleElementReferenceException, *BROWSER_FAILURES) as exc:
            # A closed worksheet lets nothing be deleted (in the end: LINE_UNVERIFIED).
            error = self._classify(exc)
            if isinstance(error, BrowserError):
                raise error from exc
            self.log.info("worksheet %s: deleting line %s: %s, reading the worksheet again",
                          worksheet, line_id, error.reason_code)
            return self._open_worksheet(worksheet, credentials)

    def _write(self, sheet, line, credentials):
        """Add ``line`` on the open ``sheet`` unless a read-back finds it already there.

        :returns: the worksheet page after the line was added
        """
        values = (str(line.product_nr).strip(), amount_text(line.product_amount), line.text)
        error = None
        for attempt in range(policy.VISIT_ATTEMPTS):
            if attempt:
                self._pause(attempt)
            try:
                sheet.fill_line(*values)  # nothing sent yet: any failure here is certain
            except _RETRY_IN_VISIT as exc:
                error = self._classify(exc)
                sheet = self._open_worksheet(line.worksheet, credentials)
                continue
            self._sending(line)
            try:
                return sheet.submit_line(line.text)
            except PermanentError:
                raise  # the ERP refused the values: nothing was stored
            except (TransientError, StaleElementReferenceException, *BROWSER_FAILURES) as exc:
                error = self._classify(exc)
                if isinstance(error, BrowserError):
                    raise error from exc  # the next call starts afresh and reads first
            # The line may or may not be stored -- even a lock banner may come from the
            # page after a save, not from the save: read the worksheet back first.
            self.log.warning("worksheet %s, order %s: outcome unknown (%s), reading the "
                             "worksheet back", line.worksheet, line.uniqueid, error.reason_code)
            sheet = self._open_worksheet(line.worksheet, credentials)
            if has_line_with(sheet.lines(), line.uniqueid):
                return sheet
            if isinstance(error, ErpTimeout):
                # No answer: the request may still be running and store the line after
                # this look. The worker's retry, after its backoff, looks again first.
                raise error
        raise error

    def _open_worksheet(self, number, credentials):
        """Open worksheet ``number``, logging in when asked; retries answered trouble."""
        for attempt in range(policy.VISIT_ATTEMPTS):
            if attempt:
                self._pause(attempt)
            try:
                return self._find(number, credentials)
            except _RETRY_IN_VISIT as exc:
                error = self._classify(exc)
                self.log.info("worksheet %s: %s, trying again", number, error.reason_code)
        raise error

    def _find(self, number, credentials):
        """The page of worksheet ``number``: through the search form, or by loading the
        address that form loads where the flavour has one (``pages.search_address``:
        the classic pages' search is a GET form; one page load a visit instead of two)."""
        address = getattr(self.pages, "search_address", None)
        if address is None:
            return self._load(self.pages.START_PATH, credentials,
                              self.pages.SearchPage).open_worksheet(number)
        page = self._load(address(number), credentials, self.pages.WorksheetPage,
                          self.pages.SearchPage)
        return search_result(self.pages, page, number)

    def _load(self, path, credentials, *pages):
        """Load ``path`` (relative to the ERP's URL) and wait for one of ``pages``,
        logging in first when the ERP asks (it then shows the page it was asked for)."""
        browser = self._browser_for(credentials)
        # land() below recognises an error page itself: no round trip of its own here
        browser.open(urljoin(self.config.erp_url.rstrip("/") + "/", path), check=False)
        page = self.pages.land(browser, *pages)
        if isinstance(page, self.pages.LoginPage):
            self.log.info("logging in to the ERP as %s", credentials.username)
            self._credentials = None
            page = page.login(credentials, *pages)
            self._credentials = credentials
        return page

    @staticmethod
    def _classify(exc):
        # The one translation of Selenium's exceptions (a bridge error passes as it is).
        return map_webdriver_error(exc)

    @staticmethod
    def _pause(attempt):
        time.sleep(policy.visit_pause(attempt))


def amount_text(amount):
    """``Decimal("5.000")`` -> ``"5"``, ``Decimal("2.50")`` -> ``"2.5"``, never exponent form."""
    return format(Decimal(str(amount)).normalize(), "f")
