"""Order records: each order's content, status, attempts and history, in SQLite.

This is the bridge's own bookkeeping, separate from the persist-queue file. It answers
``/get_order_status``, ``/queue`` and ``/alive``, detects duplicate ``uniqueid``s, and
is the source of truth the queue is reconciled against at start-up. It never holds a
plaintext credential: only the sealed token from :mod:`core.crypto`.

One connection serves every thread, behind a lock: writes are short, and a single
writer is what SQLite wants anyway. ``synchronous=FULL`` because a 200 from ``/create``
promises that the order survives a crash of the process or of the machine; intakes that
arrive together share a commit (:mod:`orders.groupcommit`), so that the wait for the disk
is paid once per group, not once per order.

The file is watched, because SQLite is not: a connection to a file that was deleted
under it goes on reading *and writing* the deleted inode without an error, so every
order accepted afterwards would vanish at the next start (seen in an outside probe).
Before each use the path is checked against the file that was opened. A deleted file
is written back from the open connection (nothing is lost) and logged as critical; a
file replaced by another one, or damaged, is answered with
:class:`~core.errors.RecordsDamaged` (HTTP 503) until an operator restarts the
instance. A full disk is :class:`~core.errors.StorageUnavailable`; the
transaction is rolled back, so an order is either wholly stored or not at all.
"""

import hashlib
import json
import logging
import os
import sqlite3
import threading
from contextlib import contextmanager
from datetime import datetime, timezone

from core.errors import BridgeError, ConfigError, RecordsDamaged, StorageUnavailable
from core.fileformat import FileFormat, columns, has_table, run_script
from orders import events
from orders.groupcommit import GroupCommit
from orders.status import ACTIVE, OrderStatus, can_move

log = logging.getLogger("oilmat.api")

#: how a created order's history says its line was repaired (the worker writes it,
#: ``/alive`` and ``/metrics`` count it: :meth:`OrderStore.count_repairs`)
REPAIRED = "repaired: "

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,   -- arrival order: the queue is FIFO
    uniqueid TEXT NOT NULL UNIQUE,
    fingerprint TEXT NOT NULL,               -- what makes a repost "the same order"
    worksheet TEXT NOT NULL,
    product_nr TEXT NOT NULL,
    product_amount TEXT NOT NULL,
    username TEXT,
    credentials TEXT,                        -- Fernet token, or NULL for the defaults
    status TEXT NOT NULL,
    reason_code TEXT,
    reason_text TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    queued INTEGER NOT NULL DEFAULT 0        -- 1: its queue item is put, or is being put
                                             -- by the intake that stored it (set_queued)
);
CREATE INDEX IF NOT EXISTS orders_by_status ON orders (status, seq);
CREATE INDEX IF NOT EXISTS orders_by_created ON orders (created_at, seq);
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uniqueid TEXT NOT NULL,
    status TEXT NOT NULL,
    at TEXT NOT NULL,
    reason_code TEXT,
    reason_text TEXT,
    note TEXT                                -- an operator's words (PUT /retry, /resolve)
);
CREATE INDEX IF NOT EXISTS history_by_order ON history (uniqueid, id);
"""

#: Indexes for what ``/alive`` and ``/metrics`` ask at every call: the last error (there
#: may be none in the whole history) and the repairs (a few among every created order).
#: Without them each call read the whole history: 10 ms at 50,000 orders, growing with
#: every order (measured). Not a format change: a file with or without them reads the
#: same to every release, so each open makes them if missing (on an old file, once).
#: The partial index serves only a query with these very terms: :meth:`count_repairs`.
_REPAIRED_TERMS = f"status='{OrderStatus.CREATED.value}' AND instr(reason_text, '{REPAIRED}') > 0"
INDEXES = f"""
CREATE INDEX IF NOT EXISTS history_by_status ON history (status, id);
CREATE INDEX IF NOT EXISTS history_repairs ON history (id) WHERE {_REPAIRED_TERMS};
"""

_PUBLIC_FIELDS = (
    "uniqueid", "worksheet", "product_nr", "product_amount", "status",
    "reason_code", "reason_text", "attempts", "created_at", "updated_at",
)


class DuplicateConflict(BridgeError):
    """The uniqueid is known with different content."""

    reason_code = "DUPLICATE_CONFLICT"


def now():
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def fingerprint(order):
    """What makes a repost "the same order": everything but the password.

    The password is left out on purpose: a hash of it would be a way to test guesses,
    and a rotated password does not make a pump event a different one.
    """
    canonical = json.dumps(
        {k: order.get(k) for k in ("workshop", "worksheet", "product_nr", "product_amount",
                                   "uniqueid", "username")},
        sort_keys=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def queue_payload(record, credentials_token, username):
    """The queue item of an order: all the worker needs, and all it takes to rebuild the
    order's record should the records lose it (everything but the history)."""
    return {
        "uniqueid": record["uniqueid"],
        "worksheet": record["worksheet"],
        "product_nr": record["product_nr"],
        "product_amount": record["product_amount"],
        "username": username,
        "credentials": credentials_token,  # sealed; None means the instance defaults
    }


