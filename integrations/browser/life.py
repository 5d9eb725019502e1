"""The browser's life, in one place: getting one, keeping it, giving it back.

**Getting one** (:class:`Browser`): a local Chromium (this process's chromedriver), a new
session of a remote pool (``SELENIUM_REMOTE_URL``, the fleet's Selenium Grid: a request
beyond its slots waits in the Grid's queue up to ``BROWSER_WAIT_SECONDS``; a Grid that
does not answer is asked again), or a session another workshop parked
(:mod:`integrations.browser.parking`), claimed before a new one is asked for.

**Keeping it** (:class:`BrowserLife`, one per instance): the browser stays between
visits, is replaced on new credentials and after ``recycle_after_orders`` orders, and a
workshop's ERP login cookies are kept in the instance's memory so that a claimed session
does not log in again (never in the parking, a file or a log: a session cookie is as
good as the password).

**Giving it back** -- the worker only says how long it has had no work
(:meth:`BrowserLife.idle`) and how long it is about to wait (:meth:`BrowserLife.pause`);
the rules are here:

* a local browser is quit after ``browser_idle_seconds`` without work, so an idle
  workshop holds no browser;
* a pooled session is given back by what the pool needs, read from the pool's own state
  (:func:`integrations.browser.pool.pool_status`, or the fleet janitor's copy in the
  parking) while it is held idle: at once when a new-session request waits in the
  pool's queue; after ``browser_pool_grace_seconds`` (a short grace for bursts) when no
  slot is free, so that the next newcomer finds one; otherwise it is kept, up to
  :data:`POOL_HOLD_SECONDS` (and ``browser_idle_seconds``), so a lone busy workshop does
  not pay a new session and login for every order while slots stand empty. A pool whose
  state cannot be read gets its session back after the grace. It is also given back
  before a retry wait longer than the grace. So the slots go to the workshops that have
  work;
* with a parking, a session given back is wiped and parked for another workshop to
  claim, saving it the browser's start, rather than quit -- except when a new-session
  request waits in the Grid's queue, which needs the slot itself; and a workshop waiting
  in the parking makes an idle holder park its session at once.
"""

import shutil
import tempfile
import threading
import time
from urllib.parse import urlsplit

import urllib3
from selenium import webdriver
from selenium.common.exceptions import SessionNotCreatedException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.client_config import ClientConfig

from core.errors import BridgeError, BrowserError, ErpUnavailable
from integrations.browser.errors import first_line
from integrations.browser.orphans import PROFILE_PREFIX, reap_orphaned_browsers, write_owner
from integrations.browser.parking import Parking
from integrations.browser.pool import end_session, pool_status
from integrations.browser.session import PageActions, origin

#: extra seconds an HTTP call to the driver may take beyond the page load limit
DRIVER_CALL_MARGIN = 15.0

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

#: a remote session not there after this many seconds is reported as waiting for a free
#: slot: a session of the fleet's Grid starts in 0.5-1.5 s here (docs/fleet.md)
WAITING_AFTER_SECONDS = 3.0
#: how often an idle holder is asked whether to give its browser back, and the least
#: time between two reads of the pool's state
POLL_SECONDS = 0.5
#: the same while holding an idle browser that a workshop waiting in the parking could
#: use: it is handed over within this (the waiter looks into the parking every 0.1 s)
HOLDER_POLL_SECONDS = 0.1
#: an idle pooled session is kept past the grace only while more slots than this are
#: free. 0: a newcomer that finds every slot taken by idle holders waits in the Grid's
#: queue until one sees it there and gives its session back (within a poll,
#: ``POLL_SECONDS``, plus a quit: ~0.6 s), a fraction of the ~3 CPU-s a new session
#: costs that keeping sessions saves (bench/bench_order_cpu.py). With 1, on a 2-slot
#: pool a lone busy workshop would give its session back after every grace.
POOL_HEADROOM = 0
#: the longest an idle pooled session is kept when nobody needs its slot: below the
#: fleet Grid's session timeout (fleet.grid.SESSION_TIMEOUT, 60 s without a command
#: ends a session), so a kept session is never one the Grid has ended
POOL_HOLD_SECONDS = 30.0


