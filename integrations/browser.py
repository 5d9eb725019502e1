"""Browser plumbing shared by every Selenium integration.

* :class:`Browser` -- one Chromium (local, or remote through ``selenium_remote_url``)
  with every wait and page load bounded, and its throw-away profile removed on quit.
* :func:`map_webdriver_error` -- the one table that turns Selenium's exceptions into
  the bridge's :mod:`bridge.exceptions` (:data:`BROWSER_FAILURES` is what it takes).
* :func:`error_page_reason` -- recognises a browser error page or an HTTP 5xx page.
* :func:`save_failure_artifacts` -- screenshot + page HTML of a failure, password scrubbed.
* :func:`reap_orphaned_browsers` -- ends browsers left behind by a process killed with -9.

Nothing here knows any ERP; page objects live with their integration.
"""

import glob
import html
import json
import os
import re
import shutil
import signal
import tempfile
import time
import uuid
from datetime import datetime, timezone

import urllib3

# Selenium Manager would otherwise try the network to find a driver (and can hang for
# minutes on a network that drops packets); we always name the binaries ourselves.
os.environ.setdefault("SE_OFFLINE", "true")

from selenium import webdriver  # noqa: E402  (after SE_OFFLINE on purpose)
from selenium.common.exceptions import (  # noqa: E402
    InvalidSessionIdException, JavascriptException, NoSuchElementException,
    NoSuchWindowException, StaleElementReferenceException, TimeoutException,
    WebDriverException)
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.client_config import ClientConfig  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from bridge.exceptions import (BridgeError, BrowserError, ErpTimeout,  # noqa: E402
                               ErpUnavailable, UnexpectedPage)

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
MASK = "********"
#: tries of one step whose elements went stale under it (the page re-rendered)
STALE_ATTEMPTS = 5

#: what Selenium and the HTTP client under it raise when the browser, the driver or the
#: page fails -- everything :func:`map_webdriver_error` translates
BROWSER_FAILURES = (WebDriverException, urllib3.exceptions.HTTPError, OSError)

# Status pages of a server or proxy in trouble: "502 Bad Gateway", "Internal Server Error".
# Anchored, so that "Worksheet 500" is not one.
_SERVER_ERROR = re.compile(
    r"^\s*(?:HTTP\s+(?:Error\s+)?)?5\d\d\b|Internal Server Error|Bad Gateway"
    r"|Service Unavailable|Gateway Time-?out",
    re.IGNORECASE,
)
_PAGE_SUMMARY_JS = """
var h = document.querySelector('h1');
return [location.href, document.title, h ? h.textContent : ''];
"""
# Message fragments of a browser (or driver) that is gone; the session cannot recover.
_BROWSER_GONE = ("invalid session id", "chrome not reachable", "disconnected",
                 "session deleted", "no such window", "target window already closed",
                 "tab crashed", "session not created")


def map_webdriver_error(exc):
    """Translate an exception from Selenium into a :class:`~bridge.exceptions.BridgeError`.

    Errors that leave the browser unusable become :class:`BrowserError`; the caller
    must then quit the browser. Anything not recognised is treated as that too, since a
    fresh browser is the safe way on.

    :param exc: the exception raised by Selenium (or by the HTTP client under it)
    :returns: the bridge error to raise (``from exc``)
    """
    if isinstance(exc, BridgeError):
        return exc
    message = getattr(exc, "msg", None) or str(exc)
    first_line = message.strip().splitlines()[0] if message.strip() else type(exc).__name__
    if isinstance(exc, TimeoutException):
        return ErpTimeout(f"Timed out: {first_line}")
    if "net::ERR_" in message:
        return ErpUnavailable(f"ERP not reachable: {first_line}")
    if isinstance(exc, (InvalidSessionIdException, NoSuchWindowException)) or any(
            marker in message.lower() for marker in _BROWSER_GONE):
        return BrowserError(f"Browser lost: {first_line}")
    if isinstance(exc, (NoSuchElementException, StaleElementReferenceException)):
        return UnexpectedPage(f"Page changed unexpectedly: {first_line}")
    return BrowserError(f"Browser failed: {type(exc).__name__}: {first_line}")


