"""The sao screens the Tryton integration drives, one class per screen.

sao is a single-page client: nothing "loads", requests run in the background, dialogs
come and go. So every step ends with :meth:`Sao.wait`: one script per poll that looks,
in this order, for a dialog of Tryton's (a refusal, an error: raised as the error it
means, :mod:`.messages`), for sao asking the password again (the session expired:
answered, and sao repeats the request itself), and only then, once jQuery has no request
running, for the condition of the step.

Nothing is found by its words: Tryton runs in its user's language (issue 25). Locators
are field names (``input[name=reference]``), ids and classes sao gives every page
(``button#save``, ``.login-dialog``, ``.warning-dialog``), and sao's own objects for
what carries no name in the page: the active tab's form view (``Sao.Tab.tabs
.get_current().screen.current_view``) holds its widgets by field name, so the Lines
list is ``widgets.lines[0]``, its New and Delete buttons that widget's ``but_new`` and
``but_del``, and a cell's column is found through the tree view's columns (their field
name and the id of their header, which every cell names in ``headers``). Numbers are
read in the user's locale, as sao writes them (``toLocaleString`` in sao's language).
A page that lacks a field the integration needs is :class:`ScreenChanged` naming it;
a wait that times out with no request running is one too (the page is not what was
expected, and the ERP is not slow), with what was awaited: the worker holds the orders
until a probe finds the screens as known (workers/probing.py).
"""

import re
import unicodedata
from decimal import Decimal, InvalidOperation

from selenium.common.exceptions import ElementNotInteractableException, NoSuchElementException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from core.errors import (ErpTimeout, InvalidAmount, LoginFailed, ProductNotFound, ScreenChanged,
                         SessionExpired, UnexpectedPage, WorksheetClosed, WorksheetNotFound)
from integrations.base import SeenLine
from integrations.tryton.messages import RPC_HOOK_JS, erp_error
from integrations.tryton.series import SERIES, series_of

#: the active tab's pane
PANE = "#tabcontent > .tab-pane.active"
#: the open line dialog
DIALOG = ".modal.in.window-form"
#: milliseconds without a change of the page before its lines are read (measured: sao
#: fills a form in one burst of changes well under this)
QUIET_MS = 150
#: the same before a search's "nothing found" is believed (a permanent error)
EMPTY_QUIET_MS = 400
#: password prompts answered within one wait beyond which the password is wrong
MAX_PASSWORD_ANSWERS = 1

# One poll: Tryton's dialogs first, then a password prompt, then the login dialog, then
# (with no request running) the step's own condition, a function body given ``args``.
# Each poll also says whether a request was running (``busy``): a wait that ends with
# none running was not waiting for the ERP.
_POLL_JS = """
var body = arguments[0], args = arguments[1];
if (!window.jQuery || !window.Sao || !Sao.__version__) {
    // sao's index.html loads it with plain script tags: once the page has loaded without
    // it, this is not sao (busy only while it may still come)
    return ['wait', document.readyState !== 'complete'];
}
args.current = args.series[Sao.__version__.split('.').slice(0, 2).join('.')];
if (!args.current) { return ['series', Sao.__version__]; }
""" + RPC_HOOK_JS + """
var kinds = Object.keys(args.current.dialogs), dialogs = [];
kinds.forEach(function (kind) {
    document.querySelectorAll(args.current.dialogs[kind]).forEach(function (e) {
        dialogs.push({kind: kind, text: e.textContent.trim()});
    });
});
if (dialogs.length) { return ['alert', dialogs, window.__bridgeRpcError]; }
if (document.querySelector('.modal.in.ask-dialog:not([data-bridge-answered]) input[type=password]')) {
    return ['password'];
}
if (document.querySelector('.login-dialog.in input#login:not([disabled])')) { return ['login']; }
if (jQuery.active !== 0) { return ['wait', true]; }
if (!window.__bridgeQuiet) {
    // When the page last changed: sao renders in callbacks after its requests, so "no
    // request running" alone can come a moment before the rows are there.
    window.__bridgeQuiet = {last: performance.now()};
    new MutationObserver(function () { window.__bridgeQuiet.last = performance.now(); })
        .observe(document.body, {subtree: true, childList: true, attributes: true,
                                 characterData: true});
}
if (args.quiet && performance.now() - window.__bridgeQuiet.last < args.quiet) {
    return ['wait', false];
}
var value = new Function('args', body)(args);
return value ? ['ok', value] : ['wait', false];
"""

