"""What erp_sim's two flavours' page objects share: the base :class:`Page`, :func:`land`
(which screen came up?), :func:`error_for` (which error did the ERP mean?), the
uniqueid check, the worksheet's line table (:class:`SheetLine`, :class:`LineTable`)
and :class:`Screens`, the protocol a flavour's page module fulfils for
:mod:`integrations.erp_sim.flow`. erp_sim's markup (``data-busy``, ``#form-errors``,
``tr.line[data-line-id]``) is assumed here; another ERP's pages do not use this module.
"""

import functools
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import NamedTuple

from selenium.common.exceptions import JavascriptException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC

from core.errors import (ErpTimeout, ScreenChanged, SessionExpired, UnexpectedPage,
                         WorksheetNotFound)
from integrations.browser import PAGE_SUMMARY_JS, css_selector, still_on_js, summary_reason

# Whether the page has finished loading, says it is not busy (an SPA marks itself
# data-busy="1" while its calls run) and is not the page a classic send left (the mark,
# arguments[0]): only then is "none of the expected screens" final.
_SETTLED_JS = (f"return !{still_on_js(0)}"
               " && !document.querySelector('[data-busy=\"1\"]');")
_MISSING_FN = """
function missing(selectors) {
    return selectors.filter(function (css) { return !document.querySelector(css); });
}
"""
#: JavaScript defining ``rows()``: every line of ``table#lines`` as its cells show it;
#: ``shape()``: the table's header columns and each line's cells by class (what
#: :func:`check_line_table` checks), null without a table; and ``missing(selectors)``.
#: Both flavours' worksheet scripts include it; :func:`sheet_lines` reads ``rows()``.
LINE_ROWS_JS = """
function rows() {
    return Array.from(document.querySelectorAll('#lines tr.line'), function (row) {
        function cell(css) {
            var e = row.querySelector(css);
            return e ? e.textContent.trim() : null;
        }
        return {line_id: cell('td.line-id'), product_nr: cell('td.product-nr'),
                amount: cell('td.amount'), text: cell('td.text')};
    });
}
function shape() {
    var table = document.querySelector('#lines');
    if (!table) { return null; }
    return {columns: table.querySelectorAll('thead th').length,
            body_rows: table.querySelectorAll('tr').length
                       - table.querySelectorAll('thead tr').length,
            rows: Array.from(table.querySelectorAll('tr.line'), function (row) {
                var id = row.getAttribute('data-line-id');
                return {cells: Array.from(row.children, function (cell) { return cell.className; }),
                        delete: !!row.querySelector('button.delete-line[data-line-id="' + id + '"]')};
            })};
}
""" + _MISSING_FN
#: the cells of a line of ``table#lines``, by class, in the order both flavours show them;
#: an open sheet that takes changes has one more, ``td.actions`` (the Delete button)
LINE_CELLS = ("line-id", "product-nr", "product-name", "amount", "text")


class LineForm(NamedTuple):
    """A flavour's add-line form: the element holding it (CSS) and its parts by role,
    each a locator. The flavours differ in where the form lives and how its fields are
    named, not in what the flow does with them."""

    container: str
    product: tuple
    amount: tuple
    text: tuple
    submit: tuple

    def relied_on(self):
        """The CSS selectors of the parts within the container: what the form relies
        on, for :data:`MISSING_JS`."""
        parts = (self.product, self.amount, self.text, self.submit)
        return [f"{self.container} {css_selector(part)}" for part in parts]


#: JavaScript that answers the CSS selectors (``arguments[0]``) nothing on the page matches
MISSING_JS = _MISSING_FN + "return missing(arguments[0]);"


@functools.lru_cache(maxsize=None)
def _first_shown_js(candidates):
    """The script of one poll of :func:`land` over ``candidates`` (page classes).

    One round trip: -1 while the document is still loading (an answer cut off mid-body
    stays "loading" for ever, showing half a worksheet: never a screen to read) or is
    still the page a classic send left (its mark, ``arguments[1]``); then
    ``{shown: index of the first candidate whose LOADED element is there, state: that
    page's LANDED_JS, run at once, or null}``; else the page's PAGE_SUMMARY_JS summary
    (is it an error page?).
    """
    states = ", ".join(f"function () {{{page.LANDED_JS}}}" if page.LANDED_JS else "null"
                       for page in candidates)
    return f"""
var selectors = arguments[0], states = [{states}];
if {still_on_js(1)} {{ return -1; }}
for (var i = 0; i < selectors.length; i++) {{
    if (document.querySelector(selectors[i])) {{
        return {{shown: i, state: states[i] ? states[i]() : null}};
    }}
}}
""" + PAGE_SUMMARY_JS