def error_page_reason(driver):
    """If the browser shows an error page instead of the ERP, say why.

    :returns: an :class:`ErpUnavailable` for a browser network error page or an HTTP
        5xx page, else ``None``
    """
    url, title, heading = driver.execute_script(_PAGE_SUMMARY_JS)  # one round trip
    if url.startswith("chrome-error://"):
        return ErpUnavailable("ERP not reachable (browser error page)")
    for text in (title, heading):
        if text and _SERVER_ERROR.search(text):
            return ErpUnavailable(f"ERP answered with an error page: {text.strip()[:100]}")
    return None


class Browser:
    """One Chromium session, started on construction, with bounded waits.

    :param config: an :class:`integrations.base.IntegrationConfig`
    :raises BrowserError: when the browser cannot be started
    """

    def __init__(self, config):
        self.config = config
        self._profile_dir = None
        self.driver = None
        try:
            self.driver = self._start()
            self.driver.set_page_load_timeout(config.page_load_timeout)
            self.driver.set_script_timeout(config.wait_timeout)
            # The HTTP call to the driver has no timeout of its own: a hung driver would
            # block for ever. Bound it just above the longest thing it waits for.
            self.driver.command_executor.client_config.timeout = self._driver_call_timeout()
        except Exception as exc:
            self.quit()
            raise BrowserError(f"Could not start the browser: {_first_line(exc)}") from exc

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
            client = ClientConfig(remote_server_addr=self.config.selenium_remote_url,
                                  timeout=self._driver_call_timeout())
            return webdriver.Remote(command_executor=self.config.selenium_remote_url,
                                    options=options, client_config=client)
        # Naming both binaries keeps Selenium Manager (and its network access) out.
        options.binary_location = self.config.chromium_binary
        reap_orphaned_browsers()
        self._profile_dir = tempfile.mkdtemp(prefix=PROFILE_PREFIX)
        options.add_argument(f"--user-data-dir={self._profile_dir}")
        service = Service(executable_path=self.config.chromedriver_path)
        driver = webdriver.Chrome(service=service, options=options)
        _write_owner(self._profile_dir, driver.service.process.pid)
        return driver

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

    def open(self, url):
        """Load ``url``; raise :class:`ErpUnavailable` if an error page comes instead.

        :raises bridge.exceptions.IntegrationError: mapped from Selenium's error
        """
        try:
            self.driver.get(url)
        except WebDriverException as exc:
            raise map_webdriver_error(exc) from exc
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
        selectors = [css_selector(locator) for locator, _ in fields]
        values = [value for _, value in fields]

        def step():
            shown = self.driver.execute_script(_FILL_JS, selectors, values)
            if shown != values:
                raise StaleElementReferenceException(f"fields {selectors} hold {shown}")
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

    def submit(self, locator):
        """Click the button at ``locator`` and wait until the browser has left the page.

        :raises ErpTimeout: when no new page came within ``config.page_load_timeout``
        """
        limit = self.config.page_load_timeout
        try:
            # A mark on the current window object: the next document does not have it.
            # (Staleness of an element reference is less reliable: Chromium sometimes
            # answers "node does not belong to the document" instead of "stale".)
            mark = uuid.uuid4().hex
            self.click(locator, mark)
            self.wait_until(_left_page(mark), "the next page", timeout=limit)
            self.raise_for_error_page()
        except WebDriverException as exc:
            raise map_webdriver_error(exc) from exc


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


_FILL_JS = """
var selectors = arguments[0], values = arguments[1];
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
"""

_CLICK_JS = """
var element = document.querySelector(arguments[0]);
if (!element) { return false; }
if (arguments[1]) { window.__bridgePage = arguments[1]; }
element.click();
return true;
"""

_TEXTS_JS = """
return Array.from(document.querySelectorAll(arguments[0]), function (e) {
    return e.textContent.trim();
});
"""


def _left_page(mark):
    def condition(driver):
        try:
            return driver.execute_script(
                "return document.readyState === 'complete'"
                " && window.__bridgePage !== arguments[0];", mark)
        except JavascriptException:  # between two documents; ask again
            return False
    return condition


