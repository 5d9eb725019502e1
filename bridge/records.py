"""Order records: each order's content, status, attempts and history, in SQLite.

This is the bridge's own bookkeeping, separate from the persist-queue file. It answers
``/get_order_status``, ``/queue`` and ``/alive``, detects duplicate ``uniqueid``s, and
is the source of truth the queue is reconciled against at start-up. It never holds a
plaintext credential: only the sealed token from :mod:`bridge.crypto`.

One connection serves every thread, behind a lock: writes are short, and a single
writer is what SQLite wants anyway. ``synchronous=FULL`` because a 200 from ``/create``
promises that the order survives a crash of the process or of the machine.
"""

import sqlite3
import threading
from datetime import datetime, timezone

from bridge.exceptions import BridgeError
from bridge.status import ACTIVE, OrderStatus, can_move

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
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_by_status ON orders (status, seq);
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    uniqueid TEXT NOT NULL,
    status TEXT NOT NULL,
    at TEXT NOT NULL,
    reason_code TEXT,
    reason_text TEXT
);
CREATE INDEX IF NOT EXISTS history_by_order ON history (uniqueid, id);
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


class OrderStore:
    """The records of one workshop's orders."""

    def __init__(self, path):
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def close(self):
        with self._lock:
            self._db.close()

    # -- intake -------------------------------------------------------------------

    def add(self, order, fingerprint, credentials_token):
        """Store a new order as ``placed``, or find the one already stored.

        :param order: mapping with uniqueid, worksheet, product_nr, product_amount, username
        :returns: ``(record, created)``; ``created`` is False for a repeat of a known order
        :raises DuplicateConflict: the uniqueid is known with another fingerprint
        """
        with self._lock:
            row = self._row(order["uniqueid"])
            if row is not None:
                if row["fingerprint"] != fingerprint:
                    raise DuplicateConflict(
                        f"uniqueid {order['uniqueid']!r} was already used for a different order"
                    )
                return self._public(row), False
            at = now()
            with self._db:  # one transaction: the order and its first history entry
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute(
                    "INSERT INTO orders (uniqueid, fingerprint, worksheet, product_nr,"
                    " product_amount, username, credentials, status, created_at, updated_at)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (order["uniqueid"], fingerprint, order["worksheet"], order["product_nr"],
                     order["product_amount"], order.get("username"), credentials_token,
                     OrderStatus.PLACED.value, at, at),
                )
                self._history(order["uniqueid"], OrderStatus.PLACED, at)
            return self._public(self._row(order["uniqueid"])), True

    # -- status changes -----------------------------------------------------------

    def move(self, uniqueid, new, reason_code=None, reason_text=None, expect=None):
        """Change an order's status if the transition is allowed.

        :param expect: only move when the current status is this one
        :returns: True when the status changed; False when the order is unknown, not in
            ``expect``, or the transition is not allowed (the caller lost a race, e.g.
            with ``/clear_queue``)
        """
        new = OrderStatus(new)
        with self._lock:
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
        with self._lock, self._db:
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
        with self._lock, self._db:
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

    # -- reading ------------------------------------------------------------------

    def get(self, uniqueid, with_history=True):
        """:returns: the public record (no credentials), or None"""
        with self._lock:
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
        with self._lock:
            row = self._row(uniqueid)
            return None if row is None else (row["username"], row["credentials"])

    def active(self):
        """:returns: the orders still in the queue, oldest first (public records)"""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM orders WHERE status IN (?, ?) ORDER BY seq",
                tuple(s.value for s in ACTIVE)).fetchall()
            return [self._public(r) for r in rows]

    def count_active(self):
        with self._lock:
            return self._db.execute(
                "SELECT COUNT(*) FROM orders WHERE status IN (?, ?)",
                tuple(s.value for s in ACTIVE)).fetchone()[0]

    def last_success(self):
        """:returns: when an order last reached ``created``, or None"""
        with self._lock:
            row = self._db.execute(
                "SELECT at FROM history WHERE status=? ORDER BY id DESC LIMIT 1",
                (OrderStatus.CREATED.value,)).fetchone()
            return row[0] if row else None

    def last_error(self):
        """:returns: the last order that ended in ``error``, or None"""
        with self._lock:
            row = self._db.execute(
                "SELECT uniqueid, reason_code, reason_text, at FROM history WHERE status=?"
                " ORDER BY id DESC LIMIT 1", (OrderStatus.ERROR.value,)).fetchone()
            return dict(row) if row else None

    # -- helpers ------------------------------------------------------------------

    def _row(self, uniqueid):
        return self._db.execute("SELECT * FROM orders WHERE uniqueid=?", (uniqueid,)).fetchone()

    def _history(self, uniqueid, status, at, reason_code=None, reason_text=None):
        self._db.execute(
            "INSERT INTO history (uniqueid, status, at, reason_code, reason_text)"
            " VALUES (?,?,?,?,?)", (uniqueid, OrderStatus(status).value, at, reason_code, reason_text))

    @staticmethod
    def _public(row):
        record = {k: row[k] for k in _PUBLIC_FIELDS}
        if record["status"] != OrderStatus.ERROR.value and record["reason_code"] is None:
            del record["reason_code"], record["reason_text"]
        return record
