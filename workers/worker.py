"""The worker: one thread that takes orders off the queue and writes them into the ERP
through the workshop's integration.

Per order: ``placed -> processing -> created``, or ``-> error`` with a reason code.

* **Batches per worksheet.** The worker takes the orders that are waiting (up to
  ``batch_size``, oldest first) and hands the ones for the same worksheet and the same
  ERP login to the integration together, so a worksheet is visited once for all of
  them (up to ``VISIT_LINES`` per visit, which bounds how long a stop waits).
  Worksheets are visited in the order their first order arrived.
* **Permanent errors** (:class:`~core.errors.PermanentError`) end that order at
  once; the other orders of its batch go on.
* **Anything else is transient** (the rules are :mod:`core.retry`'s, the one retry
  policy): the orders that failed are tried again together after
  an exponential backoff with jitter (after a save that got no answer, at least
  ``page_load_timeout``: :func:`core.retry.retry_pause`), until each has had
  ``max_attempts`` tries or has
  spent ``retry_budget_seconds`` since the worker took it; then it ends in ``error``
  with the last reason code. Retrying before taking new work keeps the queue FIFO --
  when the ERP is down, later orders would fail the same way.
* **The look before giving up.** An order whose write may have reached the ERP -- a
  save that got no answer, a visit that ended after its line was sent, with no
  read-back since confirming or ruling it out (the integration marks its result
  :func:`core.errors.unconfirmed`; the mark stays with the order until it is created)
  -- does not end in ``error`` when its tries or time run out. After a backoff like a
  retry's, the worker reads its worksheet without writing
  (:meth:`~integrations.base.Integration.look`): one right line there, and the order is
  ``created``; no line carrying it, and it ends in ``error`` with its last reason; a
  wrong or doubled line, ``LINE_UNVERIFIED``; a read the ERP refuses (no such worksheet),
  its last reason. Up to ``FINAL_LOOKS`` reads that fail end it in ``error`` with
  ``OUTCOME_UNKNOWN`` ("look before writing it by hand"). Why: an
  ERP too slow to answer a save is often too slow to answer the read-back that follows;
  without the look, the order's last try could store its line and report ``error``
  (measured in the fleet bench at load average ~490: docs/benchmarks.md). The mark
  lives in memory: a restart forgets it, and the next try reads the worksheet first
  anyway.
* **Stopping is graceful**: the visit in progress is finished; the orders of the batch
  not visited yet, and those waiting out a backoff, are released back to ``placed``
  and stay at the head of the queue.
* No exception ends the thread. If one escapes an unforeseen way, the orders in hand are
  released (``placed``, back on the queue) and the loop goes on.
* **No queue item is dropped silently.** An item whose order record is missing (the
  records file was lost or moved aside) gets its record rebuilt from the item, which
  holds everything but the history, and is worked as usual. While the records cannot
  be written (disk full, damaged file) items are put back, not acknowledged.
* Between batches the worker runs the instance's *sweep*, which queues orders that are
  stored but whose queue item could not be put (disk full at intake).
* **The browser is the integration's business.** The worker builds the integration on
  the first order and keeps it until it stops; when idle it only says for how long
  (:meth:`~integrations.base.Integration.idle`), and before a retry's wait how long that
  will be (:meth:`~integrations.base.Integration.pause`). When a browser is quit, parked
  for another workshop or kept is decided in one place, integrations/browser/life.py.
"""

import threading
import time
from decimal import Decimal

from core.errors import (LineUnverified, LoginFailed, OutcomeUnknown, PermanentError,
                         StorageUnavailable)
from core.logcontext import about_orders
from core.observer import Observer
from orders.records import REPAIRED, fingerprint
from orders.status import OrderStatus
from core import retry as policy
from integrations.base import (Credentials, LineCheck, LineOutcome, OrderLine, Written,
                               outcome_of)

