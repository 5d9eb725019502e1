"""``GET /metrics`` of the management API: the fleet's view, every instance's own metrics
(:mod:`service.metrics`) with a ``workshop`` label.

At each scrape the management API asks every active integration's instance for its
``/metrics``, with that instance's token, all at once and ``PROBE_TIMEOUT`` each (as
the overview asks for ``/alive``: one hung instance costs one timeout, not one per
instance). It adds ``workshop="<name>"`` to every sample and serves them together, with
``oilmat_fleet_instance_up{workshop}``: 1 when the instance answered, 0 when it did not,
answered something else than metrics, or is another workshop's (its
``oilmat_instance_info`` names the workshop). The label has one value per registered
active workshop, so its count is bounded by the registry.

Over HTTP rather than from the records files: the histograms of an instance live only
in its process, and a records file says nothing about whether its instance runs.

With a browser pool (``BROWSER_POOL=grid``: the fleet's Grid, or the one at
``SELENIUM_REMOTE_URL``) the Grid's own state is added, asked within ``PROBE_TIMEOUT``:
``oilmat_browser_pool_up`` and, when it answered, ``oilmat_browser_pool_slots``,
``oilmat_browser_pool_in_use`` and ``oilmat_browser_pool_waiting`` (new-session
requests in its queue: instances waiting for a browser).
"""

from core.errors import ConfigError
from fleet import grid
from integrations.browser.pool import pool_status

#: 1 when the workshop's instance answered its /metrics, else 0
FLEET_UP = "oilmat_fleet_instance_up"
#: the instance's own family that names its workshop (service.metrics)
INSTANCE_INFO = "oilmat_instance_info"


def render(fleet):
    """:param fleet: the :class:`~fleet.control.Fleet`
    :returns: ``(body bytes, content type)`` of the management API's ``GET /metrics``"""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    registry = CollectorRegistry()
    registry.register(_FleetCollector(fleet))
    return generate_latest(registry), CONTENT_TYPE_LATEST


class _FleetCollector:
    """Every active instance's families, merged by name, each sample labelled."""

    def __init__(self, fleet):
        self.fleet = fleet

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        integrations = [i for i in self.fleet.registry.all() if i.active]
        texts = self.fleet.instances.metrics_many(
            [(i.port, self._token(i)) for i in integrations])
        up = GaugeMetricFamily(FLEET_UP, "1 when the workshop's instance answered its /metrics",
                               labels=["workshop"])
        merged = {}
        for integration, text in zip(integrations, texts):
            families = _families(text, integration.workshop)
            up.add_metric([integration.workshop], 0 if families is None else 1)
            for family in families or ():
                labelled = [s._replace(labels={**s.labels, "workshop": integration.workshop})
                            for s in family.samples]
                if family.name in merged:
                    merged[family.name].samples.extend(labelled)
                else:  # the first instance's family holds them all
                    family.samples = labelled
                    merged[family.name] = family
        yield up
        yield from merged.values()
        yield from _pool_families(self.fleet.settings)

    def _token(self, integration):
        try:
            return self.fleet.registry.api_token(integration)
        except ConfigError:  # a token the key cannot open: that instance answers 401
            return ""


#: the browser pool's gauges: name -> (key of integrations.browser.pool.pool_status, help)
POOL_GAUGES = {
    "oilmat_browser_pool_slots": ("slots", "browser sessions the Grid's nodes offer at once"),
    "oilmat_browser_pool_in_use": ("in_use", "browser sessions open on the Grid"),
    "oilmat_browser_pool_waiting": ("waiting", "new-session requests waiting in the Grid's queue"),
}


def _pool_families(settings):
    from prometheus_client.core import GaugeMetricFamily

    url = grid.status_url(settings)
    if url is None:  # local browsers: no pool
        return
    state = pool_status(url, settings.probe_timeout)
    yield GaugeMetricFamily("oilmat_browser_pool_up", "1 when the browser pool (Grid) answered",
                            value=0 if state is None else 1)
    for name, (key, help_text) in POOL_GAUGES.items():
        if state is not None:
            yield GaugeMetricFamily(name, help_text, value=state[key])


def _families(text, workshop):
    """:returns: the parsed families of one instance's answer, or None when there was
        no answer, it does not parse, or it is another workshop's"""
    from prometheus_client.parser import text_string_to_metric_families

    if text is None:
        return None
    try:
        families = list(text_string_to_metric_families(text))
    except ValueError:
        return None
    info = next((f for f in families if f.name == INSTANCE_INFO), None)
    if info is None or any(s.labels.get("workshop") != workshop for s in info.samples):
        return None
    return families
