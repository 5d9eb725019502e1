"""The fault-injecting proxy (tests/netfaults.py) against a real upstream server and real
HTTP clients: a clean pass-through when no fault fires, each fault as documented, the
seed, the predicates, and a clean stop. No browser here (tests/test_netfaults_chromium.py)."""

import concurrent.futures
import http.client
import socket
import threading
import time

import pytest
import requests

from http_upstream import BIG_BODY, Upstream
from netfaults import Fault, FaultyProxy, only_methods, path_matches


@pytest.fixture
def upstream():
    with Upstream() as server:
        yield server


def connect(proxy):
    return http.client.HTTPConnection("127.0.0.1", int(proxy.url.rsplit(":", 1)[1]), timeout=10)


def get(conn, path, method="GET", body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    return response, response.read()


def proxy_threads():
    return [t for t in threading.enumerate() if t.name.startswith("netfaults-")]


# -- a clean pass-through -------------------------------------------------------------


def test_every_framing_passes_on_one_kept_alive_connection(upstream):
    with FaultyProxy(upstream.url) as proxy:
        conn = connect(proxy)
        plain, plain_body = get(conn, "/plain")
        chunked, chunked_body = get(conn, "/chunked")
        closed, closed_body = get(conn, "/close")
        echo, echo_body = get(conn, "/echo", "POST", b"x" * 100_000)
        conn.close()
        log = proxy.log
    assert (plain.status, plain_body) == (200, b"hello")
    assert plain.getheader("X-Upstream") == "yes"
    assert plain.headers.get_all("Set-Cookie") == ["a=1", "b=2"]  # repeated headers kept
    assert chunked_body == b"chunk-one chunk-two chunk-three"
    assert chunked.getheader("Transfer-Encoding") is None
    assert chunked.getheader("Content-Length") == str(len(chunked_body))
    assert closed_body == b"until the end"
    # The upstream closed its own connection; the client's stays open.
    assert closed.getheader("Connection") == "keep-alive"
    assert (echo.status, echo_body) == (200, b"x" * 100_000)
    assert [(e.connection, e.sequence) for e in log] == [(1, 1), (1, 2), (1, 3), (1, 4)]
    assert [e.fault for e in log] == [None] * 4
    assert [e.client_status for e in log] == [200] * 4
    assert [r[:2] for r in upstream.received()] == [
        ("GET", "/plain"), ("GET", "/chunked"), ("GET", "/close"), ("POST", "/echo")]


def test_chunked_request_body_reaches_the_upstream_whole(upstream):
    with FaultyProxy(upstream.url) as proxy:
        answer = requests.post(proxy.url + "/echo", data=iter([b"one ", b"two ", b"three"]),
                               timeout=10)
        entry, = proxy.log
    assert answer.content == b"one two three"
    assert upstream.received("POST") == [("POST", "/echo", b"one two three")]
    assert entry.body_hash != "-" and len(entry.body_hash) == 12


def test_expect_100_continue_is_answered(upstream):
    with FaultyProxy(upstream.url) as proxy, socket.create_connection(
            ("127.0.0.1", int(proxy.url.rsplit(":", 1)[1])), timeout=10) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(b"abc")
        assert read_until_closed_or(sock, b"abc").endswith(b"abc")


def test_parallel_keep_alive_clients(upstream):
    def client(n):
        with requests.Session() as session:
            return [session.post(proxy.url + "/echo", data=f"{n}-{i}".encode(), timeout=10).text
                    for i in range(5)]

    with FaultyProxy(upstream.url) as proxy:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(client, range(8)))
        log = proxy.log
        errors = proxy.errors
    assert answers == [[f"{n}-{i}" for i in range(5)] for n in range(8)]
    assert len(log) == 40 and len({e.connection for e in log}) == 8
    assert max(e.sequence for e in log) == 5
    assert not errors


def test_redirects_point_at_the_proxy_and_the_host_header_goes_on(upstream):
    with FaultyProxy(upstream.url) as proxy:
        answer = requests.get(proxy.url + "/redirect", allow_redirects=False, timeout=10)
        followed = requests.get(proxy.url + "/redirect", timeout=10)
    assert answer.headers["Location"] == proxy.url + "/plain"
    assert answer.headers["X-Host-Seen"] == proxy.url.removeprefix("http://")
    assert followed.text == "hello" and followed.url == proxy.url + "/plain"


