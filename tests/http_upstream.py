"""A tiny real HTTP/1.1 server on an ephemeral port, to stand behind the test proxy
(:mod:`netfaults`): every framing of an answer, a form that posts, and a record of
every request it received -- its own read path, which never goes through the proxy.

::

    with Upstream() as upstream:
        requests.get(upstream.url + "/chunked")
        upstream.received("POST")   # [(method, path, body), ...] as the server saw them
"""

import http.server
import threading

#: the body of ``/big``: large enough that half of it is many TCP segments
BIG_BODY = bytes(range(256)) * 4096

# Both pages name an inline icon: otherwise the browser asks for /favicon.ico right after
# the page, and a POST sent while that answer is still on the kept-alive connection goes
# out on a fresh one instead (CI saw conn=2 seq=1), which is exactly what the resend tests
# must not leave to chance.
ICON = '<link rel="icon" href="data:,">'

FORM_PAGE = """<!DOCTYPE html><html><head><title>Form</title>""" + ICON + """</head><body>
<form method="post" action="/submit"><input name="line" value="{line}">
<button id="go" type="submit">Add</button></form></body></html>"""

# The SPA way: the same POST sent by fetch(), its outcome written into the page.
FETCH_PAGE = """<!DOCTYPE html><html><head><title>Fetch</title>""" + ICON + """</head><body>
<div id="result">pending</div><script>
function post(line) {
  fetch('/submit-json', {method: 'POST', headers: {'Content-Type': 'application/json'},
                         body: JSON.stringify({line: line})})
    .then(function (r) { return r.text(); })
    .then(function (t) { document.getElementById('result').textContent = 'ok ' + t; })
    .catch(function (e) { document.getElementById('result').textContent = 'failed ' + e; });
}
</script></body></html>"""


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real servers speak

    def log_message(self, *args):
        pass  # quiet: the record below is the log

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _record(self, body=b""):
        with self.server.lock:
            self.server.requests.append((self.command, self.path, body))

    def _send(self, status, body, content_type="text/plain", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        self._record()
        path = self.path.split("?", 1)[0]
        if path == "/plain":
            self._send(200, b"hello", headers=[("X-Upstream", "yes"),
                                               ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])
        elif path == "/chunked":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"chunk-one ", b"chunk-two ", b"chunk-three"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        elif path == "/close":
            # No length, no chunks: the body ends where the connection does.
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"until the end")
            self.close_connection = True
        elif path == "/big":
            self._send(200, BIG_BODY, "application/octet-stream")
        elif path == "/redirect":
            host = self.headers.get("Host")
            self._send(303, b"", headers=[("Location", f"{self.server.url}/plain"),
                                          ("X-Host-Seen", host)])
        elif path == "/form":
            self._send(200, FORM_PAGE.format(line=self.path.partition("?")[2]).encode(),
                       "text/html")
        elif path == "/fetch":
            self._send(200, FETCH_PAGE.encode(), "text/html")
        elif path == "/done":
            self._send(200, b"<!DOCTYPE html><title>Done</title><h1 id=done>Done</h1>",
                       "text/html")
        elif path == "/empty":
            self._send(204, b"")
        else:
            self._send(404, b"not found")

    def do_POST(self):
        body = self._body()
        self._record(body)
        if self.path == "/submit":
            self._send(303, b"", headers=[("Location", "/done")])
        elif self.path == "/submit-json":
            self._send(200, b"saved", "text/plain")
        else:  # /echo and anything else: the body back
            self._send(200, body, "application/octet-stream")


class Upstream:
    """The server above on ``127.0.0.1:<ephemeral>``, served by a thread; a context manager."""

    def __init__(self):
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.lock = threading.Lock()
        self._server.requests = []
        self.url = self._server.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = None

    def received(self, method=None):
        """``[(method, path, body), ...]`` the server received, in order (``method``: only those)."""
        with self._server.lock:
            return [r for r in self._server.requests if method is None or r[0] == method]

    def __enter__(self):
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
