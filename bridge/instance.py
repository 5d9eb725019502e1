"""One workshop's bridge: order records, queue and worker, wired together.

The HTTP layer (:mod:`bridge.app`) talks to this object only. It owns the intake
rules (durable before 200, idempotent on ``uniqueid``) and the start-up reconciliation
between the records and the queue.
"""

import hashlib
import json
import logging
import os
import threading

from bridge.crypto import CredentialBox
from bridge.queue import OrderQueue
from bridge.records import OrderStore
from bridge.status import OrderStatus
from bridge.worker import Worker
from integrations import get_integration_class
from integrations.base import Credentials, IntegrationConfig

log = logging.getLogger("oilmat.api")


def fingerprint(order):
    """What makes a repost "the same order": everything but the password.

    The password is left out on purpose: a hash of it would be a way to test guesses,
    and a rotated password does not make a pump event a different one.
    """
    canonical = json.dumps(
        {k: order.get(k) for k in ("workshop", "worksheet", "product_nr", "product_amount",
                                   "uniqueid", "username")},
        sort_keys=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class Instance:
    """Everything one workshop's process holds, with its lifecycle.

    :param settings: :class:`~bridge.settings.Settings`
    :param make_integration: optional factory (tests); by default the integration
        named by ``settings.erp_system``
    """

    def __init__(self, settings, make_integration=None, orderline_logger=None):
        self.settings = settings
        self.box = CredentialBox(settings.secret_key)
        os.makedirs(settings.workshop_queue_dir, exist_ok=True)
        self.store = OrderStore(os.path.join(settings.workshop_queue_dir, "orders.db"))
        self.queue = OrderQueue(os.path.join(settings.workshop_queue_dir, "queue"))
        if make_integration is None:
            make_integration = self._default_integration_factory(orderline_logger)
        self.worker = Worker(settings, self.store, self.queue, make_integration, self.box,
                             orderline_logger or logging.getLogger("oilmat.orderline"))
        self.shutdown_requested = threading.Event()
        self.reconcile()

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
            recycle_after_orders=self.settings.browser_recycle_after_orders,
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
                username, token = self.store.get_sealed(uniqueid)
                self.queue.put(self._payload(record, token))
                requeued += 1
        if requeued:
            log.warning("reconcile: re-queued %d order(s) missing from the queue", requeued)

    # -- intake -------------------------------------------------------------------

    def submit(self, order):
        """Store and queue a validated order, or find it already stored.

        :param order: the normalised fields of :class:`~bridge.models.CreateOrder`
        :returns: ``(record, created)``
        :raises bridge.records.DuplicateConflict: same uniqueid, other content
        """
        token = None
        if order.get("username"):
            token = self.box.seal(Credentials(order["username"], order.get("password") or ""))
        # The record is committed first and decides, atomically, whether this is a new
        # order: a concurrent repost of the same uniqueid finds it and queues nothing.
        # A crash between the two writes leaves the order in the records only, and
        # reconcile() queues it at the next start.
        record, created = self.store.add(order, fingerprint(order), token)
        if created:
            self.queue.put(self._payload(record, token))
        return record, created

    @staticmethod
    def _payload(record, credentials_token):
        return {
            "uniqueid": record["uniqueid"],
            "worksheet": record["worksheet"],
            "product_nr": record["product_nr"],
            "product_amount": record["product_amount"],
            "credentials": credentials_token,  # sealed; None means the instance defaults
        }

    def clear_queue(self):
        """Remove every waiting order; each ends in ``error`` with reason ``CLEARED``.

        The order in hand (``processing``) is not touched. The cleared orders' queue
        items are skipped and acknowledged by the worker when it reaches them.
        """
        return self.store.clear_placed()

    # -- state --------------------------------------------------------------------

    def alive(self):
        return {
            "api": "running",
            "worker": self.worker.state,
            "workshop": self.settings.workshop,
            "queue_length": self.store.count_active(),
            "current_orders": self.worker.current,
            "last_success": self.store.last_success(),
            "last_error": self.store.last_error(),
        }

    def close(self, worker_timeout=None):
        """Stop the worker gracefully and close the files."""
        self.worker.stop(timeout=worker_timeout)
        self.queue.close()
        self.store.close()
