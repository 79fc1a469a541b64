"""Webex webhook deliveries: recorded durably before the acknowledgement, then claimed by workers."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from rollover.leases import Lease
from rollover.storage.connection import Database

ACK_LOCK_WAIT_SECONDS = 10.0
LEASE = Lease("events", "key", order="seq")   # workers name events by key; the oldest goes first


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


class Events:
    def __init__(self, database: Database):
        self.database = database

    @property
    def db(self):
        return self.database.db

    def record(self, key: str, resource: str, event: str, payload: dict[str, Any],
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
                cursor = self.database.ack_db.execute(
                    "INSERT OR IGNORE INTO events (key, resource, event, payload, available_at, received_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)", row)
                return cursor.rowcount == 1
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(0.0002)

    def claim(self, owner: str, lease_seconds: float, now: float | None = None) -> Event | None:
        """Lease the oldest ready event to ``owner``; an expired lease (crashed worker) is reclaimable."""
        now = time.time() if now is None else now
        row = LEASE.claim_next(self.db, ready="status = 'pending' AND available_at <= ?", params=[now],
                               owner=owner, until=now + lease_seconds, now=now,
                               returning="seq, key, resource, event, payload, attempts")
        if row is None:
            return None
        seq, key, resource, event, payload, attempts = row
        return Event(seq, key, resource, event, json.loads(payload), attempts)

    def _update_held(self, key: str, owner: str, values: dict[str, Any], *, release: bool) -> bool:
        return LEASE.update_held(self.db, key, owner, values, release=release)

    def finish(self, key: str, owner: str, status: str = "done", error: str | None = None,
               now: float | None = None) -> bool:
        """Mark done/failed; False if the lease was lost to another worker meanwhile."""
        now = time.time() if now is None else now
        return self._update_held(key, owner, {"status": status, "finished_at": now, "last_error": error},
                                 release=True)

    def renew(self, key: str, owner: str, lease_until: float) -> bool:
        """Keep a long-running event ours; False once another worker has taken it over."""
        return self._update_held(key, owner, {"lease_until": lease_until}, release=False)

    def retry_later(self, key: str, owner: str, available_at: float, error: str) -> bool:
        return self._update_held(key, owner, {"available_at": available_at, "last_error": error}, release=True)

    def status(self, key: str) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT status, attempts, last_error FROM events WHERE key = ?", [key]).fetchone()
        return None if row is None else {"status": row[0], "attempts": row[1], "last_error": row[2]}

    def count(self, status: str) -> int:
        return self.db.execute("SELECT count(*) FROM events WHERE status = ?", [status]).fetchone()[0]

    def backlog(self, now: float) -> dict[str, Any]:
        """Pending and failed events and the age of the oldest pending one (for /healthz)."""
        pending, failed, oldest = self.db.execute(
            "SELECT sum(status = 'pending'), sum(status = 'failed'), min(CASE WHEN status = 'pending' "
            "THEN received_at END) FROM events").fetchone()
        return {"pending": pending or 0, "failed": failed or 0,
                "oldest_pending_seconds": round(now - oldest, 1) if oldest else 0}