# The tab's status label: "_/0" once a search found nothing, "1/1" once a record shows.
_STATUS_JS = """
function status(pane) {
    var badge = pane && pane.querySelector('.navbar-text > .badge');
    var m = badge && /^(\\S+?)(?:#\\d+)?(?:@\\S+)?\\/(\\d+)/.exec(badge.textContent.trim());
    return m ? {position: m[1], size: Number(m[2])} : null;
}
"""

# sao's own view of the active tab: its form view, a widget of it by field name, the
# number format of sao's language (what toLocaleString writes).
_SAO_JS = """
function currentForm() {
    var tab = Sao.Tab.tabs.get_current();
    var view = tab && tab.screen && tab.screen.current_view;
    return view && view.view_type === 'form' && view.widgets ? view : null;
}
function fieldWidget(view, name) {
    var found = view && view.widgets[name];
    return found && found.length ? found[0] : null;
}
function numberFormat() {
    var format = {decimal: '.', group: ','};
    new Intl.NumberFormat(Sao.i18n.BC47(Sao.i18n.getlang())).formatToParts(12345.6)
        .forEach(function (part) {
            if (part.type === 'decimal') { format.decimal = part.value; }
            if (part.type === 'group') { format.group = part.value; }
        });
    return format;
}
function linesWidget() { return fieldWidget(currentForm(), 'lines'); }
function lineRows(widget) {
    return Array.from(widget.el[0].querySelectorAll('tbody tr:not(.more-row)')).filter(
        function (tr) { return tr.querySelector('td[data-title]'); });
}
"""

#: the fields of a sale's form the integration reads or writes
SALE_FIELDS = ("reference", "state", "lines")
#: the columns of the Lines list it reads, by field name
PRODUCT, DESCRIPTION, QUANTITY = "product", "summary", "quantity"


class Sao:
    """The sao client in one browser: waits, navigation and the password prompt.

    :param browser: an :class:`integrations.browser.Browser`
    :param base_url: the server's URL, e.g. ``http://127.0.0.1:8000``
    :param database: the Tryton database name (part of every address)
    """

    def __init__(self, browser, base_url, database):
        self.browser = browser
        self.driver = browser.driver
        self.base_url = base_url.rstrip("/")
        self.database = database
        self.credentials = None  # what a password prompt is answered with

    def wait(self, body, what, timeout=None, login=False, **args):
        """Poll until the JS function ``body`` (given ``args``) returns a truthy value.

        :param login: return ``"login"`` when sao shows its login dialog (else it is
            a session lost mid-visit: :class:`SessionExpired`)
        :param args: given to ``body``; ``quiet=MS``: only once the page has not changed
            for that long (for reads that decide whether a line is written)
        :returns: what ``body`` returned
        :raises core.errors.IntegrationError: what a dialog of Tryton's means
        :raises LoginFailed: when the password is asked again right after answering it
        """
        answered = 0
        busy = [True]  # whether the last poll saw a request running
        args = {**args, "series": SERIES}

        def poll(driver):
            nonlocal answered
            state = driver.execute_script(_POLL_JS, body, args)
            if state[0] == "ok":
                return state[1]
            if state[0] == "wait":
                busy[0] = state[1]
            if state[0] == "alert":
                raise erp_error(state[1], state[2])
            if state[0] == "series":
                series_of(state[1])  # raises: not a series the integration knows
            if state[0] == "password":
                if answered >= MAX_PASSWORD_ANSWERS or self.credentials is None:
                    raise LoginFailed("Tryton asked for the password again: it was refused")
                answered += self._answer_password()
            elif state[0] == "login":
                if login:
                    return "login"
                raise SessionExpired("sao showed its login dialog in the middle of a visit")
            return False

        try:
            return self.browser.wait_until(poll, what, timeout)
        except ErpTimeout as exc:
            if busy[0]:
                raise  # Tryton is still answering: slow, not a page we do not know
            # nothing more is coming: what is shown is not the screen awaited
            raise ScreenChanged(f"{exc}: no request was running, so the page is not the "
                                f"one expected", screen=what) from None

    def type(self, locator, text, clear=False):
        """Type ``text`` into the element at ``locator`` (CSS), as a person would.

        Waits until it takes keys: sao's dialogs fade in, and an input of a dialog
        still fading is "not interactable".
        """
        def typed(driver):
            try:
                field = driver.find_element(*locator)
                if clear:
                    field.clear()
                field.send_keys(text)
                return True
            except (ElementNotInteractableException, NoSuchElementException):
                return False
        self.browser.wait_until(typed, f"{locator[1]} to take keys")

    def _answer_password(self):
        """Type the password into sao's prompt; :returns: whether it took the keys."""
        # Marked first: a second, unmarked prompt means the password was refused.
        field = self.driver.execute_script("""
            var dialog = document.querySelector('.modal.in.ask-dialog:not([data-bridge-answered])');
            dialog.setAttribute('data-bridge-answered', '1');
            return dialog.querySelector('input[type=password]');""")
        try:
            field.send_keys(self.credentials.password + "\n")
            return True
        except ElementNotInteractableException:  # still fading in: ask again next poll
            self.driver.execute_script("arguments[0].closest('.modal')"
                                       ".removeAttribute('data-bridge-answered');", field)
            return False

    def open(self, fragment, fresh):
        """Show ``#<database>/<fragment>``.

        :param fresh: load sao anew (a clean page, no tab left from before); otherwise
            only the address's fragment changes and sao opens a tab for it
        """
        address = f"{self.base_url}/#{self.database}/{fragment}"
        if fresh:
            self.browser.open(address, fresh=True)  # a change of fragment only is no reload
        else:
            self.driver.execute_script("location.hash = arguments[0];",
                                       f"{self.database}/{fragment}")

    def tab_count(self):
        return self.driver.execute_script(
            "return document.querySelectorAll('#tabcontent > .tab-pane').length;")

    def close_tab(self):
        """Close the active tab (an unmodified one closes without a question).

        :returns: whether no tab is left
        """
        self.driver.execute_script(
            "var b = document.querySelector('#tablist li.active button.close'); if (b) b.click();")
        try:
            return self.wait("return !document.querySelector('#tabcontent > .tab-pane');",
                             "the tab to close", timeout=2)
        except Exception:  # a question or a slow close: the next visit reloads instead
            return False


