"""The log of the requests this ERP handled, read through ``GET /_sim/requests``.

It is the ERP's own witness of what arrived: when a browser (or a proxy between it
and the ERP) sends a POST twice, the log shows both -- something no page and no
integration log can prove. Each entry is written when the answer leaves, with the
time the request arrived and the status it got (a chaos error included). ``/_sim``
itself is not logged: it is the test's side door, not traffic of the user interface.
"""

import threading
import time
from collections import deque

from flask import current_app, g, request

#: entries kept; older ones are dropped (a chaos run makes a few thousand requests)
MAX_ENTRIES = 10_000
#: endpoints whose submitted ``text`` is logged: the line posts of both flavours
LINE_POSTS = {"worksheets.add_line", "spa.add_line"}


class RequestLog:
    """The last :data:`MAX_ENTRIES` requests, oldest first; safe across request threads."""

    def __init__(self, size=MAX_ENTRIES):
        self._entries = deque(maxlen=size)
        self._mutex = threading.Lock()  # listing while another thread appends

    def add(self, entry):
        with self._mutex:
            self._entries.append(entry)

    def entries(self):
        with self._mutex:
            return list(self._entries)

    def clear(self):
        """Forget every entry. :returns: how many there were"""
        with self._mutex:
            count = len(self._entries)
            self._entries.clear()
            return count


def get_log():
    return current_app.extensions["erp_sim_requests"]


def _exempt():
    return request.blueprint == "sim"


def _arrived():
    g.arrived_at = time.time()


def _posted_text():
    if request.endpoint not in LINE_POSTS:
        return None
    if request.is_json:
        data = request.get_json(silent=True)
        return str(data.get("text", "")) if isinstance(data, dict) else None
    return request.form.get("text")


def _answered(response):
    if not _exempt():
        entry = {"at": round(g.get("arrived_at", time.time()), 6), "method": request.method,
                 "path": request.path, "status": response.status_code}
        text = _posted_text()
        if text is not None:
            entry["text"] = text
        get_log().add(entry)
    return response


def init_app(app):
    """Register the log. Call it before any other ``init_app`` that answers early or
    changes the answer (chaos): the arrival is then taken first and the entry written
    last (Flask runs ``after_request`` functions in reverse order), with the status
    that really left."""
    app.extensions["erp_sim_requests"] = RequestLog()
    app.before_request(_arrived)
    app.after_request(_answered)
