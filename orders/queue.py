"""The durable work queue between the API and the worker: persist-queue's SQLiteAckQueue.

What FIELD-NOTES taught us, and what this wrapper does about it:

* at-least-once: ``get`` marks a row *unack*; after a crash ``auto_resume`` makes it
  ready again, so the integration must be idempotent (it is, on ``uniqueid``);
* items are acknowledged by row id (``get(raw=True)``/``ack(id=...)``), never by identity;
* the JSON serializer, because the default pickle executes code on load;
* acked rows are never deleted and slow ``get`` down, so :meth:`compact` runs as part of
  normal work;
* the ``*_count`` helpers and ``qsize`` race with ``get`` -- nothing here calls them
  after start-up; lengths come from the order records instead;
* ``synchronous=NORMAL`` (in WAL mode), where the order records have ``FULL``: a commit
  here does not wait for the disk. It survives a killed process (the OS has the write);
  a power cut can take back its last commits, and that loses nothing, because the
  records are the source of truth and are on disk first: at the start ``reconcile``
  puts back every active order missing from the queue, and an item whose ack was taken
  back comes to a worker that skips it (its record is no longer ``placed``). Waiting
  for the disk twice per order cost the intake a tenth of its rate (docs/benchmarks.md).

Only one process may ever open the file; the instance is one process by design.
"""

import os
import sqlite3
import threading
from contextlib import closing

from persistqueue import SQLiteAckQueue
from persistqueue.exceptions import Empty
from persistqueue.serializers import json as json_serializer

from core.errors import ConfigError, StorageUnavailable
from core.fileformat import FileFormat, has_table

#: persist-queue's row states that still hold work (inited, ready, unack)
_PENDING = {"0", "1", "2"}


#: persist-queue's file in the queue's folder
QUEUE_FILE = "data.db"
#: the queue file's format (core/fileformat.py): persist-queue makes and keeps its table
#: (``ack_queue_default``; JSON items); this release adds nothing but the stamp
FORMAT = FileFormat("the queue", lambda db: None, [lambda db: None],
                    lambda db: has_table(db, "ack_queue_default"))


def _check_format(path, new=False):
    """Bring the queue file to this release's format (``new``: persist-queue has just
    made it: only stamped, no copy of it kept).

    :raises FormatTooNew: a newer release wrote the queue file
    """
    with closing(sqlite3.connect(path, timeout=10, isolation_level=None)) as db:
        if new:
            db.execute(f"PRAGMA user_version={FORMAT.version:d}")
        else:
            FORMAT.open(db, path)


class OrderQueue:
    """FIFO of order payloads (plain JSON-able dicts), acknowledged by row id."""

    def __init__(self, directory):
        os.makedirs(directory, exist_ok=True)
        path = os.path.join(directory, QUEUE_FILE)
        existed = os.path.exists(path)
        try:
            if existed:  # a file of a newer release is refused before it is opened
                _check_format(path)
            self._q = SQLiteAckQueue(
                directory,
                auto_resume=True,  # crash mid-order: that order is delivered again, first
                multithreading=True,  # request threads put, the worker thread gets
                serializer=json_serializer,
            )
            for conn in (self._q._putter, self._q._getter):  # why: the module's docstring
                conn.execute("PRAGMA synchronous=NORMAL")
            self._q.queue()  # reads every row: a damaged file fails here, not mid-run
            if not existed:  # persist-queue made it: only stamped (an old one was above)
                _check_format(path, new=True)
        except (sqlite3.DatabaseError, ValueError) as exc:
            # ValueError: a row that is not JSON. Moving the folder aside loses nothing
            # that is still waiting: reconcile() re-queues every active order record.
            raise ConfigError(
                f"the queue file in {directory} is damaged ({exc}); move that folder aside "
                "and start again: waiting orders are re-queued from the order records") from None
        # Set by every put and nack (and by wake): get waits on it instead of querying
        # the file at each poll. persist-queue's own blocking get clears its event
        # *after* finding the table empty, so a put in between waits for the next poll.
        self._arrived = threading.Event()

    def pending_payloads(self):
        """Payloads not yet acknowledged. Start-up only: reads through persist-queue's
        shared reader connection, which must not race with :meth:`get`."""
        return [row["data"] for row in self._q.queue() if str(row["status"]) in _PENDING]

    def put(self, payload):
        """:raises StorageUnavailable: the item was not stored (disk full, file unusable)"""
        try:
            self._q.put(payload)
        except sqlite3.DatabaseError as exc:
            raise StorageUnavailable(f"the queue file cannot be written: {exc}") from None
        self._arrived.set()

    def get(self, timeout):
        """The next item, waiting up to ``timeout`` seconds for one to be put. The file
        is read once, and again only when something was put (or :meth:`wake` was
        called): an idle instance does not query it at every poll.

        :returns: ``(row_id, payload)``, or None when nothing arrived within ``timeout``
            (or a :meth:`wake` came first)
        """
        self._arrived.clear()  # before the read: a put after it sets it again
        item = self._take()
        if item is None and timeout > 0 and self._arrived.wait(timeout):
            item = self._take()
        return item

    def _take(self):
        try:
            item = self._q.get(block=False, raw=True)
        except Empty:
            return None
        return item["pqid"], item["data"]

    def wake(self):
        """End a :meth:`get` that is waiting (the worker's stop)."""
        self._arrived.set()

    def ack(self, row_id):
        self._q.ack(id=row_id)

    def nack(self, row_id):
        """Put an unfinished item back at the head of the queue."""
        self._q.nack(id=row_id)
        self._arrived.set()

    def compact(self):
        """Delete every acknowledged row, so ``get`` does not scan a growing table."""
        self._q.clear_acked_data(max_delete=None, keep_latest=None, clear_ack_failed=True)

    def rewrite(self, change):
        """Replace stored payloads, each by ``change(payload)`` where that is not None.

        Offline maintenance only (``manage.py rotate-secrets``, with the instance
        stopped): every row is rewritten in place, acknowledged ones included, and its
        place and state in the queue are kept.

        :returns: how many payloads were replaced
        """
        replaced = 0
        for row in self._q.queue():
            new = change(row["data"])
            if new is not None:
                self._q.update(new, id=row["id"])
                replaced += 1
        return replaced

    def close(self):
        self._q.close()
