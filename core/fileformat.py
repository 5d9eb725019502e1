"""Every SQLite file the product writes carries its format version (``PRAGMA user_version``).

A release knows the newest format of each file it writes and how to bring every older
one forward. Opening a file:

* **new** (no table of ours yet): its tables are made and it is stamped with the newest
  version;
* **older** (a lower version; 0 is a file from before versions were written): a copy is
  kept beside it (``<file>.v<old>.bak``, made with SQLite's online backup, so a file in
  WAL mode is copied whole), then every step up to the newest runs in **one**
  transaction with the new stamp: a step that fails leaves the file as it was;
* **newer** (a release after this one wrote it): refused with one line
  (:class:`~core.errors.FormatTooNew`, a ConfigError: ``api.py`` and ``manage.py`` exit
  2), never opened half-understood.

Two processes may open an older file at the same moment (``manage.py`` and the
management API): ``BEGIN IMMEDIATE`` makes one of them migrate, and the other finds the
file current once it gets the lock.
"""

import os
import sqlite3

from core.errors import FormatTooNew


class FileFormat:
    """The format of one kind of file.

    :param what: what the file is, for messages (``"the order records"``)
    :param create: ``create(db)``: make the tables of the newest format in a new file
    :param steps: ``[step(db), ...]``: step ``n`` brings a file of version ``n`` to
        ``n + 1``; the newest version is ``len(steps)``
    :param ours: ``ours(db)``: whether the file holds tables of ours yet (else it is new)
    """

    def __init__(self, what, create, steps, ours):
        self.what = what
        self.create = create
        self.steps = list(steps)
        self.ours = ours

    @property
    def version(self):
        return len(self.steps)

    def open(self, db, path):
        """Bring the file behind connection ``db`` (autocommit, ``isolation_level=None``)
        to the newest format (see the module's docstring).

        :returns: the version the file had (None for a new one)
        :raises FormatTooNew: the file is of a newer format than this release knows
        """
        found = self._version(db)
        if found > self.version:
            raise self._too_new(path, found)
        if found == self.version and self.ours(db):
            return found
        if 0 <= found < self.version and self.ours(db):
            # before the lock: SQLite's backup cannot read a file its own connection holds
            # a write lock on. Another process migrating meanwhile is harmless: the copy is
            # of the file before it either way, or the check below finds it done.
            self._keep_copy(db, path, found)
        db.execute("BEGIN IMMEDIATE")
        try:
            found = self._version(db)  # another process may have done it meanwhile
            if found > self.version:
                raise self._too_new(path, found)
            new = not self.ours(db)
            if new:
                self.create(db)
            elif found < self.version:
                for step in self.steps[found:]:
                    step(db)
            db.execute(f"PRAGMA user_version={self.version:d}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return None if new else found

    @staticmethod
    def _version(db):
        return db.execute("PRAGMA user_version").fetchone()[0]

    def _too_new(self, path, found):
        return FormatTooNew(
            f"{self.what} file {path} is of format {found}, written by a newer release; this "
            f"release reads formats up to {self.version}: run the newer release, or restore "
            "a backup taken before the upgrade")

    def _keep_copy(self, db, path, found):
        """A copy of the file as it is, beside it, before it is changed."""
        copy = f"{path}.v{found}.bak"
        if os.path.exists(copy):
            return  # an earlier try that did not finish: its copy is of the same file
        target = sqlite3.connect(copy + ".tmp")
        try:
            db.backup(target)
        finally:
            target.close()
        os.replace(copy + ".tmp", copy)


def run_script(db, script):
    """Run every statement of ``script`` on ``db`` inside the caller's transaction
    (``executescript`` would commit it first)."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            db.execute(pending)
            pending = ""
    if pending.strip():
        raise ValueError(f"an incomplete statement at the end of the script: {pending!r}")


def has_table(db, name):
    return db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                      (name,)).fetchone() is not None


def columns(db, table):
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
