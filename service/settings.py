"""Every setting of one instance, read in one place.

Values come from the environment, with a ``.env`` file in the working directory
filling in what the environment does not set (python-dotenv; the environment wins).
The names are fixed: operators and the fleet tooling set them.

The fleet hands an instance its secrets sealed (``API_TOKEN_SEALED``,
``ERP_CREDENTIALS_SEALED``, ``WEBHOOK_SECRET_SEALED``, and ``ERP_OPTIONS_SEALED`` for the
ERP options declared secret: Fernet tokens under ``SECRET_KEY``, as the registry stores them), so supervisor's configuration files never hold a secret in plaintext; the
plain ``API_TOKEN``/``ERP_USERNAME``/``ERP_PASSWORD`` are for running by hand.
"""

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import load_dotenv

from core.checks import check_secret as check_login, check_url
from core.crypto import check_secret, parse_fallbacks
from core.ratelimit import DEFAULT_RATE_LIMIT, check_rate_limit
from core.errors import ConfigError
from core.names import file_name
from service.fields import IDENTIFIER_PATTERN
from service.logs import check_log_format
from service.unseal import open_sealed_env, sealed_in


def environment(env, dotenv):
    """The settings' source: ``env`` (tests), else ``os.environ`` after ``.env`` was read
    into it (``dotenv``; what is set already wins). Shared with the fleet's settings."""
    if env is None:
        if dotenv:
            load_dotenv(override=False)
        env = os.environ
    return env


def check_port(port, name):
    """:raises ConfigError: unless ``port`` (an int) is a TCP port number"""
    if not 1 <= port <= 65535:
        raise ConfigError(f"{name} must be between 1 and 65535, got {port}")
    return port


def env_number(env, name, default, kind=float):
    """Read ``name`` from ``env`` as ``kind`` (int or float); ``default`` when unset.

    Shared with the fleet's settings, so both answer a bad value the same way.

    :raises ConfigError: with a one-line message when the value is not a number
    """
    raw = env.get(name, "")
    if raw == "":
        return default
    try:
        return kind(raw)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise ConfigError(f"{name} must be {what}, got {raw!r}") from None


def _max_product_amount(env):
    """``MAX_PRODUCT_AMOUNT``: at least 1 litre with at most 3 decimals, so that the amount
    rule can be published as a pattern (see :func:`service.fields.amount_pattern`)."""
    value = env_number(env, "MAX_PRODUCT_AMOUNT", Settings.max_product_amount)
    if not 1 <= value <= 1e9 or round(value, 3) != value:
        raise ConfigError("MAX_PRODUCT_AMOUNT must be between 1 and 1000000000 litres with "
                          f"at most 3 decimals, got {env.get('MAX_PRODUCT_AMOUNT')!r}")
    return value


