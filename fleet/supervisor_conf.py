"""supervisord configuration, generated from the registry.

Layout under ``SUPERVISOR_DIR`` (see ``supervisor/README.md``)::

    supervisord.conf        from supervisor/supervisord.conf.in (with supervisor/grid.conf.in
                            when the fleet runs its own browser pool, fleet/grid.py)
    grid.toml, grid.pid     that Grid's configuration, and its process group
    programs/<program>.conf one per active integration, from supervisor/program.conf.in
    programs/<program>.json its launch file: the instance's command line and environment
    supervisor.sock         XML-RPC (mode 0700)
    supervisord.pid, supervisord.log, logs/<program>.log

Nothing a user typed is written into supervisor's files. Its format cannot carry text
safely: it expands ``%(name)s`` in values, and before that replaces every ``%(here)s``
with the file's folder even when escaped as ``%%(here)s`` (``expand_here`` in
supervisor/options.py is a plain ``str.replace``), which left ``%/path`` behind and
broke the parse of the whole configuration, every workshop's, for one name or URL. So a
program section holds only its ASCII program name, paths of this installation and
``python -m fleet.launch programs/<program>.json``; the workshop name, its ERP settings
and its sealed secrets are in that JSON file, and :mod:`fleet.launch` execs api.py with
them. A digest of the file is in the section, so supervisord sees a change to it.

No secret is written in plaintext: an instance gets its API token, ERP login and secret
ERP options as the registry's own Fernet tokens (``API_TOKEN_SEALED``,
``ERP_CREDENTIALS_SEALED``, ``ERP_OPTIONS_SEALED``), and
``SECRET_KEY`` and ``MANAGEMENT_TOKEN`` reach the management API through supervisord's
own environment (``manage.py up`` runs it with them), never through a file; an instance
inherits ``SECRET_KEY`` only (:data:`fleet.launch.FLEET_ONLY`), the Grid neither. The directory
is 0700 and every file 0600 all the same.
"""

import hashlib
import json
import os
import re
import shlex
from pathlib import Path
from string import Template

from core.errors import ConfigError
from core.names import file_name, program_name
from fleet import frontdoor, grid
from fleet.files import write_private
from fleet.settings import ROOT
from integrations import AVAILABLE, options_of

TEMPLATES = ROOT / "supervisor"

#: supervisord ends a value at whitespace followed by ";" or "#" (an inline comment)
_INLINE_COMMENT = re.compile(r"\s[;#]")


def check_config_value(value):
    """Make sure supervisor's config parser hands ``value`` to the program unchanged.

    supervisor splits ``environment=`` with a non-POSIX shlex and strips quote characters
    from both ends of each value, and its ini parser cuts inline comments and lines. Only
    this installation's own paths and settings go through here (see the module's
    docstring); the message never contains the value all the same.

    :raises ValueError: for a value that cannot survive that
    """
    if any(c in value for c in "\r\n\x00"):
        raise ValueError("must not contain line breaks")
    if _INLINE_COMMENT.search(value):
        raise ValueError("must not contain a space followed by ';' or '#'")
    if '"' in value and "'" in value:
        raise ValueError("must not contain both kinds of quote (' and \")")
    if value and (value[0] in "'\"" or value[-1] in "'\""):
        raise ValueError("must not start or end with a quote")
    return value


def _escape(text):
    # supervisor expands %(here)s-style fields in every value: a literal % is %%. Except
    # %(here)s itself, which it replaces before expanding, escaped or not
    if "%(here)s" in text:
        raise ConfigError(f"a path or setting of the fleet must not contain '%(here)s': {text}")
    return text.replace("%", "%%")


def quote_env_value(value):
    check_config_value(value)
    quote = "'" if '"' in value else '"'
    return f"{quote}{_escape(value)}{quote}"


def format_environment(env):
    """``{"A": "x, y"}`` -> ``A="x, y"`` in supervisor's ``environment=`` syntax."""
    return ",".join(f"{key}={quote_env_value(str(value))}" for key, value in env.items())


def format_command(args):
    """Arguments -> a ``command=`` line that supervisor's ``shlex.split`` gives back."""
    args = [str(a) for a in args]
    for arg in args:
        check_config_value(arg)
    return _escape(shlex.join(args))


