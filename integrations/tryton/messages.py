"""What Tryton (through sao's dialogs) says, and the bridge error each message means.

sao shows a server refusal (``UserError``) as a warning dialog, a failed request as a
message dialog ("Error: ... Try again later."), a server crash as an "Application
Error" dialog; the texts below are trytond 8.0's and sao 8.0's, in English (the
integration logs in with language ``en``).
"""

from core.errors import (ErpUnavailable, InvalidAmount, LoginFailed, ProductNotFound,
                         UnexpectedPage, WorksheetClosed, WorksheetLocked)

#: (fragment of a dialog's text, error it means) -- first match wins
TRYTON_MESSAGES = (
    ("no longer in a draft state", WorksheetClosed),  # sale.line create/write past draft
    ("The number of digits in the value", InvalidAmount),  # the unit's digits check
    ("exceeds the limit of", InvalidAmount),
    ("Too many requests", ErpUnavailable),  # HTTP 429: logins throttled for a while
    ("Unable to reach the server", ErpUnavailable),
    ("Try again later", ErpUnavailable),  # sao: 'Error: "[502] ..."' and the like
    ("Application Error", ErpUnavailable),  # an exception on the server (HTTP 500)
    ("modified while you were editing", WorksheetLocked),  # ConcurrencyException
    ("Concurrency Exception", WorksheetLocked),
    ("Wrong password", LoginFailed),
    ("is not valid according to its domain", ProductNotFound),  # a product not salable
)


def erp_error(texts):
    """The bridge error (not raised) for the dialog ``texts`` sao showed.

    :param texts: the text of each open dialog
    :returns: an :class:`~core.errors.IntegrationError`; :class:`UnexpectedPage`
        when no fragment matches
    """
    for text in texts:
        for fragment, error in TRYTON_MESSAGES:
            if fragment in text:
                return error(f"Tryton said: {' '.join(text.split())[:300]}")
    return UnexpectedPage("Tryton said: " + ("; ".join(" ".join(t.split()) for t in texts)[:300]
                                             or "nothing recognisable"))