def error_for(messages, table):
    """The bridge error for the messages the ERP showed.

    :param messages: texts of the ERP's error or banner elements
    :param table: ``((fragment of a message, error class), ...)``; first match wins
    :returns: an :class:`~core.errors.IntegrationError` (not raised)
    """
    for message in messages:
        for fragment, error in table:
            if fragment in message:
                return error(message)
    return UnexpectedPage("ERP said: " + ("; ".join(messages) or "nothing recognisable"))


def land(browser, pages, always=(), after=None):
    """Wait until the browser shows one of ``pages`` or one of ``always``.

    :param browser: an :class:`integrations.browser.Browser`
    :param pages: the page classes the last action may lead to
    :param always: page classes any action may lead to (an error page first, the login)
    :param after: what the last :meth:`Page.send` returned: for a classic send, the mark
        of the page it left, so that page is not taken for the answer; the wait is then
        the page load limit, as the answer is a page load
    :returns: the page object of the screen shown (holding its ``LANDED_JS`` state)
    :raises core.errors.IntegrationError: what an :class:`ErrorPage` shown means
    :raises ErpUnavailable: when a browser error page or a server's 5xx page is shown
    :raises UnexpectedPage: when a settled page is none of them
    :raises ErpTimeout: when no page settled in time (or a classic send's page never left)
    """
    candidates = (*always, *(page for page in pages if page not in always))
    selectors = [css_selector(page.LOADED) for page in candidates]
    script = _first_shown_js(candidates)

    def first_shown(driver):
        # Earlier candidates win (an error banner over the screen under it).
        try:
            shown = driver.execute_script(script, selectors, after)
        except JavascriptException:  # between two documents; ask again
            return None
        if isinstance(shown, list):  # a whole page, none of the candidates
            reason = summary_reason(shown)
            if reason is not None:
                raise reason  # a browser error page or a server's 5xx page
            return None  # an SPA may still draw the screen
        return shown if isinstance(shown, dict) else None

    config = browser.config
    timeout = max(config.page_load_timeout, config.wait_timeout) if after else None
    try:
        shown = browser.wait_until(
            first_shown, "one of: " + ", ".join(page.__name__ for page in candidates),
            timeout=timeout)
    except ErpTimeout:
        if browser.driver.execute_script(_SETTLED_JS, after):  # a whole page, not one we know
            raise UnexpectedPage(f"Unexpected page {browser.describe_page()}") from None
        raise
    page = candidates[shown["shown"]](browser, wait=False)
    if isinstance(page, ErrorPage):
        raise page.error()
    if shown["state"] is not None:
        page.landed(shown["state"])
    return page


def has_line_with(texts, uniqueid):
    """Whether one of the line ``texts`` carries ``uniqueid`` as a whole word.

    A whole word, so that order "12" is not taken for a line of order "123".
    """
    pattern = re.compile(rf"(?<!\S){re.escape(uniqueid)}(?!\S)")
    return any(pattern.search(text) for text in texts)


@dataclass(frozen=True)
class SheetLine:
    """A line of a worksheet as the ERP's page shows it to the user."""

    #: the ERP's id of the line, as shown (what :meth:`LineTable.delete_line` takes)
    line_id: str
    product_nr: str
    amount: Decimal
    text: str


def sheet_lines(rows):
    """The :class:`SheetLine` s of the rows :data:`LINE_ROWS_JS` read.

    :raises UnexpectedPage: when a row lacks a cell or shows an amount that is no number
    """
    lines = []
    for row in rows:
        if None in row.values() or not row["line_id"]:
            raise UnexpectedPage(f"A worksheet line the page does not show whole: {row}")
        try:
            amount = Decimal(row["amount"])
        except InvalidOperation:
            amount = None
        if amount is None or not amount.is_finite():
            raise UnexpectedPage(f"Line {row['line_id']} shows the amount {row['amount']!r}")
        lines.append(SheetLine(row["line_id"], row["product_nr"], amount, row["text"]))
    return lines


