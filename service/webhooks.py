"""The webhook: every order event POSTed to ``WEBHOOK_URL``, signed per Standard Webhooks.

One thread per instance (:class:`WebhookSender`, started and stopped with the worker's
lifecycle by :class:`~service.instance.Instance`) reads the outbox of
:mod:`orders.events` and sends:

* **Strictly in cursor order, one event at a time.** That is in order per order, and
  simply so: the next event is not sent before the one before it was answered 2xx. A
  receiver that refuses one event holds back all later ones (head-of-line blocking); at
  a few events per order and one receiver per workshop that is the price of order that
  cannot be wrong. The order is the order of the status changes across the workshop.
* **At least once.** The delivered cursor is written after each 2xx; a kill between the
  2xx and that write sends the event again, with the same ``webhook-id`` (the event id,
  the receiver's idempotency key).
* **Retries** after any answer that is not 2xx (3xx included: redirects are not
  followed), a timeout (``WEBHOOK_TIMEOUT_SECONDS``) or a refused connection: the same
  event again after ``WEBHOOK_BACKOFF_SECONDS`` doubled per failure, capped at
  ``WEBHOOK_BACKOFF_MAX_SECONDS`` (an hour by default), with jitter
  (:func:`core.retry.backoff`); a longer ``Retry-After`` is honoured up to the cap. It
  retries for as long as it takes: a receiver down for a day gets everything after.
  The failures and the next try are in SQLite, so a restart keeps the schedule.
* **410 Gone disables** the endpoint: nothing more is sent until ``WEBHOOK_URL`` or
  ``WEBHOOK_SECRET`` changes (a digest of the two is kept with the state, see
  :meth:`~orders.events.EventLog.webhook`). A disabled webhook holds no events back
  from pruning; the new endpoint gets the events still kept.

**One deadline for the whole delivery.** ``WEBHOOK_TIMEOUT_SECONDS`` bounds a POST from
the connect to the last byte of the answer read, not each read: a receiver that sends its
answer one byte every 3 s (an outside probe) kept a delivery in flight for over 60 s under
a per-read timeout, uncounted, with every later event behind it. A watchdog timer shuts
the socket down at the deadline, which ends any blocked connect, send or read at once;
the try is then a failure like any other (counted, logged, retried after the backoff).
:meth:`WebhookSender.stop` shuts the socket of the delivery in flight down the same way,
so a stop is prompt; a delivery cut by a stop is not a failure and is sent again after
the start. The name lookup before the connect is bounded by the system's resolver, not
by this deadline. The request goes straight to the receiver (no ``*_proxy`` variables).

Each request: ``POST`` with the event as a compact JSON body (the feed's form) and the
headers ``webhook-id`` (the event id), ``webhook-timestamp`` (Unix seconds of this
try) and ``webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>`` made by the
``standardwebhooks`` package. The secret is never logged; the URL is logged without
its user, password and query (:func:`safe_url`).

The thread also prunes the outbox once a minute, webhook or not.
"""

import base64
import binascii
import hashlib
import http.client
import json
import logging
import socket
import threading
import time
import urllib.parse
from datetime import datetime, timezone

from core import retry
from service.metrics import DELIVERED, FAILED, GONE, Observer

log = logging.getLogger("oilmat.api")

SECRET_PREFIX = "whsec_"
#: the spec's bounds on a symmetric key: at least 24 bytes, at most 64
SECRET_BYTES = (24, 64)
#: seconds between prunings of the outbox
PRUNE_SECONDS = 60.0
#: longest sleep of the idle thread before it looks again (a new event wakes it at once)
IDLE_SECONDS = 5.0
#: seconds the thread waits after the records could not be used
STORAGE_PAUSE = 5.0
USER_AGENT = "OilMat-Bridge-Webhooks/1"


def parse_secret(text):
    """Check a ``WEBHOOK_SECRET`` and return its key.

    :param text: ``whsec_`` followed by the key in base64 (24 to 64 bytes)
    :returns: the key bytes
    :raises ValueError: with a reason that never repeats the secret
    """
    if not text.startswith(SECRET_PREFIX):
        raise ValueError("must start with whsec_ (the Standard Webhooks form whsec_<base64 key>)")
    body = text[len(SECRET_PREFIX):]
    try:
        key = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be whsec_ followed by base64 (A-Z a-z 0-9 + /)") from None
    low, high = SECRET_BYTES
    if not low <= len(key) <= high:
        raise ValueError(f"must hold a key of {low} to {high} bytes, this one has {len(key)}")
    return key


