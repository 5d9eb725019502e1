"""Every setting of the fleet tooling (``manage.py``, the management API), read in one place.

Values come from the environment, with ``.env`` filling in what it does not set, like the
instance's own settings. Paths are made absolute here, because supervisord starts the
programs from the repository root whatever directory the admin ran ``manage.py`` in.
"""

import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path


from core.crypto import parse_fallbacks
from core.ratelimit import DEFAULT_RATE_LIMIT, check_rate_limit
from core.errors import ConfigError
from service.logs import check_log_format
from service.settings import (Settings as InstanceSettings, browser_wait_seconds, check_port,
                              env_number, environment)
from fleet.grid import default_slots
from fleet.grid_install import jar_path

#: the repository root: where api.py and manage.py live
ROOT = Path(__file__).resolve().parent.parent

#: the management API's hold (core/hold.py) in SUPERVISOR_DIR: one per fleet, and how
#: ``manage.py up`` finds one that a killed supervisord left running (fleet/takeover.py)
MANAGEMENT_HOLD = "management.hold"


@dataclass(frozen=True)
class FleetSettings:
    registry_db: Path  # REGISTRY_DB: the SQLite registry of integrations
    supervisor_dir: Path  # SUPERVISOR_DIR: generated supervisord config, socket, pid and logs
    queue_dir: Path  # QUEUE_DIR: handed to every instance; each uses QUEUE_DIR/<workshop>/
    log_dir: Path  # LOG_DIR: handed to every instance
    secret_key: str = field(default="", repr=False)  # SECRET_KEY: same as the instances' (Fernet key or 32+ characters)
    secret_key_fallbacks: tuple = field(default=(), repr=False)  # SECRET_KEY_FALLBACKS: older keys, open only
    management_token: str = field(default="", repr=False)  # MANAGEMENT_TOKEN: Bearer token of the management API
    management_host: str = "127.0.0.1"  # MANAGEMENT_HOST: interface the management API listens on
    management_port: int = 7000  # MANAGEMENT_PORT: port of the management API
    management_rate_limit: str = DEFAULT_RATE_LIMIT  # MANAGEMENT_RATE_LIMIT: requests per token (per address without one)
    instance_host: str = "127.0.0.1"  # INSTANCE_HOST: where the management API reaches the instances
    probe_timeout: float = 1.5  # PROBE_TIMEOUT: seconds one instance gets to answer /alive
    stop_wait_seconds: int = 120  # STOP_WAIT_SECONDS: graceful stop limit; above the slowest order
    python: str = sys.executable  # FLEET_PYTHON: interpreter that runs api.py and the management API
    api_script: Path = ROOT / "api.py"  # API_SCRIPT: the instance's entry point (a fake in unit tests)
    log_format: str = "text"  # LOG_FORMAT: text, or json (one JSON object per line), as the instances'
    # -- the browser pool (fleet/grid.py, docs/fleet.md) --
    browser_pool: str = "local"  # BROWSER_POOL: grid (a Selenium Grid the instances share) or local (a Chromium each)
    browser_slots: int = 2  # BROWSER_SLOTS: sessions of the local Grid at once (default: 1 per core, at least 2)
    grid_port: int = 4444  # GRID_PORT: where the local Grid listens, on 127.0.0.1
    selenium_remote_url: str = field(default="", repr=False)  # SELENIUM_REMOTE_URL: a Grid elsewhere; no local Grid then
    browser_wait_seconds: float = InstanceSettings.browser_wait_seconds  # BROWSER_WAIT_SECONDS: the Grid's queue limit
    browser_parking: bool = True  # BROWSER_PARKING: on (an idle session is wiped and parked for another instance to claim) or off (quit); with a Grid only
    grid_jar: Path = Path(jar_path())  # GRID_JAR: the Grid's jar (scripts/setup_grid.sh caches the pinned one)
    java: str = ""  # GRID_JAVA: the java that runs it (default: java on PATH)
    browser_pool_note: str = ""  # why BROWSER_POOL, unset, came out local (said once by `up`)
    # -- the HTTPS front door (fleet/frontdoor.py, docs/operations.md) --
    public_port: int | None = None  # PUBLIC_PORT: nginx serves the fleet over HTTPS here (unset: no front door)
    tls_cert: Path | None = None  # TLS_CERT: PEM certificate (chain) for PUBLIC_PORT; unset: a self-signed one in SUPERVISOR_DIR/tls
    tls_key: Path | None = None  # TLS_KEY: its PEM private key; with TLS_CERT or not at all
    nginx: str = "/usr/sbin/nginx"  # NGINX: the nginx that runs the front door (Debian's, scripts/setup.sh)

    @property
    def browser_park_dir(self):
        """Where the instances park idle Grid sessions for each other
        (:mod:`integrations.browser.parking`); None without a Grid or with ``BROWSER_PARKING=off``."""
        if self.browser_pool != "grid" or not self.browser_parking:
            return None
        return self.supervisor_dir / "parked-browsers"

    @property
    def supervisord_conf(self):
        return self.supervisor_dir / "supervisord.conf"

    @property
    def socket_path(self):
        return self.supervisor_dir / "supervisor.sock"