@dataclass(frozen=True)
class Settings:
    workshop: str  # the one workshop this instance serves (from the command line)
    port: int  # TCP port of the API (from the command line)
    api_token: str = field(repr=False)  # API_TOKEN: Bearer token for every endpoint but /alive
    secret_key: str = field(repr=False)  # SECRET_KEY: Fernet key or 32+ characters; seals credentials at rest
    secret_key_fallbacks: tuple = field(default=(), repr=False)  # SECRET_KEY_FALLBACKS: older keys, open only
    erp_system: str = "erp_sim"  # ERP_SYSTEM: which module under integrations/
    erp_url: str = "http://127.0.0.1:5080"  # ERP_URL: base URL of the workshop's ERP
    erp_username: str = ""  # ERP_USERNAME: login used when an order carries none
    erp_password: str = field(default="", repr=False)  # ERP_PASSWORD: its password
    queue_dir: str = "task_queue"  # QUEUE_DIR: this workshop's files go in a sub-folder
    log_dir: str = "logs"  # LOG_DIR: <workshop>_api.log, <workshop>_create_orderline.log
    log_format: str = "text"  # LOG_FORMAT: text, or json for one JSON object per line (service/logs.py)
    host: str = "127.0.0.1"  # HOST: interface the API listens on
    http_threads: int = 8  # HTTP_THREADS: request threads in the one gunicorn worker
    max_attempts: int = 5  # MAX_ATTEMPTS: tries per order before a transient error is final
    max_product_amount: float = 1000.0  # MAX_PRODUCT_AMOUNT: most litres one order line may carry (>= 1, <= 3 decimals)
    rate_limit: str = DEFAULT_RATE_LIMIT  # RATE_LIMIT: requests per token (per address without one), e.g. 600/minute
    retry_base_seconds: float = 2.0  # RETRY_BASE_SECONDS: first backoff; doubles per attempt
    retry_max_seconds: float = 60.0  # RETRY_MAX_SECONDS: cap on one backoff
    retry_budget_seconds: float = 900.0  # RETRY_BUDGET_SECONDS: total time an order may spend retrying
    batch_size: int = 100  # BATCH_SIZE: orders taken at once; same-worksheet orders share a visit
    browser_idle_seconds: float = 60.0  # BROWSER_IDLE_SECONDS: close a local browser after this idle time
    browser_pool_grace_seconds: float = 2.0  # BROWSER_POOL_GRACE_SECONDS: give a remote (pool) session back after this idle time
    browser_wait_seconds: float = 60.0  # BROWSER_WAIT_SECONDS: longest wait for a pool's free slot; then ERP_UNAVAILABLE
    browser_recycle_after_orders: int = 200  # BROWSER_RECYCLE_AFTER_ORDERS: fresh browser after this many lines (0: never)
    page_load_timeout: float = 20.0  # PAGE_LOAD_TIMEOUT: seconds for one ERP page load
    wait_timeout: float = 10.0  # WAIT_TIMEOUT: seconds for one element or page state
    selenium_remote_url: str = ""  # SELENIUM_REMOTE_URL: run the browser on a remote WebDriver/Grid
    browser_park_dir: str = ""  # BROWSER_PARK_DIR: with a Grid, where idle sessions are parked for other instances (set by manage.py up; empty: none)
    erp_options: dict = field(default_factory=dict, repr=False)  # ERP_OPTION_<NAME>: the ERP's own options (integrations.base.Option)
    webhook_url: str = ""  # WEBHOOK_URL: every order event is POSTed here (Standard Webhooks); empty: no webhook
    webhook_secret: str = field(default="", repr=False)  # WEBHOOK_SECRET: whsec_<base64 key of 24-64 bytes>; signs each delivery
    webhook_backoff_seconds: float = 5.0  # WEBHOOK_BACKOFF_SECONDS: wait after a failed delivery; doubles per failure
    webhook_backoff_max_seconds: float = 3600.0  # WEBHOOK_BACKOFF_MAX_SECONDS: cap on one wait
    webhook_timeout_seconds: float = 15.0  # WEBHOOK_TIMEOUT_SECONDS: for the whole of one delivery (connect to last byte)
    event_retention_days: float = 7.0  # EVENT_RETENTION_DAYS: events are kept at least this long, and until acknowledged
    event_max_days: float = 90.0  # EVENT_MAX_DAYS: any event older is pruned, acknowledged or not (0: never)
    probe_worksheet: str = ""  # PROBE_WORKSHEET: worksheet the ERP probe opens (read only); empty: the last one written to
    probe_interval_seconds: float = 900.0  # PROBE_INTERVAL_SECONDS: probe the ERP's screens this often while idle (0: only at start and on demand)

    @property
    def workshop_queue_dir(self):
        """``QUEUE_DIR/<workshop>``: the queue file and the order records."""
        return str(Path(self.queue_dir) / file_name(self.workshop))

    @property
    def artifact_dir(self):
        """Where failure screenshots and page HTML go."""
        return str(Path(self.log_dir) / "artifacts" / file_name(self.workshop))


def erp_options(env):
    """:returns: ``{name: value}`` of every ``ERP_OPTION_<NAME>`` set (and not empty);
    which names the ERP takes is checked against its declaration at start (api.py)."""
    prefix = "ERP_OPTION_"
    return {key[len(prefix):].lower(): value for key, value in env.items()
            if key.startswith(prefix) and len(key) > len(prefix) and value != ""}