def check_line_table(shape, takes_changes):
    """Check the lines table's shape (``shape()`` of :data:`LINE_ROWS_JS`) before a line
    of it is read, kept or deleted: its header has the columns the integration knows,
    every row of its body is a line (``tr.line``), and every line has its cells, by
    class, in the known order (and a Delete button of its own where the sheet takes
    changes). By structure only: the column headings' words are the user's language,
    and revision 1's headings carry no attribute.

    :param takes_changes: the sheet is open and not locked (so it shows the actions column)
    :raises ScreenChanged: naming what is missing or different
    """
    if shape is None:
        raise ScreenChanged("lines: the worksheet shows no lines table (table#lines)",
                            screen="lines")
    want = LINE_CELLS + (("actions",) if takes_changes else ())
    if shape["columns"] != len(want):
        raise ScreenChanged(f"lines: the lines table has {shape['columns']} header columns, "
                            f"not {len(want)} ({', '.join(want)})", screen="lines")
    if shape["body_rows"] != len(shape["rows"]):
        # Rows that are not lines as the integration knows them (another class, say):
        # read as "no lines", a sheet would look empty and every line be written again.
        raise ScreenChanged(f"lines: the lines table has {shape['body_rows']} rows, of which "
                            f"{len(shape['rows'])} are lines (tr.line)", screen="lines")
    for row in shape["rows"]:
        if tuple(row["cells"]) != want:
            raise ScreenChanged(f"lines: a line's cells are {', '.join(row['cells'])}, not "
                                f"{', '.join(want)}", screen="lines")
        if takes_changes and not row["delete"]:
            raise ScreenChanged("lines: a line has no Delete button "
                                "(button.delete-line[data-line-id])", screen="lines")


def canonical_number(number):
    """``" 007"`` -> ``"7"``: a worksheet number as the ERP shows it."""
    number = str(number).strip()
    return str(int(number)) if number.isascii() and number.isdigit() else number


class Page:
    """A screen of the ERP. Subclasses set :attr:`LOADED` (and :attr:`ERRORS`).

    A flavour's own page base sets :attr:`site` (its page module, which names its
    ``LoginPage``, ``SearchPage``, ``WorksheetPage``, ``land`` and ``erp_error``) and
    implements :meth:`send`.
    """

    #: locator of an element that is there exactly when this screen is shown
    LOADED = None
    #: CSS selector of the screen's error messages
    ERRORS = "#form-errors li"
    #: the flavour's page module
    site = None
    #: body of a JavaScript function whose result :func:`land` hands to :meth:`landed`
    #: in the same round trip that found the screen (None: nothing)
    LANDED_JS = None
    #: the screen's name in a :class:`~core.errors.ScreenChanged`
    SCREEN = None

    def __init__(self, browser, wait=True):
        """
        :param wait: wait until the screen is shown (``False``: it is known to be)
        :raises ErpTimeout: when the screen is not shown within the wait limit
        """
        self.browser = browser
        self.driver = browser.driver
        if wait:
            browser.wait_until(EC.presence_of_element_located(self.LOADED),
                               f"the {type(self).__name__}")

    def errors(self):
        """The error messages shown on the screen (a form's validation errors)."""
        return self.browser.texts(self.ERRORS)

    def send(self, locator, what):
        """Click the button at ``locator``, which sends something to the ERP; an SPA
        also waits until the answer is drawn.

        :param what: what is awaited, for the error message
        :returns: what :meth:`land` must wait past (``after``): a classic page's mark,
            as the answer is the next page load; None for an SPA
        """
        raise NotImplementedError  # abstract: a page load, or an SPA's JSON call

    def land(self, *pages, after=None):
        """:func:`land` on the flavour's pages (its login and error pages included)."""
        return self.site.land(self.browser, *pages, after=after)

    def landed(self, state):
        """Take the :attr:`LANDED_JS` result :func:`land` read when it found the screen."""

    def check_screen(self, *locators):
        """Check, in one round trip, that the elements at ``locators`` are on the screen.

        :raises ScreenChanged: naming this screen and what is missing
        """
        absent = self.driver.execute_script(MISSING_JS, [css_selector(l) for l in locators])
        if absent:
            raise ScreenChanged(f"{self.SCREEN}: {', '.join(absent)} not found", screen=self.SCREEN)

    def first_text(self, css):
        """Text of the first element matching ``css``, or ``None`` when there is none."""
        texts = self.browser.texts(css)
        return texts[0] if texts else None


class ErrorPage(Page):
    """A screen that means the request failed; :func:`land` raises :meth:`error`."""

    def error(self):
        """:returns: the :class:`~core.errors.IntegrationError` this screen means"""
        raise NotImplementedError  # abstract


