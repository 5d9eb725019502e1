"""Page objects of erp_sim's single-page app (``python -m erp_sim --flavor spa``).

Every screen is drawn by the app's script inside ``#app``, which says which screen it
shows (``data-view``) and whether calls are under way (``data-busy``); a locator
matches a screen only once it has settled. An action that makes a JSON call waits
until the app has drawn the answer (:meth:`SpaPage.await_call`), never a fixed time.
"""

import sys

from selenium.webdriver.common.by import By

from core.errors import ErpUnavailable, ScreenChanged, SessionExpired, UnexpectedPage
from integrations.browser import css_selector
from integrations.erp_sim import screens
from integrations.erp_sim.messages import erp_error
from integrations.erp_sim.screens import (LINE_ROWS_JS, ErrorPage, LineForm, LineTable,
                                          LoginForm, Page, SearchForm, check_line_table)

START_PATH = ""
SETTLED = "#app[data-busy='0']"

_CALLS_JS = "return document.getElementById('app').getAttribute('data-calls') || '0';"
_CALL_DRAWN_JS = """
var app = document.getElementById('app');
return !!app && app.getAttribute('data-busy') === '0'
    && Number(app.getAttribute('data-calls') || 0) > Number(arguments[0]);
"""
# What the flow reads from the worksheet screen, in one round trip.
_STATE_JS = LINE_ROWS_JS + """
function texts(css) {
    return Array.from(document.querySelectorAll(css), function (e) {
        return e.textContent.trim();
    });
}
var app = document.getElementById('app');
var sheet = document.querySelector('#worksheet'), dialog = document.querySelector('#add-line-dialog');
var suggestions = document.querySelector('#product-suggestions');
var chosen = document.querySelector('#product-chosen');
return {view: app.getAttribute('data-view'), number: sheet ? sheet.getAttribute('data-number') : null,
        closed: texts('#closed-banner'), locked: texts('#locked-banner'),
        customer: texts('#customer'), banner: texts('#error-banner'), lines: texts('#lines tr.line td.text'), rows: rows(),
        shape: shape(), open_missing: missing(arguments[0]), form_missing: missing(arguments[1]),
        sheet_errors: texts('#form-errors li'),
        dialog: dialog ? dialog.getAttribute('data-state') : null,
        errors: texts('#dialog-errors li'),
        suggested_for: suggestions ? suggestions.getAttribute('data-query') : null,
        no_match: texts('#product-suggestions li.no-match'),
        chosen: chosen ? chosen.getAttribute('data-nr') : null};
"""
# Click the suggestion that is exactly product arguments[0]; false when there is none.
_PICK_JS = """
var nr = arguments[0];
var item = Array.from(document.querySelectorAll('#product-suggestions li.suggestion'))
    .find(function (e) { return e.getAttribute('data-nr') === nr; });
if (item) { item.click(); }
return !!item;
"""


class SpaPage(Page):
    """A screen of the app."""

    def send(self, locator, what):
        self.await_call(lambda: self.browser.click(locator), what)

    def await_call(self, action, what):
        """Do ``action`` (which starts a JSON call) and wait until its answer is drawn.

        :raises ErpTimeout: when no answer came within ``config.page_load_timeout``
        """
        before = self.driver.execute_script(_CALLS_JS)
        action()
        self.browser.wait_until(lambda driver: driver.execute_script(_CALL_DRAWN_JS, before),
                                what, timeout=self.browser.config.page_load_timeout)


class ErrorBanner(ErrorPage):
    LOADED = (By.CSS_SELECTOR, f"{SETTLED} #error-banner")

    def error(self):
        return ErpUnavailable(f"ERP error banner: {self.first_text('#error-banner')}")


class LoginPage(SpaPage, LoginForm):
    LOADED = (By.CSS_SELECTOR, f"{SETTLED}[data-view='login'] #login-form")
    USERNAME = (By.ID, "username")
    PASSWORD = (By.ID, "password")
    SUBMIT = (By.ID, "login-submit")


class SearchPage(SpaPage, SearchForm):
    LOADED = (By.CSS_SELECTOR, f"{SETTLED}[data-view='search'] #search-form")
    NUMBER = (By.ID, "number")
    SUBMIT = (By.ID, "search-submit")


