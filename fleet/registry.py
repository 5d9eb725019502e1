"""The registry of integrations: one row per workshop, in SQLite.

ERP credentials and the instance's API token are stored encrypted with ``SECRET_KEY``
(Fernet, the scheme :mod:`core.crypto` uses for orders), so a copy of the database
alone gives neither away; so are the ERP options its ERP declares secret. They open under ``SECRET_KEY_FALLBACKS`` too, until
``manage.py rotate-secrets`` has re-sealed them (:meth:`Registry.reseal`). ``manage.py``
and the management API may write at the same time: every call opens its own short
connection and SQLite's lock orders them.
"""

import json
import sqlite3
import unicodedata
from contextlib import closing
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path


from core.crypto import CredentialBox
from core.errors import ConfigError
from core.fileformat import FileFormat, columns, has_table, run_script
from fleet.errors import DuplicateIntegration, PortTaken, UnknownIntegration
from core.names import file_name, normal_name, program_name, slug as slug_of
from core.credentials import Credentials

SCHEMA = """
CREATE TABLE IF NOT EXISTS integrations (
    workshop TEXT PRIMARY KEY,             -- as shown, NFC-normalised
    name_key TEXT NOT NULL UNIQUE,         -- casefolded file_name(): two names must not share files
    erp_system TEXT NOT NULL,
    erp_url TEXT NOT NULL,
    username TEXT,                         -- shown in the overview; also inside credentials
    credentials TEXT,                      -- Fernet token of username+password, or NULL
    api_token TEXT NOT NULL,               -- Fernet token of the instance's API token
    active INTEGER NOT NULL,
    port INTEGER NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    options TEXT NOT NULL DEFAULT '{}',    -- JSON, see Registration.options
    webhook_url TEXT NOT NULL DEFAULT '',  -- WEBHOOK_URL of the instance ('' for none)
    webhook_secret TEXT,                   -- Fernet token of its WEBHOOK_SECRET, or NULL
    slug TEXT,                             -- its public path /w/<slug>/, given once (format 2)
    probe_worksheet TEXT NOT NULL DEFAULT ''  -- PROBE_WORKSHEET of the instance (format 3)
);
CREATE UNIQUE INDEX IF NOT EXISTS integrations_slug ON integrations (slug);
"""

#: columns added after the first release: ``(name, definition)``, added to an older file
#: when it is opened (SQLite's ADD COLUMN keeps every row, with the default)
MIGRATIONS = (("options", "TEXT NOT NULL DEFAULT '{}'"),
              ("webhook_url", "TEXT NOT NULL DEFAULT ''"), ("webhook_secret", "TEXT"))

#: what :meth:`Registration.public` shows instead of a secret option's value
MASK = "********"


def now():
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Registration:
    """One row of the registry: a workshop's registration (what the management API
    calls an integration, ``/integrations/<name>``; not the ERP adapter of
    :class:`integrations.base.Integration`). ``repr`` and :meth:`public` never show a
    secret."""

    workshop: str
    erp_system: str
    erp_url: str
    port: int
    active: bool
    username: str | None
    created_at: str
    updated_at: str
    credentials: str | None = field(default=None, repr=False)  # sealed
    api_token: str = field(default="", repr=False)  # sealed
    #: the ERP's options set for it, ``{name: value}``; a secret one is stored as
    #: ``{"sealed": token}``, so the row itself says which are secret (see Registry.options)
    options: dict = field(default_factory=dict, repr=False)
    #: where the instance POSTs its order events ("" for none), and the sealed secret
    #: that signs them (``whsec_...`` under SECRET_KEY)
    webhook_url: str = ""
    webhook_secret: str | None = field(default=None, repr=False)  # sealed
    #: its part of the front door's paths, ``/w/<slug>/``: made from the name when it
    #: was added (``-2``, ``-3`` when taken) and never changed, so its URL stays
    slug: str = ""
    #: the worksheet its ERP probe opens, reading only ("" for the last one written to)
    probe_worksheet: str = ""

    @property
    def program(self):
        return program_name(self.workshop)

    def public(self):
        """:returns: the configuration as the API and ``list`` show it, without secrets"""
        data = asdict(self)
        del data["credentials"], data["api_token"], data["webhook_secret"]
        data["has_password"] = self.credentials is not None
        data["has_webhook_secret"] = self.webhook_secret is not None
        data["program"] = self.program
        data["options"] = {name: value if isinstance(value, str) else MASK
                           for name, value in sorted(self.options.items())}
        return data

    def sealed_options(self):
        """:returns: ``{name: token}`` of the secret options, as stored (sealed)"""
        return {name: value["sealed"] for name, value in self.options.items()
                if not isinstance(value, str)}

    def plain_options(self):
        """:returns: ``{name: value}`` of the options that are not secret"""
        return {name: value for name, value in self.options.items() if isinstance(value, str)}