class LoginForm(Page):
    """A login screen with :attr:`USERNAME`, :attr:`PASSWORD` and :attr:`SUBMIT`."""

    USERNAME = PASSWORD = SUBMIT = None
    SCREEN = "login"

    def login(self, credentials, *then):
        """Log in; the ERP then shows the worksheet search, or the screen the login
        interrupted (``then``: its possible page classes).

        :param credentials: a :class:`integrations.base.Credentials`
        :returns: the flavour's ``SearchPage`` (or one of ``then``)
        :raises LoginFailed: when the ERP rejects the username or password
        :raises ScreenChanged: when a field or the button is not there
        """
        self.check_screen(self.USERNAME, self.PASSWORD, self.SUBMIT)
        self.browser.fill([(self.USERNAME, credentials.username),
                           (self.PASSWORD, credentials.password)])
        sent = self.send(self.SUBMIT, "the login")
        page = self.land(*(then or (self.site.SearchPage,)), after=sent)
        if isinstance(page, LoginForm):
            errors = page.errors()
            raise self.site.erp_error(errors) if errors else SessionExpired(
                "The ERP showed the login form again right after logging in")
        return page


class SearchForm(Page):
    """A worksheet search with :attr:`NUMBER` and :attr:`SUBMIT`."""

    NUMBER = SUBMIT = None
    SCREEN = "search"
    #: further elements the flow relies on (the classic pages: the form's method and
    #: address, which the flow loads itself)
    RELIES_ON = ()

    def check(self):
        """:raises ScreenChanged: when what the search relies on is not there"""
        self.check_screen(self.NUMBER, self.SUBMIT, *self.RELIES_ON)

    def open_worksheet(self, number):
        """Search for worksheet ``number`` and open it.

        :returns: the flavour's ``WorksheetPage``
        :raises WorksheetNotFound: when the ERP has no such worksheet
        :raises WorksheetLocked: when another user is editing it
        :raises SessionExpired: when the ERP asks for a login instead
        :raises ScreenChanged: when the search form is not as known
        """
        self.check()
        self.browser.fill([(self.NUMBER, str(number))])
        sent = self.send(self.SUBMIT, "the worksheet search")
        return search_result(self.site, self.land(self.site.WorksheetPage, type(self), after=sent),
                             number)


def search_result(site, page, number):
    """The worksheet page a search for ``number`` led to, checked to be that worksheet's.

    :param site: the flavour's page module
    :param page: the page object of the screen the search brought up
    :raises WorksheetNotFound: when the ERP has no such worksheet
    :raises WorksheetLocked: when another user is editing it
    :raises SessionExpired: when the ERP asks for a login instead
    """
    if isinstance(page, LoginForm):
        raise SessionExpired("The ERP asked for a login while searching")
    if isinstance(page, SearchForm):
        error = site.erp_error(page.errors())
        if (isinstance(error, WorksheetNotFound)
                and canonical_number(number) not in re.findall(r"\d+", error.reason_text)):
            # The ERP's words are about another number ("undefined": a page script
            # that lost its state after a dropped request, or a stale banner): no
            # verdict on this worksheet, so nothing permanent.
            raise UnexpectedPage(f"Asked for worksheet {number}, the ERP answered: "
                                 f"{error.reason_text}")
        raise error
    if page.number() != canonical_number(number):
        # Never write onto a worksheet other than the one the order names.
        raise UnexpectedPage(f"Asked for worksheet {number}, the ERP showed {page.number()}")
    if page.locked_message():
        raise site.erp_error([page.locked_message()])
    return page


