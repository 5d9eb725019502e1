"""``manage.py backup DIR`` and ``manage.py restore DIR``: the fleet's data, copied while
orders flow, and put back onto a stopped fleet.

**What a backup holds** (``DIR``, which must be new or empty)::

    manifest.json                      when, which workshops, each file's format
    registry.db                        the registry (secrets sealed, as stored)
    workshops/<folder>/orders.db       one workshop's order records, history and events
    workshops/<folder>/queue/data.db   its queue

Each file is copied with SQLite's online backup: a consistent copy of that file while
the instances and the management API go on writing it, without stopping anything. The
files are copied one after another, so a workshop's records and queue may be a moment
apart; that is what the instance's start-up reconciliation is for (an active order
missing from the queue is queued again, one finished meanwhile is skipped), and an order
queued twice is still written once (the worker reads the worksheet first).

**What a restore does**, onto a stopped fleet (no supervisord on ``SUPERVISOR_DIR``):
it holds every workshop's folder it restores (core/hold.py: a process still running on
one stops the restore before anything is changed), moves the files it replaces aside
(``<file>.replaced-<stamp>``), and copies the backup's in. ``manage.py up`` then starts
each instance on them: every order acknowledged before the backup began is there with
its status, and the waiting ones are worked off exactly once.
"""

import json
import os
import shutil
import sqlite3
import time
from contextlib import ExitStack, closing
from datetime import datetime, timezone
from pathlib import Path

from core.errors import ConfigError
from core.hold import Hold, describe, holder
from fleet.errors import FleetError, SupervisorUnavailable
from fleet.settings import MANAGEMENT_HOLD

MANIFEST = "manifest.json"
#: a workshop's files, relative to its folder, in the order they are copied: the records
#: first (reconcile re-queues an order the copy of the queue misses)
WORKSHOP_FILES = ("orders.db", os.path.join("queue", "data.db"))


class BackupFailed(FleetError):
    """The backup or the restore could not be done (the message says why)."""

    reason_code = "BACKUP_FAILED"


def _copy(source, target):
    """A consistent copy of the SQLite file ``source`` (online backup) at ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    with closing(sqlite3.connect(source, timeout=30)) as src, \
            closing(sqlite3.connect(partial)) as dst:
        src.backup(dst)
        version = dst.execute("PRAGMA user_version").fetchone()[0]
    os.replace(partial, target)
    return version


def backup(settings, registry, directory, out):
    """Copy the registry and every workshop's files into ``directory``.

    :returns: how many workshops were copied
    :raises BackupFailed: ``directory`` holds something already
    """
    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()):
        raise BackupFailed(f"{directory} is not empty: give a new folder for the backup")
    directory.mkdir(parents=True, exist_ok=True)
    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    formats = {"registry.db": _copy(Path(settings.registry_db), directory / "registry.db")}
    workshops = []
    queue_dir = Path(settings.queue_dir)
    for folder in sorted(p for p in queue_dir.iterdir() if p.is_dir()) if queue_dir.is_dir() else []:
        if not (folder / WORKSHOP_FILES[0]).is_file():
            continue  # not a workshop's folder
        for name in WORKSHOP_FILES:
            if (folder / name).is_file():
                key = f"workshops/{folder.name}/{name}"
                formats[key] = _copy(folder / name, directory / "workshops" / folder.name / name)
        workshops.append(folder.name)
        print(f"backup: {folder.name}", file=out, flush=True)
    manifest = {"started_at": started,
                "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "workshops": workshops, "formats": formats}
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n",
                                      encoding="utf-8")
    print(f"backup: {len(workshops)} workshop(s) and the registry in {directory} "
          f"(started {started})", file=out)
    return len(workshops)


def restore(settings, supervisor, directory, out):
    """Put a backup back (see the module's docstring).

    :returns: how many workshops were restored
    :raises SupervisorUnavailable: the fleet runs (stop it first)
    :raises BackupFailed: ``directory`` is no backup
    :raises WorkshopHeld: a process runs on a workshop's folder; nothing was changed
    """
    directory = Path(directory)
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
        workshops = list(manifest["workshops"])
    except (OSError, ValueError, KeyError, TypeError):
        raise BackupFailed(f"{directory} is not a backup made by manage.py backup "
                           f"(no readable {MANIFEST})") from None
    if supervisor.running():
        raise SupervisorUnavailable("the fleet is running: stop it (manage.py up's "
                                    "supervisord) before a restore")
    management = holder(settings.supervisor_dir, MANAGEMENT_HOLD)
    if management is not None:  # it writes the registry
        raise BackupFailed(f"the management API still runs ({describe(management)}): stop "
                           "it before a restore")
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    queue_dir = Path(settings.queue_dir)
    with ExitStack() as holds:
        for name in workshops:  # every hold first: nothing changes if one is taken
            holds.enter_context(Hold.take(queue_dir / name, "manage.py restore"))
        _put_back(directory / "registry.db", Path(settings.registry_db), stamp)
        for name in workshops:
            for file in WORKSHOP_FILES:
                source = directory / "workshops" / name / file
                if source.is_file():
                    _put_back(source, queue_dir / name / file, stamp)
            print(f"restore: {name}", file=out, flush=True)
    print(f"restore: {len(workshops)} workshop(s) and the registry from {directory} (backup "
          f"started {manifest.get('started_at')}); files replaced were kept as "
          f"*.replaced-{stamp}", file=out)
    return len(workshops)


def _put_back(source, target, stamp):
    """Copy ``source`` to ``target``, moving what was there aside (with its WAL files)."""
    if not source.is_file():
        raise ConfigError(f"the backup lacks {source}")
    target.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        old = target.with_name(target.name + suffix)
        if old.exists():
            os.replace(old, old.with_name(f"{old.name}.replaced-{stamp}"))
    partial = target.with_name(target.name + ".partial")
    shutil.copyfile(source, partial)
    os.replace(partial, target)
