"""Manage the fleet of workshop integrations: ``python manage.py --help``.

See docs/fleet.md. The work is done in :mod:`fleet.cli`.
"""

import sys

from fleet.cli import main

if __name__ == "__main__":
    sys.exit(main())