class LineTable(Page):
    """What both flavours' worksheet screens share: the table of lines with a Delete
    button on each (``tr.line[data-line-id] button.delete-line``).

    A flavour's ``WorksheetPage`` implements :meth:`number`, :meth:`closed_message`,
    :meth:`locked_message`, :meth:`refusals`, :meth:`check_line_form`, ``_line_rows()``
    (the rows as :data:`LINE_ROWS_JS` reads them) and ``_shape()`` (the table's shape).

    Nothing of the table is read, kept or deleted before its shape passed
    :func:`check_line_table` on this page object (:meth:`check_lines`), and no line is
    written before the add-line form passed :meth:`check_line_form`: a changed screen
    raises :class:`~core.errors.ScreenChanged` instead.
    """

    SCREEN = "worksheet"

    def number(self):
        """The worksheet number shown, as a string."""
        raise NotImplementedError

    def closed_message(self):
        """The "closed (invoiced)" banner's text, or ``None`` when the sheet is open."""
        raise NotImplementedError

    def locked_message(self):
        """The "being edited by another user" banner's text, or ``None``."""
        raise NotImplementedError

    def customer(self):
        """The customer the sheet belongs to as shown (``""``: nobody), or ``None`` when
        the sheet shows no customer field (nothing the flow relies on: only the probe
        asks, to say its worksheet is a poor choice)."""
        raise NotImplementedError

    def refusals(self):
        """The ERP's messages refusing the last change (a line added or deleted)."""
        raise NotImplementedError

    def check_line_form(self):
        """Check the add-line form (or dialog) has every field and the button the flow
        uses; nothing is typed or sent.

        :raises ScreenChanged: naming the form and what is missing
        """
        raise NotImplementedError

    def inspect_line_form(self):
        """Open the add-line form as a user would, check it (:meth:`check_line_form`) and
        leave it unsaved; for the probe. Nothing is typed or sent."""
        self.check_line_form()

    def _line_rows(self):
        raise NotImplementedError

    def _shape(self):
        raise NotImplementedError

    def takes_changes(self):
        """Whether the sheet shows that it takes changes: open, and not locked."""
        return not (self.closed_message() or self.locked_message())

    def check_lines(self):
        """:raises ScreenChanged: when the lines table is not as known (:func:`check_line_table`)"""
        check_line_table(self._shape(), self.takes_changes())

    def line_rows(self):
        """The worksheet's lines as the user sees them, oldest first.

        :returns: a list of :class:`SheetLine`
        :raises UnexpectedPage: when a line is not shown whole
        :raises ScreenChanged: when the lines table is not as known
        """
        self.check_lines()
        return sheet_lines(self._line_rows())

    def line_ids(self):
        return {line.line_id for line in self.line_rows()}

    def delete_line(self, line_id):
        """Press the Delete button of line ``line_id`` and wait for the ERP's answer.

        :returns: the flavour's ``WorksheetPage``, drawn anew without that line
        :raises WorksheetClosed: or :class:`WorksheetLocked`, when the sheet takes no change
        :raises SessionExpired: when the ERP asks for a login instead
        :raises UnexpectedPage: when the sheet shows no such line, the ERP says it is not
            on the sheet (deleted already), or still shows it afterwards
        """
        line_id = str(line_id)
        refusal = [m for m in (self.closed_message(), self.locked_message()) if m]
        if refusal:
            raise self.site.erp_error(refusal)
        if line_id not in self.line_ids():
            raise UnexpectedPage(f"Worksheet {self.number()} shows no line {line_id} to delete")
        sent = self.send(delete_button(line_id), "the worksheet after the delete")
        page = self.land(self.site.WorksheetPage, after=sent)
        if isinstance(page, LoginForm):
            raise SessionExpired("The ERP asked for a login instead of deleting the line")
        refusal = page.refusals()
        if refusal:
            raise self.site.erp_error(refusal)
        if line_id in page.line_ids():
            raise UnexpectedPage(f"The ERP still shows line {line_id} after deleting it")
        return page


def delete_button(line_id):
    """Locator of the Delete button of line ``line_id``."""
    quoted = str(line_id).replace("\\", "\\\\").replace('"', '\\"')
    return (By.CSS_SELECTOR, f'#lines tr.line[data-line-id="{quoted}"] button.delete-line')


class Screens:
    """The page module of an erp_sim flavour, as :mod:`integrations.erp_sim.flow` uses it.

    * ``START_PATH`` -- the path of the first screen, relative to the ERP's URL;
    * ``land(browser, *pages)`` -- :func:`land` with the flavour's login and error pages
      always among the candidates;
    * ``LoginPage.login(credentials)`` -> the search page;
    * ``SearchPage.open_worksheet(number)`` -> the worksheet page;
    * optionally ``search_address(number)`` -- the address (relative to the ERP's URL)
      the search form loads for ``number``, where it is a plain GET form: the flow then
      loads it directly (:func:`search_result` checks what came) instead of opening the
      search page, filling it in and submitting it; a flavour whose search is no
      address (the SPA's) does not offer it;
    * ``WorksheetPage.lines()`` (texts of its lines), ``line_rows()`` (its lines as
      :class:`SheetLine` s), ``fill_line(product_nr, amount, text)`` (nothing is sent;
      safe to repeat; the classic pages only keep the values, and ``submit_line`` fills
      and clicks in one round trip), ``submit_line(text)`` -> the worksheet page showing
      the line, and
      ``delete_line(line_id)`` -> the worksheet page without it (:class:`LineTable`).
    """

    REQUIRED = {
        "START_PATH": None,
        "land": None,
        "LoginPage": ("login",),
        "SearchPage": ("open_worksheet",),
        "WorksheetPage": ("lines", "line_rows", "fill_line", "submit_line", "delete_line"),
    }

    @classmethod
    def check(cls, module):
        """:raises TypeError: naming what ``module`` lacks"""
        missing = []
        for name, methods in cls.REQUIRED.items():
            value = getattr(module, name, None)
            if value is None:
                missing.append(name)
                continue
            missing += [f"{name}.{m}" for m in methods or () if not callable(getattr(value, m, None))]
        if missing:
            raise TypeError(f"page module {module.__name__} lacks {', '.join(missing)}")