#: what SQLite's primary result codes mean for us
_FULL = {"SQLITE_FULL"}
_DAMAGED = {"SQLITE_CORRUPT", "SQLITE_NOTADB"}


def _storage_error(path, exc):
    """Map a sqlite3 error to the bridge's storage errors (one message, no traceback)."""
    name = (getattr(exc, "sqlite_errorname", "") or "").split("_")[:2]
    primary = "_".join(name)
    if primary in _FULL:
        return StorageUnavailable(f"the disk holding {path} is full")
    if primary in _DAMAGED:
        return RecordsDamaged(f"the order records file {path} is damaged ({exc}); "
                              "stop the instance, move the file aside and start it again "
                              "(waiting orders are rebuilt from the queue)")
    return StorageUnavailable(f"the order records file {path} cannot be used: {exc}")


def _create(db):
    run_script(db, SCHEMA)
    run_script(db, events.SCHEMA)  # the events outbox lives in this file too


def _before_versions(db):
    """Format 0 -> 1: a file from before formats were written had what each release
    added as it went: the tables (the events outbox came later), ``queued`` (a file
    from before the column: every order was queued) and the history's ``note``."""
    _create(db)  # CREATE ... IF NOT EXISTS: only what is missing
    if "queued" not in columns(db, "orders"):
        db.execute("ALTER TABLE orders ADD COLUMN queued INTEGER NOT NULL DEFAULT 1")
    if "note" not in columns(db, "history"):
        db.execute("ALTER TABLE history ADD COLUMN note TEXT")


#: ``orders.db``'s format (core/fileformat.py); a new step goes at the end, never edited
FORMAT = FileFormat("the order records", _create, [_before_versions],
                    lambda db: has_table(db, "orders"))