#: how long one blocking ``get`` waits before the loop checks for stop and idleness,
#: unless the integration asks to be told of idleness sooner (its ``poll_seconds``)
POLL_SECONDS = 0.5
#: the same with no browser held: nothing to give back, so the loop only sweeps (an
#: order whose queue item failed, a failed nack: picked up within this while idle). A
#: put ends the wait at once, a stop too (``OrderQueue.wake``); at 0.5 s 200 idle
#: instances read their queue and records files ~600 times a second between them.
IDLE_POLL_SECONDS = 5.0
#: compact the queue file after this many acknowledgements (and whenever idle)
COMPACT_EVERY = 100
#: most lines written in one visit; more for one worksheet take further visits. A stop
#: waits for the visit in progress, so this bounds that wait (25 lines at a slow ~1.5 s
#: each stay well inside supervisor's 120 s stopwaitsecs) at ~2 % extra cost per line.
VISIT_LINES = 25
#: at most one sweep for stranded orders (and retry of failed nacks) per this many seconds
SWEEP_SECONDS = 1.0
#: reads of its worksheet an order whose line may be on it gets before it ends in
#: ``error`` unread (``OUTCOME_UNKNOWN``); each after a backoff, as a retry
FINAL_LOOKS = 3


class _Order:
    """One order in hand: its queue row, payload and attempt bookkeeping."""

    __slots__ = ("row_id", "payload", "uniqueid", "attempts", "taken_at", "line", "credentials",
                 "created_at", "unconfirmed", "unanswered", "gave_up", "looks")

    def __init__(self, row_id, payload, attempts, credentials, created_at=None):
        self.row_id = row_id
        self.created_at = created_at  # of its record: /create to created is a metric
        self.credentials = credentials  # plaintext, in memory only
        self.payload = payload
        self.uniqueid = payload["uniqueid"]
        self.attempts = attempts
        self.taken_at = time.monotonic()
        self.unconfirmed = False  # a write of its line may be on the sheet, unconfirmed
        self.unanswered = False  # its last try's write got no answer (may still be running)
        self.gave_up = None  # (reason code, text) once its tries are spent: it is looked for
        self.looks = 0  # reads of its worksheet since it gave up
        self.line = OrderLine(
            uniqueid=self.uniqueid,
            worksheet=str(payload["worksheet"]),
            product_nr=str(payload["product_nr"]),
            product_amount=Decimal(payload["product_amount"]),
        )

    @property
    def group_key(self):
        # by the login, not by its sealed form: every seal of the same login differs
        return (self.line.worksheet, self.credentials)


