"""Which orders the log lines of this thread are about, while a visit is under way.

The worker sets it around each visit to a worksheet (:func:`about_orders`); the log
filter of the instance (``service/logs.py``, ``OrderFields``) puts it on every line,
the integration's too, so that a line can be found by its order. Here, below both.
"""

import contextlib
import contextvars

#: the worksheet and uniqueids of the visit under way in this thread (see about_orders)
_VISIT = contextvars.ContextVar("oilmat_visit", default=None)


@contextlib.contextmanager
def about_orders(worksheet, uniqueids):
    """Within this block, log lines of this thread are about these orders."""
    token = _VISIT.set((worksheet, tuple(uniqueids)))
    try:
        yield
    finally:
        _VISIT.reset(token)


def current_visit():
    """:returns: ``(worksheet, uniqueids)`` of the visit under way, or None"""
    return _VISIT.get()
