"""The integration class of ``ERP_SYSTEM=tryton``: one visit per worksheet through sao.

A visit: open the sale whose *Reference* is the worksheet (the Sales list filtered by
the address's domain the first time, then straight by its id), logging in when sao
asks; read its lines once; for each order not yet there, add a line in the line
dialog, save the sale and read the lines back -- a line counts as written only when
the list shows it once, with the right product and quantity, not merely its text
(:mod:`integrations.verify`: duplicates and wrong lines, such as the comment line sao
saves when Add is clicked from the Description field, are deleted in the Lines list and
written again).

Exactly once: a line is recognised by ``OilMat <uniqueid>`` in its description. When
a save's outcome is unknown (a timeout, a lost answer), the sale is read again on a
fresh page before anything is retried, and a line is never added again in the same
visit after a timeout -- its request may still be running.

The browser is kept, logged in, across calls (about 4 s of sao start-up and login
saved per visit) and replaced after a crash and after ``recycle_after_orders`` orders.
"""

import json
import time
from decimal import Decimal
from urllib.parse import quote

from core.errors import (BridgeError, BrowserError, ErpTimeout, IntegrationError,
                         InvalidAmount, ProductNotFound, SessionExpired, TransientError,
                         UnexpectedPage, WorksheetClosed)
from core import retry as policy
from integrations.base import LineOutcome, lines_carrying
from integrations.browser import BROWSER_FAILURES, KeptBrowserIntegration, map_webdriver_error
from integrations.tryton import pages
from integrations.verify import verified_or_retried

#: refusals of one line; the other lines of the visit go on
_LINE_REFUSALS = (ProductNotFound, InvalidAmount)
#: tries of filling in one line's dialog (nothing is sent before the save)
PRE_SAVE_ATTEMPTS = 2


