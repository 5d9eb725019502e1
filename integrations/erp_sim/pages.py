"""Page objects of erp_sim's classic, server-rendered pages: one class per screen.

A service of a page returns the page object of the screen it leads to, or raises the
bridge error for what the ERP said (:mod:`integrations.erp_sim.messages`).
"""

import json
import sys
from urllib.parse import urlencode

from selenium.webdriver.common.by import By

from core.errors import ErpUnavailable, ScreenChanged, SessionExpired, UnexpectedPage
from integrations.erp_sim import screens
from integrations.erp_sim.messages import erp_error
from integrations.erp_sim.screens import (LINE_ROWS_JS, ErrorPage, LineTable, LoginForm, Page,
                                          LineForm, SearchForm)

START_PATH = "worksheets"


def search_address(number):
    """What the search form loads for worksheet ``number``: it is a plain GET form
    (``<form id="search-form" method="get" action="/worksheets">`` with one field,
    ``number``), so the flow loads this address itself -- what a user's browser shows
    after the search -- and saves a page load, a fill and a click on every visit."""
    return "worksheets?" + urlencode({"number": str(number)})


class HttpErrorPage(ErrorPage):
    LOADED = (By.ID, "http-error")

    def error(self):
        heading = self.first_text("#http-error") or ""
        status = self.driver.find_element(*self.LOADED).get_attribute("data-status") or ""
        if status.startswith("5"):
            return ErpUnavailable(f"ERP answered with an error page: {heading}")
        return UnexpectedPage(f"ERP answered {heading!r} at {self.driver.current_url}")


class ClassicPage(Page):
    """A server-rendered screen: sending something loads the next page."""

    def send(self, locator, what):
        # land(after=...) waits for the next page: one poll for "left, loaded, and
        # which screen", not one wait for the page and another for the screen
        return self.browser.click_to_leave(locator)


class LoginPage(ClassicPage, LoginForm):
    LOADED = (By.ID, "login-form")
    USERNAME = (By.NAME, "username")
    PASSWORD = (By.NAME, "password")
    SUBMIT = (By.ID, "login-submit")


class WorksheetSearchPage(ClassicPage, SearchForm):
    LOADED = (By.ID, "search-form")
    NUMBER = (By.NAME, "number")
    SUBMIT = (By.ID, "search-submit")
    # what search_address relies on: a GET form to /worksheets
    RELIES_ON = ((By.CSS_SELECTOR, '#search-form[method="get"][action$="/worksheets"]'),)


class WorksheetPage(ClassicPage, LineTable):
    LOADED = (By.ID, "worksheet")
    FORM = LineForm("#add-line-form", product=(By.NAME, "product_nr"),
                    amount=(By.NAME, "amount"), text=(By.NAME, "text"),
                    submit=(By.ID, "add-line-submit"))
    # Everything the flow reads from a worksheet, in one round trip: what it shows and
    # the shape of what the flow relies on. A server-rendered page does not change once
    # loaded, so it is read once per page object.
    _STATE_JS = LINE_ROWS_JS + """
        function texts(css) {
            return Array.from(document.querySelectorAll(css), function (e) {
                return e.textContent.trim();
            });
        }
        var sheet = document.querySelector('#worksheet');
        return {number: sheet ? sheet.getAttribute('data-number') : null,
                closed: texts('#closed-banner'), locked: texts('#locked-banner'),
                customer: texts('#customer'),
                errors: texts('#form-errors li'), lines: texts('#lines tr.line td.text'),
                rows: rows(), shape: shape(), form_missing: missing(%s)};
    """ % json.dumps(FORM.relied_on())

    LANDED_JS = _STATE_JS

    def __init__(self, browser, wait=True):
        super().__init__(browser, wait)
        self._state = None
        self._form = None  # what fill_line keeps for submit_line

    def landed(self, state):
        self._state = state  # read by land() in the round trip that found the sheet

    def _read(self, key):
        if self._state is None:
            self._state = self.driver.execute_script(self._STATE_JS)
        return self._state[key]

    def number(self):
        """The worksheet number shown, as a string."""
        return self._read("number")

    def closed_message(self):
        """The "closed (invoiced)" banner's text, or ``None`` when the sheet is open."""
        return next(iter(self._read("closed")), None)

    def locked_message(self):
        """The "being edited by another user" banner's text, or ``None``."""
        return next(iter(self._read("locked")), None)

    def customer(self):
        """The customer the sheet shows (``""``: none), or ``None`` without that field."""
        return next(iter(self._read("customer")), None)

    def errors(self):
        return list(self._read("errors"))

    def lines(self):
        """The texts of the worksheet's lines. :raises ScreenChanged: see :meth:`check_lines`"""
        self.check_lines()
        return list(self._read("lines"))

    def _line_rows(self):
        return self._read("rows")

    def _shape(self):
        return self._read("shape")

    def check_line_form(self):
        missing = self._read("form_missing")
        if missing:
            raise ScreenChanged(f"line form: {', '.join(missing)} not found", screen="line form")

    def refusals(self):
        """The form's errors, else the banners: what the ERP said instead of the change."""
        return self.errors() or [m for m in (self.closed_message(), self.locked_message()) if m]

    def fill_line(self, product_nr, amount, text):
        """Take the values of the add-line form; nothing is sent, nothing is typed yet.

        :meth:`submit_line` fills the form in and clicks in one round trip (with the
        browser pool each command is a hop through the Grid): one command a line fewer.

        :raises WorksheetClosed: or :class:`WorksheetLocked`, when it takes no lines
        :raises ScreenChanged: when the form or the lines table is not as known
        """
        refusal = self.closed_message() or self.locked_message()
        if refusal:
            raise erp_error([refusal])
        self.check_lines()
        self.check_line_form()
        form = self.FORM
        self._form = [(form.product, product_nr), (form.amount, amount), (form.text, text)]

    def submit_line(self, text):
        """Fill in the form with what :meth:`fill_line` took and submit it.

        :returns: the :class:`WorksheetPage` showing the line with ``text``
        :raises StaleElementReferenceException: when the fields would not hold the values
            (nothing was sent)
        :raises ProductNotFound: or :class:`InvalidAmount` etc., when the ERP refuses
        :raises SessionExpired: when the ERP shows the login form instead
        :raises UnexpectedPage: when the ERP shows neither the line nor an error
        """
        if self._form is None:
            raise RuntimeError("submit_line() before fill_line()")
        sent = self.browser.fill_and_leave(self._form, self.FORM.submit)
        page = self.land(WorksheetPage, after=sent)
        if isinstance(page, LoginPage):
            raise SessionExpired("The ERP asked for a login instead of taking the line")
        refusal = page.refusals()
        if refusal:
            raise erp_error(refusal)
        if text not in page.lines():
            raise UnexpectedPage("The ERP showed the worksheet without the new line")
        return page


def land(browser, *pages, after=None):
    """Wait for one of ``pages`` (or the login page; an error page raises its error)."""
    return screens.land(browser, pages, always=(HttpErrorPage, LoginPage), after=after)


SearchPage = WorksheetSearchPage  # the name integrations.erp_sim.flow looks for
ClassicPage.site = sys.modules[__name__]
