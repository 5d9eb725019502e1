"""Start one workshop's instance from its launch file: ``python -m fleet.launch FILE``.

supervisord runs this for every ``[program:bridge-...]``. ``FILE`` (written by
:mod:`fleet.supervisor_conf`, 0600, ASCII JSON) holds api.py's command line and the
workshop's environment: ``{"argv": [python, api.py, "--", port, workshop],
"environment": {...}}``. The workshop's name and settings travel this way, and not in
supervisor's own files, because supervisor's format mangles ``%(...)s`` in any value.

It ``exec``s api.py: the same process, so supervisord's signals and its view of the pid
reach api.py itself, and nothing of the launcher stays in memory. Before that it opens the
workshop's sealed secrets (:func:`service.unseal.hand_over`: cryptography is loaded here,
where ``exec`` drops it, instead of in a child api.py would start) and hands them to
api.py in an inherited pipe. Otherwise it imports only the standard library, to add as
little as possible to an instance's start.

The instance inherits supervisord's environment (``SECRET_KEY`` opens its sealed
secrets) less what only the fleet's own processes need: :data:`FLEET_ONLY`.
"""

import json
import os
import sys

#: what supervisord's environment holds for the management API and an instance must not
#: get: it needs none of it, and any process of the same user reads an instance's
#: environment in /proc/<pid>/environ
FLEET_ONLY = frozenset({"MANAGEMENT_TOKEN"})


def inherited(environ):
    """:returns: ``environ`` without :data:`FLEET_ONLY`: what a program the fleet starts
    (an instance, the Grid) may inherit"""
    return {name: value for name, value in environ.items() if name not in FLEET_ONLY}


def read(path):
    """:returns: ``(argv, environment)`` from a launch file
    :raises ValueError: for a file that is not one
    """
    with open(path, encoding="ascii") as f:
        spec = json.load(f)
    argv, environment = spec.get("argv"), spec.get("environment")
    if (not isinstance(argv, list) or not argv or not isinstance(environment, dict)
            or not all(isinstance(a, str) for a in [*argv, *environment, *environment.values()])):
        raise ValueError("not a launch file (argv and environment)")
    return argv, environment


def main(argv=None):
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m fleet.launch LAUNCH_FILE", file=sys.stderr)
        return 2
    try:
        command, environment = read(args[0])
    except (OSError, ValueError) as e:  # a one-line reason in the program's log, exit 2
        print(f"fleet.launch: error: {args[0]}: {e}", file=sys.stderr)
        return 2
    environment = {**inherited(os.environ), **environment}
    try:  # nothing when the workshop has no sealed secret (service.unseal.sealed_in)
        from service.unseal import HANDOVER_FD, hand_over
        handed = hand_over(environment)
    except Exception:  # a broken install: api.py's own child says what it is, in one line
        handed = None
    if handed is not None:
        environment[HANDOVER_FD] = str(handed)
    sys.stdout.flush()
    try:
        os.execvpe(command[0], command, environment)
    except OSError as e:
        print(f"fleet.launch: error: cannot run {command[0]}: {e.strerror or e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
