"""The :class:`Browser`: one Chromium session, started and quit, with bounded waits and
the page actions page objects are built from."""

import shutil
import tempfile
import threading
import time
import uuid
from urllib.parse import urlsplit

import urllib3
from selenium import webdriver
from selenium.common.exceptions import (JavascriptException, NoSuchElementException,
                                        SessionNotCreatedException,
                                        StaleElementReferenceException, TimeoutException,
                                        WebDriverException)
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.client_config import ClientConfig
from selenium.webdriver.support.ui import WebDriverWait

from core.errors import BridgeError, BrowserError, ErpTimeout, ErpUnavailable
from integrations.browser.errors import (PAGE_SUMMARY_JS, error_page_reason, first_line,
                                         map_webdriver_error, summary_reason)
from integrations.browser.orphans import PROFILE_PREFIX, reap_orphaned_browsers, write_owner
from integrations.pool import end_session

CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",  # mandatory when running as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
)
# No "save password?" bubbles or leak checks on the ERP login.
CHROMIUM_PREFS = {
    "credentials_enable_service": False,
    "profile.password_manager_enabled": False,
    "profile.password_manager_leak_detection": False,
}
#: seconds between two checks of a wait condition. Selenium's 0.5 s adds latency to every
#: step; at 0.05 an SPA line still lost ~16 ms of 0.46 s to waiting for the next check
#: (measured against erp_sim --flavor spa). A check is one ~5 ms script call.
POLL_FREQUENCY = 0.02
#: extra seconds an HTTP call to the driver may take beyond the page load limit
DRIVER_CALL_MARGIN = 15.0
#: tries of one step whose elements went stale under it (the page re-rendered)
STALE_ATTEMPTS = 5
#: seconds a new session may wait for a free slot of a remote pool, unless told
#: (BROWSER_WAIT_SECONDS; the fleet's Grid gives up on a queued request after as long)
DEFAULT_WAIT_SECONDS = 60.0
#: seconds between two tries to reach a pool that does not answer (a Grid restarting)
POOL_RETRY_SECONDS = 1.0
#: seconds the client waits for a new session beyond what is left of the wait: the
#: fleet's Grid answers a request that waited out BROWSER_WAIT_SECONDS within a second
#: (fleet/grid.py) and starts a session in 0.5-1.5 s; a Grid elsewhere with a longer
#: limit of its own is given up on after this margin
POOL_ANSWER_MARGIN = 5.0
#: how a Selenium Grid says that a queued new-session request waited out its limit
_QUEUE_TIMED_OUT = "New session request timed out"
#: seconds between two looks into the parking while waiting for a parked session (a
#: directory listing), and between two reads of the pool's state in that wait
PARKING_POLL_SECONDS = 0.1
POOL_POLL_SECONDS = 1.0
#: seconds a parked session has to answer the claimer's first command
CLAIM_TIMEOUT = 5.0


