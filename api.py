"""One workshop's OilMat Bridge instance: ``python api.py PORT WORKSHOP``.

Parse, validate, build, run: the HTTP API (gunicorn, in this process) and the order
worker thread, over this workshop's durable queue. Configuration comes from the
environment and ``.env`` (see ``service/settings.py`` and docs/operations.md).

Exit codes: 0 after a graceful stop (SIGTERM, SIGINT or ``PUT /kill``); 2 when the
configuration is bad, or when another process already runs this workshop (it holds the
workshop's data folder, core/hold.py: the one line names its pid, port and since when),
each with a one-line message on stderr, no traceback.
"""

import argparse
import dataclasses
import gc
import logging
import os
import sys

from core.errors import ConfigError
from integrations import AVAILABLE, options_of
from integrations.base import resolve_options


def _parse(argv):
    parser = argparse.ArgumentParser(
        prog="api.py", description="Serve one workshop: OilMat orders -> ERP order lines.")
    parser.add_argument("port", metavar="PORT", help="TCP port for the API")
    parser.add_argument("workshop", metavar="WORKSHOP", help='workshop name, e.g. "Bennys Auto"')
    return parser.parse_args(argv)


def _check_writable(path, setting):
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, ".write-test")
        with open(probe, "w") as handle:
            handle.write("ok")
        os.remove(probe)
    except OSError as exc:
        raise ConfigError(f"{setting} {path!r} is not writable: {exc.strerror or exc}") from None


def build(args):
    """Validate the configuration and open everything; nothing runs yet.

    :returns: ``(settings, instance, app, listener)``
    :raises ConfigError: with a one-line reason
    """
    from service import logs, server
    from service.app import create_app
    from service.instance import Instance
    from service.settings import load_settings
    from core.hold import Hold

    settings = load_settings(args.port, args.workshop)
    if settings.erp_system not in AVAILABLE:
        raise ConfigError(f"ERP_SYSTEM {settings.erp_system!r} is unknown; "
                          f"known: {', '.join(sorted(AVAILABLE))}")
    try:  # the ERP's own options (ERP_OPTION_<NAME>), checked against its declaration
        options = resolve_options(options_of(settings.erp_system), settings.erp_options)
    except ValueError as exc:
        raise ConfigError(f"ERP_SYSTEM {settings.erp_system}: {exc}") from None
    settings = dataclasses.replace(settings, erp_options=options)
    # One workshop, one instance: the hold comes before the port, the logs, the queue or
    # the records (and before the writability probe, which two instances would race on)
    try:
        hold = Hold.take(settings.workshop_queue_dir, "api.py", settings.port)
    except OSError as exc:
        raise ConfigError(f"QUEUE_DIR {settings.workshop_queue_dir!r} is not writable: "
                          f"{exc.strerror or exc}") from None
    try:
        _check_writable(settings.workshop_queue_dir, "QUEUE_DIR")
        _check_writable(settings.log_dir, "LOG_DIR")
        listener = server.bind(settings.host, settings.port)
        _, orderline_log = logs.setup(settings)
        instance = Instance(settings, orderline_logger=orderline_log, hold=hold)
        app = create_app(instance, request_shutdown=server.request_stop)
    except BaseException:
        hold.release()
        raise
    return settings, instance, app, listener


def _started():
    """Start-up made ~300k objects that live as long as the process (modules, classes,
    the app): moved out of the collector's sight, later collections skip them."""
    gc.freeze()
    gc.enable()


def main(argv=None):
    # No cyclic collection while starting: it would only re-scan what the imports just
    # made, all of it kept. Measured from start to /alive: 0.31 -> 0.27 CPU-s, and under
    # the fleet 200 instances start at once on 2 cores.
    gc.disable()
    try:
        args = _parse(sys.argv[1:] if argv is None else argv)
        settings, instance, app, listener = build(args)
    except ConfigError as exc:
        print(f"api.py: error: {exc}", file=sys.stderr)
        return 2
    finally:
        _started()
    from service import logs, server

    log = logging.getLogger("oilmat.api")
    log.info("serving %r on %s:%d with ERP %s at %s", settings.workshop, settings.host,
             settings.port, settings.erp_system, settings.erp_url)
    instance.worker.start()
    instance.webhooks.start()  # delivers the events outbox (and prunes it)
    try:
        server.serve(app, listener, threads=settings.http_threads,
                     dress_log=logs.dresser(settings))
    finally:
        log.info("stopping: draining the worker")
        instance.close()
        log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
