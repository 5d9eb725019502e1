"""``api.py``'s start-up with the fake ERP of ``fleet_fake_erp.py`` known: for the test
that an instance started from a fleet launch file gets its ERP options.

``API_SCRIPT=tests/fleet_options_instance.py``: the same arguments and settings as api.py,
and api.py's own :func:`api.build` (settings, the ``service.unseal`` child for the sealed
secrets, the options checked against the ERP's declaration, logs with secrets masked).
Then, instead of serving, it logs the options (through the masking filter), prints them
as JSON on stdout, closes everything and exits 0.
"""

import json
import logging
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import api  # noqa: E402
import integrations  # noqa: E402
from tests import fleet_fake_erp  # noqa: E402

fleet_fake_erp.register(integrations.AVAILABLE)


def main():
    args = api._parse(sys.argv[1:])
    try:
        settings, instance, _app, listener = api.build(args)
    except Exception as exc:  # a ConfigError, as api.py reports it: one line, exit 2
        print(f"api.py: error: {exc}", file=sys.stderr)
        return 2
    try:
        logging.getLogger("oilmat.api").info("ERP options: %s", settings.erp_options)
        print(json.dumps(settings.erp_options, sort_keys=True), flush=True)
    finally:
        instance.close()
        listener.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