def _webhook(env, sealed_secret=None):
    """``WEBHOOK_URL`` and ``WEBHOOK_SECRET``: both or neither; a bad one stops the
    instance (a message that never repeats the secret).

    :param sealed_secret: the secret opened from ``WEBHOOK_SECRET_SEALED``, if any
    :returns: ``(url, secret)``
    """
    from service.webhooks import parse_secret

    url = env.get("WEBHOOK_URL", "")
    secret = sealed_secret or env.get("WEBHOOK_SECRET", "")
    if url and not secret:
        raise ConfigError("WEBHOOK_URL is set but WEBHOOK_SECRET is not: every delivery is signed")
    if secret and not url:
        raise ConfigError("WEBHOOK_SECRET is set but WEBHOOK_URL is not")
    if url:
        _checked(check_url, "WEBHOOK_URL", url)
        try:
            parse_secret(secret)
        except ValueError as exc:
            raise ConfigError(f"WEBHOOK_SECRET {exc}") from None
    return url, secret


def _checked(check, name, value):
    """``value`` of the setting ``name`` by one of :mod:`core.checks` (the fleet's own
    checks of the same values, with the same message).

    :raises ConfigError: ``<NAME> <the rule it breaks>``; never the value
    """
    try:
        return check(value)
    except ValueError as exc:
        raise ConfigError(f"{name} {exc}") from None


def _positive(env, name, default, zero=False):
    """A number of seconds or days that must be more than 0 (or 0 too, with ``zero``)."""
    value = env_number(env, name, default)
    if not (value >= 0 if zero else value > 0) or value != value or value == float("inf"):
        least = "0 or more" if zero else "more than 0"
        raise ConfigError(f"{name} must be {least}, got {env.get(name)!r}")
    return value


def _probe_worksheet(env):
    """``PROBE_WORKSHEET``: empty, or a worksheet number as an order's (service/fields.py)."""
    value = env.get("PROBE_WORKSHEET", "").strip()
    if value and not re.fullmatch(IDENTIFIER_PATTERN.strip("^$"), value):
        raise ConfigError("PROBE_WORKSHEET must be a worksheet number: 1-32 letters, digits "
                          f"or . _ / - starting with a letter or digit, got {value!r}")
    return value


def browser_wait_seconds(env):
    """``BROWSER_WAIT_SECONDS``, read alike by the instance (its wait for a pool's slot)
    and the fleet (its Grid's queue limit)."""
    value = env_number(env, "BROWSER_WAIT_SECONDS", Settings.browser_wait_seconds)
    if not 1 <= value <= 3600:
        raise ConfigError("BROWSER_WAIT_SECONDS must be between 1 and 3600, "
                          f"got {env.get('BROWSER_WAIT_SECONDS')!r}")
    return value