class OrderStore:
    """The records of one workshop's orders.

    :raises FormatTooNew: the file was written by a newer release
    """

    def __init__(self, path):
        self.path = os.path.abspath(path)
        self._lock = threading.Lock()
        self._damage = None  # the RecordsDamaged found while running, once found
        self.event_added = threading.Event()  # set at every event: wakes the webhook sender
        self._adds = GroupCommit(self._add_group)
        try:
            self._open()  # FormatTooNew (a ConfigError) goes up as it is
            # A damaged file often opens fine and fails at the first page read: read
            # every row's status once (through the index), as reconcile() will anyway.
            self._db.execute("SELECT COUNT(*), MAX(seq) FROM orders").fetchone()
            self._db.execute("SELECT COUNT(*) FROM history").fetchone()
        except sqlite3.DatabaseError as exc:
            raise ConfigError(
                f"the order records file {self.path} is damaged or not a database ({exc}); "
                "move it aside and start again: waiting orders are rebuilt from the queue, "
                "finished orders' history stays in the moved file") from None

    def _open(self):
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        FORMAT.open(self._db, self.path)
        run_script(self._db, INDEXES)
        self._identity = self._file_identity()

    def _file_identity(self):
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return st.st_dev, st.st_ino

    def close(self):
        with self._lock:
            self._db.close()

    def locked(self):
        """The connection under the store's lock and checks (see :meth:`_use`), for the
        tables other modules keep in this file (:mod:`orders.events`)."""
        return self._use()

    @contextmanager
    def _use(self):
        """Hold the lock, make sure the file is still the one opened, map SQLite errors.

        :raises StorageUnavailable: disk full or the file unusable (HTTP 503)
        :raises RecordsDamaged: the file is damaged or was replaced
        """
        with self._lock:
            if self._damage is not None:
                raise self._damage
            identity = self._file_identity()
            if identity != self._identity:
                if identity is None:
                    self._restore_deleted_file()
                else:
                    self._damage = RecordsDamaged(
                        f"the order records file {self.path} was replaced while the instance "
                        "was running; restart the instance to use the new file")
                    log.critical("%s", self._damage)
                    raise self._damage
            try:
                yield self._db
            except sqlite3.DatabaseError as exc:
                # A COMMIT that fails (disk full) leaves its transaction open, and every
                # later BEGIN would fail with it: roll it back, the order was not stored.
                if self._db.in_transaction:
                    try:
                        self._db.rollback()
                    except sqlite3.DatabaseError:
                        pass
                error = _storage_error(self.path, exc)
                if isinstance(error, RecordsDamaged):
                    self._damage = error
                    log.critical("%s", error)
                else:
                    log.error("%s", error)
                raise error from None

    def _restore_deleted_file(self):
        """The file was deleted under us: write the open connection's content back to the
        path and go on with it. SQLite keeps the deleted inode open, so nothing is lost."""
        log.critical("the order records file %s was deleted while the instance was running; "
                     "writing it back from the open connection", self.path)
        try:
            target = sqlite3.connect(self.path)
            with target:
                self._db.backup(target)
            target.close()
            self._db.close()
            self._open()
        except sqlite3.DatabaseError as exc:
            self._damage = RecordsDamaged(
                f"the order records file {self.path} was deleted while the instance was "
                f"running and could not be written back ({exc}); restart the instance")
            log.critical("%s", self._damage)
            raise self._damage from None

    # -- intake -------------------------------------------------------------------

    def add(self, order, fingerprint, credentials_token, note=None, queued=False):
        """Store a new order as ``placed``, or find the one already stored.

        :param order: mapping with uniqueid, worksheet, product_nr, product_amount, username
        :param note: reason text of the first history entry (a rebuilt record says so)
        :param queued: mark it queued at once: the caller puts its queue item next and
            unmarks it (:meth:`set_queued`) if that fails. Saves the intake a commit; a
            crash in between is the start-up reconciliation's, which compares the
            records with the queue itself
        :returns: ``(record, created)``; ``created`` is False for a repeat of a known order
        :raises DuplicateConflict: the uniqueid is known with another fingerprint
        :raises StorageUnavailable: nothing was stored (disk full, file damaged)
        """
        # concurrent adds share a transaction and its fsync (orders/groupcommit.py)
        return self._adds.run((order, fingerprint, credentials_token, note, queued))

    def _add_group(self, group):
        """Run the adds of a group (:meth:`add`) in one transaction, in arrival order:
        each is decided as if alone, so an add that repeats an earlier one of the same
        group finds it. A repeat or a conflict is answered at once and keeps its answer;
        a new order's answer stands once the commit returned."""
        with self._use():
            with self._db:  # one transaction: each order and its first history entry
                self._db.execute("BEGIN IMMEDIATE")
                at = now()
                for work in group:
                    order, fingerprint, credentials_token, note, queued = work.item
                    try:
                        row = self._known(order["uniqueid"], fingerprint)
                    except DuplicateConflict as exc:
                        work.settle(error=exc)
                        continue
                    if row is not None:
                        work.settle(result=(self._public(row), False))
                        continue
                    work.result = (self._insert(order, fingerprint, credentials_token, at,
                                                note, queued), True)

    def add_many(self, orders, queued=False):
        """Store a batch of orders in one transaction: all its new orders, or none
        (``queued``: as :meth:`add`).

        Each order is decided as :meth:`add` decides it, in the given order, so an order
        that repeats an earlier one of the same batch is a repeat of it (same content) or
        a conflict (other content).

        :param orders: ``(order, fingerprint, credentials_token)`` for each order
        :returns: per order, in the given order: ``(record, created)`` as :meth:`add`
            returns it, or ``None`` when its uniqueid is taken by a different order
        :raises StorageUnavailable: nothing of the batch was stored (disk full, file
            damaged); the transaction is rolled back whole
        """
        found = []
        with self._use():
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                at = now()
                for order, fingerprint, credentials_token in orders:
                    try:
                        row = self._known(order["uniqueid"], fingerprint)
                    except DuplicateConflict:
                        found.append(None)
                        continue
                    if row is None:
                        found.append((self._insert(order, fingerprint, credentials_token, at,
                                                   queued=queued), True))
                    else:
                        found.append((self._public(row), False))
            return found

    def _known(self, uniqueid, fingerprint):
        """:returns: the stored row of this order, or None when the uniqueid is new
        :raises DuplicateConflict: the uniqueid is stored with another fingerprint"""
        row = self._row(uniqueid)
        if row is not None and row["fingerprint"] != fingerprint:
            raise DuplicateConflict(f"uniqueid {uniqueid!r} was already used for a different order")
        return row

    def _insert(self, order, fingerprint, credentials_token, at, note=None, queued=False):
        """Insert a new ``placed`` order and its first history entry (inside the caller's
        transaction).

        :returns: the new order's public record, made from what was inserted: the
            intake's transaction reads nothing back (measured: the read-backs cost the
            intake a tenth of its rate; docs/benchmarks.md)
        """
        record = {"uniqueid": order["uniqueid"], "worksheet": order["worksheet"],
                  "product_nr": order["product_nr"], "product_amount": order["product_amount"],
                  "status": OrderStatus.PLACED.value, "attempts": 0, "created_at": at,
                  "updated_at": at}
        self._db.execute(
            "INSERT INTO orders (uniqueid, fingerprint, worksheet, product_nr,"
            " product_amount, username, credentials, status, created_at, updated_at,"
            " queued) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (order["uniqueid"], fingerprint, order["worksheet"], order["product_nr"],
             order["product_amount"], order.get("username"), credentials_token,
             OrderStatus.PLACED.value, at, at, int(queued)),
        )
        self._history(order["uniqueid"], OrderStatus.PLACED, at, reason_text=note,
                      previous=None, attempts=0)
        return record

    # -- the queue's side of intake -----------------------------------------------

    def mark_queued(self, uniqueid):
        """Note that the order's queue item was put."""
        self.set_queued(uniqueid, True)

    def set_queued(self, uniqueid, queued):
        """Note whether the order's queue item was put (False: its put failed, the
        worker's sweep puts it: :meth:`unqueued`)."""
        with self._use(), self._db:
            self._db.execute("UPDATE orders SET queued=? WHERE uniqueid=?",
                             (int(queued), uniqueid))

    def is_queued(self, uniqueid):
        with self._use():
            row = self._db.execute("SELECT queued FROM orders WHERE uniqueid=?",
                                   (uniqueid,)).fetchone()
            return row is None or bool(row[0])

    def unqueued(self):
        """:returns: the queue payloads of active orders whose queue item was never put
        (the put failed after the record was committed), oldest first"""
        with self._use():
            rows = self._db.execute(
                "SELECT * FROM orders WHERE queued=0 AND status IN (?, ?) ORDER BY seq",
                tuple(s.value for s in ACTIVE)).fetchall()
            return [queue_payload(r, r["credentials"], r["username"]) for r in rows]

    def payload(self, uniqueid):
        """:returns: the queue payload of a stored order, or None"""
        with self._use():
            row = self._row(uniqueid)
            return None if row is None else queue_payload(row, row["credentials"], row["username"])

    # -- status changes -----------------------------------------------------------

    def move(self, uniqueid, new, reason_code=None, reason_text=None, expect=None):
        """Change an order's status if the transition is allowed.

        :param expect: only move when the current status is this one
        :returns: True when the status changed; False when the order is unknown, not in
            ``expect``, or the transition is not allowed (the caller lost a race, e.g.
            with ``/clear_queue``)
        """
        new = OrderStatus(new)
        with self._use():
            row = self._row(uniqueid)
            if row is None:
                return False
            current = OrderStatus(row["status"])
            if expect is not None and current != OrderStatus(expect):
                return False
            if not can_move(current, new):
                return False
            at = now()
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute(
                    "UPDATE orders SET status=?, reason_code=?, reason_text=?, updated_at=?"
                    " WHERE uniqueid=?",
                    (new.value, reason_code, reason_text, at, uniqueid),
                )
                self._history(uniqueid, new, at, reason_code, reason_text)
            return True

    def note_attempt(self, uniqueid, reason_code=None, reason_text=None):
        """Count one attempt; with a reason, record the transient failure it ended in.

        The status stays ``processing``; the reason shows in ``/get_order_status`` so an
        operator can see why an order is taking long.
        """
        with self._use(), self._db:
            at = now()
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "UPDATE orders SET attempts = attempts + 1, reason_code=?, reason_text=?,"
                " updated_at=? WHERE uniqueid=?",
                (reason_code, reason_text, at, uniqueid),
            )
            if reason_code:
                self._history(uniqueid, OrderStatus.PROCESSING, at, reason_code, reason_text)

    def clear_placed(self):
        """Give every ``placed`` order status ``error`` with reason ``CLEARED``.

        :returns: the uniqueids cleared
        """
        with self._use(), self._db:
            at = now()
            self._db.execute("BEGIN IMMEDIATE")
            ids = [r[0] for r in self._db.execute(
                "SELECT uniqueid FROM orders WHERE status=? ORDER BY seq",
                (OrderStatus.PLACED.value,))]
            text = "removed from the queue by /clear_queue before it was processed"
            for uniqueid in ids:
                self._history(uniqueid, OrderStatus.ERROR, at, "CLEARED", text)
            self._db.execute(
                "UPDATE orders SET status=?, reason_code='CLEARED', reason_text=?, updated_at=?"
                " WHERE status=?",
                (OrderStatus.ERROR.value, text, at, OrderStatus.PLACED.value),
            )
            return ids

    # -- an operator's actions on failed orders -------------------------------------

    def retry(self, uniqueid, note=None):
        """Put an order that ended in ``error`` back to ``placed``, to be queued again.

        ``attempts`` starts again from 0, so the retried order gets ``MAX_ATTEMPTS`` fresh
        tries; the earlier attempts stay in its history. The order is marked unqueued in
        the same transaction, so a crash before the caller puts its queue item leaves it
        to :meth:`unqueued` (the worker's sweep and the start-up reconciliation).

        :returns: ``(record, moved)``: the record after the call (None when the uniqueid
            is unknown); ``moved`` False when it was not in ``error``
        """
        return self._operator_move(uniqueid, OrderStatus.PLACED, note, retry=True)

    def resolve(self, uniqueid, note=None):
        """End an order that ended in ``error`` as ``resolved``: handled by hand.

        The reason code of the error stays on the record (why it needed a person); the
        operator's note goes into the history and the event.

        :returns: ``(record, moved)`` as :meth:`retry`
        """
        return self._operator_move(uniqueid, OrderStatus.RESOLVED, note)

    def _operator_move(self, uniqueid, new, note, retry=False):
        with self._use():
            row = self._row(uniqueid)
            if row is None:
                return None, False
            if row["status"] != OrderStatus.ERROR.value:
                return self._public(row), False
            at = now()
            if retry:
                code, text = None, f"retried by an operator after {row['attempts']} attempt(s)" \
                                   f" that ended in {row['reason_code']}"
            else:
                code, text = row["reason_code"], "resolved by hand by an operator"
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute(
                    "UPDATE orders SET status=?, reason_code=?, reason_text=?, updated_at=?,"
                    " attempts=CASE WHEN ? THEN 0 ELSE attempts END,"
                    " queued=CASE WHEN ? THEN 0 ELSE queued END WHERE uniqueid=?",
                    (new.value, code, text, at, retry, retry, uniqueid))
                self._history(uniqueid, new, at, code, text, note)
            return self._public(self._row(uniqueid)), True

    # -- reading ------------------------------------------------------------------

    def get(self, uniqueid, with_history=True):
        """:returns: the public record (no credentials), or None"""
        with self._use():
            row = self._row(uniqueid)
            if row is None:
                return None
            record = self._public(row)
            if with_history:
                record["history"] = [
                    {k: h[k] for k in h.keys() if h[k] is not None and k not in ("id", "uniqueid")}
                    for h in self._db.execute(
                        "SELECT * FROM history WHERE uniqueid=? ORDER BY id", (uniqueid,))
                ]
            return record

    def get_sealed(self, uniqueid):
        """:returns: ``(username, credentials_token)`` for the worker, or None"""
        with self._use():
            row = self._row(uniqueid)
            return None if row is None else (row["username"], row["credentials"])

    def active(self):
        """:returns: the orders still in the queue, oldest first (public records)"""
        with self._use():
            rows = self._db.execute(
                "SELECT * FROM orders WHERE status IN (?, ?) ORDER BY seq",
                tuple(s.value for s in ACTIVE)).fetchall()
            return [self._public(r) for r in rows]

    def count_active(self):
        with self._use():
            return self._db.execute(
                "SELECT COUNT(*) FROM orders WHERE status IN (?, ?)",
                tuple(s.value for s in ACTIVE)).fetchone()[0]

    def last_success(self):
        """:returns: when an order last reached ``created``, or None"""
        with self._use():
            row = self._db.execute(
                "SELECT at FROM history WHERE status=? ORDER BY id DESC LIMIT 1",
                (OrderStatus.CREATED.value,)).fetchone()
            return row[0] if row else None

    def erp_event(self, kind, state, detail):
        """Store an ``erp.changed`` or ``erp.ok`` event (:func:`orders.events.record_erp`)."""
        with self._use(), self._db:
            events.record_erp(self._db, kind, state, detail, now())
        self.event_added.set()

    def last_written_worksheet(self):
        """:returns: the worksheet of the order that last reached ``created``, or None
        (the ERP probe opens it when no ``PROBE_WORKSHEET`` is set)"""
        with self._use():
            row = self._db.execute(
                "SELECT o.worksheet FROM history h JOIN orders o ON o.uniqueid = h.uniqueid"
                " WHERE h.status=? ORDER BY h.id DESC LIMIT 1",
                (OrderStatus.CREATED.value,)).fetchone()
            return row[0] if row else None

    def count_repairs(self):
        """:returns: how many orders were created after a repair of their line (their
        ``created`` history entry's text contains :data:`REPAIRED`). The terms are
        written out, not bound, and the partial index named (:data:`INDEXES`): without
        statistics SQLite prefers the status index and reads every created order."""
        with self._use():
            return self._db.execute(
                "SELECT COUNT(*) FROM history INDEXED BY history_repairs"
                f" WHERE {_REPAIRED_TERMS}").fetchone()[0]

    def tally(self):
        """What ``/metrics`` counts, read at scrape time so it survives restarts.

        :returns: ``{"by_status": {status: n}, "errors_by_reason": {reason_code: n},
            "oldest_active": created_at of the oldest order still waiting, or None}``
        """
        with self._use():
            by_status = dict(self._db.execute(
                "SELECT status, COUNT(*) FROM orders GROUP BY status").fetchall())
            errors = dict(self._db.execute(
                "SELECT COALESCE(reason_code, ''), COUNT(*) FROM orders WHERE status=?"
                " GROUP BY 1", (OrderStatus.ERROR.value,)).fetchall())
            oldest = self._db.execute(
                "SELECT MIN(created_at) FROM orders WHERE status IN (?, ?)",
                tuple(s.value for s in ACTIVE)).fetchone()[0]
            return {"by_status": by_status, "errors_by_reason": errors, "oldest_active": oldest}

    def last_error(self):
        """:returns: the last order that ended in ``error``, or None"""
        with self._use():
            row = self._db.execute(
                "SELECT uniqueid, reason_code, reason_text, at FROM history WHERE status=?"
                " ORDER BY id DESC LIMIT 1", (OrderStatus.ERROR.value,)).fetchone()
            return dict(row) if row else None

    def count_failed(self):
        """:returns: how many orders are in ``error`` (waiting for an operator)"""
        with self._use():
            return self._db.execute("SELECT COUNT(*) FROM orders WHERE status=?",
                                    (OrderStatus.ERROR.value,)).fetchone()[0]

    def listing(self, statuses=(), since=None, until=None, after=0, limit=100):
        """A page of orders in arrival order (``GET /orders``).

        :param statuses: only these statuses (all when empty)
        :param since, until: only orders created at or after ``since`` and before
            ``until`` (ISO 8601 UTC strings as the records hold them)
        :param after: the ``next`` cursor of the page before (an arrival number)
        :returns: ``{"orders": [...], "next": cursor, "more": bool}``; ``next`` is the
            last order's cursor, or ``after`` when the page is empty
        """
        where, args = ["seq > ?"], [after]
        if statuses:
            where.append(f"status IN ({','.join('?' * len(statuses))})")
            args += [OrderStatus(s).value for s in statuses]
        if since is not None:
            where.append("created_at >= ?")
            args.append(since)
        if until is not None:
            where.append("created_at < ?")
            args.append(until)
        with self._use():
            rows = self._db.execute(
                f"SELECT * FROM orders WHERE {' AND '.join(where)} ORDER BY seq LIMIT ?",
                (*args, limit + 1)).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        orders = []
        for row in rows:
            record = self._public(row)
            record["cursor"] = row["seq"]
            orders.append(record)
        return {"orders": orders, "next": rows[-1]["seq"] if rows else after, "more": more}

    # -- helpers ------------------------------------------------------------------

    def _row(self, uniqueid):
        return self._db.execute("SELECT * FROM orders WHERE uniqueid=?", (uniqueid,)).fetchone()

    def _history(self, uniqueid, status, at, reason_code=None, reason_text=None, note=None,
                 **known):
        """Write one history row and its event (:func:`orders.events.record`; ``known``:
        what the caller knows of the order, so that it is not read back)."""
        status = OrderStatus(status).value
        row_id = self._db.execute(
            "INSERT INTO history (uniqueid, status, at, reason_code, reason_text, note)"
            " VALUES (?,?,?,?,?,?)",
            (uniqueid, status, at, reason_code, reason_text, note)
        ).lastrowid
        # its event, in this same transaction
        events.record(self._db, row_id, uniqueid, status, at, reason_code, reason_text, note,
                      **known)
        self.event_added.set()

    @staticmethod
    def _public(row):
        record = {k: row[k] for k in _PUBLIC_FIELDS}
        if record["reason_code"] is None and record["status"] not in (
                OrderStatus.ERROR.value, OrderStatus.RESOLVED.value):
            del record["reason_code"], record["reason_text"]
        return record