class WorksheetPage(SpaPage, LineTable):
    LOADED = (By.CSS_SELECTOR, f"{SETTLED}[data-view='worksheet'] #worksheet")
    OPEN_DIALOG = (By.ID, "add-line-open")
    DIALOG = (By.CSS_SELECTOR, "#add-line-dialog")
    #: the product is a search field: typing in it asks for suggestions to pick from
    FORM = LineForm("#add-line-dialog", product=(By.ID, "product-search"),
                    amount=(By.ID, "amount"), text=(By.ID, "text"),
                    submit=(By.ID, "add-line-submit"))

    def state(self):
        """What the screen shows now (a dict; see ``_STATE_JS``)."""
        return self.driver.execute_script(_STATE_JS, [css_selector(self.OPEN_DIALOG)],
                                          self.FORM.relied_on())

    def number(self):
        """The worksheet number shown, as a string."""
        return self.state()["number"]

    def closed_message(self):
        """The "closed (invoiced)" banner's text, or ``None`` when the sheet is open."""
        return next(iter(self.state()["closed"]), None)

    def locked_message(self):
        """The "being edited by another user" banner's text, or ``None``."""
        return next(iter(self.state()["locked"]), None)

    def customer(self):
        """The customer the sheet shows (``""``: none), or ``None`` without that field."""
        return next(iter(self.state()["customer"]), None)

    def lines(self):
        """The texts of the worksheet's lines.

        :raises ScreenChanged: when the lines table is not as known
        """
        return self.check_lines()["lines"]

    def check_lines(self):
        """One look: :returns: the :meth:`state` whose lines table passed its check"""
        state = self.state()
        check_line_table(state["shape"], not (state["closed"] or state["locked"]))
        return state

    def _line_rows(self):
        return self.state()["rows"]

    def _shape(self):
        return self.state()["shape"]

    def check_line_form(self, state=None):
        """The Add button, and once the dialog is open its fields and button.

        :param state: the :meth:`state` just read (None: read it)
        """
        state = state or self.state()
        missing = state["open_missing"] if state["dialog"] is None else state["form_missing"]
        if missing:
            raise ScreenChanged(f"line form: {', '.join(missing)} not found", screen="line form")

    def inspect_line_form(self):
        """Open the add-line dialog, check it, and leave it unsaved (the next page load
        forgets it)."""
        self._open_checked_dialog(self.state())

    def _open_checked_dialog(self, state):
        """Open the add-line dialog unless it is open (``state``: as just read), checking
        the Add button before the click and the dialog after it; nothing is typed."""
        if state["dialog"] is None:
            self.check_line_form(state)
            self.browser.click(self.OPEN_DIALOG)
            self.browser.wait_until(lambda driver: driver.find_elements(*self.DIALOG),
                                    "the add-line dialog")
            state = None
        self.check_line_form(state)

    def refusals(self):
        """What the ERP said instead of the change: the sheet's errors (a delete), else
        the add-line dialog's."""
        state = self.state()
        return state["sheet_errors"] or state["errors"]

    def fill_line(self, product_nr, amount, text):
        """Open the add-line dialog, pick the product from the suggestions, fill in the
        rest; nothing is saved.

        :raises ProductNotFound: when no suggestion is that product
        :raises WorksheetClosed: or :class:`WorksheetLocked`, when it takes no lines
        :raises ErpUnavailable: when the product search failed (the error banner)
        :raises ScreenChanged: when the dialog or the lines table is not as known
        """
        state = self.state()
        refusal = state["closed"] or state["locked"]
        if refusal:
            raise erp_error(refusal)
        check_line_table(state["shape"], True)
        self._open_checked_dialog(state)
        self.await_call(lambda: self.browser.fill([(self.FORM.product, product_nr)]),
                        "the product suggestions")
        state = self._checked_state()
        if state["suggested_for"] != product_nr:
            raise UnexpectedPage(f"Suggestions for {state['suggested_for']!r}, "
                                 f"not {product_nr!r}")
        if not self.driver.execute_script(_PICK_JS, product_nr):
            raise erp_error(state["no_match"] or [f"Unknown product number {product_nr}"])
        self.browser.fill([(self.FORM.amount, amount), (self.FORM.text, text)])
        chosen = self._checked_state()["chosen"]
        if chosen != product_nr:
            raise UnexpectedPage(f"Product {chosen!r} is chosen, not {product_nr!r}")

    def _checked_state(self):
        state = self.state()
        if state["view"] == "login":
            raise SessionExpired("The ERP asked for a login while filling in the line")
        if state["banner"]:
            raise ErpUnavailable(f"ERP error banner: {state['banner'][0]}")
        return state

    def submit_line(self, text):
        """Save the filled-in dialog.

        :returns: the :class:`WorksheetPage` showing the line with ``text``
        :raises ProductNotFound: or :class:`InvalidAmount` etc., when the ERP refuses
        :raises SessionExpired: when the app shows the login instead
        :raises ErpUnavailable: when the app shows its error banner
        :raises UnexpectedPage: when it shows neither the line nor an error
        """
        sent = self.send(self.FORM.submit, "the saved line")
        page = self.land(WorksheetPage, after=sent)
        if isinstance(page, LoginPage):
            raise SessionExpired("The ERP asked for a login instead of taking the line")
        state = page.state()
        if state["errors"]:
            raise erp_error(state["errors"])
        if state["dialog"] is not None or text not in state["lines"]:
            raise UnexpectedPage("The ERP showed the worksheet without the new line")
        return page


def land(browser, *pages, after=None):
    """Wait for one of ``pages`` (or the login; the error banner raises its error).

    :param after: what :meth:`SpaPage.send` returned (None: the answer is drawn already)
    """
    return screens.land(browser, pages, always=(ErrorBanner, LoginPage), after=after)


SpaPage.site = sys.modules[__name__]
