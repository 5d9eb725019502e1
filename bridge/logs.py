"""Log files as the specification names them, rotated, with secrets masked.

* ``LOG_DIR/<WORKSHOP>_api.log`` -- the HTTP side (logger ``oilmat.api``)
* ``LOG_DIR/<WORKSHOP>_create_orderline.log`` -- the worker and the ERP integration
  (logger ``oilmat.orderline``)

Both also go to stderr, which supervisor captures. Nothing logs a password on purpose;
the :class:`RedactSecrets` filter is the second line of defence for the ones we know
(``ERP_PASSWORD``, ``API_TOKEN``) and for anything shaped like ``password=...``.
"""

import logging
import os
import re
import sys
from logging.handlers import RotatingFileHandler

from core.names import file_name

API_LOGGER = "oilmat.api"
ORDERLINE_LOGGER = "oilmat.orderline"
_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"
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
    redact = RedactSecrets([settings.erp_password, settings.api_token, settings.secret_key,
                            *settings.secret_key_fallbacks, *_secret_options(settings),
                            settings.webhook_secret])
    formatter = logging.Formatter(_FORMAT)
    loggers = []
    for name, suffix in ((API_LOGGER, "api"), (ORDERLINE_LOGGER, "create_orderline")):
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        logger.propagate = False
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
            handler.close()
        path = os.path.join(settings.log_dir, f"{file_name(settings.workshop)}_{suffix}.log")
        handlers = [RotatingFileHandler(path, maxBytes=max_bytes, backupCount=backups,
                                        encoding="utf-8")]
        if to_stderr:
            handlers.append(logging.StreamHandler(sys.stderr))
        for handler in handlers:
            handler.setFormatter(formatter)
            handler.addFilter(redact)
            logger.addHandler(handler)
        loggers.append(logger)
    return tuple(loggers)
