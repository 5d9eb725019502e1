"""core/fileformat.py: a file's format version, migrated forward in one transaction with a
copy kept, refused when newer."""

import sqlite3

import pytest

from core.errors import ConfigError, FormatTooNew
from core.fileformat import FileFormat, columns, has_table, run_script

SCHEMA = """
CREATE TABLE IF NOT EXISTS things (
    name TEXT PRIMARY KEY,  -- a comment; with a semicolon
    size INTEGER NOT NULL DEFAULT 0
);
"""


def add_colour(db):
    if "colour" not in columns(db, "things"):
        db.execute("ALTER TABLE things ADD COLUMN colour TEXT NOT NULL DEFAULT 'red'")


def fmt(*extra_steps):
    return FileFormat("the things", lambda db: (run_script(db, SCHEMA), add_colour(db)),
                      [lambda db: run_script(db, SCHEMA), add_colour, *extra_steps],
                      lambda db: has_table(db, "things"))


def connect(path):
    return sqlite3.connect(path, isolation_level=None)


def version(path):
    with connect(path) as db:
        return db.execute("PRAGMA user_version").fetchone()[0]


def test_a_new_file_is_made_and_stamped_without_a_copy(tmp_path):
    path = str(tmp_path / "t.db")
    assert fmt().open(connect(path), path) is None
    assert version(path) == 2 and not list(tmp_path.glob("*.bak"))
    assert fmt().open(connect(path), path) == 2  # current: nothing to do


def test_an_older_file_is_migrated_in_one_go_with_a_copy_beside_it(tmp_path):
    path = str(tmp_path / "t.db")
    with connect(path) as db:  # a file from before formats were written
        db.execute("CREATE TABLE things (name TEXT PRIMARY KEY, size INTEGER NOT NULL DEFAULT 0)")
        db.execute("INSERT INTO things (name, size) VALUES ('bolt', 3)")
    assert fmt().open(connect(path), path) == 0
    assert version(path) == 2
    with connect(path) as db:
        assert db.execute("SELECT name, size, colour FROM things").fetchall() == [("bolt", 3, "red")]
    with connect(str(tmp_path / "t.db.v0.bak")) as copy:  # the file as it was
        assert copy.execute("PRAGMA user_version").fetchone()[0] == 0
        assert "colour" not in columns(copy, "things")


def test_a_failing_step_leaves_the_file_as_it_was(tmp_path):
    path = str(tmp_path / "t.db")
    fmt().open(connect(path), path)

    def broken(db):
        db.execute("ALTER TABLE things ADD COLUMN weight REAL")
        raise RuntimeError("a bug in the step")

    with pytest.raises(RuntimeError):
        fmt(broken).open(connect(path), path)
    assert version(path) == 2
    with connect(path) as db:
        assert "weight" not in columns(db, "things")  # rolled back with the stamp


def test_a_newer_file_is_refused_in_one_line_and_left_alone(tmp_path):
    path = str(tmp_path / "t.db")
    fmt().open(connect(path), path)
    with connect(path) as db:
        db.execute("PRAGMA user_version=7")
    with pytest.raises(FormatTooNew) as refused:
        fmt().open(connect(path), path)
    assert isinstance(refused.value, ConfigError)  # api.py and manage.py: exit 2
    assert "format 7, written by a newer release" in str(refused.value)
    assert "reads formats up to 2" in str(refused.value) and "\n" not in str(refused.value)
    assert version(path) == 7
