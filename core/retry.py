"""The one retry policy of the bridge: which failures are tried again, where, and when.

Three places see failures -- a step of a visit to the ERP (an integration), a visit as
a whole (the worker), and the order over its life (the worker again) -- and all three
ask this module, so the rules are written once:

1. **Permanent errors are never retried** (:class:`~core.errors.PermanentError`:
   the ERP refused the line for a business reason). The order ends in ``error``.
2. **Trouble the ERP answered with is retried at once, within the visit**: a 5xx page,
   a locked worksheet, a lost session, a page re-rendered under the automation's hands
   (:func:`retry_in_visit`). Up to :data:`VISIT_ATTEMPTS` tries, a short pause between.
   These are safe to repeat at once because the ERP *answered*: nothing is in flight.
3. **Every other transient error goes back to the worker**, which retries the orders
   after an exponential backoff with jitter (:func:`backoff`) until the attempt limit
   or the time budget is spent (:func:`give_up_reason`). That includes a timeout: a
   request that got no answer may still be running, and only a read-back after the
   backoff can tell. So after a *write* that got no answer the wait is at least as long
   as that write was given (:func:`retry_pause`): an ERP that took that long not to
   answer a save is given as long again to store it before the retry reads the
   worksheet -- a read that comes too early finds nothing, and the retry writes a second
   line. An order whose tries run out with such a write behind it is read, not ended
   unread (the worker's "look before giving up").
4. **An unforeseen exception is transient** (:func:`as_bridge_error`): a bug or an
   unknown page is more often passing than not, and a final ``error`` would need a
   person for every blip; the attempt limit bounds the cost.
"""

import random

from core.errors import (BridgeError, ErpTimeout, ErpUnavailable, PermanentError,
                         SessionExpired, TransientError, WorksheetLocked)

#: tries of one step within a visit when the ERP answered with transient trouble
VISIT_ATTEMPTS = 4
#: seconds before the second try of a step; doubled for each further one (with jitter)
VISIT_PAUSE = 0.15


def as_bridge_error(exc):
    """Rule 4: any exception as a bridge error; an unforeseen one becomes transient.

    :returns: ``exc`` itself when it is a :class:`~core.errors.BridgeError`,
        else a :class:`~core.errors.TransientError` with ``UNEXPECTED_ERROR``
    """
    if isinstance(exc, BridgeError):
        return exc
    return TransientError(f"{type(exc).__name__}: {exc}", reason_code="UNEXPECTED_ERROR")


def write_unanswered(exc):
    """Did this failure leave a write of the line without an answer (it may still be
    running in the ERP)? An :func:`~core.errors.unconfirmed` timeout."""
    return isinstance(exc, ErpTimeout) and exc.unconfirmed


def is_permanent(exc):
    """Rule 1."""
    return isinstance(exc, PermanentError)


#: rule 2's errors; an integration adds its browser's "element went stale" to them
IN_VISIT = (ErpUnavailable, WorksheetLocked, SessionExpired)


def retry_in_visit(exc):
    """Rule 2: may this failure of one step be tried again at once, in the same visit?

    :param exc: a bridge error (already mapped from Selenium's) or Selenium's
        ``StaleElementReferenceException`` (the page re-rendered under us)
    """
    return isinstance(exc, IN_VISIT) or type(exc).__name__ == "StaleElementReferenceException"


def visit_pause(attempt):
    """Seconds to wait before try number ``attempt`` (1 = the second try) of a step."""
    return VISIT_PAUSE * 2 ** (attempt - 1) * random.uniform(0.5, 1.0)


def backoff(attempts, base_seconds, max_seconds):
    """Rule 3: seconds the worker waits before trying orders again that have had
    ``attempts`` tries: ``base * 2^(attempts-1)``, capped, times a jitter in [0.5, 1]
    so many workshops retrying at once spread out."""
    ceiling = min(max_seconds, base_seconds * 2 ** max(attempts - 1, 0))
    return ceiling * random.uniform(0.5, 1.0)


def retry_pause(backoff_seconds, write_unanswered, request_seconds):
    """Rule 3's wait before a retry: the backoff, but at least ``request_seconds`` (the
    page-load timeout a write was given) when the last try's write got no answer
    (``write_unanswered``: an :func:`~core.errors.unconfirmed` timeout)."""
    return max(backoff_seconds, request_seconds) if write_unanswered else backoff_seconds


def give_up_reason(attempts, spent_seconds, max_attempts, budget_seconds):
    """Rule 3's limits. :returns: why a transient failure is now final, or None"""
    if attempts >= max_attempts:
        return f"gave up after {attempts} attempts"
    if spent_seconds >= budget_seconds:
        return f"gave up after {spent_seconds:.0f} s ({attempts} attempts)"
    return None