class Browser:
    """One Chromium session, started on construction, with bounded waits.

    :param config: an :class:`integrations.base.IntegrationConfig`
    :param wait_seconds: with ``config.selenium_remote_url``, how long the new session
        may wait for a free slot of the pool (or for a pool that does not answer)
    :param cancel: a :class:`threading.Event` that ends such a wait at once (the worker's
        stop: a stopping worker does not wait for a slot it no longer needs)
    :param log: where a pool that does not answer is reported (once per wait)
    :param parking: with a remote pool, an :class:`integrations.parking.Parking`
        shared with the fleet's other instances: a parked session is claimed before a new
        one is asked for, and :meth:`park` offers this one when it is no longer needed
    :raises ErpUnavailable: when a remote pool had no free slot within ``wait_seconds``
    :raises BrowserError: when the browser cannot be started, or ``cancel`` was set
    """

    def __init__(self, config, wait_seconds=DEFAULT_WAIT_SECONDS, cancel=None, log=None,
                 parking=None):
        self.config = config
        self.wait_seconds = wait_seconds
        self._cancel = cancel or threading.Event()
        self._log = log
        self._parking = parking if config.selenium_remote_url else None
        #: the parking's record of the session this browser claimed, None for a new one
        self.claimed = None
        #: the address a claimed session's tab still shows, until the first open
        self._parked_url = None
        self._profile_dir = None
        self.driver = None
        try:
            self.driver = self._start()
            self.driver.set_page_load_timeout(config.page_load_timeout)
            self.driver.set_script_timeout(config.wait_timeout)
            # The HTTP call to the driver has no timeout of its own: a hung driver would
            # block for ever. Bound it just above the longest thing it waits for.
            self.driver.command_executor.client_config.timeout = self._driver_call_timeout()
        except BridgeError:
            self.quit()
            raise
        except Exception as exc:
            self.quit()
            raise BrowserError(f"Could not start the browser: {first_line(exc)}") from exc

    def _driver_call_timeout(self):
        return max(self.config.page_load_timeout, self.config.wait_timeout) + DRIVER_CALL_MARGIN

    def _start(self):
        options = webdriver.ChromeOptions()
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        options.add_experimental_option("prefs", CHROMIUM_PREFS)
        if self.config.selenium_remote_url:
            # The remote end knows where its browser is and gives each session a fresh
            # profile on its own disk; local paths would mean nothing there.
            return self._start_remote(options)
        # Naming both binaries keeps Selenium Manager (and its network access) out.
        options.binary_location = self.config.chromium_binary
        reap_orphaned_browsers()
        self._profile_dir = tempfile.mkdtemp(prefix=PROFILE_PREFIX)
        options.add_argument(f"--user-data-dir={self._profile_dir}")
        service = Service(executable_path=self.config.chromedriver_path)
        driver = webdriver.Chrome(service=service, options=options)
        write_owner(self._profile_dir, driver.service.process.pid)
        return driver

    def _start_remote(self, options):
        """A session from a remote pool (a Selenium Grid), waiting for it if need be.

        A pool whose slots are all taken queues the request: waiting there is no error.
        The Grid answers a request it could not serve within its own limit (the fleet's
        Grid: ``BROWSER_WAIT_SECONDS``), so the client waits ``POOL_ANSWER_MARGIN`` longer
        than what is left of the wait. A pool that does not answer at all (a Grid restarting after a
        crash) is asked again every ``POOL_RETRY_SECONDS`` within the same wait.

        :raises ErpUnavailable: no slot came free within ``wait_seconds``
        :raises BrowserError: the pool did not answer within ``wait_seconds``
        """
        url = self.config.selenium_remote_url
        deadline = time.monotonic() + self.wait_seconds
        no_slot = ErpUnavailable(f"no browser free in the pool at {_where(url)} within "
                                 f"{self.wait_seconds:g} s (BROWSER_WAIT_SECONDS)")
        if self._parking is not None:
            driver = self._from_parking(url, options, deadline)
            if driver is not None:
                return driver
            if time.monotonic() >= deadline:
                raise no_slot
        told = False
        while True:
            left = deadline - time.monotonic()
            client = ClientConfig(remote_server_addr=url,
                                  timeout=max(left, 1.0) + POOL_ANSWER_MARGIN)
            try:
                return self._new_session(url, options, client)
            except SessionNotCreatedException as exc:
                if _QUEUE_TIMED_OUT in str(exc) or time.monotonic() >= deadline:
                    raise no_slot from exc
                raise  # the pool's browser failed to start: a BrowserError
            except urllib3.exceptions.ReadTimeoutError as exc:  # a pool that waits longer
                raise no_slot from exc
            except (urllib3.exceptions.MaxRetryError, urllib3.exceptions.ProtocolError,
                    ConnectionError) as exc:
                if isinstance(getattr(exc, "reason", None), urllib3.exceptions.ReadTimeoutError):
                    raise no_slot from exc
                if time.monotonic() + POOL_RETRY_SECONDS >= deadline:
                    raise BrowserError(f"the browser pool at {_where(url)} did not answer "
                                       f"within {self.wait_seconds:g} s: {first_line(exc)}") from exc
                if not told and self._log is not None:
                    told = True
                    self._log.warning("the browser pool at %s does not answer (%s); asking "
                                      "again every %g s for up to %g s", _where(url),
                                      first_line(exc), POOL_RETRY_SECONDS, self.wait_seconds)
                if self._cancel.wait(POOL_RETRY_SECONDS):
                    raise _cancelled() from exc

    def _from_parking(self, url, options, deadline):
        """A parked session, claimed; None when a new one should be asked for instead.

        While every slot of the pool is taken, the wait is for a parked session (a
        holder sees this instance among the parking's waiters and parks its idle one):
        asking the Grid's queue instead would make the holder quit a warm session for a
        new one to be started. A slot coming free, or a pool whose state cannot be read,
        ends the wait: then a new session is asked for, as without parking.
        """
        driver = self._claim(url, options)
        if driver is not None or self._slot_free(url):
            return driver
        with self._parking.waiter():
            next_look = time.monotonic() + POOL_POLL_SECONDS
            while time.monotonic() < deadline:
                if self._cancel.wait(PARKING_POLL_SECONDS):
                    raise _cancelled()
                driver = self._claim(url, options)
                if driver is not None:
                    return driver
                if time.monotonic() >= next_look:
                    if self._slot_free(url):
                        return None
                    next_look = time.monotonic() + POOL_POLL_SECONDS
        return None

    def _slot_free(self, url):
        # as the fleet's janitor published it (a second old at most), else from the Grid
        state = self._parking.pool_status(url, timeout=1.0)
        return state is None or state["slots"] > state["in_use"] + state["waiting"]

    def _claim(self, url, options):
        """Claim parked sessions until one answers; None when the parking is empty.
        Those parked too long are quit (in the background), freeing their slots."""
        while True:
            for stale in self._parking.take_stale():
                _quit_in_background(url, stale)
            record = self._parking.claim()
            if record is None:
                return None
            client = ClientConfig(remote_server_addr=url, timeout=CLAIM_TIMEOUT)
            driver = _Attached(record, command_executor=url, options=options,
                               client_config=client)
            try:
                # one command: the session is still there, and what its tab shows
                self._parked_url = driver.current_url
            except (WebDriverException, urllib3.exceptions.HTTPError, OSError):
                # Ended by the Grid (or a restart), or not answering: the next, or a new
                # one; one that is still there is ended, so that its slot comes free.
                _quit_in_background(url, record)
                continue
            self.claimed = record
            return driver

    def park(self, orders=0):
        """Wipe the session and offer it to the fleet's other workshops; quit it when
        there is no parking or the wipe fails. The browser is not used after this.

        The wipe leaves one tab (:func:`_wipe`: the last page, its origin's session
        storage cleared, or a new tab), no cookie of any site, an empty HTTP cache, and
        nothing stored by the ERP's origin (local storage, IndexedDB, cache storage,
        service workers): the next workshop finds its ERP's login page, not this one's
        session.

        :param orders: orders written on this browser (its recycling count goes on)
        :returns: whether the session was parked
        """
        driver = self.driver
        if driver is None or self._parking is None:
            self.quit()
            return False
        try:
            _wipe(driver, self.config.erp_url)
            self._parking.park(driver.session_id, driver.caps, orders)
        except Exception as exc:  # a browser that cannot be wiped is not handed on
            if self._log is not None:
                self._log.info("could not park the browser (%s): quitting it", first_line(exc))
            self.quit()
            return False
        self.driver = None
        return True

    def cookies(self):
        """Every cookie the browser holds, as Chromium's DevTools gives them (a parked
        session's owner keeps its own in memory: :class:`~integrations.browser.kept.
        KeptBrowserIntegration`)."""
        return _cdp(self.driver, "Network.getAllCookies")["cookies"]

    def restore_cookies(self, cookies):
        """Put back cookies :meth:`cookies` read (before the first page of a claimed
        session: a login still valid is not done again). Never raises: without them
        the ERP asks for a login, which the flows handle."""
        wanted = [{key: cookie[key] for key in _COOKIE_PARAMS if key in cookie}
                  for cookie in cookies]
        for cookie, original in zip(wanted, cookies):
            if original.get("session", False):
                cookie.pop("expires", None)
        try:
            _cdp(self.driver, "Network.setCookies", cookies=wanted)
            return True
        except Exception:
            return False

    def _new_session(self, url, options, client):
        """``webdriver.Remote(...)``, in a thread of its own so that ``cancel`` ends the
        wait at once. A session that comes after the wait was given up on is quit, so
        that its slot does not stay taken for nobody."""
        box, lock, done = {}, threading.Lock(), threading.Event()

        def request():
            try:
                driver = webdriver.Remote(command_executor=url, options=options,
                                          client_config=client)
            except BaseException as exc:  # handed to the waiting thread
                box["error"] = exc
                done.set()
                return
            with lock:
                abandoned = box.get("abandoned", False)
                box["driver"] = driver
            done.set()
            if abandoned:
                driver.quit()

        threading.Thread(target=request, name="browser-pool-request", daemon=True).start()
        while not done.wait(0.1):
            if self._cancel.is_set():
                with lock:
                    if "driver" not in box:
                        box["abandoned"] = True
                        raise _cancelled()
        if "error" in box:
            raise box["error"]
        return box["driver"]

    def quit(self):
        """End the browser and remove its profile. Never raises."""
        driver, self.driver = self.driver, None
        try:
            if driver is not None:
                driver.quit()
        except Exception:  # already dead: nothing left to release but the profile
            pass
        finally:
            self._remove_profile()

    def _remove_profile(self):
        if self._profile_dir:
            shutil.rmtree(self._profile_dir, ignore_errors=True)
            self._profile_dir = None

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
            if fresh or (parked and _origin(parked) == _origin(url)):
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


