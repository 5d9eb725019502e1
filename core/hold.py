"""One workshop, one running instance: an exclusive hold on a data folder for a process's life.

Two workers on one queue can both visit the same worksheet and both write a line. No
scheduler prevents that for us (an admin starts ``api.py`` by hand while the fleet runs
one; ``manage.py up`` killed with kill -9 leaves its instances running; a backup is
restored while the old host still runs), so whatever writes a workshop's data first
takes this hold on its folder (``QUEUE_DIR/<workshop>``), before it opens anything there,
and keeps it as long as it runs.

How:

* ``flock(LOCK_EX | LOCK_NB)`` on ``<folder>/instance.hold``. The kernel drops the lock
  when the last descriptor of that open file is closed -- when the process ends in any
  way, kill -9 included -- so no stale lock ever blocks a restart, and nothing has to
  be cleaned up. Python opens files close-on-exec, so a browser or any other child the
  process starts does not inherit the hold and cannot keep it past the process.
* The same file names the holder (JSON: pid, what it is, port, since when, the pid's
  start time), written once the lock is taken. Whoever finds the lock taken reads it to
  say who holds it.
* :func:`holder` answers "who holds it now" **without taking the lock**: a status page
  that took it for a moment would make an instance starting at that very moment exit.
  It trusts the file only while that pid runs with the start time written there, so a
  dead holder's leftover file (or a pid reused since) names nobody.

Where it is reliable: local file systems (ext4, xfs, btrfs, tmpfs). On NFS, Linux maps
``flock`` onto NFS byte-range locks: it excludes across hosts only when the mount has
working locking (NFSv4, or NFSv3 with lockd; not with ``nolock``/``local_lock``), and a
lock of a host that died is freed only when its lease runs out (NFSv4: ~90 s). The pid in
the file is a pid on the holder's host. See docs/fleet.md, "One workshop, one instance".
"""

import fcntl
import json
import os
import socket
import time
from datetime import datetime, timezone

from core.errors import WorkshopHeld

#: the hold's file in a workshop's data folder
HOLD_FILE = "instance.hold"


def process_stat(pid):
    """The fields of ``/proc/<pid>/stat`` after the command name (state first, then the
    parent's pid, ...), or None when there is no such process or no ``/proc``."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    return stat[stat.rindex(b")") + 2:].split()


def running(pid):
    """Whether ``pid`` runs (a zombie does not: it holds no file any more)."""
    fields = process_stat(pid)
    if fields is not None:
        return fields[0] not in (b"Z", b"X")
    if os.path.isdir("/proc"):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _start_time(pid):
    """The start time of ``pid`` in clock ticks since boot (``/proc/<pid>/stat``, field 22),
    or None where there is no ``/proc``: with it a reused pid is not taken for the holder."""
    fields = process_stat(pid)
    return None if fields is None else int(fields[19])


def _alive(pid, start):
    return running(pid) and (start is None or _start_time(pid) in (None, start))


def _read(path):
    try:
        with open(path, encoding="utf-8") as f:
            info = json.loads(f.read() or "null")
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or not isinstance(info.get("pid"), int):
        return None
    return info


def holder(folder, name=HOLD_FILE):
    """Who holds ``folder`` now, read without taking the hold.

    :param name: the hold's file name (:data:`HOLD_FILE` for a workshop)
    :returns: the holder's description (``pid``, ``what``, ``port``, ``since``, ``host``,
        ``program``) or None when nobody runs on it
    """
    path = os.path.join(folder, name)
    info = _read(path)
    if info is None or info.get("host") != socket.gethostname():
        # a pid of another host cannot be checked from here: see the module's NFS note
        return info if info is not None and _locked(path) else None
    if not _alive(info["pid"], info.get("pid_start")):
        return None
    return info


def _locked(path):
    """Whether a lock is on the hold now, asked through a shared lock taken and dropped
    at once. Only for a holder on another host, whose pid cannot be checked here."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also drops the shared lock, if taken
    return False


def describe(info):
    """One line naming a holder: ``pid 4242 (api.py on port 5991, since 2026-12-06 21:50:03 UTC)``."""
    details = [str(info.get("what") or "a process")]
    if info.get("port"):
        details[0] += f" on port {info['port']}"
    if info.get("program"):
        details.append(f"supervisor program {info['program']}")
    if info.get("host") and info.get("host") != socket.gethostname():
        details.append(f"host {info['host']}")
    if info.get("since"):
        details.append(f"since {info['since']}")
    return f"pid {info['pid']} ({', '.join(details)})"


class Hold:
    """The exclusive hold on one folder, taken with :meth:`take` and kept until
    :meth:`release` or the end of the process.

    :param folder: the workshop's data folder (created if missing)
    :param what: what holds it, for whoever finds it taken (``"api.py"``,
        ``"manage.py rotate-secrets"``)
    :param port: the holder's API port, if it has one
    :param name: the hold's file name (:data:`HOLD_FILE` for a workshop; the fleet's
        management API holds ``management.hold`` in ``SUPERVISOR_DIR``)
    """

    def __init__(self, folder, what, port=None, name=HOLD_FILE):
        self.folder = str(folder)
        self.what = what
        self.port = port
        self.path = os.path.join(self.folder, name)
        self._fd = None

    @classmethod
    def take(cls, folder, what, port=None, name=HOLD_FILE):
        """:returns: the hold, taken
        :raises WorkshopHeld: naming the holder, when another process (or another open
            hold in this one) has it; nothing in ``folder`` is opened but the hold's file
        """
        hold = cls(folder, what, port, name)
        hold._take()
        return hold

    def _take(self):
        os.makedirs(self.folder, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            info = self._holder_after_refusal()
            raise WorkshopHeld(self._taken_text(info), holder=info) from None
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        info = {"pid": os.getpid(), "pid_start": _start_time(os.getpid()), "what": self.what,
                "port": self.port, "host": socket.gethostname(),
                "program": os.environ.get("SUPERVISOR_PROCESS_NAME") or None,
                "since": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")}
        data = (json.dumps(info, sort_keys=True) + "\n").encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)

    def _holder_after_refusal(self):
        # the holder writes its name just after taking the lock: a refusal in between
        # finds the file empty or its predecessor's for a moment
        for _ in range(20):
            info = _read(self.path)
            if info is not None and (info.get("host") != socket.gethostname()
                                     or _alive(info["pid"], info.get("pid_start"))):
                return info
            time.sleep(0.05)
        return None

    def _taken_text(self, info):
        who = describe(info) if info else "another process (it has not said which yet)"
        if os.path.basename(self.path) != HOLD_FILE:
            return f"{self.path} is held by {who}: stop that one first"
        return (f"the workshop's data in {self.folder} is held by {who}: one workshop runs "
                "one instance at a time; stop that one first")

    @property
    def held(self):
        return self._fd is not None

    def release(self):
        """Drop the hold (closing its file drops the lock). Idempotent."""
        fd, self._fd = self._fd, None
        if fd is not None:
            try:  # names nobody from now on, also while this process goes on running
                os.ftruncate(fd, 0)
            except OSError:
                pass
            os.close(fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()