def sign(secret, msg_id, timestamp, body):
    """The ``webhook-signature`` of one delivery, by the ``standardwebhooks`` package.

    :param secret: ``whsec_<base64 key>``
    :param msg_id: the ``webhook-id`` (the event id)
    :param timestamp: the ``webhook-timestamp``, whole Unix seconds
    :param body: the body as sent (text)
    :returns: ``v1,<base64 HMAC-SHA256 of msg_id.timestamp.body>``
    """
    from standardwebhooks import Webhook  # small, standard library only

    return Webhook(secret).sign(msg_id, datetime.fromtimestamp(timestamp, timezone.utc), body)


def safe_url(url):
    """``url`` without user, password, query or fragment: fit for a log line."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port:
        host += f":{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def endpoint_digest(url, secret):
    """What identifies a configured endpoint in the stored state, without the secret."""
    return hashlib.sha256(f"{url}\n{secret}".encode("utf-8")).hexdigest()


def _retry_after(value):
    """``Retry-After`` in seconds, or None (only the delta-seconds form is read)."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _result(status):
    """The ``result`` label of a delivery answered with ``status`` (None: no answer)."""
    if status is not None and 200 <= status < 300:
        return DELIVERED
    return GONE if status == 410 else FAILED


class WebhookSender:
    """The thread that delivers the outbox to the webhook, and prunes it.

    :param settings: :class:`~service.settings.Settings` (``webhook_*``, ``event_*``)
    :param events: the :class:`~orders.events.EventLog`
    :param wake: a :class:`threading.Event` set whenever an event is written
    :param metrics: a :class:`~service.metrics.Observer` told of every delivery's result
    """

    def __init__(self, settings, events, wake, metrics=None):
        self.settings = settings
        self.metrics = metrics or Observer()
        self.events = events
        self._wake = wake
        self._stop = threading.Event()
        self._thread = None
        self._last_prune = 0.0
        self._endpoint = None
        self._in_flight = _Cut()  # the socket of the delivery under way, for stop()
        # steps begun and ended, for looked(): that nothing was sent is shown by a step
        # that ran after it could have been, not by a pause
        self._steps = threading.Condition()
        self._begun = self._ended = 0
        if settings.webhook_url:
            self._endpoint = endpoint_digest(settings.webhook_url, settings.webhook_secret)

    @property
    def configured(self):
        return self._endpoint is not None

    # -- control --------------------------------------------------------------------

    def start(self):
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="webhook-sender", daemon=True)
        self._thread.start()

    def looked(self, timeout):
        """Wake the sender and wait until it has looked at the outbox once more, a look
        begun after this call: whatever was written before the call, it has seen (and
        sent, when a delivery was due). For tests, and a caller that must know.

        :returns: whether it did within ``timeout`` seconds
        """
        with self._steps:
            after = self._begun
            self._wake.set()
            return self._steps.wait_for(lambda: self._ended > after, timeout)

    def stop(self, timeout=None):
        """Stop now: a delivery in flight is cut off (and sent again after the start)."""
        self._stop.set()
        self._wake.set()
        self._in_flight.cut()
        if self._thread is not None:
            self._thread.join(timeout)

    def state(self):
        """For ``/alive``: ``{"state": "off"|"enabled"|"disabled", "backlog", "failures",
        "next_try"}``; no URL (``/alive`` needs no token, and a URL may hold a secret)."""
        if not self.configured:
            return {"state": "off", "backlog": 0, "failures": 0, "next_try": None}
        mark = self.events.webhook()
        next_try = None
        if mark["failures"] and mark["next_try"]:
            next_try = datetime.fromtimestamp(mark["next_try"], timezone.utc).isoformat(
                timespec="seconds")
        return {"state": "disabled" if mark["disabled_url"] else "enabled",
                "backlog": self.events.backlog(mark["cursor"]),
                "failures": mark["failures"], "next_try": next_try}

    # -- the loop (its own thread) ----------------------------------------------------

    def _run(self):
        from core.errors import StorageUnavailable

        while not self._stop.is_set():
            self._wake.clear()  # before the step: an event written during it cuts the pause
            with self._steps:
                self._begun += 1
            try:
                pause = self._step()
            except StorageUnavailable as exc:
                log.error("webhook: the outbox cannot be read: %s", exc)
                pause = STORAGE_PAUSE
            except Exception:  # the thread must outlive any bug in one step
                log.exception("webhook: step failed")
                pause = STORAGE_PAUSE
            with self._steps:
                self._ended += 1
                self._steps.notify_all()
            if pause:
                self._wake.wait(pause)

    def _step(self):
        """Prune when due, then send the next event if one is due.

        :returns: seconds to sleep (a new event wakes it earlier), 0 to go on at once
        """
        held = None
        if self.configured:
            mark = self.events.webhook(self._endpoint)
            if not mark["disabled_url"]:
                held = mark["cursor"]
        if time.monotonic() - self._last_prune >= PRUNE_SECONDS:
            self._last_prune = time.monotonic()
            pruned = self.events.prune(self.settings.event_retention_days,
                                       self.settings.event_max_days, delivered=held)
            if pruned:
                log.info("events: pruned %d acknowledged event(s)", pruned)
        if held is None:  # no webhook, or disabled by a 410: only pruning to do
            return PRUNE_SECONDS
        wait = mark["next_try"] - time.time()
        if wait > 0:
            return min(wait, PRUNE_SECONDS)
        event = self.events.after(held)
        if event is None:
            return IDLE_SECONDS
        self._deliver(event, mark)
        return 0

    def _deliver(self, event, mark):
        status, detail, retry_after = self._post(event)
        if status is None and self._stop.is_set():
            return  # cut off by stop(): not the receiver's failure; sent after the start
        url = safe_url(self.settings.webhook_url)
        self.metrics.webhook(_result(status))
        if status is not None and 200 <= status < 300:
            self.events.save_webhook(cursor=event["cursor"], failures=0, next_try=0,
                                     last_error=None)
            if mark["failures"]:
                log.info("webhook: %s answers again after %d failed tries", url, mark["failures"])
        elif status == 410:
            self.events.save_webhook(disabled_url=url, last_error=detail)
            log.warning("webhook: %s answered 410 Gone: disabled until WEBHOOK_URL or "
                        "WEBHOOK_SECRET changes (%d event(s) not sent)", url,
                        self.events.backlog(mark["cursor"]))
        else:
            failures = mark["failures"] + 1
            s = self.settings
            delay = retry.backoff(failures, s.webhook_backoff_seconds,
                                  s.webhook_backoff_max_seconds)
            if retry_after is not None:
                delay = min(max(delay, retry_after), s.webhook_backoff_max_seconds)
            self.events.save_webhook(failures=failures, next_try=time.time() + delay,
                                     last_error=detail)
            log.warning("webhook: %s: %s for %s (%s); try %d failed, next in %.1f s", url,
                        detail, event["id"], event["type"], failures, delay)

    def _post(self, event):
        """Send one event, all of it within ``WEBHOOK_TIMEOUT_SECONDS``.

        :returns: ``(status or None, detail, Retry-After seconds)``
        """
        body = json.dumps(event, separators=(",", ":")).encode("utf-8")
        sent_at = int(time.time())
        signature = sign(self.settings.webhook_secret, event["id"], sent_at, body.decode("utf-8"))
        timeout = self.settings.webhook_timeout_seconds
        parts = urllib.parse.urlsplit(self.settings.webhook_url)
        kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        connection = kind(parts.hostname, parts.port, timeout=timeout)
        watchdog = threading.Timer(timeout, self._in_flight.cut)
        watchdog.daemon = True
        self._in_flight.watch(connection)
        watchdog.start()
        try:
            connection.connect()
            if self._in_flight.was_cut:  # cut while connecting: the socket came too late
                raise TimeoutError("cut while connecting")
            connection.request("POST", _target(parts), body=body, headers={
                "Content-Type": "application/json", "User-Agent": USER_AGENT,
                "Connection": "close", "webhook-id": event["id"],
                "webhook-timestamp": str(sent_at), "webhook-signature": signature})
            answer = connection.getresponse()
            answer.read(64 * 1024)  # the answer's body counts against the deadline too
            retry_after = None if 200 <= answer.status < 300 else _retry_after(
                answer.getheader("Retry-After"))
            return answer.status, f"HTTP {answer.status}", retry_after
        except (OSError, http.client.HTTPException, ValueError) as exc:
            if self._in_flight.was_cut:
                detail = (f"no answer: the delivery took longer than WEBHOOK_TIMEOUT_SECONDS "
                          f"({timeout:g} s)" if not self._stop.is_set() else "stopped")
            else:
                detail = f"no answer: {type(exc).__name__}: {exc}"
            return None, detail.replace(self.settings.webhook_url, "<WEBHOOK_URL>")[:200], None
        finally:
            watchdog.cancel()
            self._in_flight.watch(None)
            connection.close()


def _target(parts):
    """The request target of a URL: its path and query, a non-ASCII letter in them
    percent-encoded as UTF-8 (what is encoded already stays as it is)."""
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return urllib.parse.quote(target, safe="".join(map(chr, range(0x21, 0x7f))))


class _Cut:
    """The connection of the delivery in flight, and the one way to end it from another
    thread (the watchdog at the deadline, or :meth:`WebhookSender.stop`): ``shutdown``
    of its socket, which wakes a blocked connect, send or read at once (``close`` from
    another thread does not)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._connection = None
        self.was_cut = False

    def watch(self, connection):
        with self._lock:
            self._connection, self.was_cut = connection, False

    def cut(self):
        with self._lock:
            connection = self._connection
            if connection is None:
                return
            self.was_cut = True
            sock = connection.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:  # not connected yet or already closed: connect's timeout ends it
                pass
