"""Selenium's exceptions translated once into the bridge's, and error pages recognised."""

import re

import urllib3
from selenium.common.exceptions import (InvalidSessionIdException, NoSuchElementException,
                                        NoSuchWindowException, StaleElementReferenceException,
                                        TimeoutException, WebDriverException)

from core.errors import BridgeError, BrowserError, ErpTimeout, ErpUnavailable, UnexpectedPage

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
#: JavaScript statement returning ``[address, title, first h1's text]`` of the page shown:
#: what :func:`summary_reason` judges. Waits that poll with a script of their own end
#: theirs with it, so that recognising an error page costs no round trip of its own.
PAGE_SUMMARY_JS = """
var h = document.querySelector('h1');
return [location.href, document.title, h ? h.textContent : ''];
"""
# Message fragments of a browser (or driver) that is gone; the session cannot recover.
_BROWSER_GONE = ("invalid session id", "chrome not reachable", "disconnected",
                 "session deleted", "no such window", "target window already closed",
                 "tab crashed", "session not created")


def map_webdriver_error(exc):
    """Translate an exception from Selenium into a :class:`~core.errors.BridgeError`.

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
    return summary_reason(driver.execute_script(PAGE_SUMMARY_JS))  # one round trip


def summary_reason(summary):
    """:func:`error_page_reason` of a page :data:`PAGE_SUMMARY_JS` summed up."""
    url, title, heading = summary
    if url.startswith("chrome-error://"):
        return ErpUnavailable("ERP not reachable (browser error page)")
    for text in (title, heading):
        if text and _SERVER_ERROR.search(text):
            return ErpUnavailable(f"ERP answered with an error page: {text.strip()[:100]}")
    return None


def first_line(exc):
    """The first line of an exception's message (Selenium's carry a stack trace)."""
    text = (getattr(exc, "msg", None) or str(exc) or type(exc).__name__).strip()
    return text.splitlines()[0] if text else type(exc).__name__
