"""Process states (as supervisor names them) and the health the overview derives.

Constants only; imports nothing, so every fleet module and the page's tests may use it.
"""

# -- supervisor process states (supervisor.states.ProcessStates, by name) ------------
# STOPPED -> STARTING: started by supervisord at boot, or by /start
# STARTING -> RUNNING: still alive after startsecs
# STARTING -> BACKOFF: exited before startsecs (bad config: exit code 2)
# BACKOFF -> STARTING: supervisord retries, up to startretries
# BACKOFF -> FATAL: out of retries; stays down until /start
# RUNNING -> STOPPING: /stop, reconfigure, deactivate, or supervisord shutting down
# STOPPING -> STOPPED: exited within stopwaitsecs (or was killed after it)
# RUNNING -> EXITED: exited by itself; exit 0 (PUT /kill) stays EXITED,
#                    anything else (crash, kill -9) goes on to STARTING at once
STOPPED = "STOPPED"
STARTING = "STARTING"
RUNNING = "RUNNING"
BACKOFF = "BACKOFF"
STOPPING = "STOPPING"
EXITED = "EXITED"
FATAL = "FATAL"
UNKNOWN = "UNKNOWN"  # supervisord did not answer
NOT_CONFIGURED = "NOT_CONFIGURED"  # no program section: the integration is inactive

# -- health of one integration, as the overview shows it ----------------------------
# INACTIVE -> DOWN: activated; its program is added and starting
# DOWN -> OK: the process runs and /alive says the worker runs
# OK -> WORKER_STOPPED: PUT .../stop_worker
# WORKER_STOPPED -> OK: PUT .../start_worker
# OK | WORKER_STOPPED -> DOWN: PUT .../kill, .../stop, or a crash (until the restart)
# OK | WORKER_STOPPED -> UNREACHABLE: the process runs but /alive does not answer in time
# any -> INACTIVE: deactivated
# DOWN | OK | UNREACHABLE -> HELD: another process (not this fleet's instance) holds the
#     workshop's data (core/hold.py): the fleet's instance cannot start, exits 2
# OK | WORKER_STOPPED -> STORAGE: /alive says its files cannot be used (disk full,
#     records damaged); its worker, if running, is paused, its intake answers 503
# STORAGE -> OK | WORKER_STOPPED: the disk has room again (no restart needed)
# HELD -> DOWN -> OK: that process ended (``manage.py up`` stops the ones a killed
#     supervisord left behind); supervisord's next start of the instance takes the hold
OK = "ok"  # instance answers /alive and its worker runs
WORKER_STOPPED = "worker_stopped"  # instance answers, worker stopped
UNREACHABLE = "unreachable"  # process running but /alive did not answer in time
DOWN = "down"  # process not running (stopped, killed, crashed, starting)
INACTIVE = "inactive"  # deactivated in the registry; supervisor does not run it
HELD = "held"  # another process holds the workshop's data; the overview names its pid
STORAGE = "storage"  # instance answers, but its files cannot be used; the overview says why

HEALTHS = (OK, WORKER_STOPPED, UNREACHABLE, DOWN, INACTIVE, HELD, STORAGE)
