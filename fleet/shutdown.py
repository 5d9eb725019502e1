"""Inside supervisord: a fleet's stop signals its instances all at once.

supervisord stops its programs one *group* at a time, and each of our programs is a
group of its own. It waits for each to be reaped before it signals the next, in a loop
that polls with a one-second timeout; a SIGCHLD does not cut that poll short (Python
retries an interrupted poll, PEP 475), so an instance that exits 13 ms after its SIGTERM
often costs a whole second. 50 instances took 34-38 s to stop, 200 over two minutes
(docs/benchmarks.md, 2026-12-04), and an instance finishing a slow visit held up every
instance after it.

This module is loaded into supervisord as an rpcinterface factory (``[rpcinterface:fleet]``
in supervisord.conf: the extension point supervisor offers; it adds no methods) and
subscribes to supervisor's own events. When supervisord begins to stop (a shutdown, or a
reload with SIGHUP), every program of the highest priority number is signalled at once
-- the instances and the management API --, and each time a program stops, the next
priority level is signalled once the one above it has stopped entirely: the Grid
(priority 100) only after every instance has finished or released the order in hand on
its session. That is the order supervisord's own priorities promise, by level instead
of one by one. Each program still has its ``stopwaitsecs`` before its SIGKILL, which
supervisord's loop sends as before.
"""

from supervisor import events
from supervisor.states import ProcessStates, SupervisorStates

#: states in which a program still has to be stopped or to finish stopping
_UNSTOPPED = (ProcessStates.STARTING, ProcessStates.RUNNING, ProcessStates.BACKOFF,
              ProcessStates.STOPPING)


class StopByLevel:
    """Signals, during supervisord's stop, the highest priority level still running."""

    def __init__(self, supervisord):
        self.supervisord = supervisord
        self._busy = False  # stop() notifies events, which would call us again

    def on_stopping(self, event):
        self.step()

    def on_process_state(self, event):
        if self.supervisord.options.mood < SupervisorStates.RUNNING:
            self.step()

    def step(self):
        """Signal every program of the highest priority level not yet stopped."""
        if self._busy:
            return
        self._busy = True
        try:
            processes = [process for group in self.supervisord.process_groups.values()
                         for process in group.processes.values()
                         if process.get_state() in _UNSTOPPED]
            if not processes:
                return
            level = max(process.config.priority for process in processes)
            for process in processes:
                if process.config.priority != level:
                    continue
                state = process.get_state()
                if state in (ProcessStates.RUNNING, ProcessStates.STARTING):
                    process.stop()
                elif state == ProcessStates.BACKOFF:
                    process.give_up()  # as supervisord's own stop does
        finally:
            self._busy = False


class _NoMethods:
    """supervisor expects an rpcinterface object; this one adds nothing to the API."""


def make_rpcinterface(supervisord, **config):
    """The factory ``supervisord.conf`` names: subscribe, and add no XML-RPC methods."""
    stop = StopByLevel(supervisord)
    events.subscribe(events.SupervisorStoppingEvent, stop.on_stopping)
    events.subscribe(events.ProcessStateEvent, stop.on_process_state)
    return _NoMethods()
