"""A fault-injecting HTTP proxy for tests: a hostile network between a browser and an ERP.

::

    from netfaults import Fault, FaultyProxy, only_methods

    faults = [Fault("drop_after_forward", 0.3, when=only_methods("POST")),
              Fault("error_503", 0.05)]
    with FaultyProxy(erp.url, faults=faults, seed=7) as proxy:
        browser.get(proxy.url + "/login")     # the ERP URL points at the proxy
        ...
    print(proxy.counts, *proxy.log, sep="\\n")

It listens on an ephemeral port of 127.0.0.1 in front of one upstream (``http://HOST:PORT``)
and speaks HTTP/1.1 to its clients: keep-alive, any number of parallel connections (a
thread each), request bodies by ``Content-Length`` or chunked, ``Expect: 100-continue``.
Every request goes to the upstream on a fresh connection with ``Connection: close``; the
upstream's answer (chunked, ``Content-Length`` or close-delimited) is read whole and sent
on with a ``Content-Length``. Reading it whole is what lets a fault decide what the client
gets of an answer the ERP has already produced; nothing the ERPs here serve is streamed.

The faults (:data:`FAULTS`), each with its own probability and an optional predicate on
the request (``when``), so that "drop 30 % of POSTs" leaves static files alone:

``drop_after_forward``
    forward, read the whole answer, then close the client connection (FIN) without a
    byte: the ERP did the work, the client never hears of it.
``error_502`` / ``error_503``
    answer 502 / 503 with a small HTML page, without forwarding. The connection is kept
    alive when the client asked for that, as nginx does with its own error pages: the
    fault is "an error page arrives", kept apart from "the connection went away".
``stall``
    wait ``stall_seconds`` (drawn in a range) before forwarding, then answer normally.
``reset_mid_answer``
    forward, send the status line, the headers and half of the body (half the header
    block when the body is empty), then reset the connection (``SO_LINGER`` 0, an RST).
    Cut inside the headers (a redirect after a POST has no body), it is to Chromium what
    a drop is: no response headers yet, so on a reused connection it resends.

What Chromium does with a POST whose connection closes before any response header (see
tests/test_netfaults_chromium.py): it sends it again, by itself, when the connection had
been idle in its pool (kept alive, or opened ahead of need); the ERP then holds it twice.

One ``random.Random(seed)`` decides: one draw per request, in the order requests arrive
(a stall draws its length too). Each fault owns a slice of ``[0, 1)`` as wide as its
probability, so the probabilities must add up to at most 1 and a fault fires on exactly
that share of the requests it applies to. A sequential client therefore sees the same
faults on every run; parallel connections may interleave their arrivals differently.

Besides faults, the proxy can alter what the upstream answered on its way to the client
(:meth:`FaultyProxy.set_rewrite`): the pages of an ERP changed as a vendor update or a
customisation would change them, which is how issue 27 is checked from outside.

Every request is logged (:attr:`FaultyProxy.log`, :class:`LogEntry`, in the order
answers went out) and every fault
counted (:attr:`FaultyProxy.counts`).
"""

import collections
import dataclasses
import hashlib
import http.client
import random
import re
import socket
import struct
import threading
import time
from typing import Callable, Optional
from urllib.parse import urlsplit

#: the faults a :class:`Fault` may name
FAULTS = ("drop_after_forward", "error_502", "error_503", "stall", "reset_mid_answer")
#: headers that belong to one connection, never passed on (RFC 9110, 7.6.1)
HOP_BY_HOP = frozenset(("connection", "keep-alive", "proxy-connection", "te", "trailer",
                        "transfer-encoding", "upgrade", "expect"))
#: longest request line or header line accepted, as most servers do
MAX_LINE = 65536
#: most header lines in one request
MAX_HEADERS = 200
#: seconds the listener waits in accept() before it looks whether it should stop
ACCEPT_POLL = 0.1
_ERROR_REASONS = {"error_502": (502, "Bad Gateway"), "error_503": (503, "Service Unavailable")}


