"""Order events: every status change of an order, kept as an outbox for the feed
(``GET /events``, ``PUT /events/ack``) and the webhook (:mod:`service.webhooks`).

**Every history row is an event**, written by :class:`~orders.records.OrderStore` in
the same SQLite transaction as the status change it records (:func:`record` is called
from ``OrderStore._history``), so a crash keeps both or neither: no event is lost and
none announces a change that did not happen.

An event has:

* ``cursor`` -- its place in the outbox: an integer that only grows. The table uses
  ``AUTOINCREMENT`` so a cursor is never given twice, also after the newest events were
  pruned (plain rowids would be reused).
* ``id`` -- ``evt_<32 hex digits>``, random: the receiver's idempotency key
  (``webhook-id``). Random rather than built from the cursor, because one receiver
  hears from every workshop, and a records file moved aside starts its cursors again.
* ``type`` -- from the order's status and the status before it (:func:`event_type`):

  ==================== ==================================================================
  ``order.placed``     stored and queued; also back to ``placed`` (released by a stopping
                       worker, resumed after a restart: ``reason_text`` says which)
  ``order.processing`` the worker took it
  ``order.retrying``   still ``processing``: an attempt ended in a transient failure
                       (``reason_code``, ``attempts``); it is tried again after a backoff
  ``order.created``    the line is on the worksheet (final)
  ``order.error``      given up, with ``reason_code`` (final)
  ``order.note``       a history row that changes no status, e.g. a repair noted on a
                       ``created`` order (issue 10's duplicate repair)
  ``order.<status>``   any status added later gets its own type the same way
  ``erp.changed``      not an order's: a screen of the ERP is not as the integration
                       knows it; the workshop's orders are held (``uniqueid`` empty,
                       ``status`` the ERP's state, ``reason_text`` what differs)
  ``erp.ok``           the ERP's screens are as known again; held orders are worked
  ==================== ==================================================================

* ``uniqueid``, ``workshop``, ``status``, ``reason_code``, ``reason_text``, ``note``
  (null unless the history row carries one), ``attempts`` (tries so far), ``at`` (when
  the change happened, ISO 8601 UTC).

**Keeping.** An event is pruned once all of these hold: the feed acknowledged it
(``PUT /events/ack``), it is older than ``EVENT_RETENTION_DAYS``, and the webhook, when
one is configured and not disabled, delivered it. A feed nobody acknowledges would keep
every event for ever, so past ``EVENT_MAX_DAYS`` an event is pruned whatever its state
(0: never).

The tables live in the order records file (``orders.db``) and are used through the
store's connection and lock (:meth:`~orders.records.OrderStore.locked`), so they share
its checks for a full disk or a file deleted under the instance.
"""