def _path(env, name, default):
    return Path(env.get(name) or default).expanduser().resolve()


def load_fleet_settings(env=None, dotenv=True):
    """Build :class:`FleetSettings`.

    :param env: a mapping to read instead of ``os.environ`` (tests)
    :param dotenv: read ``.env`` into the environment first
    :raises ConfigError: with a one-line message on a bad value
    """
    env = environment(env, dotenv)
    port = check_port(env_number(env, "MANAGEMENT_PORT", FleetSettings.management_port, int),
                      "MANAGEMENT_PORT")
    pool = _browser_pool(env, port)
    return FleetSettings(
        **pool,
        **_front_door(env, port, pool["grid_port"]),
        registry_db=_path(env, "REGISTRY_DB", "task_queue/integrations.db"),
        supervisor_dir=_path(env, "SUPERVISOR_DIR", "task_queue/supervisor"),
        queue_dir=_path(env, "QUEUE_DIR", "task_queue"),
        log_dir=_path(env, "LOG_DIR", "logs"),
        secret_key=env.get("SECRET_KEY", ""),
        secret_key_fallbacks=parse_fallbacks(env.get("SECRET_KEY_FALLBACKS", "")),
        management_token=env.get("MANAGEMENT_TOKEN", ""),
        management_host=_loopback_with_front_door(env, "MANAGEMENT_HOST"),
        management_port=port,
        management_rate_limit=check_rate_limit(
            "MANAGEMENT_RATE_LIMIT", env.get("MANAGEMENT_RATE_LIMIT", "") or DEFAULT_RATE_LIMIT),
        instance_host=_loopback_with_front_door(env, "INSTANCE_HOST"),
        probe_timeout=env_number(env, "PROBE_TIMEOUT", FleetSettings.probe_timeout, float),
        stop_wait_seconds=env_number(env, "STOP_WAIT_SECONDS", FleetSettings.stop_wait_seconds, int),
        python=env.get("FLEET_PYTHON", "") or FleetSettings.python,
        api_script=_path(env, "API_SCRIPT", FleetSettings.api_script),
        log_format=check_log_format(env.get("LOG_FORMAT", "")),
    )


