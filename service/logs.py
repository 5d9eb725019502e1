"""Log files as the specification names them, rotated, with secrets masked.

* ``LOG_DIR/<WORKSHOP>_api.log`` -- the HTTP side (logger ``oilmat.api``)
* ``LOG_DIR/<WORKSHOP>_create_orderline.log`` -- the worker and the ERP integration
  (logger ``oilmat.orderline``)

Both also go to stderr, which supervisor captures, and so does whatever else logs in
the process (Flask's app logger writes to the api log too; gunicorn's own log and the
libraries' warnings to stderr). Nothing logs a password on purpose; the
:class:`RedactSecrets` filter is the second line of defence for the ones we know
(``ERP_PASSWORD``, ``API_TOKEN``) and for anything shaped like ``password=...``.

``LOG_FORMAT=json`` writes every line as one JSON object (:class:`JsonFormatter`) with
``workshop`` always, and ``uniqueid`` on every line about one order: the worker passes
it as ``extra``; lines logged during a visit (the integration's too) get the visit's
``worksheet`` and ``uniqueids``, and ``uniqueid`` when they name one of them
(:func:`core.logcontext.about_orders`, :class:`OrderFields`).
"""

import json
import logging
import os
import re
import sys
from datetime import datetime, timezone
from logging.handlers import RotatingFileHandler

from core.errors import ConfigError
from core.logcontext import current_visit
from core.names import file_name

API_LOGGER = "oilmat.api"
ORDERLINE_LOGGER = "oilmat.orderline"
#: Flask's logger of the instance's app (``Flask("oilmat_bridge")``): it joins the api log
FLASK_LOGGER = "oilmat_bridge"
_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"
#: ``LOG_FORMAT`` values; the first is the default
LOG_FORMATS = ("text", "json")
_PASSWORD_SHAPED = re.compile(r"""(?i)(password["']?\s*[:=]\s*["']?)[^\s"',}]+""")


class RedactSecrets(logging.Filter):
    """Replaces known secrets and ``password=...`` values in every record's message."""

    def __init__(self, secrets=()):
        super().__init__()
        self.secrets = [s for s in secrets if s and len(s) >= 3]

    def filter(self, record):
        message = record.getMessage()
        clean = _PASSWORD_SHAPED.sub(r"\1********", message)
        for secret in self.secrets:
            clean = clean.replace(secret, "********")
        if clean != message:
            record.msg, record.args = clean, None
        return True


def check_log_format(value):
    """``LOG_FORMAT``: ``text`` (default, also when empty) or ``json``.

    :raises ConfigError: for any other value
    """
    value = (value or LOG_FORMATS[0]).strip().lower()
    if value not in LOG_FORMATS:
        raise ConfigError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, got {value!r}")
    return value


class OrderFields(logging.Filter):
    """Puts ``workshop`` on every record, and during a visit (:func:`core.logcontext.about_orders`) its
    ``worksheet`` and ``uniqueids``, and ``uniqueid`` when the line's arguments name
    exactly one of its orders (the integrations write ``"order %s"``)."""

    def __init__(self, workshop):
        super().__init__()
        self.workshop = workshop

    def filter(self, record):
        record.workshop = self.workshop
        visit = current_visit()
        if visit is not None and not hasattr(record, "uniqueid"):
            worksheet, uniqueids = visit
            if not hasattr(record, "uniqueids"):
                record.uniqueids = list(uniqueids)
            if not hasattr(record, "worksheet"):
                record.worksheet = worksheet
            args = record.args if isinstance(record.args, tuple) else ()
            named = {a for a in args if isinstance(a, str) and a in uniqueids}
            if len(uniqueids) == 1 or len(named) == 1:
                record.uniqueid = (named or set(uniqueids)).pop()
        return True


#: record attributes the JSON lines carry when a record has them
_JSON_EXTRAS = ("workshop", "uniqueid", "uniqueids", "worksheet")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (ISO 8601 UTC), ``level``, ``logger``,
    ``thread``, ``message``, then ``workshop``, ``uniqueid``, ``uniqueids``,
    ``worksheet`` where the record has them, and ``exception`` with the traceback."""

    def format(self, record):
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(
                timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "thread": record.threadName,
            "message": record.getMessage(),
        }
        for name in _JSON_EXTRAS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # one line whatever the message holds: json.dumps escapes newlines
        return json.dumps(entry, ensure_ascii=False, default=str)


def formatter(log_format):
    """:returns: the formatter of a ``LOG_FORMAT`` value"""
    return JsonFormatter() if log_format == "json" else logging.Formatter(_FORMAT)


def dresser(settings):
    """:returns: a function that gives a handler this instance's format and filters (the
        secrets masked, the workshop and order fields added); gunicorn's handlers get it
        too (:mod:`service.server`)"""
    redact = RedactSecrets([settings.erp_password, settings.api_token, settings.secret_key,
                            *settings.secret_key_fallbacks, *_secret_options(settings),
                            settings.webhook_secret])
    fields = OrderFields(settings.workshop)
    chosen = formatter(settings.log_format)

    def dress(handler):
        handler.setFormatter(chosen)
        handler.addFilter(fields)  # before redact: it reads the record's arguments
        handler.addFilter(redact)
        return handler

    return dress


def _secret_options(settings):
    """Values of the ERP's options that it declares secret (see integrations.base.Option)."""
    from integrations import AVAILABLE, options_of

    if settings.erp_system not in AVAILABLE:
        return []
    secret = {o.name for o in options_of(settings.erp_system) if o.secret}
    return [v for k, v in settings.erp_options.items() if k in secret]


def setup(settings, to_stderr=True, max_bytes=5 * 1024 * 1024, backups=5):
    """Attach the rotating files (and stderr) to the api and orderline loggers.

    :returns: ``(api_logger, orderline_logger)``
    """
    os.makedirs(settings.log_dir, exist_ok=True)
    dress = dresser(settings)
    loggers = []
    for names, suffix in (((API_LOGGER, FLASK_LOGGER), "api"),
                          ((ORDERLINE_LOGGER,), "create_orderline")):
        path = os.path.join(settings.log_dir, f"{file_name(settings.workshop)}_{suffix}.log")
        handlers = [RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups,
                                        encoding="utf-8")]
        if to_stderr:
            handlers.append(logging.StreamHandler(sys.stderr))
        for name in names:
            _replace_handlers(logging.getLogger(name), [dress(h) for h in handlers])
        loggers.append(logging.getLogger(names[0]))
    if to_stderr:  # the rest of the process (libraries' warnings) in the same format
        root = logging.getLogger()
        for handler in [h for h in root.handlers if getattr(h, "oilmat", False)]:
            root.removeHandler(handler)
        handler = dress(logging.StreamHandler(sys.stderr))
        handler.oilmat = True
        root.addHandler(handler)
    return tuple(loggers)


def _replace_handlers(logger, handlers):
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        if handler not in handlers:
            handler.close()
    for handler in handlers:
        logger.addHandler(handler)
