"""``GET /metrics``: one instance's figures in Prometheus' text format (prometheus_client).

Two kinds of figure:

* **Counted from the order records at scrape time** (:class:`_RecordsCollector`): orders
  by status, orders in ``error`` by reason code, queue length, age of the oldest waiting
  order, repairs, the events outbox and the webhook's state. They come from SQLite, so
  they are right after a restart, and nothing has to keep them up to date.
* **Observed while running** (:class:`InstanceMetrics`): seconds from ``/create`` to
  ``created``, seconds per ERP visit and per line, browser starts, webhook deliveries.
  They live in the process and start from zero after a restart, which Prometheus'
  ``rate()`` and ``histogram_quantile()`` take in their stride.

Each instance has its own ``CollectorRegistry``, not prometheus_client's global one: the
figures are one workshop's, and tests run several instances in one process.

prometheus_client is imported on the first observation or scrape, not at start: it is
~1 MB of RSS, and most instances of a fleet sit idle (bench_fleet_density.py).
"""

import threading
import time
from datetime import datetime, timezone

from core.errors import StorageUnavailable
from core.observer import Observer
from integrations.base import ErpState
from orders.status import OrderStatus

#: ``oilmat_webhook_deliveries_total{result=...}``: every POST to the webhook is one of
DELIVERED, FAILED, GONE = "delivered", "failed", "gone"

#: bucket bounds in seconds: an order waits behind others and may back off for minutes
CREATE_TO_CREATED_BUCKETS = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600)
#: a visit writes up to 25 lines at ~0.3-1.5 s each, plus the login and the read-back
VISIT_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300)
LINE_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60)

#: the states of ``oilmat_webhook_state`` (service.webhooks.WebhookSender.state)
WEBHOOK_STATES = ("off", "enabled", "disabled")


class InstanceMetrics(Observer):
    """The metrics of one instance.

    :param instance: the :class:`~service.instance.Instance`; its store, events, webhook
        sender and worker are read at scrape time
    """

    def __init__(self, instance):
        self.instance = instance
        self._lock = threading.Lock()
        self._live = None  # built on first use: see the module's docstring

    # -- observations (worker and webhook threads) ----------------------------------

    def order_created(self, created_at):
        seconds = _seconds_since(created_at)
        if seconds is not None:
            self._metrics().create_to_created.observe(seconds)

    def visit(self, seconds, lines):
        live = self._metrics()
        live.visit.observe(seconds)
        per_line = seconds / max(1, lines)
        for _ in range(lines):
            live.line.observe(per_line)

    def browser_started(self):
        self._metrics().browser_starts.inc()

    def webhook(self, result):
        self._metrics().webhook.labels(result=result).inc()

    # -- the scrape -----------------------------------------------------------------

    def render(self):
        """:returns: ``(body bytes, content type)`` of ``GET /metrics``"""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self._metrics().registry), CONTENT_TYPE_LATEST

    def _metrics(self):
        with self._lock:
            if self._live is None:
                self._live = _Live(self.instance)
            return self._live


class _Live:
    """The prometheus_client objects of one instance (built by :meth:`InstanceMetrics._metrics`)."""

    def __init__(self, instance):
        from prometheus_client import (CollectorRegistry, Counter, Histogram, ProcessCollector,
                                       disable_created_metrics)

        # no *_created series: they double the lines of every counter and histogram for a
        # start time that process_start_time_seconds already gives (one process, one start)
        disable_created_metrics()
        self.registry = registry = CollectorRegistry()
        registry.register(_RecordsCollector(instance))
        ProcessCollector(registry=registry)  # RSS, CPU, open files: fleet density at a glance
        self.create_to_created = Histogram(
            "oilmat_order_create_to_created_seconds",
            "Seconds from an order's /create to its line on the worksheet (created)",
            buckets=CREATE_TO_CREATED_BUCKETS, registry=registry)
        self.visit = Histogram(
            "oilmat_erp_visit_seconds", "Seconds of one visit to one worksheet in the ERP",
            buckets=VISIT_BUCKETS, registry=registry)
        self.line = Histogram(
            "oilmat_erp_line_seconds", "Seconds per order line: a visit's seconds over its lines",
            buckets=LINE_BUCKETS, registry=registry)
        self.browser_starts = Counter(
            "oilmat_browser_starts", "Browsers started by the integration", registry=registry)
        self.webhook = Counter(
            "oilmat_webhook_deliveries",
            "POSTs to the webhook by result: delivered (2xx), failed (retried), gone (410)",
            ["result"], registry=registry)
        for result in (DELIVERED, FAILED, GONE):
            self.webhook.labels(result=result)  # every series from the start, at 0


