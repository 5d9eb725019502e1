"""The worker: one thread that takes orders off the queue and writes them into the ERP
through the workshop's integration.

Per order: ``placed -> processing -> created``, or ``-> error`` with a reason code. The
loop is here; taking orders off the queue and keeping their records is
:mod:`workers.taking`'s, working them in visits to their worksheets -- batches, retries,
the look before giving up -- :mod:`workers.working`'s.

* **Stopping is graceful**: the visit in progress is finished; the orders of the batch
  not visited yet, and those waiting out a backoff, are released back to ``placed``
  and stay at the head of the queue.
* No exception ends the thread. If one escapes an unforeseen way, the orders in hand are
  released (``placed``, back on the queue) and the loop goes on.
* Between batches the worker runs the instance's *sweep*, which queues orders that are
  stored but whose queue item could not be put (disk full at intake).
* **A changed ERP screen holds the orders** (:mod:`workers.probing`): the worker probes
  the ERP's screens at start, while idle and when asked; while a screen is changed it
  takes no order, spends no attempt, and resumes when a probe passes.
* **The browser is the integration's business.** The worker builds the integration on
  the first order and keeps it until it stops; when idle it only says for how long
  (:meth:`~integrations.base.Integration.idle`), and before a retry's wait how long that
  will be (:meth:`~integrations.base.Integration.pause`). When a browser is quit, parked
  for another workshop or kept is decided in one place, integrations/browser/life.py.
"""

import threading
import time

from core.errors import StorageUnavailable
from core.observer import Observer
from workers.probing import Probing
from workers.taking import Taking
from workers.working import Working

#: how long one blocking ``get`` waits before the loop checks for stop and idleness,
#: unless the integration asks to be told of idleness sooner (its ``poll_seconds``)
POLL_SECONDS = 0.5
#: the same with no browser held: nothing to give back, so the loop only sweeps (an
#: order whose queue item failed, a failed nack: picked up within this while idle). A
#: put ends the wait at once, a stop too (``OrderQueue.wake``); at 0.5 s 200 idle
#: instances read their queue and records files ~600 times a second between them.
IDLE_POLL_SECONDS = 5.0
#: at most one sweep for stranded orders (and retry of failed nacks) per this many seconds
SWEEP_SECONDS = 1.0


class Worker(Taking, Working, Probing):
    """The order worker of one instance.

    :param settings: the instance's :class:`~service.settings.Settings`
    :param store: :class:`~orders.records.OrderStore`
    :param queue: :class:`~orders.queue.OrderQueue`
    :param make_integration: callable returning the
        :class:`~integrations.base.Integration`; called in the worker thread on the
        first order, and kept
    :param box: :class:`~core.crypto.CredentialBox`
    :param logger: the orderline logger
    :param sweep: called between batches to queue orders stored but not queued
    :param metrics: a :class:`~core.observer.Observer` told of visits and created orders
        (and, through the integration, of browsers started)
    :param on_erp_change: called with the ERP watch's state before and after a change
        (:class:`workers.probing.ErpWatch`)
    """

    def __init__(self, settings, store, queue, make_integration, box, logger, sweep=None,
                 metrics=None, on_erp_change=None):
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
        self._init_probing(on_erp_change)

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
            self._wakeup.set()  # and one held, waiting for its next probe
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
        if self._probe_wanted(idle=False):  # at start, when asked, and while held
            self._run_probe()
        if self.erp.held:  # a changed ERP screen: no order is taken (workers/probing.py)
            self._idle()
            self._wait_held(poll)
            return False
        first = self.queue.get(timeout=self._poll_seconds() if poll is None else poll)
        if first is None:
            self._idle()
            if self._probe_wanted(idle=True):  # every PROBE_INTERVAL_SECONDS
                self._run_probe()
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
