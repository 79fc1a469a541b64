"""The thin front over the per-domain repositories: ``storage.events.claim(...)``, ``storage.rotations.get(...)``.

Every repository shares one ``Database`` (one connection per thread, WAL), so a transaction opened
through the front (``with storage.transaction():``) spans repositories: a rotation's change and its
audit entry commit together or not at all.
"""

from __future__ import annotations

from pathlib import Path

import sqlite_utils

from rollover.leases import NamedLeases
from rollover.storage.audit import Audit
from rollover.storage.connection import Database
from rollover.storage.events import Events
from rollover.storage.migrations import migrate
from rollover.storage.outbox import Outbox
from rollover.storage.reminders import Reminders
from rollover.storage.rotations import Rotations
from rollover.storage.tracking import Tracking


class Storage:
    """Call ``migrate()`` once at start-up; then use the repositories."""

    def __init__(self, path: str | Path):
        self.database = Database(path)
        self.events = Events(self.database)
        self.outbox = Outbox(self.database)
        self.tracking = Tracking(self.database)
        self.reminders = Reminders(self.database)
        self.leases = NamedLeases(self.database)
        self.rotations = Rotations(self.database)
        self.audit = Audit(self.database)

    @property
    def path(self) -> str:
        return self.database.path

    @property
    def db(self) -> sqlite_utils.Database:
        """This thread's connection, for what no repository offers (tests, benchmarks' seeding)."""
        return self.database.db

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
