"""Re-seal stored credentials under the current ``SECRET_KEY`` (key rotation).

``manage.py rotate-secrets`` runs :func:`reseal_workshop` for one workshop at a time,
with that workshop's instance stopped: only one process may have the queue file open
(FIELD-NOTES), and the order records assume one writer. A workshop's sealed ERP logins
are in two places, the same token in both for one order: the order records
(``orders.db``, column ``credentials``, kept for finished orders too) and the queue
items (payload field ``credentials``). One :class:`Resealer` gives each old token one
new token, so the two places stay equal.

The queue is re-sealed first and the records last: the records are what a survey of a
running workshop reads to decide whether it needs the rotation, so a run cut short in
between is done again on the next run, not skipped.
"""

import sqlite3
from contextlib import closing, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from core.crypto import Unreadable
from core.hold import Hold
from orders.queue import OrderQueue


@dataclass
class Tally:
    """What a rotation found, counted once per distinct token."""

    resealed: int = 0  # opened under a fallback, now sealed under SECRET_KEY
    current: int = 0  # under SECRET_KEY already: left as they were
    unreadable: list = field(default_factory=list)  # names of tokens no key opens; left as they were


class Resealer:
    """``resealer(token, name)`` -> the token under ``SECRET_KEY``, or None to leave it.

    :param box: :class:`~core.crypto.CredentialBox` with ``SECRET_KEY`` and the fallbacks
    :param dry_run: count only, and always answer None (nothing is rewritten); then
        ``tally.resealed`` counts the tokens a rotation would re-seal
    """

    def __init__(self, box, dry_run=False):
        self.box = box
        self.dry_run = dry_run
        self.tally = Tally()
        self._seen = {}  # old token -> new token, or None (current or unreadable)

    def __call__(self, token, name):
        if not token:
            return None
        if token not in self._seen:
            try:
                new = self.box.rotate(token)
            except Unreadable:
                new = None
                self.tally.unreadable.append(name)
            else:
                if new is None:
                    self.tally.current += 1
                else:
                    self.tally.resealed += 1
            self._seen[token] = new
        return None if self.dry_run else self._seen[token]


def _records(directory):
    path = Path(directory) / "orders.db"
    return path if path.is_file() else None


def reseal_workshop(directory, resealer, queue=True):
    """Re-seal every sealed login in one workshop's queue and order records.

    The instance must not be running, except for a survey: ``queue=False`` with a
    dry-run :class:`Resealer` only reads the records, through a SQLite connection of its
    own (WAL: it neither blocks nor is blocked by the instance). The queue file is left
    alone then; its tokens are copies of the records' ones. Tokens under ``SECRET_KEY``
    already, and tokens no key opens, are left as they are (counted in
    ``resealer.tally``).

    :param directory: ``QUEUE_DIR/<workshop file name>``
    :param resealer: :class:`Resealer`
    :param queue: also re-seal the queue file
    :returns: how many stored values (queue items plus records) were rewritten
    :raises WorkshopHeld: when a process runs on the workshop's data (an instance that
        supervisord does not know of, say): nothing is rewritten then
    """
    directory = Path(directory)
    # a rewrite holds the workshop as an instance does (core/hold.py); a survey only reads
    writing = not resealer.dry_run and directory.is_dir()
    with Hold.take(directory, "manage.py rotate-secrets") if writing else nullcontext():
        return _reseal(directory, resealer, queue)


def _reseal(directory, resealer, queue):
    rewritten = 0
    if queue and (directory / "queue").is_dir():
        queue = OrderQueue(str(directory / "queue"))
        try:
            rewritten += queue.rewrite(lambda payload: _payload_with(payload, resealer))
        finally:
            queue.close()
    path = _records(directory)
    if path is not None:
        with closing(sqlite3.connect(path, timeout=10, isolation_level=None)) as db:
            db.execute("PRAGMA synchronous=FULL")
            rows = db.execute(
                "SELECT uniqueid, credentials FROM orders WHERE credentials IS NOT NULL").fetchall()
            changes = [(new, uniqueid) for uniqueid, token in rows
                       if (new := resealer(token, uniqueid)) is not None]
            if changes:
                db.execute("BEGIN IMMEDIATE")
                db.executemany("UPDATE orders SET credentials=? WHERE uniqueid=?", changes)
                db.execute("COMMIT")
            rewritten += len(changes)
    return rewritten


def _payload_with(payload, resealer):
    if not isinstance(payload, dict):
        return None
    new = resealer(payload.get("credentials"), str(payload.get("uniqueid")))
    return None if new is None else {**payload, "credentials": new}