class Browser(PageActions):
    """One Chromium session with the page actions, started on construction: a local
    Chromium, a new session of a remote pool, or a parked session claimed from the fleet's
    parking.

    :param config: an :class:`integrations.base.IntegrationConfig`
    :param wait_seconds: with ``config.selenium_remote_url``, how long the new session
        may wait for a free slot of the pool (or for a pool that does not answer)
    :param cancel: a :class:`threading.Event` that ends such a wait at once (the worker's
        stop: a stopping worker does not wait for a slot it no longer needs)
    :param log: where a pool that does not answer is reported (once per wait)
    :param parking: with a remote pool, an :class:`integrations.browser.parking.Parking`
        shared with the fleet's other instances: a parked session is claimed before a new
        one is asked for, and :meth:`park` offers this one when it is no longer needed
    :raises ErpUnavailable: when a remote pool had no free slot within ``wait_seconds``
    :raises BrowserError: when the browser cannot be started, or ``cancel`` was set
    """

    def __init__(self, config, wait_seconds=DEFAULT_WAIT_SECONDS, cancel=None, log=None,
                 parking=None):
        super().__init__(config)
        self.wait_seconds = wait_seconds
        self._cancel = cancel or threading.Event()
        self._log = log
        self._parking = parking if config.selenium_remote_url else None
        #: the parking's record of the session this browser claimed, None for a new one
        self.claimed = None
        self._profile_dir = None
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
    erp_origin = origin(erp_url)
    old = driver.window_handles
    if not (erp_origin and len(old) == 1
            and driver.execute_script(_CLEAR_SESSION_STORAGE_JS, erp_origin) is True):
        driver.switch_to.new_window("tab")
        fresh = driver.current_window_handle
        for handle in old:
            driver.switch_to.window(handle)
            driver.close()
        driver.switch_to.window(fresh)
    _cdp(driver, "Network.clearBrowserCookies")
    _cdp(driver, "Network.clearBrowserCache")
    if erp_origin:
        _cdp(driver, "Storage.clearDataForOrigin", origin=erp_origin, storageTypes="all")


def _quit_in_background(url, record):
    threading.Thread(target=end_session, args=(url, record["session_id"], CLAIM_TIMEOUT),
                     name="parked-browser-quit", daemon=True).start()


def _cancelled():
    return BrowserError("stopped while waiting for a browser from the pool")


