"""Page objects for erp_sim's screens: one class per screen, locators at the top.

A page object checks that its screen is shown and offers the services of that screen;
a service returns the page object of the screen it leads to, or raises the bridge
error for what the ERP said. :data:`ERP_MESSAGES` is the one table that turns the
ERP's words into reason codes.
"""

import re

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC

from bridge.exceptions import (ErpTimeout, InvalidAmount, LoginFailed, ProductNotFound,
                               SessionExpired, UnexpectedPage, WorksheetClosed,
                               WorksheetNotFound)

#: (fragment of an ERP message, error it means) -- first match wins
ERP_MESSAGES = (
    ("Invalid username or password", LoginFailed),
    ("No worksheet found with number", WorksheetNotFound),
    ("is closed (invoiced)", WorksheetClosed),
    ("Unknown product number", ProductNotFound),
    ("Product number is required", ProductNotFound),
    ("Amount must be a positive number", InvalidAmount),
    ("The form has expired", SessionExpired),  # the form token outlived the session
)


def error_for(messages):
    """The bridge error for the messages the ERP showed.

    :param messages: texts of the ERP's error or banner elements
    :returns: an :class:`~bridge.exceptions.IntegrationError` (not raised)
    """
    for message in messages:
        for fragment, error in ERP_MESSAGES:
            if fragment in message:
                return error(message)
    return UnexpectedPage("ERP said: " + ("; ".join(messages) or "nothing recognisable"))


def land(browser, *pages):
    """Wait until the browser shows one of ``pages`` or the login page.

    :param browser: an :class:`integrations.browser.Browser`
    :param pages: the page classes the last action may lead to
    :returns: the page object of the screen shown
    :raises UnexpectedPage: when a loaded page is none of them
    :raises ErpTimeout: when no page finished loading in time
    """
    candidates = pages if LoginPage in pages else (*pages, LoginPage)
    # Each condition returns its page class, so EC.any_of tells which one matched.
    try:
        shown = browser.wait_until(
            EC.any_of(*(_shows(page) for page in candidates)),
            "one of: " + ", ".join(page.__name__ for page in candidates),
        )
    except ErpTimeout:
        if browser.document_complete():  # a whole page, just not one we know
            raise UnexpectedPage(f"Unexpected page {browser.describe_page()}") from None
        raise
    return shown(browser)


def _shows(page):
    return lambda driver: page if driver.find_elements(*page.LOADED) else False


def _fill(element, value):
    element.clear()
    element.send_keys(value)


class Page:
    """A screen of the ERP. Subclasses set :attr:`LOADED`."""

    #: locator of an element that is there exactly when this screen is shown
    LOADED = None
    ERRORS = (By.CSS_SELECTOR, "#form-errors li")

    def __init__(self, browser):
        """:raises ErpTimeout: when the screen is not shown within the wait limit"""
        self.browser = browser
        self.driver = browser.driver
        browser.wait_until(EC.presence_of_element_located(self.LOADED),
                           f"the {type(self).__name__}")

    def errors(self):
        """The error messages shown on the screen (a form's validation errors)."""
        return [e.text.strip() for e in self.driver.find_elements(*self.ERRORS)]


class LoginPage(Page):
    LOADED = (By.ID, "login-form")
    USERNAME = (By.NAME, "username")
    PASSWORD = (By.NAME, "password")
    SUBMIT = (By.ID, "login-submit")

    def login(self, credentials):
        """Log in; the ERP then shows the page it was asked for (the search).

        :param credentials: a :class:`integrations.base.Credentials`
        :returns: :class:`WorksheetSearchPage`
        :raises LoginFailed: when the ERP rejects the username or password
        """
        _fill(self.driver.find_element(*self.USERNAME), credentials.username)
        _fill(self.driver.find_element(*self.PASSWORD), credentials.password)
        self.browser.submit(self.driver.find_element(*self.SUBMIT))
        page = land(self.browser, WorksheetSearchPage)
        if isinstance(page, LoginPage):
            raise error_for(page.errors()) if page.errors() else SessionExpired(
                "The ERP showed the login form again right after logging in")
        return page


