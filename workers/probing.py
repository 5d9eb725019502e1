"""Checking the ERP's screens, and holding the orders while one is changed (issue 27).

ERPs change under us (an update, a customised form). A screen the integration does
not recognise must cost no order and never be written on, so:

* **The probe** (:meth:`~integrations.base.Integration.probe`) reads every screen the
  integration relies on and writes nothing. The worker runs it in its own thread (the
  integration is used from there alone): soon after it starts (within
  ``START_SPREAD_SECONDS``, never later than one interval, at random: a fleet started at
  once does not start 200 browsers at once; ``/alive`` answers meanwhile), every
  ``PROBE_INTERVAL_SECONDS`` (+-10 %) while it has no work, and when asked (``PUT
  /probe``: :meth:`Probing.ask_probe`). A visit that writes a line has passed every
  screen a probe checks, so it counts as one: a busy worker does not probe.
  It logs in with ``ERP_USERNAME`` when set, else with the login of the last order worked
  (in memory only: after a restart, until the first order, the state stays ``unknown``
  and says why). It opens ``PROBE_WORKSHEET``, else the worksheet last written to.
* **Held.** A probe that says ``changed``, or a visit that meets
  :class:`~core.errors.ScreenChanged`, holds the workshop: the orders in hand go back to
  ``placed`` with reason ``ERP_SCREEN_CHANGED`` (no attempt counted, no retry budget
  spent: an order's budget starts when it is taken again), the worker takes no order
  and probes again after ``HELD_PROBE_BASE_SECONDS``, doubling to
  ``HELD_PROBE_MAX_SECONDS``. A probe that passes resumes it; so does an operator
  (``PUT /start_worker``: :meth:`Probing.resume`).
* **An order the probe cannot see.** When the probe passes but the same order meets a
  changed screen again (a screen only that order reaches, e.g. its product's form), the
  workshop is not held for it a second time: that order spends attempts like any
  transient failure (reason ``ERP_SCREEN_CHANGED``) and ends in ``error`` when they run
  out, so one order cannot stall the queue for ever. Its line is still never written on
  the screen it did not recognise.
"""

import random
import threading
import time
from datetime import datetime, timezone

from core.errors import ScreenChanged
from integrations.base import Credentials, ErpState, Probe

#: first wait before a held worker probes again; doubles after each probe that fails
HELD_PROBE_BASE_SECONDS = 5.0
#: the longest such wait
HELD_PROBE_MAX_SECONDS = 300.0
#: the first probe comes within this long of the start (never later than an interval)
START_SPREAD_SECONDS = 60.0
#: the screens a visit that went well has passed
VISITED = ("login", "worksheet", "line form", "lines")
#: how long ``PUT /probe`` waits for the worker's answer (a visit in progress first ends)
ASK_TIMEOUT_SECONDS = 120.0


class ErpWatch:
    """What the worker knows of the ERP's screens; read from request threads (``/alive``,
    ``/metrics``, the overview), written by the worker thread.

    :param on_change: called ``on_change(before, after)`` with two :meth:`snapshot` s
        when the state or the hold changes (the instance turns it into events)
    """

    def __init__(self, on_change=None):
        self._lock = threading.Lock()
        self._on_change = on_change
        self._probe = Probe(ErpState.UNKNOWN, "not checked yet")
        self._checked_at = None
        self._held = None  # (since, why) while held

    @property
    def held(self):
        return self._held is not None

    @property
    def state(self):
        return self._probe.state

    def snapshot(self):
        """For ``/alive``'s ``erp``: ``state``, ``checked_at``, ``detail``, the screens that
        passed (``checked``), ``held`` and, while held, ``held_since`` and ``held_for``."""
        with self._lock:
            probe, held = self._probe, self._held
            return {"state": probe.state.value, "checked_at": self._checked_at,
                    "detail": probe.detail, "checked": list(probe.checked),
                    "artifacts": list(probe.artifacts), "held": held is not None,
                    "held_since": held[0] if held else None,
                    "held_for": held[1] if held else None}

    def checked(self, probe):
        """Note a probe's result."""
        def change():
            self._probe, self._checked_at = probe, _now()
        self._change(change)

    def hold(self, why, probe=None):
        """Hold the workshop's orders; ``probe``: what a visit saw, as a probe's result."""
        def change():
            if probe is not None:
                self._probe, self._checked_at = probe, _now()
            if self._held is None:
                self._held = (_now(), why)
        self._change(change)

    def release(self):
        """End the hold. :returns: whether there was one"""
        was = self.held
        self._change(lambda: setattr(self, "_held", None))
        return was

    def _change(self, change):
        with self._lock:
            before = self._public()
            change()
            after = self._public()
        if self._on_change is not None and (before["state"], before["held"]) != (
                after["state"], after["held"]):
            self._on_change(before, after)

    def _public(self):
        return {"state": self._probe.state.value, "detail": self._probe.detail,
                "held": self._held is not None}


