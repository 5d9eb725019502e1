"""The fleet's operations, shared by ``manage.py`` and the management API.

Each change goes registry first, then configuration, then supervisord: the registry is
the truth, the generated configuration follows it, and a running supervisord is told to
act on the one program concerned. With no supervisord running (``manage.py`` before
``up``) the change simply waits in the configuration for the next ``up``.
"""

import errno
import logging
import secrets
import shutil
import socket

from core.errors import WorkshopHeld
from core.hold import Hold, holder
from fleet.errors import (IntegrationInactive, InvalidRegistration, PortTaken, SupervisorUnavailable,
                          WebhookIncomplete)
from fleet import frontdoor, states
from fleet.grid import runs_local_grid
from fleet.instances import Instances
from fleet.schemas import check_options, check_webhook, secret_options
from fleet.registry import Registry
from fleet.supervisor_client import Supervisor
from fleet.supervisor_conf import render_program, workshop_dirs, write_config

log = logging.getLogger("fleet")


def _check_free(host, port, why):
    """:raises PortTaken: with ``why`` when ``host:port`` cannot be bound"""
    with socket.socket() as s:
        # as the instance's server will: a closed socket in TIME_WAIT is no owner
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise PortTaken(why) from None
            raise


class Fleet:
    """Every integration on this machine.

    :param settings: :class:`~fleet.settings.FleetSettings`
    :param registry, supervisor, instances: stand-ins for tests; built from ``settings``
        when not given
    """

    def __init__(self, settings, registry=None, supervisor=None, instances=None):
        self.settings = settings
        self.registry = registry or Registry(settings.registry_db, settings.secret_key,
                                             settings.secret_key_fallbacks)
        self.supervisor = supervisor or Supervisor(
            settings.socket_path, stop_timeout=settings.stop_wait_seconds + 30)
        self.instances = instances or Instances(settings.instance_host, settings.probe_timeout)
        #: what the last :meth:`write_config` has to say about the front door's certificate
        self.front_door_note = None

    # -- configuration ----------------------------------------------------------

    def write_config(self, starting=False):
        """Write supervisord's configuration for every active integration.

        :param starting: for ``up``: make the front door's self-signed certificate if
            there is none (:mod:`fleet.frontdoor`)

        :returns: the path of ``supervisord.conf``
        """
        integrations = self.registry.all()
        programs = {i.program: render_program(self.settings, i) for i in integrations if i.active}
        conf = write_config(self.settings, programs)
        if frontdoor.runs_front_door(self.settings):
            self.front_door_note = frontdoor.write_config(self.settings, integrations, starting)
        return conf

    def _apply(self, integration):
        """Rewrite the configuration and have supervisord act on this integration only;
        with a front door, nginx reloads its routes first (a removed workshop takes no
        new request while its instance finishes the ones it has).

        :returns: what supervisord did, or ``"supervisord not running"``
        """
        self.write_config()
        if not self.supervisor.running():
            return "supervisord not running"
        reloaded = ""
        if frontdoor.runs_front_door(self.settings):
            reloaded = "; " + frontdoor.reload(self.supervisor)
        done = self.supervisor.apply(integration.program) + reloaded
        log.info("workshop %r: program %s %s", integration.workshop, integration.program, done)
        return done

    def _check_port(self, port):
        if port == self.settings.management_port:
            raise PortTaken(f"port {port} is the management API's (MANAGEMENT_PORT)")
        if port == self.settings.grid_port and runs_local_grid(self.settings):
            raise PortTaken(f"port {port} is the browser pool's (GRID_PORT)")
        if port == self.settings.public_port:
            raise PortTaken(f"port {port} is the front door's (PUBLIC_PORT)")
        _check_free(self.settings.instance_host, port,
                    f"port {port} is in use by another program on this machine")

    def check_grid_port(self):
        """Before ``up``: the fleet's own Grid must be able to listen on ``GRID_PORT``
        (a Grid that cannot start would leave every instance waiting for a browser)."""
        if runs_local_grid(self.settings):
            port = self.settings.grid_port
            _check_free("127.0.0.1", port, f"GRID_PORT {port} is in use by another program: "
                        "the browser pool cannot listen there (set another GRID_PORT)")

    # -- registry changes -------------------------------------------------------

    def create(self, spec):
        """Register and (if active) start a new integration.

        :param spec: :class:`~fleet.schemas.RegistrationSpec`
        :returns: ``(integration, api_token, supervisor outcome)``; the token in plain
            text, to be shown once
        """
        self._check_port(spec.port)
        token = spec.api_token or secrets.token_urlsafe(32)
        integration = self.registry.add(
            spec.workshop, spec.erp_system, spec.erp_url, spec.port, token,
            username=spec.username, password=spec.password, active=spec.active,
            options=spec.options, secret=secret_options(spec.erp_system),
            webhook_url=spec.webhook_url, webhook_secret=spec.webhook_secret,
            probe_worksheet=spec.probe_worksheet)
        return integration, token, self._apply(integration)

    def reconfigure(self, workshop, change):
        """Change an integration; restarts its instance (only it) when it is active.

        :param change: :class:`~fleet.schemas.RegistrationChange`
        :returns: ``(integration, supervisor outcome)``
        """
        current = self.get(workshop)
        if change.port is not None and change.port != current.port:
            self._check_port(change.port)
        changes = change.model_dump()
        changes.update(self._options_after(current, changes.pop("options"), change.erp_system))
        # the webhook after the change: a new URL keeps the stored secret, "" drops both.
        # A change that names a secret or a URL alone is complete only with what is stored:
        # 409 when it is not (the request is valid; the integration lacks the other half)
        url = current.webhook_url if change.webhook_url is None else change.webhook_url
        keeps_secret = current.webhook_secret is not None and change.webhook_url != ""
        try:
            check_webhook(url, change.webhook_secret or keeps_secret)
        except InvalidRegistration as exc:
            raise WebhookIncomplete(f"{exc}; this integration holds "
                                    f"{'a URL' if current.webhook_url else 'no webhook URL'} and "
                                    f"{'a secret' if current.webhook_secret else 'no secret'}"
                                    ) from None
        _, after = self.registry.update(current.workshop, **changes)
        return after, self._apply(after)

    def _options_after(self, current, given, erp_system):
        """The options a reconfiguration leaves, checked against the ERP it leaves.

        :param given: ``{name: value}`` to set, ``""`` to remove (the default applies);
            None: none changed
        :returns: ``{"options": ..., "secret": ...}`` for :meth:`Registry.update`, or
            ``{}`` when neither the options nor the ERP change
        :raises InvalidRegistration: when an option does not fit (the new) ERP, e.g. an
            option the old ERP took and the new one does not
        """
        erp_system = erp_system or current.erp_system
        if given is None and erp_system == current.erp_system:
            return {}
        options = {**self.registry.options(current), **(given or {})}
        options = {name: value for name, value in options.items() if value != ""}
        check_options(erp_system, options)
        return {"options": options, "secret": secret_options(erp_system)}

    def remove(self, workshop, delete_data=False):
        """Stop an integration's instance and forget it; its queue stays unless ``delete_data``.

        :returns: ``(integration as it was, supervisor outcome)``
        """
        integration = self.registry.remove(self.get(workshop).workshop)
        done = self._apply(integration)
        if delete_data:
            self._delete_data(integration)
        return integration, done

    def _delete_data(self, integration):
        """Delete a removed integration's folders, holding its data as an instance does.

        :raises WorkshopHeld: when a process still runs on it (one supervisord does not
            know of): it stays registered no more, and its data is kept
        """
        queue_dir, *others = workshop_dirs(self.settings, integration.workshop)
        if not queue_dir.is_dir():
            hold = None
        else:
            try:
                hold = Hold.take(queue_dir, "manage.py remove --delete-data")
            except WorkshopHeld as held:
                raise WorkshopHeld(f"workshop {integration.workshop!r} is removed from the "
                                   f"registry, but its data is kept: {held.reason_text}",
                                   holder=held.holder) from None
        try:
            for path in others:
                shutil.rmtree(path, ignore_errors=True)
            shutil.rmtree(queue_dir, ignore_errors=True)  # the hold's own file goes last
        finally:
            if hold is not None:
                hold.release()

    def set_active(self, workshop, active):
        """Activate (add to supervisord and start) or deactivate (stop and remove)."""
        _, after = self.registry.update(self.get(workshop).workshop, active=active)
        return after, self._apply(after)

    # -- process and worker -----------------------------------------------------

    def start(self, workshop):
        """Start the instance process through supervisord."""
        integration = self._active(workshop)
        self.supervisor.start(integration.program)
        return integration, self.supervisor.state(integration.program)

    def stop(self, workshop):
        """Stop the instance process through supervisord (graceful; returns at once)."""
        integration = self._active(workshop)
        self.supervisor.stop(integration.program, wait=False)
        return integration, self.supervisor.state(integration.program)

    def command(self, workshop, command):
        """Pass ``start_worker``, ``stop_worker`` or ``kill`` to the instance itself."""
        integration = self._active(workshop)
        answer = self.instances.command(integration.port, self.registry.api_token(integration), command)
        return integration, answer

    def probe(self, workshop):
        """Have the instance check its ERP's screens now, reading only (``PUT /probe``).

        :returns: ``(integration, the instance's erp object)``
        :raises InstanceUnreachable: no answer, or its worker is stopped (no probe runs)
        """
        integration = self._active(workshop)
        return integration, self.instances.probe(integration.port,
                                                 self.registry.api_token(integration))

    # -- reading ----------------------------------------------------------------

    def get(self, workshop):
        """Find an integration by name, spelt any way that normalises to it.

        :raises UnknownIntegration:"""
        return self.registry.get(workshop)

    def overview(self, workshop=None):
        """The health of every integration (or one): configuration without secrets,
        supervisor's process state and the instance's own ``/alive`` answer.

        Instances are asked concurrently with a short timeout; supervisord once for all.
        """
        integrations = [self.get(workshop)] if workshop is not None else self.registry.all()
        try:
            processes, supervisor_error = self.supervisor.processes(), None
        except SupervisorUnavailable as e:
            processes, supervisor_error = None, e.reason_text
        answers = self.instances.alive_many(
            [(i.port, i.workshop) for i in integrations if i.active])
        answers = iter(answers)
        return [self._health(i, processes, next(answers) if i.active else None, supervisor_error,
                             self.holder(i.workshop))
                for i in integrations]

    def holder(self, workshop):
        """:returns: who holds ``workshop``'s data now (core.hold, read without taking
            it), or None"""
        return holder(workshop_dirs(self.settings, workshop)[0])

    @staticmethod
    def _health(integration, processes, alive, supervisor_error, hold=None):
        if processes is None:
            process = {"state": states.UNKNOWN, "pid": None, "description": supervisor_error}
        else:
            process = processes.get(integration.program) or {
                "state": states.NOT_CONFIGURED, "pid": None, "description": ""}
        if hold is not None:
            hold = {k: hold.get(k) for k in ("pid", "what", "port", "since", "host", "program")}
        if not integration.active:
            health = states.INACTIVE
        elif hold is not None and hold["pid"] != process["pid"]:
            # not this fleet's instance: it cannot start (an /alive answer on its port
            # may well be that other process's)
            health = states.HELD
        elif alive is not None and alive.get("storage", "ok") != "ok":
            health = states.STORAGE  # what the instance's log says: "worker paused: ..."
        elif alive is not None:
            health = states.OK if alive.get("worker") == "running" else states.WORKER_STOPPED
        elif process["state"] == states.RUNNING:
            health = states.UNREACHABLE
        else:
            health = states.DOWN
        return {
            **integration.public(),
            "health": health,
            "process": process,
            "hold": hold,
            "alive": alive,
            "worker": alive.get("worker") if alive else None,
            "queue_length": alive.get("queue_length") if alive else None,
            "last_success": alive.get("last_success") if alive else None,
            "last_error": alive.get("last_error") if alive else None,
            # the ERP's screens as its last probe found them; ``held``: orders held
            "erp": alive.get("erp") if alive else None,
        }

    def _active(self, workshop):
        integration = self.get(workshop)
        if not integration.active:
            raise IntegrationInactive(f"workshop {integration.workshop!r} is inactive; activate it first")
        return integration