def option_environment(integration):
    """The ERP options of one instance: ``ERP_OPTION_<NAME>`` for each that is not secret,
    and the secret ones as the registry's tokens in ``ERP_OPTIONS_SEALED`` (a JSON object
    ``{name: token}``; ``service.unseal`` opens them at start).

    Every option any ERP declares is set, "" when this integration has none: an empty
    value makes the instance use the ERP's default, where a stray ``.env`` would hand it
    another workshop's database, say.
    """
    names = {option.name for erp in AVAILABLE for option in options_of(erp)}
    names.update(integration.options)
    plain = integration.plain_options()
    sealed = integration.sealed_options()
    env = {"ERP_OPTION_" + name.upper(): plain.get(name, "") for name in sorted(names)}
    env["ERP_OPTIONS_SEALED"] = json.dumps(sealed, sort_keys=True) if sealed else ""
    return env


def instance_environment(settings, integration):
    """The settings one instance runs with (see ``service/settings.py``).

    Every key is set, also to "": an empty value in the environment keeps a stray
    ``.env`` from filling in another workshop's login. The secrets stay sealed; the
    instance opens them with the ``SECRET_KEY`` it inherits from supervisord.
    """
    return {
        "API_TOKEN": "",
        "API_TOKEN_SEALED": integration.api_token,
        "ERP_SYSTEM": integration.erp_system,
        "ERP_URL": integration.erp_url,
        "ERP_USERNAME": "",
        "ERP_PASSWORD": "",
        "ERP_CREDENTIALS_SEALED": integration.credentials or "",
        **option_environment(integration),
        "WEBHOOK_URL": integration.webhook_url,
        "WEBHOOK_SECRET": "",
        "WEBHOOK_SECRET_SEALED": integration.webhook_secret or "",
        "PROBE_WORKSHEET": integration.probe_worksheet,
        "QUEUE_DIR": str(settings.queue_dir),
        "LOG_DIR": str(settings.log_dir),
        **browser_environment(settings),
        # behind the front door nothing but nginx reaches an instance: an inherited HOST
        # (an admin's HOST=0.0.0.0 from before) must not open it to the network
        **({"HOST": "127.0.0.1"} if frontdoor.runs_front_door(settings) else {}),
        "PYTHONUNBUFFERED": "1",
    }


def browser_environment(settings):
    """Where an instance's browser runs: ``SELENIUM_REMOTE_URL`` of the fleet's Grid, or ""
    for a Chromium of its own (``BROWSER_POOL=local``). Nothing for an admin's Grid
    elsewhere: the instance inherits that URL from supervisord's environment, so a URL
    with a user and password in it is written into no file. With a Grid, also the
    fleet's parking of idle sessions (``BROWSER_PARK_DIR``) unless ``BROWSER_PARKING=off``."""
    url = grid.pool_url(settings)
    environment = {} if url is None else {"SELENIUM_REMOTE_URL": url}
    if settings.browser_park_dir is not None:  # idle sessions shared (integrations.browser.parking)
        environment["BROWSER_PARK_DIR"] = str(settings.browser_park_dir)
    return environment


def launch_spec(settings, integration):
    """What :mod:`fleet.launch` starts: ``{"argv": [...], "environment": {...}}``.

    ``--`` ends api.py's options, so a name that begins with ``-`` is still a name.
    """
    return {"argv": [str(settings.python), str(settings.api_script), "--",
                     str(integration.port), integration.workshop],
            "environment": instance_environment(settings, integration)}


def launch_path(settings, program):
    return Path(settings.supervisor_dir) / "programs" / f"{program}.json"


def render_program(settings, integration):
    """:returns: ``(section, launch)``: the ``[program:...]`` section text for one
        integration and the text of its launch file (ASCII JSON)"""
    program = program_name(integration.workshop)
    launch = json.dumps(launch_spec(settings, integration), indent=1, sort_keys=True) + "\n"
    section = Template((TEMPLATES / "program.conf.in").read_text("utf-8")).substitute(
        program=program,
        command=format_command([settings.python, "-m", "fleet.launch",
                                launch_path(settings, program)]),
        root=_escape(str(ROOT)),
        environment=format_environment({
            "PYTHONUNBUFFERED": "1",
            "LAUNCH_SHA256": hashlib.sha256(launch.encode("ascii")).hexdigest()}),
        stop_wait_seconds=settings.stop_wait_seconds,
        supervisor_dir=_escape(str(settings.supervisor_dir)),
    )
    return section, launch