class Registry:
    """The integrations, stored in the SQLite file at ``path``."""

    def __init__(self, path, secret_key, fallbacks=()):
        self.path = Path(path)
        self._box = CredentialBox(secret_key, fallbacks)  # raises ConfigError on a bad key
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db:
            db.execute("PRAGMA journal_mode=WAL")
            FORMAT.open(db, self.path)

    def _connect(self):
        db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        db.row_factory = sqlite3.Row
        return db

    # -- reading --------------------------------------------------------------

    def all(self):
        """:returns: every integration, by name"""
        with closing(self._connect()) as db:
            return [self._row(r) for r in db.execute("SELECT * FROM integrations ORDER BY workshop")]

    def get(self, workshop):
        """:raises UnknownIntegration: when no integration has that name"""
        with closing(self._connect()) as db:
            row = _find(db, workshop)
        if row is None:
            raise UnknownIntegration(f"no integration for workshop {workshop!r}")
        return self._row(row)

    def api_token(self, integration):
        """:returns: the instance's API token in plain text"""
        try:
            return self._box.open_text(integration.api_token)
        except ConfigError:
            raise ConfigError("a stored instance token cannot be decrypted (was SECRET_KEY changed?)") from None

    def credentials(self, integration):
        """:returns: the ERP login as :class:`~integrations.base.Credentials`, or None"""
        if integration.credentials is None:
            return None
        return self._box.open(integration.credentials)

    def webhook_secret(self, integration):
        """:returns: the instance's ``WEBHOOK_SECRET`` in plain text, or None"""
        if integration.webhook_secret is None:
            return None
        try:
            return self._box.open_text(integration.webhook_secret)
        except ConfigError:
            raise ConfigError("a stored webhook secret cannot be decrypted "
                              "(was SECRET_KEY changed?)") from None

    def options(self, integration):
        """:returns: the integration's options in plain text, ``{name: value}``
        :raises ConfigError: naming an option whose value no key opens"""
        options = integration.plain_options()
        for name, token in integration.sealed_options().items():
            try:
                options[name] = self._box.open_text(token)
            except ConfigError:
                raise ConfigError(f"the stored ERP option {name} cannot be decrypted "
                                  "(was SECRET_KEY changed?)") from None
        return options

    # -- writing --------------------------------------------------------------

    def add(self, workshop, erp_system, erp_url, port, api_token, username=None,
            password=None, active=True, options=None, secret=(), webhook_url=None,
            webhook_secret=None, probe_worksheet=None):
        """Register a new integration.

        :param options: the ERP's options, ``{name: value}`` in plain text
        :param secret: the names of those to seal (the ERP declares which)
        :param webhook_url: the instance's ``WEBHOOK_URL``
        :param webhook_secret: its ``WEBHOOK_SECRET`` in plain text (sealed here)

        :raises DuplicateIntegration: the name, or one mapping to the same files, exists
        :raises PortTaken: another integration has the port
        """
        at = now()
        workshop = normal_name(workshop)
        row = dict(workshop=workshop, name_key=file_name(workshop).casefold(),
                   erp_system=erp_system, erp_url=erp_url, port=port, active=int(active),
                   username=username, credentials=self._seal(username, password),
                   api_token=self._seal_token(api_token), created_at=at, updated_at=at,
                   options=self._options_column(options or {}, secret),
                   webhook_url=webhook_url or "",
                   webhook_secret=self._seal_token(webhook_secret) if webhook_secret else None,
                   probe_worksheet=probe_worksheet or "")
        with closing(self._connect()) as db:
            # one writer from the checks to the insert: the slug picked is still free
            db.execute("BEGIN IMMEDIATE")
            try:
                self._check_free(db, workshop, port, row["name_key"])
                row["slug"] = _free_slug(db, slug_of(workshop))
                db.execute(f"INSERT INTO integrations ({','.join(row)}) VALUES "
                           f"({','.join('?' * len(row))})", tuple(row.values()))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return self.get(workshop)

    def update(self, workshop, **changes):
        """Change some fields of an integration; ``None`` leaves a field as it is.

        ``username``/``password``: give either to replace the login (the other is kept).
        ``api_token``: the new token in plain text.
        ``options``: every option it keeps, ``{name: value}`` in plain text (replaces all
        stored ones), with ``secret``: the names of those to seal.
        ``webhook_url``: the new URL, ``""`` for none (which drops the secret too).
        ``webhook_secret``: the new secret in plain text.
        ``probe_worksheet``: the worksheet its probe opens, ``""`` for the last written to.

        :returns: ``(before, after)``
        """
        before = self.get(workshop)
        changes = {k: v for k, v in changes.items() if v is not None}
        row = {}
        for name in ("erp_system", "erp_url", "port", "probe_worksheet"):
            if name in changes:
                row[name] = changes[name]
        if "active" in changes:
            row["active"] = int(changes["active"])
        if "username" in changes or "password" in changes:
            old = self.credentials(before) or Credentials(before.username or "", "")
            username = changes.get("username", old.username)
            row["username"] = username
            row["credentials"] = self._seal(username, changes.get("password", old.password))
        if "api_token" in changes:
            row["api_token"] = self._seal_token(changes["api_token"])
        if "webhook_url" in changes:
            row["webhook_url"] = changes["webhook_url"]
            if not changes["webhook_url"]:
                row["webhook_secret"] = None
        if changes.get("webhook_secret") and row.get("webhook_url", before.webhook_url):
            row["webhook_secret"] = self._seal_token(changes["webhook_secret"])
        if "options" in changes:
            row["options"] = self._options_column(changes["options"], changes.get("secret", ()),
                                                  before)
        if not row:
            return before, before
        row["updated_at"] = now()
        with closing(self._connect()) as db:
            if "port" in row:
                self._check_free(db, before.workshop, row["port"], None)
            db.execute(f"UPDATE integrations SET {', '.join(k + '=?' for k in row)} WHERE workshop=?",
                       (*row.values(), before.workshop))
        return before, self.get(before.workshop)

    def reseal(self, integration, resealer):
        """Re-seal the integration's secrets under ``SECRET_KEY`` (key rotation).

        Each column is only replaced if it still holds the token read: a concurrent
        change (already sealed under ``SECRET_KEY``) is not undone. ``updated_at`` is
        kept, since the configuration did not change.

        :param resealer: :class:`~service.reseal.Resealer`; counts what it sees and names
            it ``registry:api_token``, ``registry:credentials``
        :returns: how many secrets were rewritten
        """
        rewritten = 0
        with closing(self._connect()) as db:
            for column in ("api_token", "credentials", "webhook_secret"):
                old = getattr(integration, column)
                new = resealer(old, f"registry:{column}")
                if new is not None:
                    rewritten += db.execute(
                        f"UPDATE integrations SET {column}=? WHERE workshop=? AND {column}=?",
                        (new, integration.workshop, old)).rowcount
            options = dict(integration.options)
            for name, token in integration.sealed_options().items():
                new = resealer(token, f"registry:option {name}")
                if new is not None:
                    options[name] = {"sealed": new}
            if options != integration.options:
                rewritten += db.execute(
                    "UPDATE integrations SET options=? WHERE workshop=? AND options=?",
                    (_dumps(options), integration.workshop, _dumps(integration.options))).rowcount
        return rewritten

    def remove(self, workshop):
        """:returns: the integration as it was"""
        integration = self.get(workshop)
        with closing(self._connect()) as db:
            db.execute("DELETE FROM integrations WHERE workshop=?", (integration.workshop,))
        return integration

    # -- helpers --------------------------------------------------------------

    def _check_free(self, db, workshop, port, name_key):
        if name_key is not None:
            row = _find(db, workshop)
            if row is not None:
                raise DuplicateIntegration(f"an integration for workshop {row['workshop']!r} exists")
            row = db.execute("SELECT workshop FROM integrations WHERE name_key=?", (name_key,)).fetchone()
            if row is not None:
                same = "exists" if row[0] == workshop else f"would share files with {row[0]!r}"
                raise DuplicateIntegration(f"an integration for workshop {workshop!r} {same}")
        row = db.execute("SELECT workshop FROM integrations WHERE port=? AND workshop<>?",
                         (port, workshop)).fetchone()
        if row is not None:
            raise PortTaken(f"port {port} is already used by workshop {row[0]!r}")

    def _seal(self, username, password):
        if username is None and password is None:
            return None
        return self._box.seal(Credentials(username or "", password or ""))

    def _seal_token(self, token):
        return self._box.seal_text(token)

    def _options_column(self, options, secret, before=None):
        """``{name: value}`` -> the ``options`` column, the ``secret`` ones sealed.

        A secret option whose value did not change keeps its token: a new token would
        change the launch file, and supervisord would restart the instance for nothing.
        """
        kept = {}
        if before is not None and before.sealed_options():
            kept = {name: (value, before.options[name]) for name, value in
                    self.options(before).items() if name in before.sealed_options()}
        column = {}
        for name, value in options.items():
            if name not in secret:
                column[name] = value
            elif name in kept and kept[name][0] == value:
                column[name] = kept[name][1]
            else:
                column[name] = {"sealed": self._seal_token(value)}
        return _dumps(column)

    @staticmethod
    def _row(row):
        return Registration(
            workshop=row["workshop"], erp_system=row["erp_system"], erp_url=row["erp_url"],
            port=row["port"], active=bool(row["active"]), username=row["username"],
            created_at=row["created_at"], updated_at=row["updated_at"],
            credentials=row["credentials"], api_token=row["api_token"],
            options=json.loads(row["options"]), webhook_url=row["webhook_url"],
            webhook_secret=row["webhook_secret"], slug=row["slug"],
            probe_worksheet=row["probe_worksheet"])


