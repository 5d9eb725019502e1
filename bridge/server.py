"""gunicorn inside the instance's own process.

The queue file may only ever be opened by one process, and one process per workshop
keeps an idle instance small. gunicorn's arbiter would fork a worker process, so this
module runs gunicorn's threaded worker (``gthread``) directly in the calling process:
gunicorn's HTTP parsing, thread pool, keep-alive and graceful shutdown, without the
fork. The process has no arbiter above it, so the worker's "parent changed" check is
turned off -- supervisor, not gunicorn, restarts a dead instance.

Signals: SIGTERM and SIGINT both stop gracefully (requests in flight are answered);
the caller then drains the order worker and exits 0.
"""

import os
import signal
import socket

from gunicorn.app.base import BaseApplication
from gunicorn.sock import create_sockets
from gunicorn.workers.gthread import ThreadWorker

from bridge.exceptions import ConfigError


class _Application(BaseApplication):
    def __init__(self, wsgi_app, options):
        self._wsgi_app = wsgi_app
        self._options = options
        super().__init__()

    def load_config(self):
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self):
        return self._wsgi_app


class _InProcessWorker(ThreadWorker):
    def is_parent_alive(self):
        return True  # no arbiter: whoever started us (supervisor, a shell) is not our master

    def handle_quit(self, sig, frame):
        self.handle_exit(sig, frame)  # Ctrl-C drains like SIGTERM does


def bind(host, port):
    """Open the listening socket before anything else, so a taken port is a clean error.

    :raises ConfigError: when the address cannot be bound
    """
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.create_server((host, port), family=family, backlog=256)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def serve(wsgi_app, listener, threads=8, graceful_timeout=30):
    """Serve ``wsgi_app`` on ``listener`` until SIGTERM/SIGINT; then return.

    :param listener: a bound socket from :func:`bind`
    """
    application = _Application(wsgi_app, {
        "bind": [],  # the socket is passed in ready-made
        "worker_class": "gthread",
        "threads": threads,
        "graceful_timeout": graceful_timeout,
        "keepalive": 5,
        "errorlog": "-",
        "accesslog": None,
        "loglevel": "warning",
    })
    log = application.cfg.logger_class(application.cfg)
    sockets = create_sockets(application.cfg, log, fds=[listener.fileno()])
    worker = _InProcessWorker(age=1, ppid=os.getppid(), sockets=sockets, app=application,
                              timeout=application.cfg.timeout, cfg=application.cfg, log=log)
    worker.init_process()  # runs until a stop signal, then returns after draining


def request_stop():
    """Ask the server in this process to stop gracefully (used by ``PUT /kill``)."""
    os.kill(os.getpid(), signal.SIGTERM)
