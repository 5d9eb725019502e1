"""supervisord's XML-RPC interface, over its unix socket.

Only the calls the fleet needs. Every call has a deadline, so a wedged supervisord makes
the management API answer 503 instead of hanging.
"""

import http.client
import socket
import xmlrpc.client

from fleet.errors import SupervisorUnavailable
from fleet import states

# supervisor's fault codes (supervisor.xmlrpc.Faults) that mean "already so"
_ALREADY_STARTED = 60
_NOT_RUNNING = 70
_BAD_NAME = 10


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


class _UnixTransport(xmlrpc.client.Transport):
    def __init__(self, path, timeout):
        super().__init__()
        self._path, self._timeout = path, timeout

    def make_connection(self, host):
        return _UnixConnection(self._path, self._timeout)


class Supervisor:
    """A client of one supervisord.

    :param socket_path: its ``unix_http_server`` socket
    :param timeout: seconds for a quick call; a waiting stop gets ``stop_timeout``
    """

    def __init__(self, socket_path, timeout=5.0, stop_timeout=150.0):
        self.socket_path = str(socket_path)
        self.timeout = timeout
        self.stop_timeout = stop_timeout

    def _call(self, method, *args, timeout=None):
        proxy = xmlrpc.client.ServerProxy(
            "http://localhost", transport=_UnixTransport(self.socket_path, timeout or self.timeout))
        try:
            return getattr(proxy, method)(*args)
        except (OSError, http.client.HTTPException, xmlrpc.client.ProtocolError) as e:
            raise SupervisorUnavailable(
                f"supervisord does not answer on {self.socket_path} ({e.__class__.__name__});"
                " is 'python manage.py up' running?") from None

    def running(self):
        """:returns: whether supervisord answers"""
        try:
            return self._call("supervisor.getState")["statename"] == "RUNNING"
        except SupervisorUnavailable:
            return False

    def processes(self):
        """:returns: ``{program name: {"state", "pid", "description", "exitstatus"}}``"""
        return {p["name"]: {"state": p["statename"], "pid": p["pid"] or None,
                            "description": p["description"], "exitstatus": p["exitstatus"]}
                for p in self._call("supervisor.getAllProcessInfo")}

    def state(self, name):
        """:returns: the process state name, or ``NOT_CONFIGURED``"""
        try:
            return self._call("supervisor.getProcessInfo", name)["statename"]
        except xmlrpc.client.Fault as f:
            if f.faultCode == _BAD_NAME:
                return states.NOT_CONFIGURED
            raise

    def start(self, name):
        """Start a program; starting one that runs is not an error."""
        try:
            self._call("supervisor.startProcess", name, False)
        except xmlrpc.client.Fault as f:
            if f.faultCode != _ALREADY_STARTED:
                raise

    def stop(self, name, wait=False):
        """Stop a program gracefully (SIGTERM, then SIGKILL after stopwaitsecs)."""
        try:
            self._call("supervisor.stopProcess", name, wait, timeout=self.stop_timeout if wait else None)
        except xmlrpc.client.Fault as f:
            if f.faultCode not in (_NOT_RUNNING, _BAD_NAME):
                raise

    def signal(self, name, signal_name):
        """Send a signal to a running program (``HUP``: nginx loads its routes again).

        :returns: whether it was sent (False: the program is not running or not configured)
        """
        try:
            self._call("supervisor.signalProcess", name, signal_name)
        except xmlrpc.client.Fault as f:
            if f.faultCode in (_NOT_RUNNING, _BAD_NAME):
                return False
            raise
        return True

    def apply(self, name):
        """Re-read the configuration and act on one program only.

        Other programs whose sections changed are left as they are: a reconfiguration
        restarts the instance it is about and nothing else.

        :returns: ``"added"``, ``"restarted"``, ``"removed"`` or ``"unchanged"``
        """
        added, changed, removed = self._call("supervisor.reloadConfig")[0]
        if name in changed or name in removed:
            self.stop(name, wait=True)
            self._call("supervisor.removeProcessGroup", name)
        if name in changed or name in added:
            self._call("supervisor.addProcessGroup", name)  # autostart=true starts it
        return ("restarted" if name in changed else "added" if name in added
                else "removed" if name in removed else "unchanged")

    def shutdown(self):
        self._call("supervisor.shutdown")