class Probing:
    """The worker's probes and hold (a part of :class:`workers.worker.Worker`, whose
    ``settings``, ``store``, ``queue``, ``log``, ``_stop`` and integration it uses)."""

    def _init_probing(self, on_erp_change=None):
        self.erp = ErpWatch(on_erp_change)
        self._asked = []  # threading.Event s of PUT /probe requests waiting for a probe
        self._asked_lock = threading.Lock()
        self._wakeup = threading.Event()  # a held worker's wait ends early on it
        interval = self.settings.probe_interval_seconds
        # the first probe soon after the start, spread so that a fleet started at once
        # does not start its browsers at once; a visit that goes well counts as one
        self._next_probe = time.monotonic() + random.uniform(
            0, min(START_SPREAD_SECONDS, interval or START_SPREAD_SECONDS))
        self._held_probes = 0  # probes since the hold began
        self._last_login = None  # credentials of the last order worked (memory only)
        self._last_worksheet = None  # the worksheet last written to
        self._held_ids = set()  # orders the current hold released
        self._seen_held = set()  # orders held before a probe then passed: not held again

    # -- from request threads ---------------------------------------------------------

    def ask_probe(self, timeout=ASK_TIMEOUT_SECONDS):
        """Have the worker probe now. :returns: the :meth:`ErpWatch.snapshot` after the
        probe, or None when the worker is not running or did not answer in time"""
        if not self.running:
            return None
        done = threading.Event()
        with self._asked_lock:
            self._asked.append(done)
        self._wakeup.set()
        self.queue.wake()
        return self.erp.snapshot() if done.wait(timeout) else None

    def resume(self):
        """An operator resumes a held worker (``PUT /start_worker``). :returns: whether
        it was held"""
        if not self.erp.release():
            return False
        integration = self._integration
        if integration is not None:  # the operator vouches for the sheets as they are
            integration.trust_screens()
        self.log.warning("ERP hold ended by an operator; held orders are worked again")
        self._wakeup.set()
        self.queue.wake()
        return True

    # -- in the worker thread -----------------------------------------------------------

    def _probe_wanted(self, idle):
        """Whether a probe is due now. ``idle``: the worker has just found no work."""
        if self._asked:
            return True
        if self.erp.held:
            return time.monotonic() >= self._next_probe
        return idle and time.monotonic() >= self._next_probe

    def _run_probe(self):
        """Probe, note the result, hold or resume, and answer who asked."""
        with self._asked_lock:
            asked, self._asked = self._asked, []
        try:
            probe = self._probe_once()
            self.erp.checked(probe)
            self.log.log(20 if probe.state in (ErpState.OK, ErpState.UNKNOWN) else 30,
                         "ERP probe: %s: %s", probe.state.value, probe.detail)
            self._after_probe(probe)
        finally:
            for done in asked:
                done.set()

    def _probe_once(self):
        credentials = self._probe_login()
        if credentials is None:
            return Probe(ErpState.UNKNOWN, "no ERP login known yet: ERP_USERNAME is not set "
                                           "and no order has been worked since the start")
        integration = self._integration_for_use()
        if not integration.can_probe:
            return Probe(ErpState.UNKNOWN, f"the {integration.name} integration has no probe")
        worksheet = (self.settings.probe_worksheet or self._last_worksheet
                     or self.store.last_written_worksheet())
        try:
            return integration.probe(worksheet or None, credentials)
        except Exception as exc:  # a bug in a probe must not stop the worker
            self.log.exception("the ERP probe failed")
            return Probe(ErpState.UNREACHABLE, f"the probe failed: {type(exc).__name__}")

    def _after_probe(self, probe):
        now = time.monotonic()
        if probe.state == ErpState.CHANGED:
            if not self.erp.held:
                self.log.error("ERP screen changed (%s): orders held until it is back",
                               probe.detail)
            self._hold(probe.detail)
        elif self.erp.held and probe.state == ErpState.OK:
            self.erp.release()
            self._seen_held |= self._held_ids
            self._held_ids = set()
            self.log.warning("ERP screens as known again: held orders are worked again")
        if self.erp.held:
            self._held_probes += 1
            self._next_probe = now + min(
                HELD_PROBE_BASE_SECONDS * 2 ** (self._held_probes - 1), HELD_PROBE_MAX_SECONDS)
        else:
            self._next_interval(now)

    def _next_interval(self, now):
        interval = self.settings.probe_interval_seconds
        self._next_probe = now + interval * random.uniform(0.9, 1.1) if interval else float("inf")

    def _visit_went_well(self, worksheet):
        """A visit wrote (or found) a line on ``worksheet``: its screens were as known,
        which says as much as a probe; the next one is an interval away."""
        if not self.erp.held:
            self.erp.checked(Probe(ErpState.OK, f"a visit to worksheet {worksheet} found every "
                                                f"screen as known", VISITED))
            self._next_interval(time.monotonic())

    def _hold(self, why, probe=None):
        if not self.erp.held:
            self._held_probes = 0
            self._next_probe = time.monotonic() + HELD_PROBE_BASE_SECONDS
        self.erp.hold(why, probe)

    def _wait_held(self, poll):
        """Wait, held, until the next probe is due (or someone asks, resumes, stops)."""
        wait = max(0.0, self._next_probe - time.monotonic())
        if poll is not None:
            wait = min(wait, poll)
        self._wakeup.wait(wait)
        self._wakeup.clear()

    def _holds_for(self, order, error):
        """Whether ``error`` on ``order``'s visit holds the workshop (see the module's
        docstring: an order the probe cannot see holds it once)."""
        return isinstance(error, ScreenChanged) and order.uniqueid not in self._seen_held

    def _held_by_visit(self, orders, error):
        """A visit met a changed screen: hold, and remember which orders it held."""
        self.log.error("ERP screen changed (%s): orders held until a probe finds it back "
                       "(or PUT /start_worker)", error.reason_text,
                       extra={"uniqueids": [order.uniqueid for order in orders]})
        self._held_ids |= {order.uniqueid for order in orders}
        self._hold(error.reason_text,
                   Probe(ErpState.CHANGED, f"seen by a visit: {error.reason_text}"))

    def _worked(self, order, created):
        """Remember the login (and, once written, the worksheet) for the next probe."""
        self._last_login = order.credentials
        if created:
            self._last_worksheet = order.line.worksheet
            self._seen_held.discard(order.uniqueid)

    def _probe_login(self):
        if self.settings.erp_username:
            return Credentials(self.settings.erp_username, self.settings.erp_password)
        return self._last_login


def _now():
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