# -- browsers of dead processes ----------------------------------------------------------

PROFILE_PREFIX = "bridge-chromium-"
_OWNER_FILE = "bridge-owner.json"


def _write_owner(profile_dir, chromedriver_pid):
    with open(os.path.join(profile_dir, _OWNER_FILE), "w") as f:
        json.dump({"owner": os.getpid(), "chromedriver": chromedriver_pid}, f)


def process_running(pid):
    """Whether ``pid`` is a live process (a zombie is not). Linux: reads ``/proc``."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in (b"Z", b"X")


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def reap_orphaned_browsers():
    """End the browsers of bridge processes that died without quitting them.

    A process killed with SIGKILL cannot quit its browser: chromedriver and Chromium
    live on (about 190 MiB each) and so does the profile. Each local browser notes its
    owner's pid in its profile; a profile whose owner is gone is reaped here -- its
    chromedriver (checked by name, since pids are reused) and every process started
    with that profile -- and then removed. Linux only; elsewhere it does nothing.
    """
    if not os.path.isdir("/proc"):
        return
    for profile in glob.glob(os.path.join(tempfile.gettempdir(), PROFILE_PREFIX + "*")):
        try:
            with open(os.path.join(profile, _OWNER_FILE)) as f:
                owner = json.load(f)
        except (OSError, ValueError):
            continue  # being set up right now, or not ours
        if process_running(owner["owner"]):
            continue
        driver_pid = owner["chromedriver"]
        victims = [driver_pid] if "chromedriver" in _cmdline(driver_pid) else []
        flag = f"--user-data-dir={profile}"
        victims += [int(pid) for pid in os.listdir("/proc")
                    if pid.isdigit() and flag in _cmdline(pid)]
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        shutil.rmtree(profile, ignore_errors=True)


def _first_line(exc):
    text = (getattr(exc, "msg", None) or str(exc) or type(exc).__name__).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# -- failure artifacts -----------------------------------------------------------------

_PASSWORD_INPUT = re.compile(r"<input\b[^>]*\btype=[\"']?password[\"']?[^>]*>", re.IGNORECASE)
_VALUE_ATTR = re.compile(r"""\bvalue\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+)""", re.IGNORECASE)
_CLEAR_PASSWORDS_JS = """
document.querySelectorAll('input[type=password]').forEach(function (e) {
    e.value = ''; e.removeAttribute('value');
});
"""


def scrub_html(page_html, secrets):
    """``page_html`` with every secret masked and password inputs emptied.

    :param secrets: strings to mask (empty ones are skipped); their HTML-escaped forms
        are masked too
    """
    page_html = _PASSWORD_INPUT.sub(lambda m: _VALUE_ATTR.sub('value=""', m.group(0)), page_html)
    for secret in secrets:
        if not secret:
            continue
        for form in {secret, html.escape(secret), html.escape(secret, quote=False)}:
            page_html = page_html.replace(form, MASK)
    return page_html


def _safe_name(text, limit=64):
    return re.sub(r"[^A-Za-z0-9._-]", "_", str(text))[:limit] or "none"


def save_failure_artifacts(driver, artifact_dir, uniqueid, reason_code, secrets=()):
    """Save a PNG screenshot and the page HTML of a failure, with no secret in either.

    Password fields on the page are emptied before the screenshot; the HTML is
    scrubbed with :func:`scrub_html`.

    :param driver: the WebDriver showing the failed page
    :param artifact_dir: folder to write into (created if missing)
    :param uniqueid: the order's id, part of the file names
    :param reason_code: the failure's reason code, part of the file names
    :param secrets: strings that must not appear in the files (the password)
    :returns: the list of paths written
    """
    os.makedirs(artifact_dir, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    base = os.path.join(artifact_dir,
                        f"{stamp}_{_safe_name(uniqueid)}_{_safe_name(reason_code)}")
    paths = []
    driver.execute_script(_CLEAR_PASSWORDS_JS)
    if driver.save_screenshot(base + ".png"):
        paths.append(base + ".png")
    with open(base + ".html", "w", encoding="utf-8") as f:
        f.write(scrub_html(driver.page_source, secrets))
    paths.append(base + ".html")
    return paths