@dataclasses.dataclass(frozen=True)
class Request:
    """One request as the proxy read it from a client; what a ``when`` predicate sees.

    :param method: e.g. ``"POST"``
    :param target: the request target, e.g. ``"/worksheets/5?x=1"``
    :param version: ``"HTTP/1.1"`` or ``"HTTP/1.0"``
    :param headers: ``[(name, value), ...]`` in the order received
    :param body: the body, de-chunked
    :param connection: number of the client connection (1, 2, ... per proxy)
    :param sequence: number of this request on its connection; above 1 means the
        client reused a kept-alive connection
    :param idle: seconds the connection sat idle before this request began (since it
        was accepted, or since the previous answer)
    """

    method: str
    target: str
    version: str
    headers: tuple
    body: bytes
    connection: int
    sequence: int
    idle: float = 0.0

    @property
    def path(self):
        """The target without its query string."""
        return self.target.split("?", 1)[0]

    def header(self, name, default=None):
        """The first value of header ``name`` (any case), else ``default``."""
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), default)

    def wants_keep_alive(self):
        tokens = {t.strip().lower() for t in (self.header("Connection") or "").split(",")}
        if self.version == "HTTP/1.0":
            return "keep-alive" in tokens
        return "close" not in tokens


@dataclasses.dataclass(frozen=True)
class Fault:
    """One fault the proxy may inject.

    :param kind: one of :data:`FAULTS`
    :param probability: share of the requests it applies to on which it fires, 0 to 1
    :param when: ``when(request) -> bool`` (a :class:`Request`): the requests it applies
        to; all when ``None``
    :param limit: fire at most this many times (``Fault(kind, 1.0, when, limit=1)``: the
        first matching request only); no limit when ``None``
    """

    kind: str
    probability: float
    when: Optional[Callable] = None
    limit: Optional[int] = None

    def __post_init__(self):
        if self.kind not in FAULTS:
            raise ValueError(f"unknown fault {self.kind!r}; one of {', '.join(FAULTS)}")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"probability of {self.kind} must be in [0, 1]")


@dataclasses.dataclass(frozen=True)
class LogEntry:
    """One request that passed the proxy, logged just before the client learns its fate.

    :param time: ``time.time()`` when it was logged
    :param connection: number of the client connection
    :param sequence: number of the request on that connection (above 1: reused)
    :param idle: seconds the connection sat idle before the request (see :class:`Request`)
    :param method: request method
    :param path: request target
    :param body_hash: first 12 hex digits of the body's SHA-256, ``"-"`` for no body
    :param fault: the fault that fired, or ``None``
    :param upstream_status: status the upstream answered, ``None`` when not forwarded
        or unreachable
    :param client_status: status the client received whole, ``None`` when it got
        nothing or a cut answer
    """

    time: float
    connection: int
    sequence: int
    method: str
    path: str
    body_hash: str
    fault: Optional[str]
    upstream_status: Optional[int]
    client_status: Optional[int]
    idle: float = 0.0

    def __str__(self):
        clock = time.strftime("%H:%M:%S", time.localtime(self.time))
        return (f"{clock}.{int(self.time % 1 * 1000):03d} conn={self.connection} "
                f"seq={self.sequence} idle={self.idle:.3f}s {self.method} {self.path} body={self.body_hash} "
                f"fault={self.fault or '-'} upstream={self.upstream_status or '-'} "
                f"client={self.client_status or '-'}")


def only_methods(*methods):
    """A ``when`` predicate: requests with one of ``methods`` (e.g. ``"POST"``)."""
    wanted = {m.upper() for m in methods}
    return lambda request: request.method.upper() in wanted


def path_matches(pattern):
    """A ``when`` predicate: requests whose target matches the regex ``pattern``."""
    compiled = re.compile(pattern)
    return lambda request: compiled.search(request.target) is not None


class BadRequest(Exception):
    """The client sent something that is not HTTP/1.x; its connection is closed."""


@dataclasses.dataclass
class _Answer:
    status: int
    reason: str
    headers: list
    body: bytes
    from_upstream: bool = True