class LoginDialog:
    """sao's login dialog: user name, then a prompt for the password."""

    USERNAME = (By.CSS_SELECTOR, ".login-dialog.in input#login")

    def __init__(self, sao):
        self.sao = sao

    def login(self, credentials):
        """Log in; sao then carries on with the address it was opened at.

        :raises LoginFailed: when Tryton refuses the user name or password
        """
        self.sao.credentials = credentials
        self.sao.type(self.USERNAME, credentials.username + "\n", clear=True)
        # The password prompt is answered inside the wait (as mid-visit); done when the
        # login dialog has gone.
        self.sao.wait("return !document.querySelector('.login-dialog');", "the login",
                      timeout=max(self.sao.browser.config.wait_timeout, 20))


class SaleList:
    """The Sales list, searched by *Reference* through the address's domain."""

    READY_JS = _STATUS_JS + """
    var pane = document.querySelector('""" + PANE + """');
    var s = status(pane);
    if (!s) { return null; }
    if (pane.querySelector('.form-one2many')) { return null; }  // a form: not ours
    if (s.size === 0) { return {rows: 0}; }
    var rows = pane.querySelectorAll('table tbody tr:not(.more-row)');
    return rows.length ? {rows: rows.length} : null;
    """
    # A cell without a link: double-clicking a link would open the linked record.
    MARK_ROW_JS = """
    var row = document.querySelector('""" + PANE + """ table tbody tr:not(.more-row)');
    var cell = Array.from(row.querySelectorAll('td[data-title]')).find(function (td) {
        return td.offsetParent !== null && !td.querySelector('a, input');
    });
    cell.setAttribute('data-bridge-open', '1');
    """
    OPEN_CELL = (By.CSS_SELECTOR, PANE + " td[data-bridge-open]")

    def __init__(self, sao, reference):
        self.sao = sao
        self.reference = reference
        what = f"the sales with reference {reference}"
        found = sao.wait(self.READY_JS, what, login=True)
        if found != "login" and found["rows"] == 0:
            # "None" is final only once the page has settled: sao may show a count of 0
            # for a moment before its search has answered.
            found = sao.wait(self.READY_JS, what, login=True, quiet=EMPTY_QUIET_MS)
        self.login_shown = found == "login"
        self.rows = 0 if self.login_shown else found["rows"]

    def open_sale(self):
        """Open the one sale found.

        :raises WorksheetNotFound: when no sale has the reference
        :raises UnexpectedPage: when several have it
        """
        if self.rows == 0:
            raise WorksheetNotFound(f"Tryton has no sale with reference {self.reference}")
        if self.rows > 1:
            raise UnexpectedPage(f"{self.rows} sales with reference {self.reference}")
        self.sao.driver.execute_script(self.MARK_ROW_JS)
        cell = self.sao.driver.find_element(*self.OPEN_CELL)
        ActionChains(self.sao.driver).double_click(cell).perform()
        return SaleForm(self.sao)


