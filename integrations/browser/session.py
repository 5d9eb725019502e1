"""Page actions: what the ERPs' page objects are built from, on one browser's driver.

:class:`PageActions` loads pages, fills forms, clicks, and waits -- every page load and
wait bounded, Selenium's errors mapped to the bridge's. Getting, keeping and giving back
the browser is :mod:`integrations.browser.life`'s job (its :class:`~.life.Browser` is a
:class:`PageActions` with a life).
"""

import time
import uuid
from urllib.parse import urlsplit

from selenium.common.exceptions import (JavascriptException, NoSuchElementException,
                                        StaleElementReferenceException, TimeoutException,
                                        WebDriverException)
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from core.errors import ErpTimeout
from integrations.browser.errors import (PAGE_SUMMARY_JS, error_page_reason,
                                         map_webdriver_error, summary_reason)

#: seconds between two checks of a wait condition. Selenium's 0.5 s adds latency to every
#: step; at 0.05 an SPA line still lost ~16 ms of 0.46 s to waiting for the next check
#: (measured against erp_sim --flavor spa). A check is one ~5 ms script call.
POLL_FREQUENCY = 0.02
#: tries of one step whose elements went stale under it (the page re-rendered)
STALE_ATTEMPTS = 5


class PageActions:
    """The page actions on one browser.

    :param config: an :class:`integrations.base.IntegrationConfig` (its timeouts)
    :param driver: the Selenium driver the actions go through
    """

    def __init__(self, config, driver=None):
        self.config = config
        self.driver = driver
        #: the address a claimed session's tab still shows, until the first open
        self._parked_url = None

    def open(self, url, check=True, fresh=False):
        """Load ``url``; raise :class:`ErpUnavailable` if an error page comes instead.

        :param check: look for an error page at once (one round trip); ``False`` when
            the caller's next wait recognises error pages itself (erp_sim's ``land``)
        :param fresh: load a new document even when ``url`` differs from the page shown
            by its ``#fragment`` only (which on its own is no reload)
        :raises core.errors.IntegrationError: mapped from Selenium's error
        """
        try:
            parked, self._parked_url = self._parked_url, None
            # The page another workshop left (park keeps it) is of the same origin: its
            # scripts must not live on with what they hold, so the same as fresh.
            if fresh or (parked and origin(parked) == origin(url)):
                self.driver.get("about:blank")
            self.driver.get(url)
        except WebDriverException as exc:
            raise map_webdriver_error(exc) from exc
        if check:
            self.raise_for_error_page()

    def texts(self, css):
        """``textContent`` (stripped) of every element matching ``css``, in one round trip."""
        return self.driver.execute_script(_TEXTS_JS, css)

    def fill(self, fields):
        """Put each value into its field, then check every field holds its value.

        One script for all fields: it sets each value the way typing does (through the
        input's own value setter, then ``input`` and ``change`` events, so a script-driven
        page sees it) and reads them back. A tenth of the time of ``send_keys``, and
        nothing is held between two calls, so a page re-rendering under us costs a retry.

        :param fields: ``[(locator, value), ...]``; locators by id, name or CSS
        :raises StaleElementReferenceException: when the page kept changing under it
        """
        selectors, values = _selectors_and_values(fields)

        def step():
            _check_filled(selectors, values, self.driver.execute_script(_FILL_JS, selectors,
                                                                         values))
        retry_stale(step)

    def click(self, locator, mark=None):
        """Click the element at ``locator``, found at the moment of the click.

        A script finds and clicks it in one round trip (a WebDriver click costs ~50 ms
        more, for scrolling and checks the ERP's plain buttons do not need), so there is
        no element to go stale in between.

        :param mark: when given, set as ``window.__bridgePage`` just before the click
            (:meth:`submit`), in the same round trip
        :raises NoSuchElementException: when the page has no such element
        """
        selector = css_selector(locator)
        if not self.driver.execute_script(_CLICK_JS, selector, mark):
            raise NoSuchElementException(f"Nothing to click at {selector}")

    def raise_for_error_page(self):
        """:raises ErpUnavailable: when the browser shows an error page, not the ERP"""
        reason = error_page_reason(self.driver)
        if reason is not None:
            raise reason

    def wait_until(self, condition, what, timeout=None):
        """Wait for ``condition(driver)`` to be truthy and return its value.

        :param condition: an expected condition, e.g. ``EC.any_of(...)``
        :param what: what is awaited, for the error message
        :param timeout: seconds; ``config.wait_timeout`` when ``None``
        :raises ErpTimeout: when it does not happen in time
        :raises BrowserError: when the browser died while waiting
        """
        timeout = self.config.wait_timeout if timeout is None else timeout
        try:
            wait = WebDriverWait(self.driver, timeout, poll_frequency=POLL_FREQUENCY)
            return wait.until(condition)
        except TimeoutException:
            # EC.any_of swallows WebDriverException, so a dead browser looks like a
            # timeout; one cheap call tells the two apart.
            self.check_alive()
            raise ErpTimeout(f"Timed out after {timeout:g}s waiting for {what}") from None
        except WebDriverException as exc:
            raise map_webdriver_error(exc) from exc

    def describe_page(self):
        """Title and address of the current page, for error messages."""
        return f"{self.driver.title!r} at {self.driver.current_url}"

    def check_alive(self):
        """:raises BrowserError: when the browser no longer answers"""
        try:
            self.driver.current_url
        except WebDriverException as exc:
            raise map_webdriver_error(exc) from exc

    def fill_and_leave(self, fields, locator):
        """:meth:`fill`, then :meth:`click_to_leave` on ``locator``, in one round trip.

        With the browser pool every WebDriver command is one more hop through the Grid
        (issue 12), and a form's fill and its submit are the two commands of every line.
        The script clicks only when every field holds its value, so a
        ``StaleElementReferenceException`` (the page kept changing) or a
        ``NoSuchElementException`` (no such button) means nothing was sent; any other
        failure leaves the outcome unknown, as a click's does.

        :returns: the mark left on the page (what :meth:`click_to_leave` returns)
        """
        selectors, values = _selectors_and_values(fields)
        button = css_selector(locator)
        mark = uuid.uuid4().hex

        def step():
            done = self.driver.execute_script(_FILL_AND_CLICK_JS, selectors, values, button,
                                              mark)
            _check_filled(selectors, values, done["shown"])
            if not done["clicked"]:
                raise NoSuchElementException(f"Nothing to click at {button}")
        try:
            retry_stale(step)
        except StaleElementReferenceException:
            raise  # nothing was clicked: the caller's retry (as for a fill)
        except WebDriverException as exc:
            raise map_webdriver_error(exc) from exc
        return mark

    def click_to_leave(self, locator):
        """Click the button at ``locator``, which loads a new page, and do not wait.

        :returns: the mark left on the current page (``window.__bridgePage``): a page
            without it is a new one (what :meth:`submit` waits for)
        """
        # A mark on the current window object: the next document does not have it.
        # (Staleness of an element reference is less reliable: Chromium sometimes
        # answers "node does not belong to the document" instead of "stale".)
        mark = uuid.uuid4().hex
        try:
            self.click(locator, mark)
        except WebDriverException as exc:
            raise map_webdriver_error(exc) from exc
        return mark

    def submit(self, locator):
        """Click the button at ``locator`` and wait until the browser has left the page.

        :raises ErpTimeout: when no new page came within ``config.page_load_timeout``
        """
        limit = self.config.page_load_timeout
        try:
            mark = self.click_to_leave(locator)
            reason = summary_reason(
                self.wait_until(_left_page(mark), "the next page", timeout=limit))
            if reason is not None:
                raise reason
        except WebDriverException as exc:
            raise map_webdriver_error(exc) from exc


