"""Webex webhook deliveries: recorded durably before the acknowledgement, then claimed by workers."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from rollover.leases import Lease
from rollover.storage.connection import Database

# Workers name events by key; the oldest goes first, walking the small index of the pending ones.
LEASE = Lease("events", "key", order="seq", index="events_pending")
# Ready: due, and first in its ordering group (no earlier event of the group still pending, running or not).
READY = ("status = 'pending' AND available_at <= ? AND NOT EXISTS (SELECT 1 FROM events earlier "
         "WHERE earlier.order_key = events.order_key AND earlier.status = 'pending' AND earlier.seq < events.seq)")


def event_order_key(resource: str, payload: dict[str, Any]) -> str | None:
    """The ordering group of an event: one person's messages in a space (a document, then the next command),
    or a space's card clicks (two clicks on one rotation); None (no order) when the payload names no space."""
    data = payload.get("data") or {}
    room_id = data.get("roomId")
    if not isinstance(room_id, str):
        return None
    return f"{room_id} {data.get('personId')}" if resource == "messages" else room_id


@dataclass(frozen=True)
class Event:
    seq: int
    key: str
    resource: str
    event: str
    payload: dict[str, Any]
    attempts: int
    taken_over: bool = False     # claimed from a worker whose lease ran out (it stopped while handling it)

    @property
    def data_id(self) -> str:
        return self.payload.get("data", {}).get("id", "")


class Events:
    def __init__(self, database: Database):
        self.database = database

    @property
    def db(self) -> Database:
        return self.database

    def record(self, key: str, resource: str, event: str, payload: dict[str, Any],
               now: float | None = None) -> bool:
        """Store a delivery durably (committed when this returns); False when it was recorded already."""
        now = time.time() if now is None else now
        cursor = self.db.execute(
            "INSERT INTO events (key, resource, event, payload, order_key, available_at, received_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [key, resource, event, json.dumps(payload, separators=(",", ":")), event_order_key(resource, payload),
             now, now], urgent=True)
        return cursor.rowcount == 1

    def claim(self, owner: str, lease_seconds: float, now: float | None = None) -> Event | None:
        """Lease the oldest ready event to ``owner``; an expired lease (crashed worker) is reclaimable.

        Only the first pending event of its ordering group is ready: a later one waits until the earlier is
        done or failed, also while the earlier one runs or waits for its retry."""
        now = time.time() if now is None else now
        row = LEASE.claim_next(self.db, ready=READY, params=[now],
                               owner=owner, until=now + lease_seconds, now=now,
                               returning="seq, key, resource, event, payload, attempts, taken_over",
                               # SET sees the row as it was: a lease still named means its worker stopped.
                               also_set=", taken_over = CASE WHEN lease_owner IS NULL THEN 0 ELSE 1 END")
        if row is None:
            return None
        seq, key, resource, event, payload, attempts, taken_over = row
        return Event(seq, key, resource, event, json.loads(payload), attempts, bool(taken_over))

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
            "SELECT count(*) FILTER (WHERE status = 'pending'), count(*) FILTER (WHERE status = 'failed'), "
            "min(received_at) FILTER (WHERE status = 'pending') FROM events").fetchone()
        return {"pending": pending or 0, "failed": failed or 0,
                "oldest_pending_seconds": round(now - oldest, 1) if oldest else 0}
