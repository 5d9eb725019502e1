"""Run trytond in the foreground until SIGTERM or SIGINT, then exit with status 0.

Runs **inside Tryton's own virtualenv** (``python -m erp_tryton.serve CONFIG DATABASE``); the
stand-up replaces itself with this process, so the PID a test or supervisord holds is
trytond's own. trytond's command line leaves SIGTERM at Python's default (death by signal,
status -15); a stand-up that is told to stop should report a clean stop instead.
"""

import signal
import sys


def main(argv=None):
    config_file, database = argv or sys.argv[1:]
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    # -d loads the database's modules before the port opens: the first login is then as fast
    # as any other, and trytond 8.0.12's lazy-loading bug (FIELD-NOTES) cannot bite.
    sys.argv = ["trytond", "-c", config_file, "-d", database]
    try:
        try:
            from trytond.cli import main as trytond_main
        except ImportError:  # 7.0 has its server in the trytond script only (8.0: trytond.cli)
            import os
            import runpy
            runpy.run_path(os.path.join(sys.prefix, "bin", "trytond"), run_name="__main__")
        else:
            trytond_main()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
