"""gunicorn inside the instance's own process.

The queue file may only ever be opened by one process, and one process per workshop
keeps an idle instance small. gunicorn's arbiter would fork a worker process, so this
module runs gunicorn's threaded worker (``gthread``) directly in the calling process:
gunicorn's HTTP parsing, thread pool, keep-alive and graceful shutdown, without the
fork. The process has no arbiter above it, so the worker's "parent changed" check is
turned off -- supervisor, not gunicorn, restarts a dead instance.

Signals: SIGTERM and SIGINT both stop gracefully (requests in flight are answered);
the caller then drains the order worker and exits 0.

Requests gunicorn refuses before the app sees them (a request line over 4094 bytes, a
header over 8190 bytes, bytes that are not HTTP) are answered in the app's error shape,
JSON ``{"error", "message"}``, instead of gunicorn's HTML page (:meth:`handle_error`).
"""

import json
import os
import signal
import socket

from gunicorn import glogging, util
from gunicorn.app.base import BaseApplication
from gunicorn.http import errors
from gunicorn.sock import create_sockets
from gunicorn.workers.gthread import ThreadWorker

from core.errors import ConfigError
from service.http import error_body


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


#: gunicorn's refusals, most specific first: (exceptions, status, reason, error code).
#: The statuses are gunicorn's own (workers/base.py ``handle_error``).
_REFUSALS = (
    ((errors.InvalidResponseHeader, errors.InvalidResponseHeaderName,
      errors.ConfigurationProblem), 500, "Internal Server Error", "internal_error"),
    ((errors.LimitRequestLine,), 414, "URI Too Long", "uri_too_long"),
    ((errors.LimitRequestHeaders,), 431, "Request Header Fields Too Large",
     "request_header_fields_too_large"),
    ((errors.UnsupportedTransferCoding,), 501, "Not Implemented", "not_implemented"),
    ((errors.ExpectationFailed,), 417, "Expectation Failed", "expectation_failed"),
    ((errors.ForbiddenProxyRequest,), 403, "Forbidden", "forbidden"),
    ((errors.ParseException,), 400, "Bad Request", "bad_request"),
)
_UNEXPECTED = ((), 500, "Internal Server Error", "internal_error")


def refusal(exc):
    """:returns: ``(status, reason, error code, message)`` for an error gunicorn hit"""
    _, status, reason, error = next(
        (entry for entry in _REFUSALS if isinstance(exc, entry[0])), _UNEXPECTED)
    if status >= 500:
        return status, reason, error, "the server hit an unexpected error"
    return status, reason, error, str(exc)[:200]  # str(exc) may quote a 10 KB line


def error_bytes(status, reason, error, message):
    """A whole HTTP/1.1 answer in the app's error shape; the connection closes after it."""
    body = json.dumps(error_body(error, message)).encode("utf-8")
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body


class _InProcessWorker(ThreadWorker):
    def is_parent_alive(self):
        return True  # no arbiter: whoever started us (supervisor, a shell) is not our master

    def handle_quit(self, sig, frame):
        self.handle_exit(sig, frame)  # Ctrl-C drains like SIGTERM does

    def handle_error(self, req, client, addr, exc):
        """Answer an error gunicorn hit outside the app in the app's JSON error shape
        (gunicorn's own writes an HTML page); statuses and logging as gunicorn's."""
        status, reason, error, message = refusal(exc)
        if status >= 500:
            self.log.exception("Error handling request")
        else:
            # the status and code only: the message may quote the request line, and
            # with it a query string that can carry a token
            self.log.warning("Invalid request from ip=%s: %s %s", (addr or ("",))[0],
                             status, error)
        try:
            util.write_nonblock(client, error_bytes(status, reason, error, message))
        except Exception:  # the client may be gone already
            self.log.debug("Failed to send error message.")


class _Logger(glogging.Logger):
    """gunicorn's logger, its handlers dressed as the instance's own (format, masked
    secrets, workshop; see :func:`service.logs.dresser`), also after a reopen.

    :param dress: called with each handler gunicorn sets up; None: gunicorn's format
    """

    def __init__(self, cfg, dress=None):
        self._dress = dress  # before super().__init__, which sets the handlers up
        super().__init__(cfg)

    def _set_handler(self, log, output, fmt, stream=None):
        super()._set_handler(log, output, fmt, stream)
        handler = self._get_gunicorn_handler(log)
        if handler is not None and self._dress is not None:
            self._dress(handler)


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


def serve(wsgi_app, listener, threads=8, graceful_timeout=30, dress_log=None):
    """Serve ``wsgi_app`` on ``listener`` until SIGTERM/SIGINT; then return.

    :param listener: a bound socket from :func:`bind`
    :param dress_log: gives gunicorn's log handlers the instance's format and filters
        (:func:`service.logs.dresser`); None keeps gunicorn's own
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
    log = _Logger(application.cfg, dress_log)
    sockets = create_sockets(application.cfg, log, fds=[listener.fileno()])
    worker = _InProcessWorker(age=1, ppid=os.getppid(), sockets=sockets, app=application,
                              timeout=application.cfg.timeout, cfg=application.cfg, log=log)
    worker.init_process()  # runs until a stop signal, then returns after draining


def request_stop():
    """Ask the server in this process to stop gracefully (used by ``PUT /kill``)."""
    os.kill(os.getpid(), signal.SIGTERM)