class SaleForm:
    """One sale in its form, with its Lines list."""

    READY_JS = _STATUS_JS + _SAO_JS + """
    var pane = document.querySelector('""" + PANE + """');
    var s = status(pane);
    if (!s || s.position === '_') { return null; }
    var view = currentForm();
    if (!view) { return null; }
    var missing = args.fields.filter(function (name) { return !fieldWidget(view, name); });
    if (missing.length) { return {missing: missing}; }
    var reference = pane.querySelector('input[name=reference]');
    if (!reference || !reference.value) { return null; }
    var state = pane.querySelector('select[name=state]');
    var add = linesWidget().but_new[0];
    var id = /\\/model\\/sale\\.sale\\/(\\d+)/.exec(decodeURIComponent(location.hash));
    return {reference: reference.value, state: state ? JSON.parse(state.value || 'null') : null,
            add_disabled: !add || add.disabled, id: id ? Number(id[1]) : null};
    """
    # The lines, once every one is shown ("More" clicked until gone), each as
    # {field name: text} through the columns of sao's tree view.
    LINES_JS = _SAO_JS + """
    var widget = linesWidget();
    if (!widget) { return null; }
    var more = widget.el[0].querySelector('tr.more-row button');
    if (more) { more.click(); return null; }
    var tree = widget.screen && widget.screen.current_view;
    if (!tree || tree.view_type !== 'tree') { return null; }
    var columns = {};
    tree.columns.forEach(function (column) {
        if (column.header) { columns[column.header.attr('id')] = column.attributes.name; }
    });
    var names = Object.values(columns);
    var missing = args.columns.filter(function (name) { return names.indexOf(name) < 0; });
    if (missing.length) { return {missing: missing}; }
    var size = Number(widget[args.current.counter].text().split('/').pop());
    var rows = lineRows(widget);
    if (rows.length !== size) { return null; }
    return {format: numberFormat(), rows: rows.map(function (tr) {
        var cells = {};
        tr.querySelectorAll('td[headers]').forEach(function (td) {
            var name = columns[td.getAttribute('headers')];
            if (name) { cells[name] = td.textContent.trim(); }
        });
        return cells;
    })};
    """
    NEW_LINE_JS = _SAO_JS + "linesWidget().but_new[0].click();"
    # Tick exactly the rows to delete (by position, among as many rows as were read),
    # then press the list's Delete: sao marks them deleted, the save deletes them.
    DELETE_JS = "var args = arguments[0];" + _SAO_JS + """
    var widget = linesWidget();
    var rows = widget ? lineRows(widget) : [];
    if (rows.length !== args.count) { return 'the list shows ' + rows.length + ' rows'; }
    var ticked = [];
    rows.forEach(function (tr, i) {
        var box = tr.querySelector('td.selection-state input[type=checkbox]');
        if (box && box.checked !== (args.rows.indexOf(i) >= 0)) { box.click(); }
        if (box && box.checked) { ticked.push(i); }
    });
    if (ticked.join() !== args.rows.join()) { return 'ticked rows ' + ticked.join(); }
    var button = widget.but_del[0];
    if (!button || button.disabled) { return 'no Delete button to press'; }
    button.click();
    return 'deleted';
    """
    SAVE = (By.CSS_SELECTOR, PANE + " button#save")
    SAVED_JS = "return document.querySelector('" + PANE + " button#save').disabled;"
    MODIFIED_JS = "return !document.querySelector('" + PANE + " button#save').disabled;"

    def __init__(self, sao):
        self.sao = sao
        shown = sao.wait(self.READY_JS, "the sale's form", fields=SALE_FIELDS, quiet=QUIET_MS)
        if "missing" in shown:
            raise ScreenChanged(f"The sale's form has no field {', '.join(shown['missing'])} "
                                f"(sao's form view of sale.sale): not a form to write on",
                                screen="worksheet")
        self.reference = shown["reference"]
        self.state = shown["state"]
        self.add_disabled = shown["add_disabled"]
        self.record_id = shown["id"]
        #: a line dialog kept open for the next line (:meth:`LineDialog.add`)
        self.open_dialog = None

    def check(self, reference, writable=True):
        """:raises UnexpectedPage: unless this is the sale with ``reference``
        :raises WorksheetClosed: when ``writable`` and the sale takes no lines (past
            draft) -- its lines can still be read: a re-delivered order whose line is
            already there is answered from them, not refused"""
        if self.reference != str(reference):
            # Never write onto a sale other than the one the order names.
            raise UnexpectedPage(f"Asked for the sale with reference {reference}, "
                                 f"sao showed {self.reference!r}")
        if writable and (self.state != "draft" or self.add_disabled):
            raise WorksheetClosed(f"The sale with reference {reference} is no longer a "
                                  f"draft (state {self.state}): it takes no new lines")
        return self

    def lines(self):
        """:returns: ``[SeenLine, ...]`` as the Lines list shows them"""
        shown = self.sao.wait(self.LINES_JS, "the sale's lines",
                              columns=(PRODUCT, DESCRIPTION, QUANTITY), quiet=QUIET_MS)
        if "missing" in shown:
            raise ScreenChanged(f"The sale's Lines list has no column "
                                f"{', '.join(shown['missing'])}: its lines cannot be read",
                                screen="lines")
        return [seen_line(index, cells, shown["format"])
                for index, cells in enumerate(shown["rows"])]

    def delete_lines(self, rows):
        """Delete the lines at positions ``rows`` (of :meth:`lines`) the way a clerk does
        -- tick them in the Lines list, press its Delete button -- and save the sale.

        :raises UnexpectedPage: when the list does not let exactly these rows be deleted
        :raises core.errors.IntegrationError: what Tryton answered to the save
        """
        count = len(self.lines())
        done = self.sao.driver.execute_script(self.DELETE_JS, {
            "rows": sorted(rows), "count": count})
        if done != "deleted":
            raise UnexpectedPage(f"Could not delete lines {sorted(rows)} of {count}: {done}")
        # sao takes the deletion in asynchronously; the sale is then modified, and only
        # then does its Save do anything.
        self.sao.wait(self.MODIFIED_JS, "the sale to take the deletion")
        self.save()

    def new_line(self):
        """:returns: the :class:`LineDialog` of a new line: the one left open by
        :meth:`LineDialog.add` ``(more=True)``, showing a new record, else a new one"""
        dialog, self.open_dialog = self.open_dialog, None
        if dialog is not None:
            return dialog
        self.sao.driver.execute_script(self.NEW_LINE_JS)
        return LineDialog(self.sao)

    def save(self):
        """Save the sale (its new lines with it) and wait until Tryton has stored it.

        :raises core.errors.IntegrationError: what Tryton answered instead
        """
        dialog, self.open_dialog = self.open_dialog, None
        if dialog is not None:
            dialog.discard()  # its new, empty record goes; the lines added before stay
        self.sao.browser.click(self.SAVE)
        self.sao.wait(self.SAVED_JS, "the sale to be saved")