def _browser_pool(env, management_port):
    """The browser pool settings (see docs/fleet.md, "The browser pool").

    ``BROWSER_POOL`` unset means ``grid`` when there is a Grid to use: the admin's
    ``SELENIUM_REMOTE_URL``, or Java and the pinned jar on this machine (what
    ``scripts/setup_grid.sh`` installs); else ``local``, with a note for ``up`` to print.
    """
    remote = env.get("SELENIUM_REMOTE_URL", "").strip()
    if remote and not remote.startswith(("http://", "https://")):
        raise ConfigError("SELENIUM_REMOTE_URL must be an http:// or https:// URL")
    jar = _path(env, "GRID_JAR", jar_path())
    java = env.get("GRID_JAVA", "") or shutil.which("java") or ""
    has_grid = bool(java) and jar.is_file()
    pool, note = env.get("BROWSER_POOL", "").strip().lower(), ""
    if pool not in ("", "grid", "local"):
        raise ConfigError(f"BROWSER_POOL must be grid or local, got {env.get('BROWSER_POOL')!r}")
    if not pool:
        pool = "grid" if remote or has_grid else "local"
        if pool == "local":
            note = (f"browsers: one Chromium per busy instance (BROWSER_POOL=local): "
                    f"{'no java on PATH' if not java else f'no Grid jar at {jar}'}; "
                    "scripts/setup_grid.sh installs both")
    if pool == "local" and remote:
        raise ConfigError("BROWSER_POOL=local and SELENIUM_REMOTE_URL contradict each other: "
                          "unset one (a remote Grid is BROWSER_POOL=grid)")
    if pool == "grid" and not remote and not has_grid:
        raise ConfigError("BROWSER_POOL=grid needs Java and the Selenium Grid jar "
                          f"({'no java on PATH' if not java else f'no jar at {jar}'}): "
                          "run scripts/setup_grid.sh, or set BROWSER_POOL=local")
    slots = env_number(env, "BROWSER_SLOTS", default_slots(), int)
    if not 1 <= slots <= 1000:
        raise ConfigError(f"BROWSER_SLOTS must be between 1 and 1000, got {slots}")
    grid_port = env_number(env, "GRID_PORT", FleetSettings.grid_port, int)
    if not 1 <= grid_port <= 65535 or grid_port == management_port:
        raise ConfigError(f"GRID_PORT must be between 1 and 65535 and not MANAGEMENT_PORT, "
                          f"got {grid_port}")
    wait = browser_wait_seconds(env)
    parking = env.get("BROWSER_PARKING", "on").strip().lower() or "on"
    if parking not in ("on", "off"):
        raise ConfigError(f"BROWSER_PARKING must be on or off, got {env.get('BROWSER_PARKING')!r}")
    return dict(browser_pool=pool, browser_slots=slots, grid_port=grid_port,
                selenium_remote_url=remote, browser_wait_seconds=wait, grid_jar=jar,
                java=java, browser_pool_note=note, browser_parking=parking == "on")


def _front_door(env, management_port, grid_port):
    """The front door's settings: ``PUBLIC_PORT`` and the certificate's files.

    :raises ConfigError: a port that is no port or another part's, half a certificate
        (a cert without its key), a file that cannot be read
    """
    raw = env.get("PUBLIC_PORT", "").strip()
    if not raw:
        return {}
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise ConfigError(f"PUBLIC_PORT must be a port number between 1 and 65535, got {raw!r}")
    port = int(raw)
    if port in (management_port, grid_port):
        raise ConfigError(f"PUBLIC_PORT {port} is taken by "
                          f"{'MANAGEMENT_PORT' if port == management_port else 'GRID_PORT'}")
    cert, key = (env.get(name, "").strip() for name in ("TLS_CERT", "TLS_KEY"))
    if bool(cert) != bool(key):
        raise ConfigError("TLS_CERT and TLS_KEY go together: set both (PEM files), or neither "
                          "for a self-signed certificate")
    paths = {}
    for name, value in (("TLS_CERT", cert), ("TLS_KEY", key)):
        if value:
            path = Path(value).expanduser().resolve()
            if not path.is_file() or not os.access(path, os.R_OK):
                raise ConfigError(f"{name} {path}: no such file, or not readable by this user")
            paths[name.lower()] = path
    return dict(public_port=port, nginx=env.get("NGINX", "") or FleetSettings.nginx, **paths)


def _loopback_with_front_door(env, name):
    """``MANAGEMENT_HOST``, ``INSTANCE_HOST``: behind a front door only 127.0.0.1, so
    nothing reaches the fleet but through it (the instances bind there too, see
    fleet/supervisor_conf.py)."""
    value = env.get(name, "") or getattr(FleetSettings, name.lower())
    if env.get("PUBLIC_PORT", "").strip() and value != "127.0.0.1":
        raise ConfigError(f"{name}={value} and PUBLIC_PORT contradict each other: behind the "
                          "front door the fleet listens on 127.0.0.1 only (unset "
                          f"{name})")
    return value


def require(settings, *names):
    """:raises ConfigError: when one of the named secret settings is empty"""
    why = {
        "secret_key": "SECRET_KEY is not set: ERP credentials and instance tokens are encrypted with it",
        "management_token": "MANAGEMENT_TOKEN is not set: the management API needs its own token",
    }
    for name in names:
        if not getattr(settings, name):
            raise ConfigError(why[name])