import uuid
from datetime import datetime, timedelta, timezone

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    cursor INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused, also after pruning
    id TEXT NOT NULL,                          -- evt_<hex>: the receiver's idempotency key
    type TEXT NOT NULL,
    uniqueid TEXT NOT NULL,
    status TEXT NOT NULL,
    reason_code TEXT,
    reason_text TEXT,
    note TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS event_marks (
    name TEXT PRIMARY KEY,                     -- 'feed' or 'webhook'
    cursor INTEGER NOT NULL DEFAULT 0,         -- acknowledged / delivered up to here
    failures INTEGER NOT NULL DEFAULT 0,       -- webhook: failed tries of the next event
    next_try REAL NOT NULL DEFAULT 0,          -- webhook: not before (Unix time)
    endpoint TEXT,                             -- webhook: digest of the URL and secret
    disabled_url TEXT,                         -- webhook: answered 410 (URL without secrets)
    last_error TEXT
);
INSERT OR IGNORE INTO event_marks (name) VALUES ('feed'), ('webhook');
"""

#: the feed's default and largest page
DEFAULT_LIMIT = 100
MAX_LIMIT = 500
#: the largest cursor SQLite can hold
MAX_CURSOR = 2 ** 63 - 1

_COLUMNS = ("cursor", "id", "type", "uniqueid", "status", "reason_code", "reason_text",
            "note", "attempts", "at")


def event_type(previous, status):
    """The type of an event from the order's status before and after.

    :param previous: the status of the order's history row before this one, or None
    :param status: the status this row records
    """
    if previous != status:
        return f"order.{status}"
    return "order.retrying" if status == "processing" else "order.note"


#: :func:`record`'s ``previous`` when the caller does not know it (it is read then)
UNKNOWN = object()


def record(db, history_id, uniqueid, status, at, reason_code=None, reason_text=None,
           note=None, previous=UNKNOWN, attempts=None):
    """Write the event of one history row. Called inside the transaction that wrote the
    row, with the store's connection, so the two are committed together.

    The caller hands over what it just wrote; what it does not know is read: the status
    before this row (``previous``) and the order's ``attempts``. An intake knows both (a
    new order: no previous status, no attempt), so its transaction reads nothing back.

    :param db: the store's connection (rows as :class:`sqlite3.Row`)
    :param history_id: the rowid of the history row just written
    :param previous: the order's status before this row, None for a new order
    """
    if previous is UNKNOWN:
        row = db.execute(
            "SELECT status FROM history WHERE uniqueid=? AND id<? ORDER BY id DESC LIMIT 1",
            (uniqueid, history_id)).fetchone()
        previous = row and row[0]
    if attempts is None:
        row = db.execute("SELECT attempts FROM orders WHERE uniqueid=?", (uniqueid,)).fetchone()
        attempts = row[0] if row else 0
    db.execute(
        "INSERT INTO events (id, type, uniqueid, status, reason_code, reason_text, note,"
        " attempts, at) VALUES (?,?,?,?,?,?,?,?,?)",
        ("evt_" + uuid.uuid4().hex, event_type(previous, status), uniqueid, status,
         reason_code, reason_text, note, attempts, at))


def record_erp(db, kind, state, detail, at):
    """Write an event about the workshop's ERP, not about an order: ``erp.changed``
    (a screen is not as the integration knows it, orders held) or ``erp.ok`` (the
    screens are as known again). ``uniqueid`` is empty, ``status`` the ERP's state
    (workers/probing.py), ``reason_text`` the probe's detail."""
    db.execute(
        "INSERT INTO events (id, type, uniqueid, status, reason_code, reason_text, note,"
        " attempts, at) VALUES (?,?,?,?,?,?,?,?,?)",
        ("evt_" + uuid.uuid4().hex, kind, "", state,
         "ERP_SCREEN_CHANGED" if kind == "erp.changed" else None, detail, None, 0, at))


class CursorAhead(ValueError):
    """An acknowledgement of a cursor no event has had yet (answered 409)."""


