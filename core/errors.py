"""Every error the bridge raises, under one root.

The worker decides what to do with a failed order by class alone:

* :class:`PermanentError` -- a business error. Retrying cannot help (the worksheet is
  closed, the product does not exist), so the order goes to ``error`` at once.
* :class:`TransientError` -- an application error. The ERP was slow, down or logged us
  out; the same order may well succeed later, so it is retried with backoff.

Each class carries a ``reason_code``: the stable, machine-readable string that
``/get_order_status`` reports. Codes are part of the public API -- never rename one.

A transient error may also say that the order's line **may be on the worksheet**
(:func:`unconfirmed`): its write was sent and no read-back confirmed or ruled out
that it was stored. The worker then reads the worksheet before such an order may end
in ``error`` (workers/worker.py, "The look before giving up").
"""

import copy


class BridgeError(Exception):
    """Root of every error raised by the bridge."""

    reason_code = "INTERNAL_ERROR"
    #: the line this error is the result of may be on the worksheet (:func:`unconfirmed`)
    unconfirmed = False

    def __init__(self, reason_text="", reason_code=None):
        super().__init__(reason_text or self.__class__.__doc__ or self.reason_code)
        if reason_code is not None:
            self.reason_code = reason_code

    @property
    def reason_text(self):
        return str(self)


class ConfigError(BridgeError):
    """The instance is misconfigured and cannot start."""

    reason_code = "CONFIG_ERROR"


class WorkshopHeld(ConfigError):
    """Another process holds the workshop's data folder (:mod:`core.hold`): one workshop
    runs one instance at a time. The message names the holder (pid, port, since when).

    :param holder: the holder's description from the hold's file, or None if unknown
    """

    reason_code = "WORKSHOP_HELD"

    def __init__(self, reason_text="", holder=None):
        super().__init__(reason_text)
        self.holder = holder


class FormatTooNew(ConfigError):
    """A data file was written by a newer release than this one (core/fileformat.py):
    it is not opened, never half-understood."""

    reason_code = "FORMAT_TOO_NEW"


class StorageUnavailable(BridgeError):
    """The instance's own files (order records, queue) cannot be written or read right now:
    the disk is full, or a file is damaged or was removed. Answered with 503 and
    ``Retry-After``; never a silent 200.

    :param stored: whether the order of the request is nevertheless durably stored
    """

    reason_code = "STORAGE_UNAVAILABLE"

    def __init__(self, reason_text="", stored=False):
        super().__init__(reason_text)
        self.stored = stored


class RecordsDamaged(StorageUnavailable):
    """The order records file is damaged, replaced or unreadable; an operator must look."""

    reason_code = "RECORDS_DAMAGED"


# -- integration errors -------------------------------------------------------------


class IntegrationError(BridgeError):
    """Something went wrong while writing into the workshop's ERP."""

    reason_code = "INTEGRATION_ERROR"


class PermanentError(IntegrationError):
    """The ERP refused the order for a business reason; retrying will not help."""

    reason_code = "PERMANENT_ERROR"


class TransientError(IntegrationError):
    """The ERP could not be used right now; the same order may succeed later."""

    reason_code = "TRANSIENT_ERROR"


class LoginFailed(PermanentError):
    """The ERP rejected the username or password."""

    reason_code = "LOGIN_FAILED"


class WorksheetNotFound(PermanentError):
    """The ERP has no worksheet with that number."""

    reason_code = "WORKSHEET_NOT_FOUND"


class WorksheetClosed(PermanentError):
    """The worksheet is closed (invoiced) and takes no more lines."""

    reason_code = "WORKSHEET_CLOSED"


class ProductNotFound(PermanentError):
    """The ERP has no product with that number."""

    reason_code = "PRODUCT_NOT_FOUND"


class InvalidAmount(PermanentError):
    """The ERP refused the amount."""

    reason_code = "INVALID_AMOUNT"


class ErpUnavailable(TransientError):
    """The ERP did not answer, or answered with a server error."""

    reason_code = "ERP_UNAVAILABLE"


class ErpTimeout(TransientError):
    """A page or an element did not appear within its time limit."""

    reason_code = "ERP_TIMEOUT"


class SessionExpired(TransientError):
    """The ERP logged us out in the middle of an order."""

    reason_code = "SESSION_EXPIRED"


class WorksheetLocked(TransientError):
    """Another user holds the worksheet open for editing."""

    reason_code = "WORKSHEET_LOCKED"


class UnexpectedPage(TransientError):
    """The ERP showed a page the integration does not recognise."""

    reason_code = "UNEXPECTED_PAGE"


class ScreenChanged(UnexpectedPage):
    """A screen of the ERP is not as the integration knows it: a field, button or column
    it relies on is missing or different (a vendor update, a series it does not know, a
    customised form), or a page it does not recognise where one of its screens belongs.
    An :class:`UnexpectedPage` the integration has looked at closely enough to say so:
    nothing is written on such a screen. The worker holds the workshop's orders (``placed``, no
    attempt spent) and probes until the screen is back (workers/probing.py).

    :param screen: which screen (``"login"``, ``"worksheet"``, ``"line form"``,
        ``"lines"``, ...)
    """

    reason_code = "ERP_SCREEN_CHANGED"

    def __init__(self, reason_text="", screen=None):
        super().__init__(reason_text)
        self.screen = screen


class LineUnverified(TransientError):
    """A line with the order's uniqueid is on the worksheet, but not with its product and
    amount. Nothing is added over it; an operator (or a later repair) must look."""

    reason_code = "LINE_UNVERIFIED"


class OutcomeUnknown(TransientError):
    """The order's line was sent to the ERP and may be on the worksheet, but neither the
    write's answer nor any read of the worksheet since could confirm or rule it out.
    Look at the worksheet before writing the line by hand; ``PUT /retry`` is safe (it
    reads the worksheet first)."""

    reason_code = "OUTCOME_UNKNOWN"


class BrowserError(TransientError):
    """The browser could not be started or crashed."""

    reason_code = "BROWSER_ERROR"


def unconfirmed(error):
    """``error`` as the result of a line that may be on the worksheet: its write was sent
    (or the line was seen there in the same visit) and what ended the visit left it
    unconfirmed. A copy, so that the other lines of the visit keep ``error`` as it is.

    :returns: a copy of ``error`` with :attr:`BridgeError.unconfirmed` set
    """
    if error.unconfirmed:
        return error
    marked = copy.copy(error)
    marked.unconfirmed = True
    return marked
