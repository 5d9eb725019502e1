"""Hand-written stand-ins for the fleet's unit tests (the real thing:
test_fleet_supervisor.py)."""

import json

import requests

from fleet.errors import SupervisorUnavailable
from fleet import states


class FakeSupervisor:
    """Stands in for :class:`fleet.supervisor_client.Supervisor`; records what it is told."""

    def __init__(self):
        self.up = True
        self.calls = []
        self.states = {}  # program -> state

    def _check(self):
        if not self.up:
            raise SupervisorUnavailable("supervisord does not answer (fake)")

    def running(self):
        return self.up

    def processes(self):
        self._check()
        return {n: {"state": s, "pid": 1234, "description": "", "exitstatus": 0}
                for n, s in self.states.items()}

    def state(self, name):
        self._check()
        return self.states.get(name, states.NOT_CONFIGURED)

    def start(self, name):
        self._check()
        self.calls.append(("start", name))
        self.states[name] = states.RUNNING

    def stop(self, name, wait=False):
        self._check()
        self.calls.append(("stop", name))
        self.states[name] = states.STOPPED

    def apply(self, name):
        self.calls.append(("apply", name))
        return "restarted"


class FakeInstances:
    """Stands in for :class:`fleet.instances.Instances`: every instance answers at once,
    as a running one would (the real ones: tests/fleet_fake_instance.py, api.py)."""

    def __init__(self, orders=()):
        self.commands = []
        self.requests = []  # (port, method, path, params) of request()
        self.orders = list(orders)  # what GET /orders lists, as the instance's records

    def request(self, port, api_token, method, path, params=None):
        """An instance holding :attr:`orders`, all in error: a page of them for
        ``GET /orders``, ``PUT /retry`` and ``/resolve`` on one of them, 404 otherwise."""
        self.requests.append((port, method, path, dict(params or {})))
        params = params or {}
        known = {o["uniqueid"]: o for o in self.orders}
        if (method, path) == ("GET", "orders"):
            after, limit = int(params.get("after", 0)), int(params.get("limit", 100))
            listed = [{**o, "cursor": n} for n, o in enumerate(self.orders, 1) if n > after]
            page = listed[:limit]
            return _response(200, {"orders": page, "more": len(listed) > limit,
                                   "next": page[-1]["cursor"] if page else after})
        if method == "PUT" and path in ("retry", "resolve") and params["uniqueid"] in known:
            order = known[params["uniqueid"]]
            order["status"] = "placed" if path == "retry" else "resolved"
            return _response(200, order)
        return _response(404, {"error": "not_found", "message": "no such order"})

    def alive_many(self, targets):
        return [{"api": "running", "worker": "running", "workshop": workshop, "queue_length": 0,
                 "last_success": None, "last_error": None} for _, workshop in targets]

    def command(self, port, api_token, command):
        self.commands.append((port, command))
        return {"worker_before": "running", "worker_after": "stopped" if command != "start_worker"
                else "running"}

    def metrics_many(self, targets):
        """No metrics: in the fleet's view every instance is down (tests/test_metrics.py
        scrapes real ones)."""
        return [None for _ in targets]


def _response(status, body):
    r = requests.Response()
    r.status_code = status
    r._content = json.dumps(body).encode()
    r.headers["Content-Type"] = "application/json"
    return r