class TrytonIntegration(KeptBrowserIntegration):
    name = "tryton"

    def __init__(self, config, logger):
        super().__init__(config, logger)
        self.database = config.options.get("database", "workshop")
        self._sao = None  # the sao application in the kept browser
        self._fresh_page = True  # load sao anew at the next visit (no stale tab)
        self._sale_ids = {}  # worksheet -> sale id seen in sao's address

    def _browser_started(self):
        self._sao = pages.Sao(self._browser, self.config.erp_url, self.database)
        self._fresh_page = True

    def _browser_closed(self):
        self._sao = None
        self._fresh_page = True

    # -- one visit ----------------------------------------------------------------------

    def _visit(self, worksheet, lines, credentials, results):
        with verified_or_retried(results, self._maybe_on_sheet):
            self._write_all(worksheet, lines, credentials, results)

    def _write_all(self, worksheet, lines, credentials, results):
        form = self._open_sale(worksheet, credentials)
        present = form.lines()
        self._check_read(worksheet, present, besides={line.uniqueid for line in lines})
        missing, seen = [], set()
        for line in lines:
            if line.uniqueid in results or line.uniqueid in seen:
                continue  # the same order twice in one batch
            seen.add(line.uniqueid)
            if lines_carrying(present, line.uniqueid):
                results[line.uniqueid] = LineOutcome.EXISTED  # verified below
                self.log.info("worksheet %s: line for order %s already there", worksheet,
                              line.uniqueid)
            else:
                missing.append(line)
        if missing:
            form.check(worksheet)  # closed: raised for every line not yet there
        if len(missing) > 1:
            form, missing = self._write_together(form, missing, results, credentials)
        for line in missing:
            try:
                form, present = self._write(form, line, credentials)
            except _LINE_REFUSALS as exc:
                results[line.uniqueid] = exc
                self._failed(exc, [line], credentials)
                if self._fresh_page:  # the refused line may linger unsaved in the form
                    form = self._open_sale(worksheet, credentials)
                continue
            self._done(line, present, results)
        self._verify(form, lines, results, credentials)
        # A tab left open would be shown again, stale, by the next visit to this sale.
        self._fresh_page = not self._sao.close_tab()

    def _done(self, line, present, results):
        results[line.uniqueid] = LineOutcome.CREATED  # seen after the save; verified below
        self.log.info("worksheet %s: line added for order %s", line.worksheet, line.uniqueid)

    def _verify(self, form, lines, results, credentials):
        """Read the sale's lines back and repair them (:func:`integrations.verify.verify_visit`):
        extra lines ticked and deleted in the Lines list, the sale saved; a wrong line
        (sao's comment line with no product, e.g.) deleted and written again."""
        shown = [form]

        def read():
            return shown[0].lines()

        def delete(doomed):
            try:
                shown[0].delete_lines([one.ref for one in doomed])
            except (IntegrationError, *BROWSER_FAILURES) as exc:
                # A sale past draft lets nothing be deleted; a glitch may pass. Either
                # way the next read-back decides (in the end: LINE_UNVERIFIED).
                error = map_webdriver_error(exc)
                if isinstance(error, BrowserError):
                    raise error from exc
                self.log.warning("worksheet %s: deleting %d line(s): %s: %s", form.reference,
                                 len(doomed), error.reason_code, error.reason_text)
                self._fresh_page = True
                shown[0] = self._open_sale(form.reference, credentials)

        def rewrite(line):
            shown[0], _ = self._write(shown[0], line, credentials)

        self._verify_visit(lines, results, credentials, read, delete, rewrite)

    def _read_lines(self, worksheet, credentials):
        form = self._open_sale(worksheet, credentials)
        seen = form.lines()
        self._fresh_page = not self._sao.close_tab()
        return seen

    def _write_together(self, form, lines, results, credentials):
        """Add all ``lines`` in the form, then save once and read back once.

        A save costs a round trip and a re-read of every line: once per visit rather
        than once per line. Whatever goes wrong falls back to :meth:`_write`, line by
        line, after the sale has been read again.

        :returns: ``(form, lines still to write one by one)``
        """
        added = []
        for index, line in enumerate(lines):
            try:
                self._fill_in(form, line, more=index < len(lines) - 1)
            except _LINE_REFUSALS as exc:  # its dialog was discarded; the others go on
                results[line.uniqueid] = exc
                self._failed(exc, [line], credentials)
                continue
            except (TransientError, *BROWSER_FAILURES) as exc:
                if isinstance(map_webdriver_error(exc), BrowserError):
                    raise
                # Nothing is saved yet: certain. One by one on a fresh page instead.
                self._fresh_page = True
                return (self._open_sale(lines[0].worksheet, credentials),
                        [one for one in lines if one.uniqueid not in results])
            added.append(line)
        if not added:
            return form, []
        for line in added:
            self._sending(line)
        try:
            form.save()
            present = form.lines()
        except (IntegrationError, *BROWSER_FAILURES) as exc:
            error = map_webdriver_error(exc)
            self._fresh_page = True
            if isinstance(error, BrowserError):
                raise error from exc
            self.log.warning("worksheet %s: saving %d lines: %s, reading the sale back",
                             lines[0].worksheet, len(added), error.reason_code)
            form = self._open_sale(lines[0].worksheet, credentials)
            present = form.lines()
            unsaved = [line for line in added if not lines_carrying(present, line.uniqueid)]
            if isinstance(error, ErpTimeout):
                # No answer: the save may still be stored after this look; the worker's
                # retry reads first. No second try now.
                for line in unsaved:
                    results[line.uniqueid] = error
                unsaved = []
            for line in added:
                if line not in unsaved and line.uniqueid not in results:
                    self._done(line, present, results)
            return form, unsaved  # one by one: a refusal then hits its own line only
        for line in added:
            self._done(line, present, results)
        return form, []

    def _write(self, form, line, credentials):
        """Add ``line`` on the open ``form`` and save; :returns: ``(form, lines read back)``"""
        for attempt in range(PRE_SAVE_ATTEMPTS):
            try:
                self._fill_in(form, line)
                break
            except _LINE_REFUSALS:
                raise
            except (TransientError, *BROWSER_FAILURES) as exc:
                # Nothing has left the browser before the save: certain, safe to redo.
                # (A session renewed while the dialog opened leaves it blank, e.g.)
                error = map_webdriver_error(exc)
                if isinstance(error, BrowserError) or attempt == PRE_SAVE_ATTEMPTS - 1:
                    raise error from exc
                self.log.info("worksheet %s, order %s: %s before saving, again on a fresh "
                              "page", line.worksheet, line.uniqueid, error.reason_code)
                self._fresh_page = True
                form = self._open_sale(line.worksheet, credentials)
        self._sending(line)
        try:
            form.save()
            return form, form.lines()
        except _LINE_REFUSALS:
            self._fresh_page = True  # the refused line is still in the unsaved form
            raise
        except (IntegrationError, *BROWSER_FAILURES) as exc:
            error = map_webdriver_error(exc)
            self._fresh_page = True
            if isinstance(error, BrowserError):
                raise error from exc  # the next call starts afresh and reads first
        # The save may or may not have been stored: read the sale back on a fresh page.
        self.log.warning("worksheet %s, order %s: outcome unknown (%s), reading the sale back",
                         line.worksheet, line.uniqueid, error.reason_code)
        form = self._open_sale(line.worksheet, credentials)
        present = form.lines()
        if lines_carrying(present, line.uniqueid):
            return form, present
        if isinstance(error, WorksheetClosed) and form.state == "draft":
            # Tryton refused the save, but not for the draft check (messages.py: a
            # refusal's kind does not say which): say so rather than guess.
            raise UnexpectedPage(f"Tryton refused the line of order {line.uniqueid} on a "
                                 f"draft sale: {error.reason_text}") from error
        # Not there: after a timeout the request may still store it, so no second try
        # now; the worker's retry, after its backoff, reads the sale first again.
        raise error

    def _fill_in(self, form, line, more=False):
        """Fill in a new line's dialog and add it to the (unsaved) sale.

        :param more: another line follows: the dialog is kept open for it ("Add and
            New": no dialog closing and opening again per line)
        """
        dialog = form.new_line()
        try:
            dialog.fill(str(line.product_nr).strip(), amount_text(line.product_amount),
                        line.text)
        except IntegrationError:
            self._fresh_page = True  # a half-filled line may stay in the form
            try:
                dialog.discard()
            except (IntegrationError, *BROWSER_FAILURES):
                pass  # the fresh page drops it anyway
            raise
        if dialog.add(more):
            form.open_dialog = dialog
        self.log.debug("worksheet %s: line for order %s filled in", line.worksheet, line.uniqueid)

    def _open_sale(self, worksheet, credentials):
        """Show the sale whose Reference is ``worksheet``; log in when sao asks.

        Trouble Tryton answered with (core.retry, rule 2) is tried again at once."""
        for attempt in range(policy.VISIT_ATTEMPTS):
            if attempt:
                time.sleep(policy.visit_pause(attempt))
            try:
                return self._show_sale(worksheet, credentials)
            except BridgeError as exc:
                if not policy.retry_in_visit(exc) or attempt == policy.VISIT_ATTEMPTS - 1:
                    raise
                self.log.info("worksheet %s: %s, trying again", worksheet, exc.reason_code)

    def _show_sale(self, worksheet, credentials):
        sao = self._sao_for(credentials)
        sale_id = self._sale_ids.get(worksheet)
        fresh = self._fresh_page or sao.tab_count() > 0
        self._fresh_page = True  # until this visit ends cleanly
        if sale_id is not None:
            sao.open(f"model/sale.sale/{sale_id}", fresh)
            form = self._after_login(sao, lambda: pages.SaleForm(sao), credentials)
            if form.reference == worksheet:
                return form.check(worksheet, writable=False)
            # The sale is not what it was (another database?): search again.
            self._sale_ids.pop(worksheet, None)
            fresh = True
        domain = quote(json.dumps([["reference", "=", worksheet]]), safe="")
        sao.open(f"model/sale.sale;domain={domain}", fresh)
        found = self._after_login(sao, lambda: pages.SaleList(sao, worksheet), credentials)
        form = found.open_sale()
        if form.record_id is not None:
            self._sale_ids[worksheet] = form.record_id
        return form.check(worksheet, writable=False)

    # -- the probe (workers/probing.py): every screen a visit uses, nothing written -----

    def _probe_screens(self, worksheet, credentials, checked):
        """sao and its login, the Sales list searched by Reference, the sale's form (by
        its field names), its line dialog (opened, checked, discarded: nothing is added
        to the sale) and its Lines list (by its columns' field names). Nothing to say of a
        sale's owner: Tryton requires a party on every sale.

        sao is loaded anew for a probe: it keeps the views it was served for as long as
        the page lives, so a kept page would show a form as it was before an admin
        customised it. Visits keep the page (the server still checks every field they
        write); the probe, every ``PROBE_INTERVAL_SECONDS`` while idle, sees what the
        server serves now."""
        self._fresh_page = True
        sao = self._sao_for(credentials)
        if worksheet is None:
            # a search that finds nothing: the list and the login, no sale opened
            domain = quote(json.dumps([["id", "=", -1]]), safe="")
            sao.open(f"model/sale.sale;domain={domain}", True)
            self._fresh_page = True
            self._after_login(sao, lambda: pages.SaleList(sao, "(none)"), credentials)
            checked += ["login", "search"]
            return None
        form = self._open_sale(worksheet, credentials)
        checked += ["login", "search", "worksheet"]
        form.check(worksheet)  # closed: said so, not a changed screen (kept.probe)
        form.new_line().discard()
        checked.append("line form")
        self._check_read(worksheet, form.lines())
        checked.append("lines")
        self._fresh_page = not self._sao.close_tab()
        return None

    def _after_login(self, sao, screen, credentials):
        """``screen()``; when it finds sao's login dialog instead, log in and try again."""
        try:
            shown = screen()
            if not getattr(shown, "login_shown", False):
                return shown
        except SessionExpired:
            pass  # SaleForm: the login dialog came instead of the form
        started = time.monotonic()
        self.log.info("logging in to Tryton as %s", credentials.username)
        self._credentials = None
        pages.LoginDialog(sao).login(credentials)
        self._credentials = credentials
        self.log.info("logged in in %.1fs", time.monotonic() - started)
        shown = screen()
        if getattr(shown, "login_shown", False):
            raise SessionExpired("sao asked for a login again right after logging in")
        return shown

    def _sao_for(self, credentials):
        self._browser_for(credentials)
        self._sao.credentials = credentials
        return self._sao

    def _fail_rest(self, error, lines, results, credentials):
        self._fresh_page = True  # whatever ended the visit, the page is not to be trusted
        super()._fail_rest(error, lines, results, credentials)


def amount_text(amount):
    """``Decimal("5.000")`` -> ``"5"``, ``Decimal("2.50")`` -> ``"2.5"``, never exponent form."""
    return format(Decimal(str(amount)).normalize(), "f")