def origin(url):
    """``scheme://host:port`` of ``url`` as a page's ``location.origin`` spells it, or
    "" for an address without one (``about:blank``)."""
    parts = urlsplit(url or "")
    if not (parts.scheme in ("http", "https") and parts.hostname):
        return ""
    default = {"http": 80, "https": 443}[parts.scheme]
    try:
        port = parts.port
    except ValueError:
        return ""
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}" + (f":{port}" if port not in (None, default) else "")


def retry_stale(step, attempts=STALE_ATTEMPTS):
    """Run ``step()``; when an element went stale under it, run it again (a few times).

    :returns: what ``step`` returned
    :raises StaleElementReferenceException: when it is still stale on the last try
    """
    for attempt in range(attempts):
        try:
            return step()
        except StaleElementReferenceException:
            if attempt == attempts - 1:
                raise
            time.sleep(POLL_FREQUENCY)


def css_selector(locator):
    """The CSS selector of a ``(By.ID | By.NAME | By.CSS_SELECTOR, value)`` locator."""
    how, value = locator
    if how == By.ID:
        return f"#{value}"
    if how == By.NAME:
        return f'[name="{value}"]'
    if how == By.CSS_SELECTOR:
        return value
    raise ValueError(f"no CSS for a locator by {how}")


def _selectors_and_values(fields):
    """``[(locator, value), ...]`` -> the fields' CSS selectors and their values."""
    return [css_selector(locator) for locator, _ in fields], [value for _, value in fields]