def seen_line(index, cells, number_format):
    """One row of a sale's Lines list as a :class:`~integrations.base.SeenLine`; its
    ``ref`` is the row's position (what :meth:`SaleForm.delete_lines` takes). A comment
    line shows no product and no quantity: both ``None``."""
    product = re.match(r"\[([^\]]+)\]", cells.get(PRODUCT, ""))
    return SeenLine(product.group(1) if product else None,
                    parse_quantity(cells.get(QUANTITY, ""), number_format),
                    cells.get(DESCRIPTION, ""), index)


def parse_quantity(text, number_format):
    """A number as sao shows it in the user's locale, as a ``Decimal``; ``None`` when the
    text holds no number.

    :param number_format: ``{"decimal", "group"}``, the separators of sao's language
        (German ``"1.234,5 l"`` with ``{"decimal": ",", "group": "."}`` is 1234.5);
        digits of other scripts (Persian, ...) count as digits
    """
    decimal, group = number_format["decimal"], number_format["group"]
    plain = []
    for char in text or "":
        if char == decimal:
            plain.append(".")
        elif char == group or char.isspace():
            continue  # a grouping separator may be a (narrow) no-break space
        elif char in "-\u2212":
            plain.append("-")
        else:
            digit = unicodedata.decimal(char, None)
            plain.append(str(digit) if digit is not None else char)
    found = re.match(r"(-?\d*\.?\d+)", "".join(plain))
    if not found:
        return None
    try:
        return Decimal(found.group(1))
    except InvalidOperation:
        return None


