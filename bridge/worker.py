"""The worker: one thread that takes orders off the queue, FIFO, and writes them into
the ERP through the workshop's integration.

Per order: ``placed -> processing -> created``, or ``-> error`` with a reason code.

* Permanent errors (:class:`~bridge.exceptions.PermanentError`) end the order at once.
* Anything else is transient: the same order is tried again after an exponential
  backoff with jitter, up to ``max_attempts``; then it ends in ``error`` with the last
  reason code. Retrying in place (rather than re-queueing at the tail) keeps the queue
  FIFO -- when the ERP is down, later orders would fail the same way anyway.
* Stopping is graceful: the order in hand is finished; one waiting out a backoff is
  released back to the head of the queue as ``placed``.
* No exception ends the thread; a failure outside an order is logged and the loop goes on.
* The browser is closed after ``browser_idle_seconds`` without work, so an idle
  workshop holds no browser.
"""

import random
import threading
import time
from decimal import Decimal

from bridge.exceptions import LoginFailed, PermanentError
from bridge.status import OrderStatus
from integrations.base import Credentials, LineOutcome, OrderLine

#: how long one blocking ``get`` waits before the loop checks for stop and idleness
POLL_SECONDS = 0.5


class Worker:
    """The order worker of one instance.

    :param settings: the instance's :class:`~bridge.settings.Settings`
    :param store: :class:`~bridge.records.OrderStore`
    :param queue: :class:`~bridge.queue.OrderQueue`
    :param make_integration: callable returning a fresh
        :class:`~integrations.base.Integration`; called in the worker thread
    :param box: :class:`~bridge.crypto.CredentialBox`
    :param logger: the orderline logger
    """

    def __init__(self, settings, store, queue, make_integration, box, logger):
        self.settings = settings
        self.store = store
        self.queue = queue
        self.make_integration = make_integration
        self.box = box
        self.log = logger
        self._integration = None
        self._thread = None
        self._stop = threading.Event()
        self._state_lock = threading.Lock()
        self._last_work = time.monotonic()
        self.current = None  # uniqueid of the order in hand, for /alive
        self._acks_since_compact = 0

    # -- control (called from request threads) ------------------------------------

    @property
    def running(self):
        return self._thread is not None and self._thread.is_alive()

    @property
    def state(self):
        if not self.running:
            return "stopped"
        return "stopping" if self._stop.is_set() else "running"

    def start(self):
        """Start the thread if it is not running. :returns: whether it was running"""
        with self._state_lock:
            if self.running:
                if self._stop.is_set():
                    # a stop is under way: let it finish, then start afresh
                    self._thread.join()
                else:
                    return True
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="order-worker", daemon=True)
            self._thread.start()
            self.log.info("worker started")
            return False

    def stop(self, timeout=None):
        """Stop gracefully: finish the order in hand, then end the thread.

        :param timeout: seconds to wait for the thread; None waits as long as it takes
            (every ERP step is bounded, so this is bounded too)
        :returns: whether it was running
        """
        with self._state_lock:
            was_running = self.running
            self._stop.set()
            if was_running:
                self._thread.join(timeout)
            if was_running and not self._thread.is_alive():
                self.log.info("worker stopped")
            return was_running

    # -- the loop (worker thread) -------------------------------------------------

    def _run(self):
        try:
            while not self._stop.is_set():
                try:
                    self._step()
                except Exception:  # the thread must outlive any bug in one step
                    self.log.exception("worker step failed; continuing")
                    self._stop.wait(1.0)
        finally:
            self._close_integration()

    def _step(self):
        item = self.queue.get(timeout=POLL_SECONDS)
        if item is None:
            idle = time.monotonic() - self._last_work
            if self._integration is not None and idle >= self.settings.browser_idle_seconds:
                self.log.info("idle for %.0f s: closing the browser", idle)
                self._close_integration()
            if self._acks_since_compact:
                self.queue.compact()
                self._acks_since_compact = 0
            return
        row_id, payload = item
        try:
            self.current = payload.get("uniqueid")
            finished = self._process(payload)
        except BaseException:
            self.queue.nack(row_id)  # keep the order; it is delivered again next
            raise
        finally:
            self.current = None
            self._last_work = time.monotonic()
        if finished:
            self.queue.ack(row_id)
            self._acks_since_compact += 1
            if self._acks_since_compact >= 100:
                self.queue.compact()
                self._acks_since_compact = 0
        else:
            self.queue.nack(row_id)

    def _process(self, payload):
        """Drive one order to an end.

        :returns: True when the queue item is done with (acknowledge it), False when
            the order was released and must stay queued
        """
        uniqueid = payload["uniqueid"]
        if not self.store.move(uniqueid, OrderStatus.PROCESSING, expect=OrderStatus.PLACED):
            # cleared by /clear_queue, or already finished before a crash: nothing to do
            self.log.info("order %s is no longer placed; skipping it", uniqueid)
            return True
        line = OrderLine(
            uniqueid=uniqueid,
            worksheet=str(payload["worksheet"]),
            product_nr=str(payload["product_nr"]),
            product_amount=Decimal(payload["product_amount"]),
        )
        self.log.info("order %s: worksheet %s, product %s, amount %s",
                      uniqueid, line.worksheet, line.product_nr, line.product_amount)
        attempt = 0
        while True:
            attempt += 1
            started = time.monotonic()
            try:
                credentials = self._credentials(payload)
                outcome = self._integration_for_use().add_line(line, credentials)
            except PermanentError as exc:
                self.store.note_attempt(uniqueid)
                self._fail(uniqueid, exc.reason_code, exc.reason_text)
                return True
            except Exception as exc:  # transient by contract, also for the unforeseen
                code = getattr(exc, "reason_code", "UNEXPECTED_ERROR")
                text = getattr(exc, "reason_text", None) or f"{type(exc).__name__}: {exc}"
                self.store.note_attempt(uniqueid, code, text)
                if attempt >= self.settings.max_attempts:
                    self._fail(uniqueid, code, f"gave up after {attempt} attempts: {text}")
                    return True
                delay = self._backoff(attempt)
                self.log.warning("order %s attempt %d failed (%s: %s); retrying in %.1f s",
                                 uniqueid, attempt, code, text, delay)
                if self._stop.wait(delay):
                    self.store.move(uniqueid, OrderStatus.PLACED, expect=OrderStatus.PROCESSING,
                                    reason_text="released: worker stopped during a retry wait")
                    self.log.info("order %s released: worker stopping", uniqueid)
                    return False
                continue
            self.store.note_attempt(uniqueid)
            note = "line already on the worksheet" if outcome == LineOutcome.EXISTED else None
            self.store.move(uniqueid, OrderStatus.CREATED, reason_text=note)
            self.log.info("order %s created (%s) in %.2f s", uniqueid, outcome.value,
                          time.monotonic() - started)
            return True

    # -- helpers ------------------------------------------------------------------

    def _fail(self, uniqueid, code, text):
        self.store.move(uniqueid, OrderStatus.ERROR, reason_code=code, reason_text=text)
        self.log.error("order %s failed: %s: %s", uniqueid, code, text)

    def _backoff(self, attempt):
        ceiling = min(self.settings.retry_max_seconds,
                      self.settings.retry_base_seconds * 2 ** (attempt - 1))
        return ceiling * random.uniform(0.5, 1.0)  # jitter: retries of many orders spread out

    def _credentials(self, payload):
        if payload.get("credentials"):
            return self.box.open(payload["credentials"])
        if not self.settings.erp_username:
            raise LoginFailed("the order carries no ERP credentials and ERP_USERNAME is not set")
        return Credentials(self.settings.erp_username, self.settings.erp_password)

    def _integration_for_use(self):
        if self._integration is None:
            self._integration = self.make_integration()
        return self._integration

    def _close_integration(self):
        if self._integration is not None:
            try:
                self._integration.close()
            except Exception:
                self.log.exception("closing the integration failed")
            self._integration = None
