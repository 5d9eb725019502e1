"""``api.py`` itself, with its worker never started: for fleet tests that need real
instances holding real queue files, but must not open a browser.

``API_SCRIPT=tests/fleet_idle_instance.py``: the same arguments, settings, sealed
secrets, files, HTTP API, signals and exit codes as api.py; only the worker stays
stopped (``/alive`` says so), so queued orders stay queued.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import api  # noqa: E402
from workers.worker import Worker  # noqa: E402

Worker.start = lambda self: False  # "was not running", and stays so

if __name__ == "__main__":
    sys.exit(api.main())