class LineDialog:
    """The dialog of a new sale line: product (an autocomplete), quantity, description."""

    # Shown, faded in, its record displayed (the Type of a new line is filled in).
    READY_JS = """
    var d = document.querySelector('""" + DIALOG + """');
    var product = d && d.querySelector('input[name=product]');
    var type = d && d.querySelector('select[name=type]');
    return !!(product && product.offsetParent && type && type.value
              && getComputedStyle(d).opacity === '1');
    """
    PRODUCT = (By.CSS_SELECTOR, DIALOG + " input[name=product]")
    # The completion has answered for the text typed: its menu opens (with at least the
    # "Search..." action), listing the matching products. Or the text is gone: sao, still
    # settling a freshly shown dialog, moved the focus to its first field and redisplayed
    # the record over what was typed (measured: ~1 in 3 first dialogs of a French 8.0
    # stand-up; the keys are lost, nothing else happens).
    COMPLETION_JS = """
    var d = document.querySelector('""" + DIALOG + """');
    var input = d && d.querySelector('input[name=product]');
    if (input && input.value !== args.code && document.activeElement !== input) {
        return {lost: input.value};
    }
    var menu = d && d.querySelector('.form-many2one .dropdown.open');
    if (!menu) { return null; }
    return {names: Array.from(menu.querySelectorAll('li.completion'), function (li) {
        return li.textContent.trim(); })};
    """
    # sao's completion searches 300 ms after the last key (a timer per key, dropped when
    # the text has changed since): its own search for the text typed is started at once
    # instead. The timer's turn still comes and searches again; its answer is dropped by
    # sao once a product is chosen (the field's text is then the product's name).
    COMPLETE_NOW_JS = _SAO_JS + """
    var d = document.querySelector('""" + DIALOG + """');
    var input = d && d.querySelector('input[name=product]');
    var screen = linesWidget() && linesWidget().screen;
    var view = screen && screen.current_view;
    var widget = view && view.widgets && fieldWidget(view, 'product');
    var completion = widget && widget.wid_completion;
    if (!input || !completion || !completion.input || completion.input[0] !== input
            || input.value !== arguments[0] || typeof completion._input !== 'function') {
        return false;
    }
    completion._input(input.value);
    return true;
    """
    #: times the product code is typed again when sao has wiped it
    PRODUCT_TYPINGS = 3
    PICK_JS = """
    var d = document.querySelector('""" + DIALOG + """');
    var prefix = arguments[0];
    var li = Array.from(d.querySelectorAll('li.completion')).filter(function (e) {
        return e.textContent.trim().indexOf(prefix) === 0; });
    if (li.length !== 1) { return li.length; }
    li[0].querySelector('a').click();
    return -1;
    """
    # Values as the dialog shows them once sao has taken them in (no request running),
    # with the number format they are written in.
    VALUES_JS = _SAO_JS + """
    var d = document.querySelector('""" + DIALOG + """');
    if (!d || document.activeElement && d.contains(document.activeElement)
            && document.activeElement.tagName !== 'BUTTON' && document.activeElement !== d) {
        if (d && document.activeElement) { document.activeElement.blur(); }
        return null;
    }
    function value(css) { var e = d.querySelector(css); return e ? e.value : null; }
    return {type: value('select[name=type]'), product: value('input[name=product]'),
            quantity: value('input[name=quantity][type=text]'), unit: value('input[name=unit]'),
            description: value('textarea[name=description]'), format: numberFormat()};
    """
    FOCUS_QUANTITY_JS = ("var t = document.querySelector('" + DIALOG
                         + " input[name=quantity][type=text]'); if (t && t.offsetParent) t.focus();")
    QUANTITY_FOCUSED_JS = ("var e = document.activeElement; return e && e.name === 'quantity'"
                           " && e.type === 'number' ? e : null;")
    # What the number input holds: the browser's own, locale-free reading of the keys.
    NUMBER_VALUE_JS = "return arguments[0].value;"
    DECIMAL_POINT_JS = _SAO_JS + "return numberFormat().decimal;"
    DESCRIPTION = (By.CSS_SELECTOR, DIALOG + " textarea[name=description]")
    # By their place and kind in the dialog's footer, which both series share (8.0 also
    # gives them ids, save and delete_; 7.0 does not).
    ADD = (By.CSS_SELECTOR, DIALOG + " .modal-footer button.btn-primary[type=submit]")
    # "Add and New" (the footer's btn-default, in both series; 8.0 also gives it the id
    # new_): sao validates the record, keeps it in the Lines and shows a new one in the
    # same dialog -- no fade out and in, no new dialog to settle. Pressed in the same
    # script that notes which record was shown, so the wait below can tell them apart.
    ADD_MORE_JS = _SAO_JS + """
    var d = document.querySelector('""" + DIALOG + """');
    var button = d && d.querySelector('.modal-footer button.btn-default[type=button]');
    var widget = linesWidget();
    var record = widget && widget.screen && widget.screen.current_record;
    if (!button || button.disabled || !record) { return null; }
    button.click();
    return record.id;
    """
    # The new record is shown: another current record of the Lines' screen, the one
    # added still in its group with the product and description it was given, the
    # product field empty, the Type filled in, the focus put back into the dialog
    # (sao's set_cursor, the last thing it does after showing the new record).
    NEXT_READY_JS = _SAO_JS + """
    var d = document.querySelector('""" + DIALOG + """');
    if (!d) { return {closed: true}; }
    var screen = linesWidget().screen;
    var record = screen.current_record;
    if (!record || record.id === args.added) { return null; }
    var added = screen.group.get(args.added);
    if (!added) { return {lost: 'the line is not in the sale'}; }
    var product = String(added.field_get_client('product') || '');
    var description = added.field_get_client('description');
    if (product.indexOf(args.prefix) !== 0 || description !== args.text) {
        return {lost: 'the line holds ' + JSON.stringify([product, description])};
    }
    var input = d.querySelector('input[name=product]'), type = d.querySelector('select[name=type]');
    if (!input || input.value !== '' || !type || !type.value) { return null; }
    return d.contains(document.activeElement) ? {shown: true} : null;
    """
    DISCARD = (By.CSS_SELECTOR, DIALOG + " .modal-footer button.btn-link")
    CLOSED_JS = "return !document.querySelector('" + DIALOG + "');"

    # What a line is written with, by field name and by place: missing in a customised
    # or changed dialog, nothing is typed into it.
    PARTS_JS = """
    var d = document.querySelector('""" + DIALOG + """');
    var wanted = {quantity: 'input[name=quantity]', description: 'textarea[name=description]',
                  unit: 'input[name=unit]',
                  add: '.modal-footer button.btn-primary[type=submit]',
                  discard: '.modal-footer button.btn-link'};
    return Object.keys(wanted).filter(function (name) {
        return !d.querySelector(wanted[name]); });
    """

    def __init__(self, sao):
        self.sao = sao
        self.filled = None  # (code, text) once fill() has checked them, just before add()
        sao.wait(self.READY_JS, "the line dialog", quiet=QUIET_MS)
        missing = sao.driver.execute_script(self.PARTS_JS)
        if missing:
            raise ScreenChanged(f"The line dialog has no {', '.join(missing)} (sao's form "
                                f"view of sale.line)", screen="line form")

    def fill(self, product_code, amount, text):
        """Fill in the line and check that the dialog holds exactly these values.

        :raises ProductNotFound: when no product has the code ``product_code``
        :raises InvalidAmount: when Tryton does not take ``amount`` as it is (it rounds
            a quantity to its unit's digits: 2.5 of a product sold per unit becomes 3)
        """
        self.filled = None
        self._choose_product(product_code)
        self._type_quantity(amount)
        self.sao.type(self.DESCRIPTION, text, clear=True)
        # Never leave the focus in Description: a click on Add then turns the line into
        # a comment line (no product, no quantity) without a word. VALUES_JS blurs it.
        shown = self.values()
        if parse_quantity(shown["quantity"], shown["format"]) != Decimal(amount):
            # Once more: an answer arriving late (e.g. after a renewed session) can put
            # the product's default quantity over what was typed. A rounding stays.
            self._type_quantity(amount)
            shown = self.values()
        if shown["type"] != '"line"' or not shown["product"].startswith(f"[{product_code}] "):
            raise UnexpectedPage(f"The line dialog shows {shown!r} after choosing product "
                                 f"{product_code}")
        if parse_quantity(shown["quantity"], shown["format"]) != Decimal(amount):
            raise InvalidAmount(f"Tryton shows the quantity {amount} as {shown['quantity']} "
                                f"{shown['unit']}: not a quantity it takes for this product")
        if shown["description"] != text:
            raise UnexpectedPage(f"The description reads {shown['description']!r}")
        # Checked with nothing focused and no request running: what Add needs too.
        self.filled = (product_code, text)

    def values(self):
        """What the dialog shows, once no field has the focus and no request runs."""
        return self.sao.wait(self.VALUES_JS, "the line's values")

    def _choose_product(self, code):
        for typing in range(self.PRODUCT_TYPINGS):
            self.sao.type(self.PRODUCT, code, clear=typing > 0)
            self.sao.driver.execute_script(self.COMPLETE_NOW_JS, code)
            found = self.sao.wait(self.COMPLETION_JS, f"the products matching {code!r}",
                                  code=code)
            if "names" in found:
                break
        else:
            raise UnexpectedPage(f"The product field did not keep {code!r}, typed "
                                 f"{self.PRODUCT_TYPINGS} times (it holds {found['lost']!r})")
        names = found["names"]
        if not any(name.startswith(f"[{code}] ") for name in names):
            raise ProductNotFound(f"Tryton has no product with code {code}")
        picked = self.sao.driver.execute_script(self.PICK_JS, f"[{code}] ")
        if picked != -1:
            raise UnexpectedPage(f"{picked} products with code {code}")
        # on_change of the product fills in the unit and the price
        self.sao.wait(self.PRODUCT_SET_JS, f"product {code} to be set", prefix=f"[{code}] ")

    PRODUCT_SET_JS = """
    var d = document.querySelector('""" + DIALOG + """');
    var p = d.querySelector('input[name=product]'), u = d.querySelector('input[name=unit]');
    return p.value.indexOf(args.prefix) === 0 && u && u.value !== '';
    """

    def _type_quantity(self, amount):
        """Type ``amount`` (``"4.75"``) into the quantity field.

        The visible text input hands over to a hidden ``type=number`` input on focus.
        What that input takes is the browser's business, not sao's: headless Chromium
        reads ``4.75`` as 4.75 whatever the page's language, and ``4,75`` (the German
        way) as 475 (measured). So the amount is typed as it is, and the input's own
        value -- the browser's locale-free reading -- is checked; should a browser
        read it otherwise, it is typed again with sao's decimal separator. What sao
        then shows is checked by :meth:`fill`."""
        def texts():
            yield amount
            if "." in amount:  # asked only when the browser did not take the point
                decimal = self.sao.driver.execute_script(self.DECIMAL_POINT_JS)
                if decimal != ".":
                    yield amount.replace(".", decimal)
        for text in texts():
            field = self._type_into_quantity(text)
            try:
                value = self.sao.driver.execute_script(self.NUMBER_VALUE_JS, field)
                if value and Decimal(value) == Decimal(amount):
                    return
            except (InvalidOperation, ElementNotInteractableException):
                pass

    def _type_into_quantity(self, text):
        found = []

        def typed(driver):
            field = driver.execute_script(self.FOCUS_QUANTITY_JS + self.QUANTITY_FOCUSED_JS)
            if not field:
                return False
            try:
                field.send_keys(Keys.CONTROL, "a")  # replace, never append to, a value
                field.send_keys(text)
                found.append(field)
                return True
            except ElementNotInteractableException:
                return False
        self.sao.browser.wait_until(typed, "the quantity input")
        return found[-1]

    def add(self, more=False):
        """Add the line to the sale (not saved yet: :meth:`SaleForm.save`).

        :param more: another line follows: "Add and New", the dialog stays and shows a
            new record (checked: the line just filled is in the sale with its product
            and description)
        :returns: whether the dialog stayed open for the next line
        :raises UnexpectedPage: when the line filled is not in the sale after it
        """
        filled, self.filled = self.filled, None  # the next record is not checked yet
        if filled is None:
            self.values()  # nothing focused, nothing running: only then is Add safe
        if more and filled is not None:
            added = self.sao.driver.execute_script(self.ADD_MORE_JS)
            if added is not None:
                code, text = filled
                shown = self.sao.wait(self.NEXT_READY_JS, "a new line in the line dialog",
                                      added=added, prefix=f"[{code}] ", text=text)
                if "lost" in shown:
                    raise UnexpectedPage(f"After Add and New, {shown['lost']}")
                return "shown" in shown
        self.sao.browser.click(self.ADD)
        self.sao.wait(self.CLOSED_JS, "the line dialog to close")
        return False

    def discard(self):
        """Drop the new line and close the dialog."""
        self.sao.browser.click(self.DISCARD)
        self.sao.wait(self.CLOSED_JS, "the line dialog to close")