def _dumps(options):
    # one spelling for one content: reseal() finds the stored text by writing it again
    return json.dumps(options, sort_keys=True, separators=(",", ":"))


def _before_versions(db):
    """Format 0 -> 1: a registry from before formats were written lacks the columns
    added since (:data:`MIGRATIONS`)."""
    have = columns(db, "integrations")
    for name, definition in MIGRATIONS:
        if name not in have:
            db.execute(f"ALTER TABLE integrations ADD COLUMN {name} {definition}")


def _free_slug(db, wanted):
    """``wanted``, or ``wanted-2``, ``wanted-3``, ... : the first no row has."""
    taken = {row[0] for row in db.execute(
        "SELECT slug FROM integrations WHERE slug=? OR slug LIKE ?", (wanted, wanted + "-%"))}
    n = 1
    while (candidate := wanted if n == 1 else f"{wanted}-{n}") in taken:
        n += 1
    return candidate


def _add_slugs(db):
    """Format 1 -> 2: every integration gets its public path's slug (the front door,
    fleet/frontdoor.py), the oldest first, so the first of two alike keeps the plain one."""
    db.execute("ALTER TABLE integrations ADD COLUMN slug TEXT")
    for (workshop,) in db.execute(
            "SELECT workshop FROM integrations ORDER BY created_at, workshop").fetchall():
        db.execute("UPDATE integrations SET slug=? WHERE workshop=?",
                   (_free_slug(db, slug_of(workshop)), workshop))
    db.execute("CREATE UNIQUE INDEX integrations_slug ON integrations (slug)")


