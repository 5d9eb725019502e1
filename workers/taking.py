"""The queue's side of the worker: orders taken off the queue into ``processing``, and
their records moved on, acknowledged or put back.

* **No queue item is dropped silently.** An item whose order record is missing (the
  records file was lost or moved aside) gets its record rebuilt from the item, which
  holds everything but the history, and is worked as usual. While the records cannot
  be written (disk full, damaged file) items are put back, not acknowledged.
* An order is acknowledged on the queue only once its record says how it ended; one
  put back (a stop, an error in a step) is ``placed`` again, at the head of the queue.
"""

from core.errors import LoginFailed, PermanentError, StorageUnavailable
from integrations.base import Credentials
from orders.records import fingerprint
from orders.status import OrderStatus
from workers.working import OrderInHand

#: compact the queue file after this many acknowledgements (and whenever idle)
COMPACT_EVERY = 100


class Taking:
    """The worker's queue and records bookkeeping (a part of :class:`workers.worker.Worker`,
    whose attributes it uses: ``store``, ``queue``, ``box``, ``settings``, ``log``,
    ``metrics``, ``_in_hand``, ``_unreleased``, ``_acks_since_compact``)."""

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
        self._in_hand.append(OrderInHand(row_id, payload, record["attempts"], credentials,
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

    def _release_in_hand(self, why, code=None):
        """Put every order in hand back: ``placed``, at the head of the queue."""
        self._release(self._in_hand, why, code)
        self._in_hand = []

    def _release(self, orders, why, code=None):
        """Put ``orders`` back: ``placed`` (with reason ``code``, when given), at the head
        of the queue.

        Each item is put back even when its record cannot be written (it then stays
        ``processing``, which the worker takes as readily as ``placed``).
        """
        for order in orders:
            try:
                self.store.move(order.uniqueid, OrderStatus.PLACED, reason_code=code,
                                expect=OrderStatus.PROCESSING, reason_text=why)
            except StorageUnavailable:
                pass
            self._nack(order.row_id)
        if orders:
            self.log.info("%d order(s) %s", len(orders), why,
                          extra={"uniqueids": [order.uniqueid for order in orders]})

    def _nack(self, row_id):
        """Put an item back; if even that fails, remember it for the next sweep (an
        unacknowledged item is otherwise delivered again only after a restart)."""
        try:
            self.queue.nack(row_id)
        except Exception:
            self.log.exception("could not put queue item %s back; retrying later", row_id)
            self._unreleased.append(row_id)

    def _credentials(self, payload):
        if payload.get("credentials"):
            return self.box.open(payload["credentials"])
        if not self.settings.erp_username:
            raise LoginFailed("the order carries no ERP credentials and ERP_USERNAME is not set")
        return Credentials(self.settings.erp_username, self.settings.erp_password)
