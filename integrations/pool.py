"""The state of a remote browser pool (a Selenium Grid 4), read from its own endpoints.

Both the instance (its worker decides when to give a pooled session back) and the fleet
(``/metrics``, the overview's pool line, the load benchmark) read it; it lives here, in
the integration interface, because imports run one way (core <- integrations <- bridge,
workers <- fleet). Standard library only: an idle worker calls it a few times a second.
"""

import base64
import json
import urllib.error
import urllib.request
from urllib.parse import urlsplit


def pool_status(url, timeout=1.5):
    """The pool's state: ``{"slots", "in_use", "waiting", "nodes"}`` (``waiting``:
    new-session requests in its queue), or None when it does not answer (down,
    restarting) or answers something else than a Grid.

    :param url: the Grid's URL (``SELENIUM_REMOTE_URL``); a user and password in it are
        sent as basic auth, never as part of the address
    """
    parts = urlsplit(url)
    headers = {}
    if parts.username:  # a Grid behind basic auth: the URL's user and password, as a header
        login = f"{parts.username}:{parts.password or ''}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(login).decode()
        url = parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl()

    def get(path):
        request = urllib.request.Request(url.rstrip("/") + path, headers=headers)
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