def _add_probe_worksheet(db):
    """Format 2 -> 3: the worksheet each instance's ERP probe opens (issue 27); none set."""
    db.execute("ALTER TABLE integrations ADD COLUMN probe_worksheet TEXT NOT NULL DEFAULT ''")


#: the registry's format (core/fileformat.py); a new step goes at the end, never edited
FORMAT = FileFormat("the registry", lambda db: run_script(db, SCHEMA),
                    [_before_versions, _add_slugs, _add_probe_worksheet],
                    lambda db: has_table(db, "integrations"))


def _find(db, workshop):
    """The row of ``workshop``, or None.

    Its exact spelling first: a name stored before names were normalised keeps its own
    (``"Bennys\u00a0Auto"``), so it can still be updated or removed. Else the one row
    whose normal form is the same, whatever the spacing it was typed with.
    """
    try:
        workshop.encode("utf-8")
    except UnicodeEncodeError:  # e.g. a command-line argument that was not UTF-8
        return None
    row = db.execute("SELECT * FROM integrations WHERE workshop=?",
                     (unicodedata.normalize("NFC", workshop),)).fetchone()
    if row is not None:
        return row
    wanted = normal_name(workshop)
    same = [r for r in db.execute("SELECT * FROM integrations") if normal_name(r["workshop"]) == wanted]
    return same[0] if len(same) == 1 else None