def _check_filled(selectors, values, shown):
    """:raises StaleElementReferenceException: unless the fields hold ``values``
        (``shown``, read back by the fill script): the page changed under it"""
    if shown != values:
        raise StaleElementReferenceException(f"fields {selectors} hold {shown}")


# The functions of the scripts below, so that a fill and a click can also go in one.
_FILL_FUNCTION = """
function fill(selectors, values) {
    var setter = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set;
    selectors.forEach(function (selector, i) {
        var field = document.querySelector(selector);
        if (!field) { return; }
        field.focus();
        setter.call(field, values[i]);
        field.dispatchEvent(new Event('input', {bubbles: true}));
        field.dispatchEvent(new Event('change', {bubbles: true}));
    });
    return selectors.map(function (selector) {
        var field = document.querySelector(selector);
        return field ? field.value : null;
    });
}
"""

_CLICK_FUNCTION = """
function click(selector, mark) {
    var element = document.querySelector(selector);
    if (!element) { return false; }
    if (mark) { window.__bridgePage = mark; }
    element.click();
    return true;
}
"""

_FILL_JS = _FILL_FUNCTION + "return fill(arguments[0], arguments[1]);"

_CLICK_JS = _CLICK_FUNCTION + "return click(arguments[0], arguments[1]);"

# Clicks only when every field holds its value: {shown: the fields' values, clicked}.
_FILL_AND_CLICK_JS = _FILL_FUNCTION + _CLICK_FUNCTION + """
var values = arguments[1], shown = fill(arguments[0], values);
for (var i = 0; i < values.length; i++) {
    if (shown[i] !== values[i]) { return {shown: shown, clicked: false}; }
}
return {shown: shown, clicked: click(arguments[2], arguments[3])};
"""

_TEXTS_JS = """
return Array.from(document.querySelectorAll(arguments[0]), function (e) {
    return e.textContent.trim();
});
"""


def still_on_js(mark_argument):
    """JavaScript expression, true until the browser has left the page
    :meth:`Browser.click_to_leave` marked and loaded the next one whole.

    :param mark_argument: index of the script argument holding the mark; a null mark
        (nothing was clicked) only waits for the page to be loaded whole
    """
    mark = f"arguments[{int(mark_argument)}]"
    return (f"(document.readyState !== 'complete'"
            f" || ({mark} && window.__bridgePage === {mark}))")


def _left_page(mark):
    """Wait condition: a new document, loaded whole; its :data:`PAGE_SUMMARY_JS` summary."""
    script = f"if {still_on_js(0)} {{ return null; }}" + PAGE_SUMMARY_JS

    def condition(driver):
        try:
            return driver.execute_script(script, mark)
        except JavascriptException:  # between two documents; ask again
            return None
    return condition
