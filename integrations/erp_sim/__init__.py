"""Integration with erp_sim, the stand-in workshop ERP (``ERP_SYSTEM=erp_sim``).

One add-line, in the browser: open the worksheet search (logging in first when the
ERP asks), search the worksheet by number, look for a line carrying the order's
uniqueid, and only if there is none fill in the add-line form. The search is used
rather than a deep link because that is how a person -- and a vendor ERP without
stable URLs -- reaches a worksheet; its "not found" answer is the same page.

The browser is started on first use and kept, logged in, until :meth:`close`.
"""

import time
from decimal import Decimal
from urllib.parse import urljoin, urlsplit

import urllib3
from selenium.common.exceptions import WebDriverException

from bridge.exceptions import (BridgeError, BrowserError, PermanentError, SessionExpired,
                               TransientError)
from integrations.base import Integration, LineOutcome
from integrations.browser import Browser, map_webdriver_error, save_failure_artifacts
from integrations.erp_sim.pages import LoginPage, WorksheetSearchPage, land

#: what Selenium and the HTTP client under it raise when the browser or driver fails
_BROWSER_FAILURES = (WebDriverException, urllib3.exceptions.HTTPError, OSError)


def amount_text(amount):
    """``Decimal("5.000")`` -> ``"5"``, ``Decimal("2.50")`` -> ``"2.5"``, never exponent form."""
    return format(Decimal(str(amount)).normalize(), "f")


class ErpSimIntegration(Integration):
    name = "erp_sim"

    def __init__(self, config, logger):
        super().__init__(config, logger)
        self._browser = None  # started on first use
        self._credentials = None  # what the browser's session is logged in with

    def add_line(self, line, credentials):
        try:
            return self._add_line(line, credentials)
        except BridgeError as exc:
            self._failed(exc, line, credentials)
            raise
        except _BROWSER_FAILURES as exc:
            error = map_webdriver_error(exc)
            self._failed(error, line, credentials)
            raise error from exc
        except Exception:
            # A bug, not the ERP: a fresh browser is still the safe way on.
            self.log.exception("worksheet %s, order %s: unexpected error", line.worksheet,
                               line.uniqueid)
            self.close()
            raise

    def close(self):
        browser, self._browser, self._credentials = self._browser, None, None
        if browser is not None:
            browser.quit()
            self.log.info("browser closed")

    # -- one order ----------------------------------------------------------------------

    def _add_line(self, line, credentials):
        sheet = self._open_worksheet(line.worksheet, credentials)
        if sheet.has_line_with(line.uniqueid):
            self.log.info("worksheet %s: line for order %s already there", line.worksheet,
                          line.uniqueid)
            return LineOutcome.EXISTED
        return self._submit(sheet, line, credentials)

    def _submit(self, sheet, line, credentials, retried=False):
        try:
            sheet.add_line(str(line.product_nr).strip(), amount_text(line.product_amount),
                           line.text)
        except PermanentError:
            raise  # the ERP refused the values: nothing was added
        except (TransientError, *_BROWSER_FAILURES) as exc:
            error = map_webdriver_error(exc)
            if isinstance(error, BrowserError):
                raise error from exc  # the next call starts afresh and looks first
            # The form may or may not have been stored: look before anything else.
            self.log.warning("worksheet %s, order %s: outcome unknown (%s), checking the "
                             "worksheet", line.worksheet, line.uniqueid, error.reason_code)
            sheet = self._open_worksheet(line.worksheet, credentials)
            if sheet.has_line_with(line.uniqueid):
                return self._created(line)
            if isinstance(error, SessionExpired) and not retried:
                # Sent to the login instead of being served, and the line is not there:
                # one more try cannot double it. After a timeout the request may still
                # be running, so that is left to the worker's retry, which looks first.
                return self._submit(sheet, line, credentials, retried=True)
            raise error from exc
        return self._created(line)

    def _created(self, line):
        self.log.info("worksheet %s: line added for order %s", line.worksheet, line.uniqueid)
        return LineOutcome.CREATED

    # -- navigation -----------------------------------------------------------------------

    def _open_worksheet(self, number, credentials):
        try:
            return self._search_page(credentials).open_worksheet(number)
        except SessionExpired:
            # Logged out between two pages: log in once more.
            return self._search_page(credentials).open_worksheet(number)

    def _search_page(self, credentials):
        browser = self._browser_for(credentials)
        browser.open(urljoin(self.config.erp_url.rstrip("/") + "/", WorksheetSearchPage.PATH))
        page = land(browser, WorksheetSearchPage)
        if isinstance(page, LoginPage):
            self.log.info("logging in to the ERP as %s", credentials.username)
            self._credentials = None
            page = page.login(credentials)
            self._credentials = credentials
        return page

    def _browser_for(self, credentials):
        if self._browser is not None and self._credentials not in (None, credentials):
            # Reconfigured credentials: a fresh browser drops the old user's session.
            self.close()
        if self._browser is None:
            started = time.monotonic()
            self._browser = Browser(self.config)
            # Only host and port: a Grid URL may carry a user and password.
            remote = urlsplit(self.config.selenium_remote_url)
            where = f"remote {remote.hostname}:{remote.port}" if remote.hostname else "local"
            self.log.info("browser started (%s) in %.1fs", where, time.monotonic() - started)
        return self._browser

    # -- failures -------------------------------------------------------------------------

    def _failed(self, error, line, credentials):
        """Save the failed page (password scrubbed), log it, drop a broken browser."""
        paths = []
        if self._browser is not None and not isinstance(error, BrowserError):
            try:
                paths = save_failure_artifacts(self._browser.driver, self.config.artifact_dir,
                                               line.uniqueid, error.reason_code,
                                               secrets=[credentials.password])
            except Exception as exc:  # a failure report must not hide the failure
                self.log.warning("could not save failure artifacts: %s", type(exc).__name__)
        self.log.warning("worksheet %s, order %s failed: %s: %s%s", line.worksheet,
                         line.uniqueid, error.reason_code, error.reason_text,
                         f" (saved {', '.join(paths)})" if paths else "")
        if isinstance(error, BrowserError):
            self.close()


INTEGRATION = ErpSimIntegration