class WorksheetSearchPage(Page):
    PATH = "worksheets"
    LOADED = (By.ID, "search-form")
    NUMBER = (By.NAME, "number")
    SUBMIT = (By.ID, "search-submit")

    def open_worksheet(self, number):
        """Search for worksheet ``number`` and open it.

        :returns: :class:`WorksheetPage`
        :raises WorksheetNotFound: when the ERP has no such worksheet
        :raises SessionExpired: when the ERP asks for a login instead
        """
        _fill(self.driver.find_element(*self.NUMBER), str(number))
        self.browser.submit(self.driver.find_element(*self.SUBMIT))
        page = land(self.browser, WorksheetPage, WorksheetSearchPage)
        if isinstance(page, LoginPage):
            raise SessionExpired("The ERP asked for a login while searching")
        if isinstance(page, WorksheetSearchPage):
            raise error_for(page.errors())
        if page.number() != _canonical(number):
            # Never write onto a worksheet other than the one the order names.
            raise UnexpectedPage(f"Asked for worksheet {number}, the ERP showed {page.number()}")
        return page


class WorksheetPage(Page):
    LOADED = (By.ID, "worksheet")
    CLOSED_BANNER = (By.ID, "closed-banner")
    ROWS = (By.CSS_SELECTOR, "#lines tr.line")
    PRODUCT_NR = (By.NAME, "product_nr")
    AMOUNT = (By.NAME, "amount")
    TEXT = (By.NAME, "text")
    SUBMIT = (By.ID, "add-line-submit")
    # Read the whole table in one round trip: a busy worksheet has many lines.
    _READ_ROWS_JS = """
        return Array.from(document.querySelectorAll(arguments[0])).map(function (row) {
            return ['.product-nr', '.amount', '.text'].map(function (cell) {
                var c = row.querySelector(cell); return c ? c.textContent.trim() : '';
            });
        });
    """

    def number(self):
        """The worksheet number shown, as a string."""
        return self.driver.find_element(*self.LOADED).get_attribute("data-number")

    def closed_message(self):
        """The "closed (invoiced)" banner's text, or ``None`` when the sheet is open."""
        banners = self.driver.find_elements(*self.CLOSED_BANNER)
        return banners[0].text.strip() if banners else None

    def lines(self):
        """The worksheet's lines as ``(product_nr, amount, text)`` string tuples."""
        return [tuple(row) for row in self.driver.execute_script(self._READ_ROWS_JS, self.ROWS[1])]

    def has_line_with(self, uniqueid):
        """Whether a line's text carries ``uniqueid`` as a whole word.

        A whole word, so that order "12" is not taken for a line of order "123".
        """
        pattern = re.compile(rf"(?<!\S){re.escape(uniqueid)}(?!\S)")
        return any(pattern.search(text) for _, _, text in self.lines())

    def add_line(self, product_nr, amount, text):
        """Fill in and submit the add-line form.

        :returns: the :class:`WorksheetPage` showing the new line
        :raises WorksheetClosed: when the worksheet takes no lines
        :raises ProductNotFound: or :class:`InvalidAmount`, when the ERP refuses the values
        :raises SessionExpired: when the ERP shows the login form instead
        :raises UnexpectedPage: when the ERP shows neither the line nor an error
        """
        closed = self.closed_message()
        if closed:
            raise error_for([closed])
        _fill(self.driver.find_element(*self.PRODUCT_NR), product_nr)
        _fill(self.driver.find_element(*self.AMOUNT), amount)
        _fill(self.driver.find_element(*self.TEXT), text)
        self.browser.submit(self.driver.find_element(*self.SUBMIT))
        page = land(self.browser, WorksheetPage)
        if isinstance(page, LoginPage):
            raise SessionExpired("The ERP asked for a login instead of taking the line")
        refusal = page.errors() or [m for m in [page.closed_message()] if m]
        if refusal:
            raise error_for(refusal)
        if not any(line_text == text for _, _, line_text in page.lines()):
            raise UnexpectedPage("The ERP showed the worksheet without the new line")
        return page


def _canonical(number):
    number = str(number).strip()
    return str(int(number)) if number.isascii() and number.isdigit() else number