class _RecordsCollector:
    """The figures counted from the order records at each scrape."""

    def __init__(self, instance):
        self.instance = instance

    def collect(self):
        from prometheus_client.core import (CounterMetricFamily, GaugeMetricFamily,
                                            InfoMetricFamily)

        inst = self.instance
        yield InfoMetricFamily("oilmat_instance", "The workshop this instance serves",
                               value={"workshop": inst.settings.workshop,
                                      "erp_system": inst.settings.erp_system})
        trouble = inst.storage_trouble()  # a full disk: what the worker's log says, here too
        try:
            tally = inst.store.tally()
            repairs = inst.store.count_repairs()
            outbox = inst.events.outbox()
            webhook = inst.webhooks.state()
        except StorageUnavailable as exc:
            tally = None
            trouble = exc.reason_text
        yield GaugeMetricFamily("oilmat_worker_running",
                                "1 while the order worker runs (0 stopped, or paused: its "
                                "files cannot be written)",
                                value=1 if inst.worker_state(trouble) == "running" else 0)
        erp = inst.worker.erp.snapshot()
        erp_state = GaugeMetricFamily("oilmat_erp_state",
                                      "1 for the ERP's screens as the last probe found them: "
                                      "ok, changed, unreachable, login_failed, unknown",
                                      labels=["state"])
        for name in ErpState:
            erp_state.add_metric([name.value], 1 if erp["state"] == name.value else 0)
        yield erp_state
        yield GaugeMetricFamily("oilmat_erp_held",
                                "1 while orders are held because a screen of the ERP changed",
                                value=1 if erp["held"] else 0)
        yield GaugeMetricFamily("oilmat_records_ok",
                                "1 when the order records and queue can be read and written "
                                "(0: /alive's storage says why)", value=0 if trouble else 1)
        if tally is None:
            return
        by_status = GaugeMetricFamily("oilmat_orders", "Orders by their current status",
                                      labels=["status"])
        counts = {s.value: 0 for s in OrderStatus}
        counts.update(tally["by_status"])
        for status, count in sorted(counts.items()):
            by_status.add_metric([status], count)
        yield by_status
        errors = GaugeMetricFamily("oilmat_order_errors",
                                   "Orders that ended in error, by reason code",
                                   labels=["reason_code"])
        for code, count in sorted(tally["errors_by_reason"].items()):
            errors.add_metric([code], count)
        yield errors
        yield GaugeMetricFamily("oilmat_queue_length", "Orders waiting or in progress",
                                value=counts[OrderStatus.PLACED.value]
                                + counts[OrderStatus.PROCESSING.value])
        yield GaugeMetricFamily("oilmat_queue_oldest_age_seconds",
                                "Seconds since the oldest order still waiting was posted "
                                "(0: none waits)",
                                value=_seconds_since(tally["oldest_active"]) or 0)
        yield CounterMetricFamily("oilmat_order_repairs",
                                  "Orders created after their line was repaired on the "
                                  "worksheet (read back wrong or twice)", value=repairs)
        yield GaugeMetricFamily("oilmat_events_stored", "Events kept in the outbox",
                                value=outbox["stored"])
        yield GaugeMetricFamily("oilmat_events_unacknowledged",
                                "Events the feed's client has not acknowledged (PUT /events/ack)",
                                value=outbox["unacknowledged"])
        yield GaugeMetricFamily("oilmat_webhook_backlog",
                                "Events not yet delivered to the webhook (0 when off)",
                                value=webhook["backlog"])
        yield GaugeMetricFamily("oilmat_webhook_failing_tries",
                                "Failed tries of the event the webhook is held at",
                                value=webhook["failures"])
        state = GaugeMetricFamily("oilmat_webhook_state",
                                  "1 for the webhook's state: off, enabled, disabled (by a 410)",
                                  labels=["state"])
        for name in WEBHOOK_STATES:
            state.add_metric([name], 1 if webhook["state"] == name else 0)
        yield state


def _seconds_since(iso):
    """:returns: seconds from an ISO 8601 time of the records to now, or None"""
    if not iso:
        return None
    try:
        then = datetime.fromisoformat(iso)
    except ValueError:
        return None
    if then.tzinfo is None:
        then = then.replace(tzinfo=timezone.utc)
    return max(0.0, time.time() - then.timestamp())