class EventLog:
    """The events of one workshop, read and marked through its order store.

    :param store: the :class:`~orders.records.OrderStore` whose file holds the events
    :param workshop: put into every event (the file is one workshop's)
    """

    def __init__(self, store, workshop):
        self.store = store
        self.workshop = workshop

    def public(self, row):
        """:returns: an event as the feed and the webhook show it"""
        event = {k: row[k] for k in _COLUMNS}
        event["workshop"] = self.workshop
        return event

    # -- the feed -------------------------------------------------------------------

    def page(self, after=None, limit=DEFAULT_LIMIT):
        """Events after a cursor, oldest first.

        :param after: the last cursor the client has; None: the acknowledged cursor
        :param limit: most events returned (1..:data:`MAX_LIMIT`)
        :returns: ``{"events": [...], "next": cursor to ask after next, "more": bool}``
        """
        with self.store.locked() as db:
            if after is None:
                after = self._mark(db, "feed")["cursor"]
            rows = db.execute("SELECT * FROM events WHERE cursor>? ORDER BY cursor LIMIT ?",
                              (after, limit + 1)).fetchall()
        events = [self.public(r) for r in rows[:limit]]
        return {"events": events, "next": events[-1]["cursor"] if events else after,
                "more": len(rows) > limit}

    def ack(self, cursor):
        """Mark every event up to ``cursor`` as received by the feed's client. A lower
        cursor than one acknowledged before changes nothing (acks may arrive late).

        :returns: the acknowledged cursor now
        :raises CursorAhead: no event has had that cursor yet
        """
        with self.store.locked() as db:
            newest = self._newest(db)
            if cursor > newest:
                raise CursorAhead(f"no event has cursor {cursor} yet; the newest is {newest}")
            acked = max(cursor, self._mark(db, "feed")["cursor"])
            db.execute("UPDATE event_marks SET cursor=? WHERE name='feed'", (acked,))
            return acked

    # -- the webhook's outbox -------------------------------------------------------

    def after(self, cursor):
        """:returns: the first event after ``cursor`` (public form), or None"""
        with self.store.locked() as db:
            row = db.execute("SELECT * FROM events WHERE cursor>? ORDER BY cursor LIMIT 1",
                             (cursor,)).fetchone()
        return None if row is None else self.public(row)

    def webhook(self, endpoint=None):
        """The webhook's delivery state; with ``endpoint`` (a digest of the configured
        URL and secret), a state kept for another endpoint is reset first: a new URL or
        secret ends a 410's disabling and starts the backoff afresh. Where it has
        delivered up to is kept: the new endpoint gets what the old one did not.

        :returns: the ``event_marks`` row as a dict
        """
        with self.store.locked() as db:
            state = self._mark(db, "webhook")
            if endpoint is not None and state["endpoint"] != endpoint:
                db.execute("UPDATE event_marks SET endpoint=?, failures=0, next_try=0,"
                           " disabled_url=NULL, last_error=NULL WHERE name='webhook'",
                           (endpoint,))
                state = self._mark(db, "webhook")
            return state

    def save_webhook(self, **changes):
        """Write some fields of the webhook's state (``cursor``, ``failures``,
        ``next_try``, ``disabled_url``, ``last_error``)."""
        with self.store.locked() as db:
            db.execute(f"UPDATE event_marks SET {', '.join(k + '=?' for k in changes)}"
                       " WHERE name='webhook'", tuple(changes.values()))

    def backlog(self, cursor):
        """:returns: how many events there are after ``cursor``"""
        with self.store.locked() as db:
            return db.execute("SELECT COUNT(*) FROM events WHERE cursor>?", (cursor,)).fetchone()[0]

    def outbox(self):
        """For ``/metrics``: ``{"stored": events kept, "unacknowledged": events after the
        feed's acknowledged cursor}``."""
        with self.store.locked() as db:
            acked = self._mark(db, "feed")["cursor"]
            stored, unacknowledged = db.execute(
                "SELECT COUNT(*), COUNT(CASE WHEN cursor>? THEN 1 END) FROM events",
                (acked,)).fetchone()
            return {"stored": stored, "unacknowledged": unacknowledged}

    # -- keeping --------------------------------------------------------------------

    def prune(self, retention_days, max_days=0, delivered=None, now=None):
        """Delete the events no one needs any more (see the module's docstring).

        :param retention_days: keep every event at least this long
        :param max_days: delete any event older than this (0: never)
        :param delivered: the webhook's delivered cursor when it holds events, else None
        :param now: the present (tests)
        :returns: how many events were deleted
        """
        now = now or datetime.now(timezone.utc)
        keep_since = _iso(now - timedelta(days=retention_days))
        with self.store.locked() as db:
            acked = self._mark(db, "feed")["cursor"]
            upto = acked if delivered is None else min(acked, delivered)
            deleted = db.execute("DELETE FROM events WHERE cursor<=? AND at<?",
                                 (upto, keep_since)).rowcount
            if max_days:
                deleted += db.execute("DELETE FROM events WHERE at<?",
                                      (_iso(now - timedelta(days=max_days)),)).rowcount
            return deleted

    # -- helpers --------------------------------------------------------------------

    @staticmethod
    def _mark(db, name):
        return dict(db.execute("SELECT * FROM event_marks WHERE name=?", (name,)).fetchone())

    @staticmethod
    def _newest(db):
        """The highest cursor ever given (pruned events included)."""
        row = db.execute("SELECT seq FROM sqlite_sequence WHERE name='events'").fetchone()
        return row[0] if row else 0


def _iso(moment):
    """The form :func:`orders.records.now` writes ``at`` in, so text comparison orders."""
    return moment.isoformat(timespec="milliseconds")
