"""A webhook receiver for tests: a real HTTP server on an ephemeral port, in a thread.

It records every delivery and checks its signature with the Standard Webhooks
algorithm written out here from the spec (not with the ``standardwebhooks`` package
the bridge signs with), so the two sides are independent. What it answers is set by
:attr:`Receiver.answer` (200, 503, 410, 302...); :meth:`stop` closes its socket (the
receiver is down: connections are refused) and :meth:`start` opens it again on the
same port.
"""

import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: the spec's timestamp tolerance
TOLERANCE_SECONDS = 300


def spec_signature(secret, msg_id, timestamp, body):
    """``v1,`` + base64 HMAC-SHA256 of ``msg_id.timestamp.body`` under the key of
    ``whsec_<base64>`` (Standard Webhooks, "Signature scheme").

    :param body: bytes as received
    """
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def verified(secret, headers, body, now=None):
    """:returns: whether a delivery carries a valid v1 signature and a fresh timestamp"""
    msg_id, stamp = headers.get("webhook-id"), headers.get("webhook-timestamp")
    if not msg_id or not stamp or not stamp.isdigit():
        return False
    if abs((now or time.time()) - int(stamp)) > TOLERANCE_SECONDS:
        return False
    expected = spec_signature(secret, msg_id, stamp, body)
    return any(hmac.compare_digest(expected, sig)
               for sig in headers.get("webhook-signature", "").split(" "))


class Delivery:
    """One request the receiver got, and what it answered."""

    def __init__(self, headers, body, answered, valid):
        self.headers = headers
        self.body = body
        self.answered = answered
        self.valid = valid
        self.at = time.monotonic()
        self.wall = time.time()

    @property
    def id(self):
        return self.headers.get("webhook-id")

    @property
    def event(self):
        return json.loads(self.body)


class Receiver:
    """The webhook receiver. ``answer`` may be changed at any time.

    :param secret: ``whsec_...`` to verify with
    """

    def __init__(self, secret):
        self.secret = secret
        self.answer = 200
        self.retry_after = None  # a Retry-After header to send with non-2xx answers
        self.deliveries = []
        self._lock = threading.Lock()
        self._server = None
        self.port = 0

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/hooks/oilmat"

    def start(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver._lock:
                    answer = receiver.answer
                    receiver.deliveries.append(Delivery(
                        headers, body, answer, verified(receiver.secret, headers, body)))
                    receiver.deliveries[-1].path = self.path
                self.send_response(answer)
                if answer in (301, 302, 307, 308):
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                if receiver.retry_after is not None and not 200 <= answer < 300:
                    self.send_header("Retry-After", str(receiver.retry_after))
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        """Down: the socket is closed, connections are refused until :meth:`start`."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # -- what it got ------------------------------------------------------------------

    def accepted(self):
        """:returns: the deliveries answered 2xx, in arrival order"""
        with self._lock:
            return [d for d in self.deliveries if 200 <= d.answered < 300]

    def first_of_each(self):
        """:returns: the accepted events, each event id once (the first arrival), in order
        -- what a receiver deduplicating on ``webhook-id`` processes"""
        seen, events = set(), []
        for delivery in self.accepted():
            if delivery.id not in seen:
                seen.add(delivery.id)
                events.append(delivery.event)
        return events

    def paths(self):
        """:returns: the request target of every delivery, in arrival order"""
        with self._lock:
            return [d.path for d in self.deliveries]

    def count(self, answered=None):
        with self._lock:
            return sum(1 for d in self.deliveries if answered is None or d.answered == answered)


class SlowReceiver:
    """A receiver that reads the request and then answers ``200 OK`` one byte every
    ``pause`` seconds (issue 28: a per-read timeout never fires on it). Counts the
    requests it got; :meth:`stop` closes it.
    """

    ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Padding: slow-slow-slow\r\n\r\n"

    def __init__(self, pause):
        import socket

        self.pause = pause
        self.requests = 0
        self._closed = threading.Event()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/hooks/slow"

    def _serve(self):
        while not self._closed.is_set():
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn):
        with conn:
            conn.settimeout(5)
            try:
                conn.recv(65536)  # the request (small: one event)
                self.requests += 1
                for byte in self.ANSWER:
                    if self._closed.wait(self.pause):
                        return
                    conn.sendall(bytes([byte]))
            except OSError:
                return  # the sender gave up and closed its end

    def stop(self):
        self._closed.set()
        self._server.close()
