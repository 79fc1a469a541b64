"""The thin front over the per-domain repositories: ``storage.events.claim(...)``, ``storage.rotations.get(...)``.

Every repository shares one ``Database`` (SQLite: one connection per thread, WAL; PostgreSQL: a pool),
so a transaction opened through the front (``with storage.transaction():``) spans repositories: a
rotation's change and its audit entry commit together or not at all.
"""

from __future__ import annotations

from pathlib import Path

from rollover.leases import NamedLeases
from rollover.storage.audit import Audit
from rollover.storage.connection import Database, SqliteDatabase, is_database_url
from rollover.storage.connections import Connections
from rollover.storage.events import Events
from rollover.storage.migrations import migrate
from rollover.storage.outbox import Outbox
from rollover.storage.reminders import Reminders
from rollover.storage.rotations import Rotations
from rollover.storage.tracking import Tracking


def open_database(location: str | Path) -> Database:
    """A PostgreSQL URL (``postgresql://`` or the platforms' ``postgres://``) or an SQLite file path."""
    if is_database_url(str(location)):
        from rollover.storage.postgresql import PostgresDatabase  # psycopg only where it is used
        return PostgresDatabase(str(location))
    return SqliteDatabase(location)


class Storage:
    """``location``: an SQLite file path, or a PostgreSQL URL. Call ``migrate()`` once at start-up."""

    def __init__(self, location: str | Path):
        self.location = str(location)
        self.database: Database = open_database(location)
        self.events = Events(self.database)
        self.outbox = Outbox(self.database)
        self.tracking = Tracking(self.database)
        self.reminders = Reminders(self.database)
        self.leases = NamedLeases(self.database)
        self.connections = Connections(self.database)
        self.rotations = Rotations(self.database)
        self.audit = Audit(self.database)

    @property
    def db(self) -> Database:
        """The store itself, for what no repository offers (tests, benchmarks' seeding, the copy command)."""
        return self.database

    @property
    def dialect(self) -> str:
        return self.database.dialect

    def describe(self) -> str:
        """"SQLite /path/to/file" or "PostgreSQL user@host:port/database" (never a password)."""
        return self.database.describe()

    def migrate(self) -> list[str]:
        """Apply pending migrations; returns the names applied now."""
        return migrate(self.database)

    def transaction(self):
        """A context manager: the writes inside commit together or not at all (a savepoint when nested)."""
        return self.database.transaction()

    def ping(self) -> bool:
        return self.database.ping()

    def close(self) -> None:
        """Close this thread's connections."""
        self.database.close()

    def dispose(self) -> None:
        """Close every connection and file (the process is done with the store)."""
        self.events.close()
        self.database.dispose()
