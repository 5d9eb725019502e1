"""One workshop's service: order records, queue and worker, wired together.

The HTTP layer (:mod:`service.app`) talks to this object only. It owns the intake
rules (durable before 200, idempotent on ``uniqueid``) and the start-up reconciliation
between the records and the queue.
"""

import logging
import os
import threading

from core.crypto import CredentialBox
from core.errors import StorageUnavailable
from core.hold import Hold
from orders.events import EventLog
from service.metrics import InstanceMetrics
from orders.queue import OrderQueue
from orders.records import OrderStore, fingerprint, queue_payload
from orders.status import OrderStatus
from service.webhooks import WebhookSender
from workers.worker import Worker
from integrations import get_integration_class
from integrations.base import Credentials, IntegrationConfig

log = logging.getLogger("oilmat.api")

__all__ = ["Instance", "fingerprint"]

#: free bytes under which the disk holding the workshop's files is called full: an
#: order's writes take a few pages (WAL frames, a queue chunk), and SQLite needs room to
#: checkpoint; well before the last byte, health says what the next write will meet
STORAGE_RESERVE_BYTES = 1024 * 1024


class Instance:
    """Everything one workshop's process holds, with its lifecycle.

    :param settings: :class:`~service.settings.Settings`
    :param make_integration: optional factory (tests); by default the integration
        named by ``settings.erp_system``
    :param hold: the workshop's :class:`~core.hold.Hold`, taken by the caller (api.py
        takes it before it binds its port); taken here when not given. Released by
        :meth:`close`, after everything else.
    :raises WorkshopHeld: when another process runs on this workshop's data
    """

    def __init__(self, settings, make_integration=None, orderline_logger=None, hold=None):
        self.settings = settings
        self.box = CredentialBox(settings.secret_key, settings.secret_key_fallbacks)
        # One workshop, one instance: the hold comes before the records or the queue are
        # opened, so a second instance opens nothing (core/hold.py)
        self.hold = hold or Hold.take(settings.workshop_queue_dir, "api.py", settings.port)
        self.store = OrderStore(os.path.join(settings.workshop_queue_dir, "orders.db"))
        self.queue = OrderQueue(os.path.join(settings.workshop_queue_dir, "queue"))
        if make_integration is None:
            make_integration = self._default_integration_factory(orderline_logger)
        self.metrics = InstanceMetrics(self)  # GET /metrics; the worker and webhook report to it
        # put + mark_queued by a request thread and by the worker's sweep, one at a time,
        # so a stranded order is not queued twice by the two
        self._queue_lock = threading.Lock()
        # orders stored as queued whose put then failed, and whose record could not be
        # unmarked either (a full disk): the sweep puts them (after a restart, reconcile)
        self._stranded = set()
        self.worker = Worker(settings, self.store, self.queue, make_integration, self.box,
                             orderline_logger or logging.getLogger("oilmat.orderline"),
                             sweep=self.queue_stranded, metrics=self.metrics,
                             on_erp_change=self._erp_changed)
        self.shutdown_requested = threading.Event()
        # the events outbox (feed and webhook); its thread is started with the worker's
        self.events = EventLog(self.store, settings.workshop)
        self.webhooks = WebhookSender(settings, self.events, self.store.event_added,
                                      metrics=self.metrics)
        self.reconcile()

    def _erp_changed(self, before, after):
        """The worker's view of the ERP changed: ``erp.changed`` when a screen is found
        changed, ``erp.ok`` when the screens are as known again after that."""
        kind = None
        if after["state"] == "changed" and before["state"] != "changed":
            kind = "erp.changed"
        elif after["state"] == "ok" and not after["held"] and (
                before["state"] == "changed" or before["held"]):
            kind = "erp.ok"
        if kind:
            try:
                self.store.erp_event(kind, after["state"], after["detail"])
            except StorageUnavailable as exc:  # health shows the storage trouble
                logging.getLogger(__name__).warning("%s event not stored: %s", kind, exc)

    def _default_integration_factory(self, logger):
        # The integration module (Selenium and its HTTP stack) is imported when the
        # first order needs it, not at start: an idle instance stays small.
        name = self.settings.erp_system
        config = IntegrationConfig(
            erp_url=self.settings.erp_url,
            artifact_dir=self.settings.artifact_dir,
            page_load_timeout=self.settings.page_load_timeout,
            wait_timeout=self.settings.wait_timeout,
            selenium_remote_url=self.settings.selenium_remote_url,
            browser_park_dir=self.settings.browser_park_dir,
            recycle_after_orders=self.settings.browser_recycle_after_orders,
            browser_wait_seconds=self.settings.browser_wait_seconds,
            browser_idle_seconds=self.settings.browser_idle_seconds,
            browser_pool_grace_seconds=self.settings.browser_pool_grace_seconds,
            options=dict(self.settings.erp_options),
        )
        logger = logger or logging.getLogger("oilmat.orderline")
        return lambda: get_integration_class(name)(config, logger)

    # -- start-up -----------------------------------------------------------------

    def reconcile(self):
        """Make the queue hold exactly the orders the records say are active.

        The records are written first at intake, so after a crash an order can be in
        the records but not yet in the queue (re-queue it). An order that was
        ``processing`` when the process died is back in the queue through
        persist-queue's auto_resume; it is marked ``placed`` again. An order that
        finished but whose queue item was not yet acknowledged is skipped by the worker,
        because it is no longer ``placed``.
        """
        queued = {p.get("uniqueid") for p in self.queue.pending_payloads()}
        requeued = 0
        for record in self.store.active():
            uniqueid = record["uniqueid"]
            if record["status"] == OrderStatus.PROCESSING.value:
                self.store.move(uniqueid, OrderStatus.PLACED, expect=OrderStatus.PROCESSING,
                                reason_text="resumed after a restart")
            if uniqueid not in queued:
                try:
                    self._put(uniqueid, force=True)  # also one marked queued: it is not
                except StorageUnavailable as exc:
                    # still in the records, unqueued: the worker's sweep puts it later
                    log.error("reconcile: could not re-queue %s yet: %s", uniqueid, exc)
                    continue
                requeued += 1
            else:
                self.store.mark_queued(uniqueid)
        if requeued:
            log.warning("reconcile: re-queued %d order(s) missing from the queue", requeued)

    # -- intake -------------------------------------------------------------------

    def submit(self, order):
        """Store and queue a validated order, or find it already stored.

        The record is committed first (marked queued already) and decides, atomically,
        whether this is a new order: a concurrent repost of the same uniqueid finds it
        and queues nothing. Then the queue item is put. Whatever fails, the order ends
        up either not stored, or stored and on its way to the worker:

        * the record write fails: nothing is stored (503, ``stored=False``);
        * the put fails (disk full): the record stays and is unmarked (or, when even
          that cannot be written, remembered as stranded); the worker's sweep
          (:meth:`queue_stranded`) puts it as soon as it can, and so does a repost
          (503 until then, ``stored=True``);
        * the process dies between the two: :meth:`reconcile` queues it at the start.

        :param order: the normalised fields of :class:`~service.models.CreateOrder`
        :returns: ``(record, created)``
        :raises orders.records.DuplicateConflict: same uniqueid, other content
        :raises StorageUnavailable: see above; ``stored`` says which case
        """
        sealed = self._seal(order)
        # stored as queued at once, the put follows: one commit fewer per order (the
        # intake's rate: docs/benchmarks.md); a failed put unmarks it (_put_new)
        record, created = self.store.add(order, fingerprint(order), sealed, queued=True)
        try:
            if created:
                self._put_new(order, sealed)
            elif self._unqueued(record["uniqueid"]):
                self._put(record["uniqueid"], force=True)
        except StorageUnavailable as exc:
            raise StorageUnavailable(
                f"the order is stored but could not be queued yet ({exc}); it is queued "
                "automatically as soon as the disk allows, and a repost is safe",
                stored=True) from None
        return record, created

    def submit_many(self, orders):
        """Store validated orders in one transaction, then queue the new ones: the batch
        form of :meth:`submit` (:mod:`service.batch`), with the same guarantees.

        :param orders: normalised fields of :class:`~service.models.CreateOrder`, in order
        :returns: per order, ``(record, created)``, or ``None`` when its uniqueid is taken
            by a different order (also by an earlier order of the same batch)
        :raises StorageUnavailable: ``stored=False``: none of them was stored;
            ``stored=True``: all are stored, not all queued yet (the sweep queues them)
        """
        sealed = [(order, fingerprint(order), self._seal(order)) for order in orders]
        try:
            found = self.store.add_many(sealed, queued=True)
        except StorageUnavailable as exc:
            raise type(exc)(f"{exc}; no order of this batch was stored, and a repost is "
                            "safe") from None
        failed = None
        for (order, _, token), result in zip(sealed, found):
            if result is None:
                continue
            record, created = result
            try:  # each one: a failed put strands only its own order
                if created:
                    self._put_new(order, token)
                elif self._unqueued(record["uniqueid"]):
                    self._put(record["uniqueid"], force=True)
            except StorageUnavailable as exc:
                failed = failed or exc
        if failed is not None:
            raise StorageUnavailable(
                f"the orders of this batch are stored but not all could be queued yet ({failed}); "
                "they are queued automatically as soon as the disk allows, and a repost is "
                "safe", stored=True)
        return found

    def _seal(self, order):
        """:returns: the order's ERP login sealed for the records, or None for the defaults"""
        if not order.get("username"):
            return None
        return self.box.seal(Credentials(order["username"], order.get("password") or ""))

    def _put(self, uniqueid, force=False):
        """Put a stored order's queue item and mark it queued (once, under a lock).

        :param force: also when the record says it is queued (reconcile: the queue has
            no item for it; a stranded order of :meth:`_put_new`)
        """
        with self._queue_lock:
            if not force and self.store.is_queued(uniqueid):
                return
            payload = self.store.payload(uniqueid)
            if payload is None:
                return
            self.queue.put(payload)
            self.store.mark_queued(uniqueid)
            self._stranded.discard(uniqueid)

    def _put_new(self, order, sealed):
        """Put the queue item of an order :meth:`submit` just stored as queued, from
        what it holds (nothing read back). When the put fails, the record is unmarked,
        so that the worker's sweep puts it; when even that fails (the disk is full),
        the order is remembered here for the sweep.

        :raises StorageUnavailable: the put failed
        """
        uniqueid = order["uniqueid"]
        try:
            with self._queue_lock:
                self.queue.put(queue_payload(order, sealed, order.get("username")))
        except StorageUnavailable:
            self._stranded.add(uniqueid)
            try:
                self.store.set_queued(uniqueid, False)
            except StorageUnavailable:
                pass  # still stranded in memory: the sweep, or reconcile after a restart
            raise

    def _unqueued(self, uniqueid):
        return uniqueid in self._stranded or not self.store.is_queued(uniqueid)

    def queue_stranded(self):
        """Queue every stored order whose queue item could not be put (the worker calls
        this between batches). :returns: how many were queued"""
        count = 0
        stranded = list(self._stranded)
        for uniqueid in stranded + [p["uniqueid"] for p in self.store.unqueued()
                                    if p["uniqueid"] not in stranded]:
            self._put(uniqueid, force=uniqueid in self._stranded)
            count += 1
        if count:
            log.warning("queued %d stored order(s) whose queue item had failed", count)
        return count

    def clear_queue(self):
        """Remove every waiting order; each ends in ``error`` with reason ``CLEARED``.

        The order in hand (``processing``) is not touched. The cleared orders' queue
        items are skipped and acknowledged by the worker when it reaches them.
        """
        return self.store.clear_placed()

    # -- an operator's actions on failed orders -------------------------------------

    def retry(self, uniqueid, note=None):
        """Put an order that ended in ``error`` back in the queue (``PUT /retry``).

        Exactly-once still holds: the worker's visit reads the worksheet first and
        finds a line an earlier attempt did write (the order is then ``created``
        without a second line).

        :returns: ``(record, moved)`` (see :meth:`OrderStore.retry`)
        """
        record, moved = self.store.retry(uniqueid, note)
        if moved:
            try:
                self._put(uniqueid)
            except StorageUnavailable as exc:
                # it is placed and unqueued in the records: the worker's sweep queues it
                log.error("retry of %s: could not queue it yet: %s", uniqueid, exc)
            log.warning("order %s retried by an operator", uniqueid, extra={"uniqueid": uniqueid})
        return record, moved

    def resolve(self, uniqueid, note=None):
        """End an order that ended in ``error`` as ``resolved`` (``PUT /resolve``)."""
        record, moved = self.store.resolve(uniqueid, note)
        if moved:
            log.warning("order %s resolved by hand by an operator", uniqueid,
                        extra={"uniqueid": uniqueid})
        return record, moved

    # -- state --------------------------------------------------------------------

    def storage_trouble(self):
        """Why the workshop's files cannot be written now, or None.

        SQLite and persist-queue say that the disk is full only to the write that fails:
        the intake's (503) and the worker's ("worker paused"), while every read goes on
        working, so a health check that only reads said "ok" (an outside probe). The disk
        is asked instead, one ``statvfs`` per call: under :data:`STORAGE_RESERVE_BYTES`
        free (what this process may use: root may use the blocks reserved for it), or no
        free inode, it is full. A write that fails for another reason (an I/O error) is
        not seen here unless the reads fail too.
        """
        folder = self.settings.workshop_queue_dir
        try:
            disk = os.statvfs(folder)
        except OSError as exc:
            return f"the folder {folder} cannot be used: {exc.strerror}"
        free = (disk.f_bfree if os.geteuid() == 0 else disk.f_bavail) * disk.f_frsize
        if free < STORAGE_RESERVE_BYTES:
            return f"the disk holding {folder} is full ({free} bytes free)"
        if disk.f_files and not disk.f_favail:
            return f"the disk holding {folder} has no free inode"
        return None

    def worker_state(self, trouble=None):
        """The worker's state as health reports it: ``paused`` for a running worker that
        cannot write (``storage_trouble``), as its log says ("worker paused: ...")."""
        state = self.worker.state
        return "paused" if state == "running" and trouble else state

    def alive(self):
        """Health for ``/alive``. Answers also when the records cannot be read or
        written (the health check must show the trouble, not fail): then ``storage``
        says why, and a running worker is ``paused``."""
        trouble = self.storage_trouble()
        state = {
            "api": "running",
            "worker": self.worker_state(trouble),
            "workshop": self.settings.workshop,
            "queue_length": None,
            "current_orders": self.worker.current,
            "last_success": None,
            "last_error": None,
            "storage": "ok",
            "webhook": None,
            "repairs": None,  # orders whose line the read-back found wrong and repaired
            "failed": None,  # orders that ended in error and wait for an operator (PUT /retry, /resolve)
            # the worker's browser: none, starting, waiting (for a pool slot), in_use or idle
            "browser": self.worker.browser_state,
            # the ERP's screens as the last probe found them, and whether orders are held
            "erp": self.worker.erp.snapshot(),
        }
        try:
            state["queue_length"] = self.store.count_active()
            state["last_success"] = self.store.last_success()
            state["last_error"] = self.store.last_error()
            state["repairs"] = self.store.count_repairs()
            state["failed"] = self.store.count_failed()
            state["webhook"] = self.webhooks.state()
        except StorageUnavailable as exc:
            trouble = exc.reason_text
            state["worker"] = self.worker_state(trouble)
        state["storage"] = trouble or "ok"
        return state

    def close(self, worker_timeout=None):
        """Stop the worker gracefully and close the files."""
        self.worker.stop(timeout=worker_timeout)
        self.webhooks.stop(timeout=self.settings.webhook_timeout_seconds + 5)
        self.queue.close()
        self.store.close()
        self.hold.release()
