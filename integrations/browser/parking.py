"""Warm browser sessions shared by the workshops of one fleet: park one, claim one.

A new session of the fleet's Grid costs ~3.3 CPU-seconds (start, ERP login, quit;
``bench/bench_order_cpu.py``), five times the order it is started for, so on a small
server the fleet's throughput is the number of sessions it can start. A workshop that
is done with its session therefore *parks* it instead of quitting it: the session is
wiped (:meth:`integrations.browser.session.Browser.park`: its tabs, cookies, cache and
the ERP's storage) and its id written here; the next workshop that needs a browser
*claims* a parked session -- any workshop, any ERP, since it holds nothing of whoever
used it -- and logs in to its own ERP on it. The browser's start and quit are saved.

The parking is a directory shared by the instances of one fleet (``BROWSER_PARK_DIR``,
set by ``manage.py up``): one file per parked session, written whole and then renamed
into place; a claim is an atomic rename to a name of the claimer's own, so two
claimers never get the same session. A session is parked for at most
``PARK_SECONDS``: the Grid ends a session that received no command for its session
timeout (60 s, fleet/grid.py), and a parked one left longer is quit by whoever finds it.
A workshop waiting for a browser says so with a file under ``waiting/``, so that one
holding an idle session parks it at once (workers/worker.py).

The Grid's state (slots, in use, its queue) is read by the fleet's janitor once a second
and published here (``pool.state``) for every instance: a hundred waiting workshops each
asking the Grid every second cost ~0.4 of a core (two HTTP calls each, ~1 ms of CPU in
the caller and 2.5-4.5 ms in the Grid's Java; measured 2026-12-03). An instance reads the
Grid itself only when nothing fresh is published (no janitor: a Grid outside the fleet).

The files hold a Grid session's id: whoever can reach the Grid can drive that browser,
though it holds no ERP login. The directory is the fleet's (mode 0700), like its
registry; no password, cookie or ERP address is written here.
"""

import json
import os
import time
import uuid
from pathlib import Path

from integrations.browser.pool import pool_status

#: seconds a parked session may be claimed; the fleet's Grid ends it after 60 s without a
#: command, and a claim after that would only find it gone
PARK_SECONDS = 40.0
#: a waiting file older than this is a leftover of a process that died while waiting
WAITER_STALE_SECONDS = 3600.0
_SUFFIX = ".json"
#: the Grid's state as the janitor last read it (a name no parked session has)
_POOL_STATE = "pool.state"
#: seconds a published state is trusted: the janitor writes it every second
POOL_STATE_SECONDS = 2.5


class Parking:
    """The parked sessions of one Grid.

    :param directory: ``BROWSER_PARK_DIR``; created (0700) when missing
    :param now: the clock (wall time: the files are shared between processes)
    """

    def __init__(self, directory, now=time.time):
        self.directory = Path(directory)
        self.waiting_dir = self.directory / "waiting"
        self._now = now
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.waiting_dir.mkdir(mode=0o700, exist_ok=True)

    def park(self, session_id, capabilities, orders=0):
        """Offer a wiped session to the fleet. The file's name starts with the time it
        was parked, which is all :meth:`claim` and :meth:`take_stale` read of its age.

        :param orders: orders the browser has written so far (its recycling count goes on)
        """
        now = self._now()
        record = {"session_id": session_id, "capabilities": capabilities, "orders": orders,
                  "parked_at": now}
        self._write(f"{now:.6f}-{uuid.uuid4().hex}{_SUFFIX}", record)

    def claim(self):
        """The most recently parked session still fresh, now the caller's, or None.
        Those parked longer than ``PARK_SECONDS`` are left for :meth:`take_stale`.

        :returns: ``{"session_id", "capabilities", "orders", "parked_at"}``
        """
        for path in sorted(self._parked(), reverse=True):  # the warmest first
            if not self._stale(path):
                record = self._take(path)
                if record is not None:
                    return record
        return None

    def take_stale(self):
        """Take out every parked session older than ``PARK_SECONDS`` (none that is still
        fresh is read): the caller quits them, so that their slots come free before the
        Grid's own timeout."""
        taken = (self._take(path) for path in self._parked() if self._stale(path))
        return [record for record in taken if record is not None]

    def parked(self):
        """How many sessions are parked now (fresh or not)."""
        return len(self._parked())

    def _parked(self):
        try:
            return [entry for entry in self.directory.iterdir() if entry.name.endswith(_SUFFIX)]
        except FileNotFoundError:
            return []

    def _write(self, name, record):
        """Write ``record`` (JSON) to a temporary file of our own (0600), then rename it
        to ``name``: a reader finds the whole file or none."""
        temporary = self.directory / f".{name}.{uuid.uuid4().hex}.tmp"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            json.dump(record, out)
        os.rename(temporary, self.directory / name)

    def _stale(self, path):
        """Parked longer than ``PARK_SECONDS``, by the time its name starts with (a name
        not written by :meth:`park` counts as stale: out with it)."""
        try:
            parked_at = float(path.name.split("-", 1)[0])
        except ValueError:
            return True
        return self._now() - parked_at > PARK_SECONDS

    def _take(self, path):
        """Rename ``path`` to a name of our own, then read and remove it; None when
        another claimer was first (or the file is not a parked session)."""
        mine = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.claim")
        try:
            os.rename(path, mine)
        except FileNotFoundError:
            return None
        try:
            record = json.loads(mine.read_text())
            return record if isinstance(record.get("session_id"), str) else None
        except (OSError, ValueError, AttributeError):
            return None
        finally:
            mine.unlink(missing_ok=True)

    # -- the Grid's state, read once for the fleet ----------------------------------------

    def publish_pool_state(self, state):
        """Publish the Grid's state as just read (None: it did not answer), written whole
        and renamed into place."""
        self._write(_POOL_STATE, {"at": self._now(), "state": state})

    def pool_status(self, url, timeout=1.0):
        """The Grid's state as published within ``POOL_STATE_SECONDS``, else read from the
        Grid at ``url`` (:func:`integrations.browser.pool.pool_status`); None: it does not answer."""
        try:
            published = json.loads((self.directory / _POOL_STATE).read_text())
            if 0 <= self._now() - float(published["at"]) <= POOL_STATE_SECONDS:
                state = published["state"]
                if state is None or {"slots", "in_use", "waiting"} <= state.keys():
                    return state
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            pass  # none yet, or not readable: ask the Grid
        return pool_status(url, timeout=timeout)

    # -- who waits for a browser ----------------------------------------------------------

    def waiting(self):
        """How many workshops wait for a browser now (leftovers of dead ones not counted)."""
        count = 0
        try:
            entries = list(self.waiting_dir.iterdir())
        except FileNotFoundError:
            return 0
        for entry in entries:
            try:
                if self._now() - entry.stat().st_mtime < WAITER_STALE_SECONDS:
                    count += 1
                else:
                    entry.unlink(missing_ok=True)
            except FileNotFoundError:
                pass
        return count

    def waiter(self):
        """A context manager: the caller counts as waiting for a browser inside it."""
        return _Waiter(self.waiting_dir)


class _Waiter:
    def __init__(self, directory):
        self.path = directory / f"{os.getpid()}-{uuid.uuid4().hex}"

    def __enter__(self):
        self.path.touch(mode=0o600)
        return self

    def __exit__(self, *exc):
        self.path.unlink(missing_ok=True)