class Worker:
    """The order worker of one instance.

    :param settings: the instance's :class:`~bridge.settings.Settings`
    :param store: :class:`~orders.records.OrderStore`
    :param queue: :class:`~orders.queue.OrderQueue`
    :param make_integration: callable returning a fresh
        :class:`~integrations.base.Integration`; called in the worker thread
    :param box: :class:`~core.crypto.CredentialBox`
    :param logger: the orderline logger
    :param sweep: called between batches to queue orders stored but not queued
    :param metrics: a :class:`~bridge.metrics.Observer` told of visits and created orders
        (and, through the integration, of browsers started)
    """

    def __init__(self, settings, store, queue, make_integration, box, logger, sweep=None,
                 metrics=None):
        self.settings = settings
        self.metrics = metrics or Observer()
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
        self._in_hand = []  # the orders of the current batch not yet acknowledged
        self._acks_since_compact = 0
        self._sweep = sweep
        self._last_sweep = 0.0
        self._unreleased = []  # row ids whose nack failed: retried by the sweep
        self._visiting = False  # in a visit to the ERP (the browser is in use)

    # -- control (called from request threads) ------------------------------------

    @property
    def running(self):
        return self._thread is not None and self._thread.is_alive()

    @property
    def state(self):
        if not self.running:
            return "stopped"
        return "stopping" if self._stop.is_set() else "running"

    @property
    def current(self):
        """uniqueids of the orders in hand, for ``/alive``"""
        return [order.uniqueid for order in list(self._in_hand)]

    @property
    def browser_state(self):
        """The worker's browser, for ``/alive``: ``none`` (no browser held), ``starting``,
        ``waiting`` (for a free slot of the browser pool), ``in_use`` (a visit to the ERP)
        or ``idle`` (held between visits, until the integration gives it back)."""
        integration = self._integration
        if integration is None:
            return "none"
        state = integration.browser_state
        if state != "ready":
            return state
        return "in_use" if self._visiting else "idle"

    def start(self):
        """Start the thread if it is not running. :returns: whether it was running"""
        with self._state_lock:
            if self.running:
                if not self._stop.is_set():
                    return True
                self._thread.join()  # a stop is under way: let it finish, then start afresh
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="order-worker", daemon=True)
            self._thread.start()
            self.log.info("worker started")
            return False

    def stop(self, timeout=None):
        """Stop gracefully: finish the visit in progress, release what waits for a retry.

        :param timeout: seconds to wait for the thread; None waits as long as it takes
            (every ERP step is bounded, so this is bounded too)
        :returns: whether it was running
        """
        with self._state_lock:
            was_running = self.running
            self._stop.set()
            self.queue.wake()  # a worker waiting for work sees the stop at once
            if was_running:
                self._thread.join(timeout)
                if not self._thread.is_alive():
                    self.log.info("worker stopped")
            return was_running

    # -- the loop (worker thread) -------------------------------------------------

    def _run(self):
        try:
            while not self._stop.is_set():
                self._guarded_step()
        finally:
            self._close_integration()

    def _guarded_step(self, poll=None):
        """One step that no exception escapes. :returns: whether there was work"""
        try:
            return self._step(poll)
        except StorageUnavailable as exc:  # disk full, records damaged: wait
            self.log.error("worker paused: %s", exc)
            self._release_in_hand("released: the order records could not be written")
            self._stop.wait(2.0)
        except Exception:  # the thread must outlive any bug in one step
            self.log.exception("worker step failed; orders in hand released")
            self._release_in_hand("released after an internal error")
            self._stop.wait(1.0)
        return True  # the released orders are back on the queue: there is work

    def burst(self):
        """Work until the queue is empty, in the calling thread, then return -- rq's
        ``burst=True``. Tests drive the worker with it directly, with no thread to
        start and no status to poll; a transient failure still waits out its backoff.

        :returns: how many batches were worked
        :raises RuntimeError: while the worker thread is running
        """
        if self.running:
            raise RuntimeError("the worker thread is running; stop it first")
        self._stop.clear()
        batches = 0
        try:
            while not self._stop.is_set():
                self._last_sweep = 0.0  # sweep before every batch: nothing stranded
                if not self._guarded_step(poll=0):
                    return batches
                batches += 1
            return batches
        finally:
            self._close_integration()

    def _step(self, poll=None):
        """Take one batch and work it, waiting up to ``poll`` seconds for one (None: as
        long as :meth:`_poll_seconds` says). :returns: whether there was one"""
        self._maintain()
        first = self.queue.get(timeout=self._poll_seconds() if poll is None else poll)
        if first is None:
            self._idle()
            return False
        items = [first]
        while len(items) < self.settings.batch_size:
            more = self.queue.get(timeout=0)
            if more is None:
                break
            items.append(more)
        try:
            self._take(items)
            self._work()
        finally:
            self._last_work = time.monotonic()
        return True

    def _poll_seconds(self):
        """How long the loop waits for work before it looks at stop and idleness."""
        if self._integration is None or not self._integration.holding:
            # nothing to give back: only the sweep waits
            return POLL_SECONDS if self._unreleased else IDLE_POLL_SECONDS
        return self._integration.poll_seconds() or POLL_SECONDS

    def _maintain(self):
        """Now and then: put back items whose nack failed, queue stranded orders."""
        if time.monotonic() - self._last_sweep < SWEEP_SECONDS:
            return
        self._last_sweep = time.monotonic()
        while self._unreleased:
            self.queue.nack(self._unreleased[0])
            self._unreleased.pop(0)
        if self._sweep is not None:
            try:
                self._sweep()
            except StorageUnavailable as exc:  # still full: the queued work goes on
                self.log.warning("stranded orders not queued yet: %s", exc)

    def _idle(self):
        if self._integration is not None:
            self._integration.idle(time.monotonic() - self._last_work)
        if self._acks_since_compact:
            self.queue.compact()
            self._acks_since_compact = 0

    def _take(self, items):
        """Move each delivered order to ``processing`` and into ``self._in_hand``;
        acknowledge the ones that are not waiting any more (cleared by
        ``/clear_queue``, finished before a crash, or a second item of one order).

        If the records fail half-way, the items not yet dealt with are put back
        (nack) and the error goes up: nothing delivered is dropped.
        """
        self._in_hand = []
        pending = list(items)
        try:
            while pending:
                row_id, payload = pending[0]
                self._take_one(row_id, payload)
                pending.pop(0)
        except BaseException:
            for row_id, _ in pending:
                self._nack(row_id)
            raise

    def _take_one(self, row_id, payload):
        uniqueid = payload.get("uniqueid")
        if not uniqueid:
            self.log.error("queue item %s has no uniqueid; dropping it: %r", row_id,
                           {k: v for k, v in payload.items() if k != "credentials"})
            self._ack(row_id)
            return
        record = self.store.get(uniqueid, with_history=False)
        if record is None:
            record = self._rebuild_record(payload)
        if record["status"] not in (OrderStatus.PLACED.value, OrderStatus.PROCESSING.value) \
                or any(order.uniqueid == uniqueid for order in self._in_hand):
            self.log.info("order %s is no longer waiting; skipping it", uniqueid,
                          extra={"uniqueid": uniqueid})
            self._ack(row_id)
            return
        if record["status"] == OrderStatus.PLACED.value and not self.store.move(
                uniqueid, OrderStatus.PROCESSING, expect=OrderStatus.PLACED):
            self._ack(row_id)  # lost a race with /clear_queue
            return
        try:
            credentials = self._credentials(payload)
        except PermanentError as exc:
            self.store.note_attempt(uniqueid)
            self._end_in_error(uniqueid, row_id, exc.reason_code, exc.reason_text)
            return
        self._in_hand.append(_Order(row_id, payload, record["attempts"], credentials,
                                    record["created_at"]))

    def _rebuild_record(self, payload):
        """The queue holds an order the records do not know (the records file was lost):
        store it again from the queue item, loudly, and work it as usual."""
        username = payload.get("username")
        if "username" not in payload and payload.get("credentials"):
            try:  # an item queued before the payload carried the username
                username = self.box.open(payload["credentials"]).username
            except PermanentError:
                username = None
        order = {"workshop": self.settings.workshop, "username": username,
                 **{k: payload[k] for k in ("uniqueid", "worksheet", "product_nr",
                                            "product_amount")}}
        self.log.error("order %s is in the queue but not in the order records; "
                       "rebuilding its record from the queue item", order["uniqueid"],
                       extra={"uniqueid": order["uniqueid"]})
        record, _ = self.store.add(order, fingerprint(order), payload.get("credentials"),
                                   note="record rebuilt from the queue item (the order "
                                        "records had lost it); earlier history is gone")
        self.store.mark_queued(order["uniqueid"])
        return record

    def _work(self):
        """Drive the orders in hand to an end, in rounds: one visit per worksheet per
        round, then a backoff before the transient failures are tried again."""
        while self._in_hand:
            retry = []
            groups = ([(self._look, group) for group in
                       self._groups([order for order in self._in_hand if order.gave_up])]
                      + [(self._visit, group) for group in
                         self._groups([order for order in self._in_hand if not order.gave_up])])
            for n, (work, group) in enumerate(groups):
                if self._stop.is_set():
                    # A batch may hold many worksheets: stop between visits, not after
                    # all of them. The rest go back to the head of the queue.
                    self._in_hand = retry + [order for _, rest in groups[n:] for order in rest]
                    self._release_in_hand("released: worker stopped between visits")
                    return
                retry += work(group)
            self._in_hand = retry
            if not retry:
                return
            delay = policy.retry_pause(
                self._backoff(max(order.attempts + order.looks for order in retry)),
                any(order.unanswered for order in retry), self.settings.page_load_timeout)
            self.log.warning("%d order(s) failed transiently; retrying in %.1f s",
                             len(retry), delay,
                             extra={"uniqueids": [order.uniqueid for order in retry]})
            if self._integration is not None:
                self._integration.pause(delay)  # e.g. a pooled browser's slot, meanwhile
            if self._stop.wait(delay):
                self._release_in_hand("released: worker stopped during a retry wait")
                return

    @staticmethod
    def _groups(orders):
        """The orders per (worksheet, login), in visits of at most ``VISIT_LINES``."""
        groups = {}
        for order in orders:  # dicts keep insertion order: first arrival decides
            groups.setdefault(order.group_key, []).append(order)
        return [group[start:start + VISIT_LINES] for group in groups.values()
                for start in range(0, len(group), VISIT_LINES)]

    def _visit(self, group):
        """One visit to one worksheet. :returns: the orders to try again"""
        # every log line of the visit, the integration's too, names its orders
        with about_orders(group[0].line.worksheet, [order.uniqueid for order in group]):
            return self._visit_in_context(group)

    def _visit_in_context(self, group):
        worksheet = group[0].line.worksheet
        started = time.monotonic()
        self._visiting = True
        try:
            results = self._integration_for_use().add_lines(
                worksheet, [order.line for order in group], group[0].credentials)
        except Exception as exc:  # the policy decides; an unforeseen error is transient
            error = policy.as_bridge_error(exc)
            if error is not exc:
                self.log.exception("worksheet %s: unexpected error", worksheet)
            results = {order.uniqueid: error for order in group}
        finally:
            self._visiting = False
        seconds = time.monotonic() - started
        self.log.info("worksheet %s: %d order(s) in %.2f s", worksheet, len(group), seconds)
        self.metrics.visit(seconds, len(group))
        retry = []
        for order in group:
            result = results.get(order.uniqueid)
            if result is None:
                result = policy.as_bridge_error(
                    RuntimeError("the integration returned no result for this line"))
            order.attempts += 1
            if isinstance(result, (LineOutcome, Written)):
                outcome, repairs = outcome_of(result)
                self.store.note_attempt(order.uniqueid)
                if repairs:
                    self.log.warning("order %s: worksheet %s repaired: %s", order.uniqueid,
                                     worksheet, "; ".join(repairs),
                                     extra={"uniqueid": order.uniqueid})
                self._created(order, outcome, created_note(outcome, repairs))
                continue
            error = policy.as_bridge_error(result)
            if policy.is_permanent(error):
                self.store.note_attempt(order.uniqueid)
                self._fail(order, error.reason_code, error.reason_text)
                continue
            self.store.note_attempt(order.uniqueid, error.reason_code, error.reason_text)
            order.unconfirmed = order.unconfirmed or error.unconfirmed
            order.unanswered = policy.write_unanswered(error)
            why = policy.give_up_reason(order.attempts, time.monotonic() - order.taken_at,
                                       self.settings.max_attempts,
                                       self.settings.retry_budget_seconds)
            if not why:
                retry.append(order)
            elif order.unconfirmed and self._integration.can_look:
                order.gave_up = (error.reason_code, f"{why}: {error.reason_text}")
                self.log.warning("order %s: %s, and its line may be on worksheet %s (a write "
                                 "of it got no confirmation): reading the worksheet after a "
                                 "pause before it ends", order.uniqueid, why, worksheet,
                                 extra={"uniqueid": order.uniqueid})
                retry.append(order)
            else:
                self._fail(order, error.reason_code, f"{why}: {error.reason_text}")
        return retry

    def _look(self, group):
        """Read the worksheet of orders that gave up with their line perhaps on it
        (the module's docstring: "The look before giving up"). :returns: the orders to
        look for again"""
        with about_orders(group[0].line.worksheet, [order.uniqueid for order in group]):
            return self._look_in_context(group)

    def _look_in_context(self, group):
        worksheet = group[0].line.worksheet
        self._visiting = True
        try:
            results = self._integration_for_use().look(
                worksheet, [order.line for order in group], group[0].credentials)
        except Exception as exc:  # the policy decides; an unforeseen error is transient
            results = {order.uniqueid: policy.as_bridge_error(exc) for order in group}
        finally:
            self._visiting = False
        retry = []
        for order in group:
            result = results.get(order.uniqueid)
            code, text = order.gave_up
            if isinstance(result, LineCheck):
                if result.ok:
                    self._created(order, LineOutcome.EXISTED,
                                  f"line found on the worksheet by a read after its tries "
                                  f"ran out ({text})")
                elif result.missing:
                    self._fail(order, code, f"{text}; its worksheet, read after a pause, "
                                            f"holds no line carrying it")
                else:
                    self._fail(order, LineUnverified.reason_code,
                               f"{text}; its worksheet, read after a pause, shows "
                               f"{result.shown()}")
                continue
            error = policy.as_bridge_error(
                result if result is not None else
                RuntimeError("the integration returned no result for this line"))
            order.looks += 1
            if policy.is_permanent(error):  # no such worksheet (any more): no line on it
                self._fail(order, code, f"{text}; reading its worksheet afterwards: "
                                        f"{error.reason_code}: {error.reason_text}")
                continue
            if order.looks < FINAL_LOOKS:
                retry.append(order)
                continue
            self._fail(order, OutcomeUnknown.reason_code,
                       f"{text}; its line may be on worksheet {worksheet}: a write of it got "
                       f"no confirmation and {order.looks} read(s) of the worksheet since "
                       f"failed (last: {error.reason_code}: {error.reason_text}). Look at the "
                       f"worksheet before writing the line by hand; PUT /retry reads it first")
        return retry

    # -- helpers ------------------------------------------------------------------

    def _ack(self, row_id):
        self.queue.ack(row_id)
        self._acks_since_compact += 1
        if self._acks_since_compact >= COMPACT_EVERY:
            self.queue.compact()
            self._acks_since_compact = 0

    def _created(self, order, outcome, note):
        if self.store.move(order.uniqueid, OrderStatus.CREATED, reason_text=note):
            self.metrics.order_created(order.created_at)
        self.log.info("order %s created (%s)", order.uniqueid, outcome.value,
                      extra={"uniqueid": order.uniqueid})
        self._ack(order.row_id)

    def _fail(self, order, code, text):
        self._end_in_error(order.uniqueid, order.row_id, code, text)

    def _end_in_error(self, uniqueid, row_id, code, text):
        self.store.move(uniqueid, OrderStatus.ERROR, reason_code=code, reason_text=text)
        self.log.error("order %s failed: %s: %s", uniqueid, code, text,
                       extra={"uniqueid": uniqueid})
        self._ack(row_id)

    def _release_in_hand(self, why):
        """Put every order in hand back: ``placed``, at the head of the queue.

        Each item is put back even when its record cannot be written (it then stays
        ``processing``, which the worker takes as readily as ``placed``).
        """
        for order in self._in_hand:
            try:
                self.store.move(order.uniqueid, OrderStatus.PLACED,
                                expect=OrderStatus.PROCESSING, reason_text=why)
            except StorageUnavailable:
                pass
            self._nack(order.row_id)
        if self._in_hand:
            self.log.info("%d order(s) %s", len(self._in_hand), why,
                          extra={"uniqueids": [order.uniqueid for order in self._in_hand]})
        self._in_hand = []

    def _nack(self, row_id):
        """Put an item back; if even that fails, remember it for the next sweep (an
        unacknowledged item is otherwise delivered again only after a restart)."""
        try:
            self.queue.nack(row_id)
        except Exception:
            self.log.exception("could not put queue item %s back; retrying later", row_id)
            self._unreleased.append(row_id)

    def _backoff(self, attempts):
        return policy.backoff(attempts, self.settings.retry_base_seconds,
                              self.settings.retry_max_seconds)

    def _credentials(self, payload):
        if payload.get("credentials"):
            return self.box.open(payload["credentials"])
        if not self.settings.erp_username:
            raise LoginFailed("the order carries no ERP credentials and ERP_USERNAME is not set")
        return Credentials(self.settings.erp_username, self.settings.erp_password)

    def _integration_for_use(self):
        """The integration, built on the first order (its module and browser code are
        loaded then, not at start: an idle instance stays small) and kept."""
        if self._integration is None:
            integration = self.make_integration()
            integration.attach(self._stop, self.metrics)
            self._integration = integration
        return self._integration

    def _close_integration(self):
        """Close the integration when the worker stops. It is kept (what it knows, e.g.
        its ERP logins, lives as long as the instance) and used again after a start."""
        if self._integration is not None:
            try:
                self._integration.close()
            except Exception:
                self.log.exception("closing the integration failed")


def created_note(outcome, repairs):
    """The history note of a created order: how its line came to be there."""
    parts = ["line already on the worksheet"] if outcome == LineOutcome.EXISTED else []
    if repairs:
        parts.append(REPAIRED + "; ".join(repairs))
    return "; ".join(parts) or None
