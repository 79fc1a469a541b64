"""The only module that speaks SQL.

SQLite through sqlite-utils: one connection per thread (SQLite connections must
not be shared across threads), WAL so the webhook view and the workers do not
block each other, and named migrations applied in order exactly once.

Durability: a webhook event is acknowledged only after its row is committed.
With WAL and ``synchronous=NORMAL`` a committed transaction survives a killed
process (only a power loss could roll back the last transactions), which is the
guarantee the acknowledgement needs at a fraction of FULL's cost.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import sqlite_utils

Migration = Callable[[sqlite_utils.Database], None]
ACK_LOCK_WAIT_SECONDS = 10.0


# --- migrations: append only; a name, once released, never changes meaning -------------------

def _create_events(db: sqlite_utils.Database) -> None:
    # One row per Webex webhook delivery, keyed by resource + data.id so a redelivery is a no-op.
    db.execute("""
        CREATE TABLE events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            key TEXT NOT NULL UNIQUE,
            resource TEXT NOT NULL,
            event TEXT NOT NULL,
            payload TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending',      -- pending | done | failed
            attempts INTEGER NOT NULL DEFAULT 0,
            available_at REAL NOT NULL,                  -- epoch seconds; retries wait until then
            lease_owner TEXT,
            lease_until REAL,
            received_at REAL NOT NULL,
            finished_at REAL,
            last_error TEXT
        )""")
    db.execute("CREATE INDEX events_ready ON events (status, available_at)")


def _create_outbox(db: sqlite_utils.Database) -> None:
    # Every message the bot posts while handling an event, by position: a retried event skips
    # the posts that already went out, so a reply is sent once even when a later post failed.
    db.execute("""
        CREATE TABLE outbox (
            event_key TEXT NOT NULL,
            position INTEGER NOT NULL,
            message_id TEXT NOT NULL,
            sent_at REAL NOT NULL,
            PRIMARY KEY (event_key, position)
        )""")


MIGRATIONS: list[tuple[str, Migration]] = [
    ("0001_events", _create_events),
    ("0002_outbox", _create_outbox),
]


@dataclass(frozen=True)
class Event:
    seq: int
    key: str
    resource: str
    event: str
    payload: dict[str, Any]
    attempts: int

    @property
    def data_id(self) -> str:
        return self.payload.get("data", {}).get("id", "")


class Storage:
    """Opens one connection per thread on first use; call ``migrate()`` once at start-up."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()

    @property
    def db(self) -> sqlite_utils.Database:
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = self._connect()
        return db

    @property
    def ack_db(self) -> sqlite_utils.Database:
        """The acknowledgement path's own connection: it waits for locks in fine steps (see record_event)."""
        db = getattr(self._local, "ack_db", None)
        if db is None:
            db = self._local.ack_db = self._connect(busy_timeout=0)
        return db

    def _connect(self, busy_timeout: float = 30) -> sqlite_utils.Database:
        # busy_timeout: wait for another writer's lock instead of failing at once.
        conn = sqlite3.connect(self.path, timeout=busy_timeout)
        db = sqlite_utils.Database(conn, execute_plugins=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        return db

    def close(self) -> None:
        for name in ("db", "ack_db"):
            db = getattr(self._local, name, None)
            if db is not None:
                db.close()
                setattr(self._local, name, None)

    # --- schema ----------------------------------------------------------------------------

    def migrate(self) -> list[str]:
        """Apply pending migrations in order; returns the names applied now."""
        db = self.db
        db.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
        applied_now = []
        for name, migration in MIGRATIONS:
            with db.atomic():
                # Checked inside the transaction: two processes starting together apply it once.
                if db.execute("SELECT 1 FROM migrations WHERE name = ?", [name]).fetchone():
                    continue
                migration(db)
                db.execute("INSERT INTO migrations (name, applied_at) VALUES (?, ?)", [name, time.time()])
                applied_now.append(name)
        return applied_now

    def applied_migrations(self) -> list[str]:
        return [row[0] for row in self.db.execute("SELECT name FROM migrations ORDER BY name")]

    def ping(self) -> bool:
        return self.db.execute("SELECT 1").fetchone() == (1,)

    # --- webhook events --------------------------------------------------------------------

    def record_event(self, key: str, resource: str, event: str, payload: dict[str, Any],
                     now: float | None = None) -> bool:
        """Store a delivery durably; False when the same event was already recorded.

        SQLite's own busy handler sleeps 1, 2, 5, 10 … ms when another process holds the
        write lock; the insert itself takes ~0.05 ms, so waiting in 0.2 ms steps keeps the
        acknowledgement's tail latency close to a bare endpoint's.
        """
        now = time.time() if now is None else now
        row = [key, resource, event, json.dumps(payload, separators=(",", ":")), now, now]
        deadline = time.monotonic() + ACK_LOCK_WAIT_SECONDS
        while True:
            try:
                cursor = self.ack_db.execute(
                    "INSERT OR IGNORE INTO events (key, resource, event, payload, available_at, received_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)", row)
                return cursor.rowcount == 1
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(0.0002)

    def claim_event(self, owner: str, lease_seconds: float, now: float | None = None) -> Event | None:
        """Lease the oldest ready event to ``owner``; an expired lease (crashed worker) is reclaimable."""
        now = time.time() if now is None else now
        db = self.db
        with db.atomic():
            row = db.execute(
                "UPDATE events SET lease_owner = ?, lease_until = ?, attempts = attempts + 1 "
                "WHERE seq = (SELECT seq FROM events WHERE status = 'pending' AND available_at <= ? "
                "             AND (lease_until IS NULL OR lease_until < ?) ORDER BY seq LIMIT 1) "
                "RETURNING seq, key, resource, event, payload, attempts",
                [owner, now + lease_seconds, now, now]).fetchone()
        if row is None:
            return None
        seq, key, resource, event, payload, attempts = row
        return Event(seq, key, resource, event, json.loads(payload), attempts)

    def finish_event(self, key: str, owner: str, status: str = "done", error: str | None = None,
                     now: float | None = None) -> bool:
        """Mark done/failed; False if the lease was lost to another worker meanwhile."""
        now = time.time() if now is None else now
        cursor = self.db.execute(
            "UPDATE events SET status = ?, finished_at = ?, last_error = ?, lease_owner = NULL, "
            "lease_until = NULL WHERE key = ? AND lease_owner = ?", [status, now, error, key, owner])
        return cursor.rowcount == 1

    def retry_event_later(self, key: str, owner: str, available_at: float, error: str) -> bool:
        cursor = self.db.execute(
            "UPDATE events SET available_at = ?, last_error = ?, lease_owner = NULL, lease_until = NULL "
            "WHERE key = ? AND lease_owner = ?", [available_at, error, key, owner])
        return cursor.rowcount == 1

    def event_status(self, key: str) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT status, attempts, last_error FROM events WHERE key = ?", [key]).fetchone()
        return None if row is None else {"status": row[0], "attempts": row[1], "last_error": row[2]}

    def count_events(self, status: str) -> int:
        return self.db.execute("SELECT count(*) FROM events WHERE status = ?", [status]).fetchone()[0]

    def next_event_time(self) -> float | None:
        row = self.db.execute("SELECT min(available_at) FROM events WHERE status = 'pending'").fetchone()
        return row[0]

    # --- outbox: exactly-once posting within a retried event ---------------------------------

    def sent_message(self, event_key: str, position: int) -> str | None:
        row = self.db.execute("SELECT message_id FROM outbox WHERE event_key = ? AND position = ?",
                              [event_key, position]).fetchone()
        return None if row is None else row[0]

    def record_sent_message(self, event_key: str, position: int, message_id: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO outbox (event_key, position, message_id, sent_at) "
                        "VALUES (?, ?, ?, ?)", [event_key, position, message_id, time.time()])
