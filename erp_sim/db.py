"""The ERP's SQLite file: schema, first-start seeding, a connection per request.

Reads run in parallel on their own connections (WAL); writes are serialised by one
lock per app, so two request threads never race on a commit.
"""

import sqlite3
import threading
from contextlib import contextmanager

from flask import current_app, g

from erp_sim import seed

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    username TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS products (
    nr INTEGER PRIMARY KEY,
    name TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS worksheets (
    number INTEGER PRIMARY KEY,
    customer TEXT NOT NULL,
    vehicle TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'closed'))
);
CREATE TABLE IF NOT EXISTS lines (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    worksheet INTEGER NOT NULL REFERENCES worksheets (number),
    product_nr INTEGER NOT NULL REFERENCES products (nr),
    amount TEXT NOT NULL,  -- normalised decimal string: "5", "2.5"
    text TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX IF NOT EXISTS lines_worksheet ON lines (worksheet);
"""


def connect(path):
    db = sqlite3.connect(path, timeout=5.0)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA foreign_keys = ON")
    return db


def init_db(path, users=()):
    """Create the schema and seed it if the file is new (or empty).

    :param users: extra ``(username, password)`` pairs, created or reset on every start
    """
    db = connect(path)
    try:
        db.execute("PRAGMA journal_mode = WAL")  # readers never wait for the writer
        db.executescript(SCHEMA)
        if db.execute("SELECT COUNT(*) FROM users").fetchone()[0] == 0:
            seed.seed(db)
        seed.add_users(db, users)
        db.commit()
    finally:
        db.close()


def get_db():
    """The current request's connection, opened on first use."""
    if "db" not in g:
        g.db = connect(current_app.config["ERP_SIM"].db_path)
    return g.db


def close_db(exc=None):
    db = g.pop("db", None)
    if db is not None:
        db.close()


@contextmanager
def writing():
    """Hold the app's write lock and commit (or roll back) the current connection."""
    db = get_db()
    with current_app.extensions["erp_sim_write_lock"]:
        try:
            yield db
            db.commit()
        except BaseException:
            db.rollback()
            raise


def init_app(app):
    init_db(app.config["ERP_SIM"].db_path, app.config["ERP_SIM"].users)
    app.extensions["erp_sim_write_lock"] = threading.Lock()
    app.teardown_appcontext(close_db)
