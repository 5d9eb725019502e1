"""Hand-written stand-ins for the fleet's unit tests (the real thing:
test_fleet_supervisor.py)."""

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

    def __init__(self):
        self.commands = []

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
