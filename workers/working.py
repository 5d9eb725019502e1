"""Working the orders in hand: visits to their worksheets, in rounds, until each ends.

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
"""

import time
from decimal import Decimal

from core import retry as policy
from core.errors import LineUnverified, OutcomeUnknown, ScreenChanged
from core.logcontext import about_orders
from integrations.base import LineCheck, LineOutcome, OrderLine, Written, outcome_of
from orders.records import REPAIRED

#: most lines written in one visit; more for one worksheet take further visits. A stop
#: waits for the visit in progress, so this bounds that wait (25 lines at a slow ~1.5 s
#: each stay well inside supervisor's 120 s stopwaitsecs) at ~2 % extra cost per line.
VISIT_LINES = 25
#: why an order went back to ``placed`` with reason ``ERP_SCREEN_CHANGED``
HELD = ("held: a screen of the ERP is not as the integration knows it; nothing is written "
        "on it, and the order is worked once a probe finds the screens as known (or after "
        "PUT /start_worker)")
#: reads of its worksheet an order whose line may be on it gets before it ends in
#: ``error`` unread (``OUTCOME_UNKNOWN``); each after a backoff, as a retry
FINAL_LOOKS = 3


class OrderInHand:
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


class Working:
    """The worker's visits (a part of :class:`workers.worker.Worker`, whose attributes it
    uses: ``settings``, ``store``, ``log``, ``metrics``, ``_in_hand``, ``_stop``, and its
    bookkeeping from :class:`workers.taking.Taking`)."""

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
                if self.erp.held:  # a changed screen: the rest wait, placed, unspent
                    self._in_hand = retry + [order for _, rest in groups[n + 1:]
                                             for order in rest]
                    self._release_in_hand(HELD, ScreenChanged.reason_code)
                    return
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
        retry, held = [], []
        for order in group:
            result = results.get(order.uniqueid)
            if result is None:
                result = policy.as_bridge_error(
                    RuntimeError("the integration returned no result for this line"))
            written = isinstance(result, (LineOutcome, Written))
            self._worked(order, written)
            if self._holds_for(order, result):
                held.append((order, result))
                continue
            order.attempts += 1
            if written:
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
        self._hold_orders(held)
        if not held and any(isinstance(result, (LineOutcome, Written))
                            for result in results.values()):
            self._visit_went_well(worksheet)
        return retry

    def _hold_orders(self, held):
        """``held``: ``(order, ScreenChanged)`` pairs of one visit. They go back to
        ``placed``, their attempt not counted, and the workshop is held."""
        if held:
            self._held_by_visit([order for order, _ in held], held[0][1])
            self._release([order for order, _ in held], HELD, ScreenChanged.reason_code)

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
        retry, held = [], []
        for order in group:
            result = results.get(order.uniqueid)
            code, text = order.gave_up
            if self._holds_for(order, result):  # the read met a changed screen
                held.append((order, result))
                continue
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
        self._hold_orders(held)
        return retry

    def _backoff(self, attempts):
        return policy.backoff(attempts, self.settings.retry_base_seconds,
                              self.settings.retry_max_seconds)


def created_note(outcome, repairs):
    """The history note of a created order: how its line came to be there."""
    parts = ["line already on the worksheet"] if outcome == LineOutcome.EXISTED else []
    if repairs:
        parts.append(REPAIRED + "; ".join(repairs))
    return "; ".join(parts) or None
