"""What erp_sim says, and the error each message means -- the same words in both of
its user interfaces (classic and SPA), so both page modules use this one table."""

from core.errors import (InvalidAmount, LoginFailed, ProductNotFound, SessionExpired,
                         UnexpectedPage, WorksheetClosed, WorksheetLocked, WorksheetNotFound)
from integrations.erp_sim.screens import error_for

#: (fragment of an ERP message, error it means) -- first match wins
ERP_MESSAGES = (
    ("Invalid username or password", LoginFailed),
    ("No worksheet found with number", WorksheetNotFound),
    ("is closed (invoiced)", WorksheetClosed),
    ("is being edited by another user", WorksheetLocked),
    ("Unknown product number", ProductNotFound),
    ("No product matches", ProductNotFound),  # the SPA's product search
    ("Product number is required", ProductNotFound),
    ("Amount must be a positive number", InvalidAmount),
    ("The form has expired", SessionExpired),  # the form token outlived the session
    ("Your session has expired", SessionExpired),
    # A line to delete that is gone (a resent delete got there first, or it is another
    # sheet's): nothing is known to be wrong, but the sheet must be read again.
    ("is not on worksheet", UnexpectedPage),
)


def erp_error(messages):
    """The bridge error (not raised) for what erp_sim showed; see :data:`ERP_MESSAGES`."""
    return error_for(messages, ERP_MESSAGES)