def load_settings(port, workshop, env=None, dotenv=True):
    """Build :class:`Settings` for one instance.

    :param port: the port as given on the command line (string or int)
    :param workshop: the workshop name as given on the command line
    :param env: a mapping to read instead of ``os.environ`` (tests)
    :param dotenv: read ``.env`` into the environment first
    :raises ConfigError: with a one-line message on any bad value
    """
    env = environment(env, dotenv)
    try:
        port = check_port(int(port), "PORT")
    except (TypeError, ValueError):
        raise ConfigError(f"PORT must be a whole number, got {port!r}") from None
    if not workshop or not workshop.strip():
        raise ConfigError("WORKSHOP must not be empty")
    secret_key = env.get("SECRET_KEY", "")
    if not secret_key:
        raise ConfigError("SECRET_KEY is not set: credentials are encrypted at rest with it")
    check_secret(secret_key)
    fallbacks = parse_fallbacks(env.get("SECRET_KEY_FALLBACKS", ""))
    api_token = env.get("API_TOKEN", "")
    username, password = env.get("ERP_USERNAME", ""), env.get("ERP_PASSWORD", "")
    options = erp_options(env)
    sealed_webhook_secret = None
    if sealed_in(env):
        # Opened by fleet.launch or in a child process, so this one never loads
        # cryptography for them (~7 MB of an idle instance's RSS); see service/unseal.py.
        opened = open_sealed_env(env)
        api_token = opened.get("api_token", api_token)
        username = opened.get("username", username)
        password = opened.get("password", password)
        options.update(opened.get("options", {}))  # the secret ones (ERP_OPTIONS_SEALED)
        sealed_webhook_secret = opened.get("webhook_secret")
    if not api_token:
        raise ConfigError("API_TOKEN is not set: every endpoint but /alive needs it")
    _checked(check_login, "ERP_USERNAME", username)
    _checked(check_login, "ERP_PASSWORD", password)
    erp_url = (env.get("ERP_URL", "") or Settings.erp_url).rstrip("/")
    _checked(check_url, "ERP_URL", erp_url)
    webhook_url, webhook_secret = _webhook(env, sealed_webhook_secret)
    return Settings(
        workshop=workshop,
        port=port,
        api_token=api_token,
        secret_key=secret_key,
        secret_key_fallbacks=fallbacks,
        erp_system=env.get("ERP_SYSTEM", "") or Settings.erp_system,
        erp_url=erp_url,
        erp_username=username,
        erp_password=password,
        queue_dir=env.get("QUEUE_DIR", "") or Settings.queue_dir,
        log_dir=env.get("LOG_DIR", "") or Settings.log_dir,
        log_format=check_log_format(env.get("LOG_FORMAT", "")),
        host=env.get("HOST", "") or Settings.host,
        http_threads=env_number(env, "HTTP_THREADS", Settings.http_threads, int),
        max_attempts=env_number(env, "MAX_ATTEMPTS", Settings.max_attempts, int),
        max_product_amount=_max_product_amount(env),
        rate_limit=check_rate_limit("RATE_LIMIT", env.get("RATE_LIMIT", "") or DEFAULT_RATE_LIMIT),
        retry_base_seconds=env_number(env, "RETRY_BASE_SECONDS", Settings.retry_base_seconds),
        retry_max_seconds=env_number(env, "RETRY_MAX_SECONDS", Settings.retry_max_seconds),
        retry_budget_seconds=env_number(env, "RETRY_BUDGET_SECONDS", Settings.retry_budget_seconds),
        batch_size=max(1, env_number(env, "BATCH_SIZE", Settings.batch_size, int)),
        browser_idle_seconds=env_number(env, "BROWSER_IDLE_SECONDS", Settings.browser_idle_seconds),
        browser_pool_grace_seconds=_positive(env, "BROWSER_POOL_GRACE_SECONDS",
                                             Settings.browser_pool_grace_seconds, zero=True),
        browser_wait_seconds=browser_wait_seconds(env),
        browser_recycle_after_orders=env_number(
            env, "BROWSER_RECYCLE_AFTER_ORDERS", Settings.browser_recycle_after_orders, int),
        page_load_timeout=env_number(env, "PAGE_LOAD_TIMEOUT", Settings.page_load_timeout),
        wait_timeout=env_number(env, "WAIT_TIMEOUT", Settings.wait_timeout),
        selenium_remote_url=env.get("SELENIUM_REMOTE_URL", ""),
        browser_park_dir=env.get("BROWSER_PARK_DIR", "").strip(),
        erp_options=options,
        webhook_url=webhook_url,
        webhook_secret=webhook_secret,
        webhook_backoff_seconds=_positive(env, "WEBHOOK_BACKOFF_SECONDS",
                                          Settings.webhook_backoff_seconds),
        webhook_backoff_max_seconds=_positive(env, "WEBHOOK_BACKOFF_MAX_SECONDS",
                                              Settings.webhook_backoff_max_seconds),
        webhook_timeout_seconds=_positive(env, "WEBHOOK_TIMEOUT_SECONDS",
                                          Settings.webhook_timeout_seconds),
        event_retention_days=_positive(env, "EVENT_RETENTION_DAYS",
                                       Settings.event_retention_days, zero=True),
        event_max_days=_positive(env, "EVENT_MAX_DAYS", Settings.event_max_days, zero=True),
        probe_worksheet=_probe_worksheet(env),
        probe_interval_seconds=_positive(env, "PROBE_INTERVAL_SECONDS",
                                         Settings.probe_interval_seconds, zero=True),
    )