def test_head_and_no_content_answers_have_no_body(upstream):
    with FaultyProxy(upstream.url) as proxy:
        conn = connect(proxy)
        head, head_body = get(conn, "/plain", "HEAD")
        empty, empty_body = get(conn, "/empty")
        after, after_body = get(conn, "/plain")  # the framing held: the next one parses
        conn.close()
    assert (head.status, head_body, head.getheader("Content-Length")) == (200, b"", "5")
    assert (empty.status, empty_body) == (204, b"")
    assert after_body == b"hello"


def test_keep_alive_off_closes_after_every_answer(upstream):
    with FaultyProxy(upstream.url, keep_alive=False) as proxy:
        with requests.Session() as session:
            for _ in range(3):
                assert session.get(proxy.url + "/plain", timeout=10).headers["Connection"] \
                    == "close"
        log = proxy.log
    assert [(e.connection, e.sequence) for e in log] == [(1, 1), (2, 1), (3, 1)]


def test_an_unreachable_upstream_is_a_502(upstream):
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{spare.getsockname()[1]}"  # bound, never listening
        with FaultyProxy(dead) as proxy:
            answer = requests.get(proxy.url + "/plain", timeout=10)
            entry, = proxy.log
    assert answer.status_code == 502 and "upstream unreachable" in answer.text
    assert (entry.upstream_status, entry.client_status) == (None, 502)


def test_garbage_closes_the_connection_without_an_error(upstream):
    with FaultyProxy(upstream.url) as proxy, socket.create_connection(
            ("127.0.0.1", int(proxy.url.rsplit(":", 1)[1])), timeout=10) as sock:
        sock.sendall(b"\x16\x03\x01 not http at all\r\n\r\n")
        assert sock.recv(100) == b""
        assert requests.get(proxy.url + "/plain", timeout=10).text == "hello"
        assert not proxy.errors and len(proxy.log) == 1


# -- each fault does what it says ------------------------------------------------------


def test_drop_after_forward_does_the_work_and_says_nothing(upstream):
    with FaultyProxy(upstream.url, faults={"drop_after_forward": 1.0}) as proxy:
        conn = connect(proxy)
        with pytest.raises(http.client.RemoteDisconnected):
            get(conn, "/echo", "POST", b"line 1")
        entry, = proxy.log
        counts = proxy.counts
    assert upstream.received("POST") == [("POST", "/echo", b"line 1")]
    assert (entry.fault, entry.upstream_status, entry.client_status) == \
        ("drop_after_forward", 200, None)
    assert counts == {"drop_after_forward": 1}


@pytest.mark.parametrize("kind,status", [("error_502", 502), ("error_503", 503)])
def test_error_answers_without_forwarding_and_keeps_the_connection(upstream, kind, status):
    with FaultyProxy(upstream.url, faults=[Fault(kind, 1.0, limit=1)]) as proxy:
        conn = connect(proxy)
        error, error_body = get(conn, "/echo", "POST", b"line 1")
        after, after_body = get(conn, "/plain")
        conn.close()
        log = proxy.log
    assert error.status == status and f"<title>{status} ".encode() in error_body
    assert error.getheader("Connection") == "keep-alive"
    assert after_body == b"hello"
    assert upstream.received("POST") == []
    assert [(e.sequence, e.fault, e.upstream_status, e.client_status) for e in log] == [
        (1, kind, None, status), (2, None, 200, 200)]


def test_stall_waits_then_answers(upstream):
    with FaultyProxy(upstream.url, faults={"stall": 1.0}, stall_seconds=(0.4, 0.5)) as proxy:
        started = time.monotonic()
        answer = requests.get(proxy.url + "/plain", timeout=10)
        elapsed = time.monotonic() - started
        counts = proxy.counts
    assert answer.text == "hello"
    assert 0.4 <= elapsed < 2.0
    assert counts == {"stall": 1}