def _where(url):
    """``host:port`` of a pool's URL: only that, since a Grid URL may carry a password."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.hostname else "SELENIUM_REMOTE_URL"


class BrowserLife:
    """One instance's browser, from getting it to giving it back (the module's docstring).

    Built once per instance, with its integration, and used from the worker's thread;
    :attr:`state` is also read from request threads (``/alive``).

    :param config: the :class:`~integrations.base.IntegrationConfig`
    :param log: the orderline logger
    :param on_new: called after a browser came (started or claimed), before it is used
    :param on_release: called whenever the browser is dropped (quit or parked)
    :param pool_state: returns the pool's state (``{"slots", "in_use", "waiting", ...}``,
        or None when unknown); by default the fleet janitor's copy in the parking, else
        read from the Grid
    :param open_browser: starts a browser: ``open_browser(config, wait_seconds, cancel,
        log, parking)``, :class:`Browser` by default (tests pass a fake)
    """

    def __init__(self, config, log, on_new=None, on_release=None, pool_state=None,
                 open_browser=None):
        self.config = config
        self.log = log
        self.pooled = bool(config.selenium_remote_url)
        # sessions shared with the fleet's other workshops (integrations.browser.parking)
        self.parking = (Parking(config.browser_park_dir)
                        if self.pooled and config.browser_park_dir else None)
        read = self.parking.pool_status if self.parking is not None else pool_status
        self._pool_state = pool_state or (
            lambda: read(config.selenium_remote_url, timeout=1.0))
        self._pool_read, self._pool_read_at = None, float("-inf")  # _pool_state_now
        self._open = open_browser or Browser
        self._on_new = on_new or (lambda: None)
        self._on_release = on_release or (lambda: None)
        self.browser = None
        self.credentials = None  # what the browser's session is logged in with
        self.orders = 0  # written on this browser: its recycling count
        self._starting_since = None  # monotonic time a browser was asked for, until it came
        self._stop = threading.Event()
        self._observer = None
        # this workshop's ERP session cookies per login, read before its browser is
        # parked and put into the next one it claims: its login is not done again on
        # every claim (~0.4 CPU-s). Memory only (the module's docstring).
        self._logins = {}

    def attach(self, stop, observer):
        """:param stop: the worker's stop (a wait for a slot of the pool ends with it)
        :param observer: told of every browser started (``browser_started``)"""
        self._stop, self._observer = stop, observer

    @property
    def state(self):
        """``none``, ``starting``, ``waiting`` (a remote session not there after
        ``WAITING_AFTER_SECONDS``: queued for a free slot of the pool) or ``ready``."""
        since = self._starting_since
        if since is not None:
            waited = time.monotonic() - since
            return "waiting" if self.pooled and waited >= WAITING_AFTER_SECONDS else "starting"
        return "none" if self.browser is None else "ready"

    # -- getting and keeping it -----------------------------------------------------

    def for_orders(self, count, credentials):
        """The browser for a visit with ``count`` orders, counted on it; a fresh one when
        the kept one is due for recycling. :returns: the browser"""
        if self.orders + count > self.config.recycle_after_orders > 0:
            self.log.info("recycling the browser after %d orders", self.orders)
            self.release(park=False)
        browser = self.get(credentials)
        self.orders += count
        return browser

    def get(self, credentials):
        """The kept browser, started (or claimed) when there is none; a fresh one for
        new credentials. :returns: the browser"""
        if self.browser is not None and self.credentials not in (None, credentials):
            self.release(park=False)  # reconfigured credentials: drop the old user's session
        if self.browser is not None:
            return self.browser
        started = self._starting_since = time.monotonic()
        try:
            self.browser = self._open(self.config, self.config.browser_wait_seconds,
                                      self._stop, self.log, self.parking)
        finally:
            self._starting_since = None
        claimed = self.browser.claimed
        self.orders = claimed.get("orders", 0) if claimed else 0
        cookies = self._logins.get(credentials) if claimed else None
        if cookies and self.browser.restore_cookies(cookies):
            self.credentials = credentials  # unless the ERP asks again (expired)
        self._on_new()
        # Only host and port: a Grid URL may carry a user and password.
        remote = urlsplit(self.config.selenium_remote_url)
        where = f"remote {remote.hostname}:{remote.port}" if remote.hostname else "local"
        if claimed:
            self.log.info("browser claimed from the fleet's parking (%s) in %.1fs",
                          where, time.monotonic() - started)
        else:
            self.log.info("browser started (%s) in %.1fs", where, time.monotonic() - started)
            if self._observer is not None:
                self._observer.browser_started()
        return self.browser

    # -- giving it back -------------------------------------------------------------

    @property
    def holding(self):
        return self.browser is not None

    def release(self, park):
        """Drop the browser: parked for the fleet's other workshops (with ``park``, when
        there is a parking and it is not due for recycling), else quit.

        :returns: whether it was parked
        """
        browser, credentials = self.browser, self.credentials
        self.browser, self.credentials = None, None
        self._on_release()
        if browser is None:
            return False
        recycle = self.config.recycle_after_orders
        if park and self.parking is not None and not 0 < recycle <= self.orders:
            if credentials is not None:  # logged in: its ERP session, for its next claim
                try:
                    self._logins[credentials] = browser.cookies()
                except Exception:  # no cookies: the next visit logs in
                    self._logins.pop(credentials, None)
            if browser.park(self.orders):  # one it could not park, it quit
                self.log.info("browser parked for the fleet's other workshops")
                return True
        else:
            browser.quit()
        self.log.info("browser closed")
        return False

    def close(self):
        """Quit the browser (the worker stops, or the visit's browser cannot go on)."""
        self.release(park=False)

    def idle(self, seconds):
        """The worker has had no work for ``seconds``: give the browser back when the
        rules say so (the module's docstring). :returns: whether it was given back"""
        if self.browser is None:
            return False
        if self.pooled:
            why, park = self._give_back_why(seconds)
        else:
            why, park = (f"idle for {seconds:.0f} s: closing the browser"
                         if seconds >= self.config.browser_idle_seconds else None), False
        if not why:
            return False
        self.log.info(why)
        self.release(park)
        return True

    def pause(self, seconds):
        """The worker waits ``seconds`` before its next visit (a retry's backoff): a
        pooled session is given back (parked) when that is longer than the grace, so
        that others may use its slot meanwhile."""
        if self.pooled and self.browser is not None \
                and seconds > self.config.browser_pool_grace_seconds:
            self.release(park=True)

    def poll_seconds(self):
        """How soon the worker, idle, should call :meth:`idle` again; None when nothing
        is held (nothing to give back)."""
        if self.browser is None:
            return None
        return HOLDER_POLL_SECONDS if self.parking is not None else POLL_SECONDS

    def _give_back_why(self, idle):
        """Why an idle pooled session goes back to the pool now (None to keep it), and
        whether it is parked for another workshop rather than quit."""
        grace = self.config.browser_pool_grace_seconds
        park = self.parking is not None
        if idle >= min(POOL_HOLD_SECONDS, self.config.browser_idle_seconds):
            return f"no work for {idle:.1f} s: giving the browser back to the pool", park
        waiting = self.parking.waiting() if park else 0
        if waiting:  # first: a directory listing, read at every (short) poll
            return (f"no work for {idle:.1f} s and {waiting} waiting for a parked "
                    f"browser: giving the browser back to the pool"), True
        state = self._pool_state_now()
        if state is None:
            return (f"no work for {idle:.1f} s: giving the browser back to the pool (its "
                    f"state is unknown)" if idle >= grace else None), park
        if state["waiting"]:  # a new-session request needs the slot itself: no parking
            return (f"no work for {idle:.1f} s and {state['waiting']} waiting for a "
                    f"slot: giving the browser back to the pool"), False
        if idle >= grace and state["slots"] - state["in_use"] <= POOL_HEADROOM:
            return (f"no work for {idle:.1f} s and {state['slots'] - state['in_use']} of "
                    f"{state['slots']} slots free: giving the browser back to the pool"), park
        return None, park

    def _pool_state_now(self):
        """The pool's state, read at most every ``POLL_SECONDS`` (a holder with a parking
        is asked more often than that: ``HOLDER_POLL_SECONDS``)."""
        now = time.monotonic()
        if now - self._pool_read_at >= POLL_SECONDS:
            self._pool_read, self._pool_read_at = self._pool_state(), now
        return self._pool_read
