"""``manage.py rotate-secrets``: every sealed secret of the fleet re-sealed under ``SECRET_KEY``.

After a key change (the new key in ``SECRET_KEY``, the old one in
``SECRET_KEY_FALLBACKS``) the registry's tokens, the supervisor program files that
carry them, and each workshop's order records and queue items are still sealed under
the old key. This re-seals them, one workshop at a time:

* a workshop whose instance runs under supervisord and holds anything to re-seal is
  stopped through supervisord (gracefully, as a reconfiguration stops it), re-sealed,
  and started again on its rewritten program section. The next workshop is only
  touched once this one is RUNNING again: at most one workshop is down at a time, and
  an instance that cannot come back (supervisord still runs with the old environment,
  say) stops the rotation before a second one is touched. Running workshops go first,
  so such a mistake shows before a stopped workshop is re-sealed behind its back;
* a workshop that is not running is re-sealed directly;
* a workshop with nothing to re-seal is not touched, so a second run changes nothing
  and restarts nothing.

Tokens that open under no key are counted and named (``workshop/uniqueid``, or
``workshop/registry:api_token``), never shown, and left as they are.
"""

import sqlite3
import time
import xmlrpc.client
from pathlib import Path

from core.crypto import CredentialBox
from core.errors import BridgeError
from core.names import file_name
from service.reseal import Resealer, reseal_workshop
from fleet import states

#: process states in which an instance may have its files open, or soon will
#: (BACKOFF: supervisord starts it again by itself): stopped before re-sealing
HOLDS_FILES = {states.STARTING, states.RUNNING, states.BACKOFF, states.STOPPING}

#: seconds a restarted instance gets to be RUNNING (past supervisor's startsecs)
START_TIMEOUT = 60

#: states a restarted instance does not get out of by itself
_DOWN = {states.BACKOFF, states.FATAL, states.EXITED, states.STOPPED}


class RotationFailed(BridgeError):
    """A restarted instance did not come back; the rotation stopped there."""

    reason_code = "ROTATION_FAILED"


def rotate_secrets(fleet, out, start_timeout=START_TIMEOUT):
    """Re-seal the registry, the program files and every workshop's files.

    :param fleet: :class:`~fleet.control.Fleet`
    :param out: where the report goes, one line per workshop and a summary
    :returns: 0, or 1 when some tokens open under no key (left as they are)
    :raises BridgeError: on the first error (one line); the workshops done so far stay
        done, and running the command again goes on from there
    """
    settings = fleet.settings
    box = CredentialBox(settings.secret_key, settings.secret_key_fallbacks)
    processes = fleet.supervisor.processes() if fleet.supervisor.running() else {}
    integrations = fleet.registry.all()
    # running ones first: see the module docstring
    integrations.sort(key=lambda i: processes.get(i.program, {}).get("state") not in HOLDS_FILES)
    done = {"restarted": 0, "re-sealed": 0, "untouched": 0}
    resealed = current = 0
    unreadable = []
    for integration in integrations:
        state = processes.get(integration.program, {}).get("state")
        try:
            tally, action = _rotate_one(fleet, box, integration, state in HOLDS_FILES, start_timeout)
        except (sqlite3.Error, OSError, xmlrpc.client.Fault) as exc:
            raise RotationFailed(f"workshop {integration.workshop!r}: {exc}") from None
        done[action] += 1
        resealed += tally.resealed
        current += tally.current
        unreadable += [f"{integration.workshop}/{name}" for name in tally.unreadable]
        print(f"{integration.workshop}: {tally.resealed} re-sealed, {tally.current} already "
              f"under SECRET_KEY, {len(tally.unreadable)} unreadable; {_ACTIONS[action]}",
              file=out, flush=True)  # a rolling restart takes a while: show each as it is done
    for name in unreadable:
        print(f"unreadable under every key, left as it is: {name}", file=out)
    print(f"rotate-secrets: {len(integrations)} workshop(s): {done['restarted']} restarted, "
          f"{done['re-sealed']} re-sealed while not running, {done['untouched']} untouched; "
          f"{resealed} secret(s) re-sealed, {current} already under SECRET_KEY, "
          f"{len(unreadable)} unreadable", file=out)
    return 1 if unreadable else 0


_ACTIONS = {"restarted": "stopped, re-sealed and started again",
            "re-sealed": "re-sealed (not running)",
            "untouched": "nothing to re-seal"}


def _rotate_one(fleet, box, integration, running, start_timeout):
    """:returns: ``(tally, action)``, the action a key of ``_ACTIONS``"""
    directory = Path(fleet.settings.queue_dir) / file_name(integration.workshop)
    if running:
        # Only the records are read while it runs; the queue's tokens are their copies.
        survey = Resealer(box, dry_run=True)
        fleet.registry.reseal(integration, survey)
        reseal_workshop(directory, survey, queue=False)
        if not survey.tally.resealed:
            return survey.tally, "untouched"
        fleet.supervisor.stop(integration.program, wait=True)
    resealer = Resealer(box)
    fleet.registry.reseal(integration, resealer)
    reseal_workshop(directory, resealer)
    if resealer.tally.resealed:
        fleet.write_config()  # the program sections carry the registry's tokens
    if running:
        fleet.supervisor.apply(integration.program)  # its section changed: re-read
        fleet.supervisor.start(integration.program)  # also when it had not changed
        _wait_running(fleet, integration, start_timeout)
        return resealer.tally, "restarted"
    return resealer.tally, "re-sealed" if resealer.tally.resealed else "untouched"


def _wait_running(fleet, integration, timeout):
    """:raises RotationFailed: when the instance is not RUNNING within ``timeout``"""
    deadline = time.monotonic() + timeout
    while True:
        state = fleet.supervisor.state(integration.program)
        if state == states.RUNNING:
            return
        if state in _DOWN or time.monotonic() > deadline:
            log = Path(fleet.settings.supervisor_dir) / "logs" / f"{integration.program}.log"
            raise RotationFailed(
                f"workshop {integration.workshop!r} did not come back after re-sealing "
                f"(supervisor: {state}; see {log}); its files are re-sealed. If it cannot open "
                "its secrets, supervisord runs with another SECRET_KEY: restart the fleet with "
                "SECRET_KEY and SECRET_KEY_FALLBACKS as given here, then run rotate-secrets again")
        time.sleep(0.2)
