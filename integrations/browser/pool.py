"""The state of a remote browser pool (a Selenium Grid 4), read from its own endpoints,
and the end of one of its sessions.

Both the instance (its worker decides when to give a pooled session back) and the fleet
(``/metrics``, the overview's pool line, the load benchmark) read it; it lives here, in
the integration interface, because imports run one way (core <- integrations <- service,
workers <- fleet). Standard library only: an idle worker calls it a few times a second.
"""

import base64
import json
import urllib.error
import urllib.request
from urllib.parse import urlsplit


def _grid(url):
    """``(address without user and password, headers)``: a user and password in a Grid's
    URL are sent as basic auth, never as part of the address."""
    parts = urlsplit(url)
    headers = {}
    if parts.username:
        login = f"{parts.username}:{parts.password or ''}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(login).decode()
        url = parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl()
    return url.rstrip("/"), headers


def pool_status(url, timeout=1.5):
    """The pool's state: ``{"slots", "in_use", "waiting", "nodes"}`` (``waiting``:
    new-session requests in its queue), or None when it does not answer (down,
    restarting) or answers something else than a Grid.

    :param url: the Grid's URL (``SELENIUM_REMOTE_URL``); a user and password in it are
        sent as basic auth, never as part of the address
    """
    address, headers = _grid(url)

    def get(path):
        request = urllib.request.Request(address + path, headers=headers)
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return json.load(answer)["value"]
    try:
        nodes = [node for node in get("/status")["nodes"] if node.get("availability") == "UP"]
        waiting = len(get("/se/grid/newsessionqueue/queue"))
        return {"slots": sum(node["maxSessions"] for node in nodes),
                "in_use": sum(1 for node in nodes for slot in node["slots"]
                              if slot.get("session")),
                "waiting": waiting, "nodes": len(nodes)}
    except (OSError, ValueError, KeyError, TypeError, AttributeError, urllib.error.URLError):
        return None


def end_session(url, session_id, timeout=5.0):
    """Quit the Grid's session ``session_id`` (a WebDriver ``DELETE /session/<id>``), so
    that its slot comes free. :returns: whether the Grid said it did; a session already
    gone is no error to the caller."""
    address, headers = _grid(url)
    request = urllib.request.Request(f"{address}/session/{session_id}", method="DELETE",
                                     headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return True
    except (OSError, ValueError, urllib.error.URLError):
        return False