class FaultyProxy:
    """An HTTP proxy in front of ``upstream_url`` that injects faults; a context manager.

    :param upstream_url: ``http://HOST:PORT`` of the server behind it (path ignored)
    :param faults: a list of :class:`Fault`, or a ``{kind: probability}`` mapping
    :param seed: seed of the one random generator that decides
    :param when: a predicate applied to every fault on top of its own ``when``
    :param stall_seconds: ``(low, high)`` range a stall's length is drawn from
    :param keep_alive: when ``False`` every answer says ``Connection: close``, so each
        request comes on a fresh connection
    :param idle_timeout: seconds a client connection may stay idle before it is closed
    :param upstream_timeout: seconds allowed for connecting to and hearing the upstream
    """

    def __init__(self, upstream_url, faults=(), seed=0, when=None, stall_seconds=(2.0, 4.0),
                 keep_alive=True, idle_timeout=60.0, upstream_timeout=60.0):
        parts = urlsplit(upstream_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"upstream must be http://HOST:PORT, not {upstream_url!r}")
        self.upstream_url = f"http://{parts.netloc}"
        self._upstream = (parts.hostname, parts.port or 80)
        self.stall_seconds = tuple(stall_seconds)
        self.keep_alive = keep_alive
        self.idle_timeout = idle_timeout
        self.upstream_timeout = upstream_timeout
        self._rng = random.Random(seed)
        self._lock = threading.RLock()  # a predicate may read proxy.log while drawing
        self._stopping = threading.Event()
        self._log = []
        self._counts = collections.Counter()
        self._errors = []
        self._sockets = set()  # every open socket, so that stop() can wake its thread
        self._threads = []
        self._next_connection = 0
        self._listener = None
        self._acceptor = None
        self.url = None  # "http://127.0.0.1:PORT", set by start()
        self._rewrite = None
        self.set_faults(faults, when)

    # -- configuration and results ---------------------------------------------------

    def set_faults(self, faults, when=None):
        """Replace the faults (e.g. none while a test logs in, some afterwards).

        :param faults: as for the constructor
        :param when: as for the constructor
        :raises ValueError: when the probabilities add up to more than 1
        """
        if isinstance(faults, dict):
            faults = [Fault(kind, p) for kind, p in faults.items()]
        faults = [dataclasses.replace(f, when=_both(f.when, when)) for f in faults]
        if sum(f.probability for f in faults) > 1.0 + 1e-9:
            raise ValueError("the probabilities of the faults add up to more than 1")
        with self._lock:
            self._faults = faults
            self._fired = [0] * len(faults)

    def set_rewrite(self, rewrite):
        """Alter every upstream answer from now on (``None``: pass them on as they are).

        :param rewrite: ``rewrite(request, content_type, body) -> body`` (bytes); the
            answer goes on with the body it returns and a ``Content-Length`` to match
        """
        with self._lock:
            self._rewrite = rewrite

    @property
    def log(self):
        """A copy of the request log, :class:`LogEntry` in the order answers went out."""
        with self._lock:
            return list(self._log)

    @property
    def counts(self):
        """A copy of ``{fault kind: times fired}``."""
        with self._lock:
            return collections.Counter(self._counts)

    @property
    def errors(self):
        """Unexpected exceptions in connection threads (a test should find none)."""
        with self._lock:
            return list(self._errors)

    # -- life cycle ------------------------------------------------------------------

    def start(self):
        """Listen on an ephemeral port of 127.0.0.1 and accept connections in a thread.

        :returns: ``self``
        """
        self._listener = socket.create_server(("127.0.0.1", 0))
        # A timeout, not a blocking accept: closing a socket does not wake a thread
        # blocked in accept() on Linux, so the acceptor looks at the stop flag instead.
        self._listener.settimeout(ACCEPT_POLL)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._acceptor = threading.Thread(target=self._accept_loop, name="netfaults-accept",
                                          daemon=True)
        self._acceptor.start()
        return self

    def stop(self, timeout=10.0):
        """Stop accepting, cut every open connection and wait for every thread.

        :raises RuntimeError: when a thread is still running after ``timeout`` seconds
        """
        self._stopping.set()
        if self._acceptor is not None:
            self._acceptor.join(timeout)
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            _shutdown(sock)  # wakes a thread blocked reading it; the thread closes it
        deadline = time.monotonic() + timeout
        for thread in [self._acceptor, *self._threads]:
            if thread is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
        left = [t.name for t in [self._acceptor, *self._threads] if t and t.is_alive()]
        if left:
            raise RuntimeError(f"proxy threads still running: {left}")

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    # -- connections -------------------------------------------------------------------

    def _accept_loop(self):
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                if self._stopping.is_set():
                    return
                raise
            with self._lock:
                self._next_connection += 1
                number = self._next_connection
                self._threads = [t for t in self._threads if t.is_alive()]
            thread = threading.Thread(target=self._serve, args=(client, number),
                                      name=f"netfaults-conn-{number}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, client, number):
        """Answer the requests of one client connection, one after the other."""
        self._track(client)
        client.settimeout(self.idle_timeout)
        reader = client.makefile("rb")
        try:
            sequence, idle_since = 0, time.monotonic()
            while not self._stopping.is_set():
                request = _read_request(reader, client, number, sequence + 1, idle_since)
                if request is None:
                    break
                sequence += 1
                if not self._handle(client, request):
                    break
                idle_since = time.monotonic()
        except (OSError, BadRequest):
            pass  # the client went away, was idle too long, or spoke no HTTP: close
        except Exception as exc:  # a bug here or in a test's predicate: keep it visible
            with self._lock:
                self._errors.append(exc)
        finally:
            reader.close()
            self._untrack(client)
            client.close()

    def _handle(self, client, request):
        """Answer one request, or inject a fault instead.

        :returns: whether the connection stays open for the next request
        """
        kind, stall = self._draw(request)
        keep_alive = self.keep_alive and request.wants_keep_alive()
        entry = LogEntry(time.time(), request.connection, request.sequence, request.method,
                         request.target, _short_hash(request.body), kind, None, None,
                         request.idle)
        try:
            if kind in _ERROR_REASONS:
                answer = _error_page(*_ERROR_REASONS[kind], "injected by the test proxy")
            else:
                if kind == "stall" and self._stopping.wait(stall):
                    raise OSError("proxy stopping")
                answer = self._forward(request)
                if answer.from_upstream:
                    entry = dataclasses.replace(entry, upstream_status=answer.status)
                    with self._lock:
                        rewrite = self._rewrite
                    if rewrite is not None:
                        kind_of = next((v for k, v in answer.headers
                                        if k.lower() == "content-type"), "")
                        answer = dataclasses.replace(
                            answer, body=rewrite(request, kind_of, answer.body))
        except OSError:
            self._record(entry)
            raise
        data = _serialize(answer, request, keep_alive, self.upstream_url, self.url)
        whole = kind not in ("drop_after_forward", "reset_mid_answer")
        if whole:
            entry = dataclasses.replace(entry, client_status=answer.status)
        # Logged before the client can see the outcome, so that a test reading the log
        # right after its answer (or its error) finds this request there.
        self._record(entry)
        if kind == "drop_after_forward":
            _shutdown(client)  # FIN: an orderly close, with nothing said
            return False
        if kind == "reset_mid_answer":
            client.sendall(data[:_cut_point(data, answer)])
            # Linger 0 makes close() send an RST instead of a FIN.
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        try:
            client.sendall(data)
        except OSError:
            self._amend(entry, client_status=None)
            raise
        return keep_alive

    def _draw(self, request):
        """The fault for ``request`` (or ``None``) and, for a stall, its length."""
        with self._lock:
            draw = self._rng.random()
            edge = 0.0
            for index, fault in enumerate(self._faults):
                low, edge = edge, edge + fault.probability
                if not low <= draw < edge:
                    continue
                if fault.limit is not None and self._fired[index] >= fault.limit:
                    return None, 0.0
                if fault.when is not None and not fault.when(request):
                    return None, 0.0
                self._fired[index] += 1
                self._counts[fault.kind] += 1
                stall = self._rng.uniform(*self.stall_seconds) if fault.kind == "stall" else 0.0
                return fault.kind, stall
            return None, 0.0

    def _forward(self, request):
        """Send ``request`` to the upstream on a fresh connection and read its answer."""
        conn = http.client.HTTPConnection(*self._upstream, timeout=self.upstream_timeout)
        try:
            conn.connect()
            self._track(conn.sock)
            # The client's Host header goes on unchanged, so that the ERP builds its
            # redirects and links for the address the client sees: the proxy's.
            conn.putrequest(request.method, request.target, skip_host=True,
                            skip_accept_encoding=True)
            for name, value in _end_to_end(request.headers):
                if name.lower() != "content-length":
                    conn.putheader(name, value)
            if request.body or request.method in ("POST", "PUT", "PATCH"):
                conn.putheader("Content-Length", str(len(request.body)))
            conn.putheader("Connection", "close")
            conn.endheaders(request.body or None)
            response = conn.getresponse()
            body = response.read()  # handles chunked, Content-Length and close-delimited
            return _Answer(response.status, response.reason, response.getheaders(), body)
        except (OSError, http.client.HTTPException):
            if self._stopping.is_set():
                raise OSError("proxy stopping") from None
            return _error_page(502, "Bad Gateway", "upstream unreachable")
        finally:
            if conn.sock is not None:
                self._untrack(conn.sock)
            conn.close()

    def _record(self, entry):
        with self._lock:
            self._log.append(entry)

    def _amend(self, entry, **changes):
        """Correct a logged entry (the client did not get what it was logged as getting)."""
        with self._lock:
            index = next(i for i, e in enumerate(self._log) if e is entry)
            self._log[index] = dataclasses.replace(entry, **changes)

    def _track(self, sock):
        with self._lock:
            self._sockets.add(sock)
            stopping = self._stopping.is_set()
        if stopping:  # stop() has already cut the sockets it knew of: cut this one too
            _shutdown(sock)

    def _untrack(self, sock):
        with self._lock:
            self._sockets.discard(sock)


def _both(first, second):
    if first is None or second is None:
        return first or second
    return lambda request: first(request) and second(request)


def _read_request(reader, client, connection, sequence, idle_since):
    """Read one request from a client connection.

    :param idle_since: ``time.monotonic()`` since when the connection has been idle

    :returns: a :class:`Request`, or ``None`` when the client closed between requests
    :raises BadRequest: on anything that is not HTTP/1.x
    """
    line = reader.readline(MAX_LINE + 1)
    while line in (b"\r\n", b"\n"):  # tolerated before a request (RFC 9112, 2.2)
        line = reader.readline(MAX_LINE + 1)
    if not line:
        return None
    idle = time.monotonic() - idle_since
    parts = line.decode("latin-1").split()
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(f"not an HTTP/1.x request line: {line[:80]!r}")
    method, target, version = parts
    if target.startswith(("http://", "https://")):  # absolute form: keep path and query
        split = urlsplit(target)
        target = (split.path or "/") + (f"?{split.query}" if split.query else "")
    headers = []
    while True:
        line = reader.readline(MAX_LINE + 1)
        if not line or len(line) > MAX_LINE or len(headers) > MAX_HEADERS:
            raise BadRequest("header block cut short or too large")
        if line in (b"\r\n", b"\n"):
            break
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise BadRequest(f"not a header line: {line[:80]!r}")
        headers.append((name.strip(), value.strip()))
    request = Request(method, target, version, tuple(headers), b"", connection, sequence, idle)
    if (request.header("Expect") or "").lower() == "100-continue":
        client.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
    if "chunked" in (request.header("Transfer-Encoding") or "").lower():
        body = _read_chunked(reader)
    else:
        length = request.header("Content-Length") or "0"
        if not length.isdigit():
            raise BadRequest(f"bad Content-Length {length!r}")
        body = _read_exactly(reader, int(length))
    return dataclasses.replace(request, body=body)


def _read_chunked(reader):
    chunks = []
    while True:
        size_line = reader.readline(MAX_LINE + 1).split(b";", 1)[0].strip()
        try:
            size = int(size_line, 16)
        except ValueError:
            raise BadRequest(f"bad chunk size {size_line[:20]!r}") from None
        if size == 0:
            break
        chunks.append(_read_exactly(reader, size))
        reader.readline(MAX_LINE + 1)  # the CRLF after the chunk
    while reader.readline(MAX_LINE + 1) not in (b"\r\n", b"\n", b""):
        pass  # trailers: dropped
    return b"".join(chunks)


def _read_exactly(reader, size):
    data = reader.read(size)
    if len(data) != size:
        raise BadRequest("connection closed inside a body")
    return data


def _end_to_end(headers):
    """``headers`` without the hop-by-hop ones, including those ``Connection`` names."""
    named = {t.strip().lower() for k, v in headers if k.lower() == "connection"
             for t in v.split(",")}
    return [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP | named]


def _serialize(answer, request, keep_alive, upstream_url, proxy_url):
    """The bytes of ``answer`` for the client, framed by ``Content-Length``."""
    no_body = request.method == "HEAD" or answer.status in (204, 304) \
        or 100 <= answer.status < 200
    lines = [f"HTTP/1.1 {answer.status} {answer.reason}"]
    for name, value in _end_to_end(answer.headers):
        lowered = name.lower()
        if lowered == "content-length" and not no_body:
            continue  # set below from the body actually read
        if lowered == "location" and value.startswith(upstream_url):
            value = proxy_url + value[len(upstream_url):]
        lines.append(f"{name}: {value}")
    if not no_body:
        lines.append(f"Content-Length: {len(answer.body)}")
    lines.append(f"Connection: {'keep-alive' if keep_alive else 'close'}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + (b"" if no_body else answer.body)


def _cut_point(data, answer):
    """Where a reset cuts ``data``: inside the body, or inside the headers if it has none."""
    head_length = len(data) - len(answer.body)
    if answer.body and data.endswith(answer.body):
        return head_length + len(answer.body) // 2
    return head_length // 2


def _error_page(status, reason, detail):
    body = (f"<!DOCTYPE html><html><head><title>{status} {reason}</title></head>"
            f"<body><h1>{status} {reason}</h1><p>{detail}</p></body></html>").encode()
    return _Answer(status, reason, [("Content-Type", "text/html; charset=utf-8")], body,
                   from_upstream=False)


def _short_hash(body):
    return hashlib.sha256(body).hexdigest()[:12] if body else "-"


def _shutdown(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed or never connected