def test_reset_mid_answer_sends_part_then_an_rst(upstream):
    with FaultyProxy(upstream.url, faults={"reset_mid_answer": 1.0}) as proxy, \
            socket.create_connection(("127.0.0.1", int(proxy.url.rsplit(":", 1)[1])),
                                     timeout=10) as sock:
        sock.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        received = bytearray()
        with pytest.raises(ConnectionResetError):
            while True:
                data = sock.recv(65536)
                if not data:
                    break  # a FIN: the test fails below, no reset came
                received += data
        entry, = proxy.log
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert 0 < len(body) < len(BIG_BODY) and BIG_BODY.startswith(body)
    assert upstream.received("GET") == [("GET", "/big", b"")]
    assert (entry.fault, entry.upstream_status, entry.client_status) == \
        ("reset_mid_answer", 200, None)


# -- the seed and the predicates -------------------------------------------------------


def fault_sequence(upstream, seed, n=60):
    faults = {"error_503": 0.3, "error_502": 0.2}
    with FaultyProxy(upstream.url, faults=faults, seed=seed) as proxy:
        with requests.Session() as session:
            statuses = [session.get(proxy.url + "/plain", timeout=10).status_code
                        for _ in range(n)]
        assert [e.client_status for e in proxy.log] == statuses
        return [e.fault for e in proxy.log], proxy.counts


def test_the_seed_makes_a_run_repeatable(upstream):
    first, counts = fault_sequence(upstream, seed=11)
    again, _ = fault_sequence(upstream, seed=11)
    other, _ = fault_sequence(upstream, seed=12)
    assert first == again
    assert first != other
    assert counts["error_503"] > 5 and counts["error_502"] > 3 and first.count(None) > 15


def test_a_predicate_restricts_a_fault_to_posts(upstream):
    with FaultyProxy(upstream.url, faults=[Fault("error_503", 1.0, when=only_methods("POST"))]
                     ) as proxy:
        with requests.Session() as session:
            gets = [session.get(proxy.url + "/plain", timeout=10).status_code for _ in range(5)]
            posts = [session.post(proxy.url + "/echo", data=b"x", timeout=10).status_code
                     for _ in range(5)]
    assert gets == [200] * 5 and posts == [503] * 5


def test_a_global_predicate_and_a_limit(upstream):
    with FaultyProxy(upstream.url, faults={"error_502": 1.0}, when=path_matches(r"^/echo")
                     ) as proxy:
        with requests.Session() as session:
            assert session.get(proxy.url + "/plain", timeout=10).status_code == 200
            assert session.post(proxy.url + "/echo", data=b"x", timeout=10).status_code == 502
        proxy.set_faults([Fault("error_503", 1.0, when=only_methods("POST"), limit=1)])
        with requests.Session() as session:
            assert [session.post(proxy.url + "/echo", data=b"x", timeout=10).status_code
                    for _ in range(3)] == [503, 200, 200]
        assert proxy.counts == {"error_502": 1, "error_503": 1}


def test_bad_fault_settings_are_refused(upstream):
    with pytest.raises(ValueError, match="unknown fault"):
        Fault("drop_everything", 0.5)
    with pytest.raises(ValueError, match="add up to more than 1"):
        FaultyProxy(upstream.url, faults={"error_502": 0.6, "error_503": 0.6})
    with pytest.raises(ValueError, match="http://HOST:PORT"):
        FaultyProxy("ftp://127.0.0.1:21")


# -- a clean stop ----------------------------------------------------------------------


def test_stop_leaves_no_thread_behind_even_mid_stall_and_with_idle_connections(upstream):
    proxy = FaultyProxy(upstream.url, faults={"stall": 1.0}, stall_seconds=(30, 30)).start()
    idle = socket.create_connection(("127.0.0.1", int(proxy.url.rsplit(":", 1)[1])), timeout=10)
    stalled = threading.Thread(target=lambda: pytest.raises(
        requests.ConnectionError, requests.get, proxy.url + "/plain", timeout=20))
    stalled.start()
    time.sleep(0.3)  # the request is now waiting out its stall
    started = time.monotonic()
    proxy.stop()
    stalled.join(5)
    idle.close()
    assert time.monotonic() - started < 2.0
    assert not stalled.is_alive()
    assert proxy_threads() == []
    assert upstream.received() == []  # the stalled request was never forwarded


def read_until_closed_or(sock, ending, timeout=5.0):
    """Bytes from ``sock`` until the peer closes or they end with ``ending``."""
    data = b""
    deadline = time.monotonic() + timeout
    while not data.endswith(ending) and time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data