class _Attached(webdriver.Remote):
    """A client of a session that already exists (a parked one): no new session."""

    def __init__(self, record, **kwargs):
        self._record = record
        super().__init__(**kwargs)

    def start_session(self, capabilities):
        self.session_id = self._record["session_id"]
        self.caps = self._record.get("capabilities") or {}


#: what DevTools' Network.setCookies takes of a cookie Network.getAllCookies gave
_COOKIE_PARAMS = ("name", "value", "domain", "path", "secure", "httpOnly", "sameSite",
                  "expires", "priority", "sourceScheme", "sourcePort")


def _cdp(driver, command, **params):
    return driver.execute("executeCdpCommand", {"cmd": command, "params": params})["value"]


#: run in the parked page: its own origin's session storage, cleared, and whether the
#: page is of that origin. (Storage.clearDataForOrigin "all" clears it too in Debian's
#: Chromium, but the protocol's list of storage types does not name it.)
_CLEAR_SESSION_STORAGE_JS = """
    try {
        if (location.origin !== arguments[0]) return false;
        sessionStorage.clear();
        return true;
    } catch (e) { return false; }"""


def _wipe(driver, erp_url):
    """What one workshop left in a browser, removed (:meth:`Browser.park`).

    The tab is kept when it is the only one and shows a page of the ERP's own origin:
    that origin's session storage is cleared from the page, and the page stays until
    the claimer's first :meth:`Browser.open` replaces it (through ``about:blank`` when
    the claimer's ERP has the same origin, so that no script of the page lives on).
    A new tab costs a new renderer: ~0.3 CPU-s of a ~0.7 CPU-s handover (measured with
    a scratch loop of two-workshop handovers on one Grid slot, 60 each: 0.71-0.81
    CPU-s per order with a new tab, 0.44-0.46 without, 0.41 keeping the session).
    Anything else (an error page, another origin, more than one tab) gets a new tab,
    the old ones closed with their session storage.
    """
    origin = _origin(erp_url)
    old = driver.window_handles
    if not (origin and len(old) == 1
            and driver.execute_script(_CLEAR_SESSION_STORAGE_JS, origin) is True):
        driver.switch_to.new_window("tab")
        fresh = driver.current_window_handle
        for handle in old:
            driver.switch_to.window(handle)
            driver.close()
        driver.switch_to.window(fresh)
    _cdp(driver, "Network.clearBrowserCookies")
    _cdp(driver, "Network.clearBrowserCache")
    if origin:
        _cdp(driver, "Storage.clearDataForOrigin", origin=origin, storageTypes="all")


def _origin(url):
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


def _quit_in_background(url, record):
    threading.Thread(target=end_session, args=(url, record["session_id"], CLAIM_TIMEOUT),
                     name="parked-browser-quit", daemon=True).start()


def _cancelled():
    return BrowserError("stopped while waiting for a browser from the pool")


def _where(url):
    """``host:port`` of a pool's URL: only that, since a Grid URL may carry a password."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.hostname else "SELENIUM_REMOTE_URL"


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