def render_main(settings):
    """:returns: the text of ``supervisord.conf``"""
    management_env = {
        "REGISTRY_DB": settings.registry_db,
        "SUPERVISOR_DIR": settings.supervisor_dir,
        "QUEUE_DIR": settings.queue_dir,
        "LOG_DIR": settings.log_dir,
        "MANAGEMENT_HOST": settings.management_host,
        "MANAGEMENT_PORT": settings.management_port,
        "INSTANCE_HOST": settings.instance_host,
        "PROBE_TIMEOUT": settings.probe_timeout,
        "STOP_WAIT_SECONDS": settings.stop_wait_seconds,
        "FLEET_PYTHON": settings.python,
        "API_SCRIPT": settings.api_script,
        # the management API rewrites this file and the launch files: with the same pool
        # (SELENIUM_REMOTE_URL, which may hold a password, it inherits from supervisord)
        "BROWSER_POOL": settings.browser_pool,
        "BROWSER_SLOTS": settings.browser_slots,
        "GRID_PORT": settings.grid_port,
        "BROWSER_WAIT_SECONDS": settings.browser_wait_seconds,
        "BROWSER_PARKING": "on" if settings.browser_parking else "off",
        "GRID_JAR": settings.grid_jar,
        "GRID_JAVA": settings.java,
        # it rewrites the front door's routes too, and reloads nginx
        "PUBLIC_PORT": settings.public_port or "",
        "TLS_CERT": settings.tls_cert or "",
        "TLS_KEY": settings.tls_key or "",
        "NGINX": settings.nginx,
        "PYTHONUNBUFFERED": "1",
    }
    return Template((TEMPLATES / "supervisord.conf.in").read_text("utf-8")).substitute(
        socket=_escape(str(settings.socket_path)),
        supervisor_dir=_escape(str(settings.supervisor_dir)),
        root=_escape(str(ROOT)),
        management_command=format_command([settings.python, "-m", "fleet.serve"]),
        management_environment=format_environment(management_env),
        grid_program=render_grid(settings),
        frontdoor_program=render_front_door(settings),
    )


def render_grid(settings):
    """:returns: the ``[program:grid]`` section of the fleet's own Grid, or "" when the
        fleet runs none (``BROWSER_POOL=local``, or a Grid elsewhere)"""
    if not grid.runs_local_grid(settings):
        return ""
    return Template((TEMPLATES / "grid.conf.in").read_text("utf-8")).substitute(
        command=format_command(grid.standalone_argv(settings)),
        root=_escape(str(ROOT)),
        # the configuration's digest: a changed grid.toml is a changed section
        environment=format_environment({
            "SE_OFFLINE": "true", "PYTHONUNBUFFERED": "1",
            "GRID_TOML_SHA256": hashlib.sha256(
                grid.standalone_toml(settings).encode()).hexdigest()}),
        supervisor_dir=_escape(str(settings.supervisor_dir)),
    )


def render_front_door(settings):
    """:returns: the ``[program:nginx]`` section of the front door, or "" without
        ``PUBLIC_PORT`` (fleet/frontdoor.py)"""
    if not frontdoor.runs_front_door(settings):
        return ""
    return Template((TEMPLATES / "frontdoor.conf.in").read_text("utf-8")).substitute(
        command=format_command(frontdoor.nginx_argv(settings)),
        root=_escape(str(ROOT)),
        stop_wait_seconds=frontdoor.timeout_seconds(settings) + 10,
        supervisor_dir=_escape(str(settings.supervisor_dir)),
    )


def write_config(settings, programs):
    """Write ``supervisord.conf`` and exactly the given program files.

    :param programs: ``{program name: (section, launch)}`` from :func:`render_program`
        for every active integration; program files not in it are deleted (their
        integration was deactivated or removed)
    :returns: the path of ``supervisord.conf``
    """
    if len(str(settings.socket_path)) > 100:
        raise ConfigError(f"SUPERVISOR_DIR is too long for a unix socket path: {settings.supervisor_dir}")
    base = Path(settings.supervisor_dir)
    for sub in (base, base / "programs", base / "logs"):
        sub.mkdir(parents=True, exist_ok=True)
        os.chmod(sub, 0o700)
    for name, (section, launch) in programs.items():
        # the launch file first: a section is never there before the file it names
        for suffix, text in ((".json", launch), (".conf", section)):
            write_private(base / "programs" / f"{name}{suffix}", text)
    for stale in [*(base / "programs").glob("*.conf"), *(base / "programs").glob("*.json")]:
        if stale.stem not in programs:
            stale.unlink()
    if grid.runs_local_grid(settings):
        write_private(grid.config_path(settings), grid.standalone_toml(settings))
    write_private(settings.supervisord_conf, render_main(settings))
    return settings.supervisord_conf


def workshop_dirs(settings, workshop):
    """:returns: the instance's data directories, for ``remove --delete-data``"""
    return [Path(settings.queue_dir) / file_name(workshop),
            Path(settings.log_dir) / "artifacts" / file_name(workshop)]
