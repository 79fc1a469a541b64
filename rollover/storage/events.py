"""Webex webhook deliveries: recorded durably before the acknowledgement, then claimed by workers."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from rollover.leases import Lease
from rollover.storage.connection import Database

ADMIT_BATCH = 500   # deliveries moved from the inbox per transaction: the acknowledgements wait for it

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
        """Store a delivery durably (committed when this returns); False when it was recorded already.

        It goes into the inbox (``event_inbox``), whose insert is cheap enough for the acknowledgement; the
        next claim moves it into ``events``. One statement, so one snapshot: not in the inbox and not among
        the events. (Should a move slip between the check and the insert on PostgreSQL, the move drops the
        second copy: a key is in ``events`` once.)"""
        now = time.time() if now is None else now
        cursor = self.db.execute(
            "INSERT INTO event_inbox (key, resource, event, payload, order_key, received_at) "
            "SELECT ?, ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM events WHERE key = ?) ON CONFLICT DO NOTHING",
            [key, resource, event, json.dumps(payload, separators=(",", ":")), event_order_key(resource, payload),
             now, key], urgent=True)
        return cursor.rowcount == 1

    def admit_received(self, limit: int | None = None) -> int:
        """Move the oldest ``limit`` deliveries from the inbox into ``events``, in the order they came, in one
        transaction (a crash moves all or none); the number moved. On PostgreSQL a second mover waits for the
        rows the first has locked, so the moves, too, keep the order of arrival."""
        limit = ADMIT_BATCH if limit is None else limit
        if self.db.execute("SELECT 1 FROM event_inbox LIMIT 1").fetchone() is None:
            return 0     # the usual case: a read, no write lock
        with self.db.transaction():
            moved = sorted(self.db.execute(
                "DELETE FROM event_inbox WHERE seq IN (SELECT seq FROM event_inbox ORDER BY seq LIMIT ?"
                f"{self.db.for_update}) RETURNING seq, key, resource, event, payload, order_key, received_at",
                [limit]).fetchall())
            if moved:
                self.db.executemany(
                    "INSERT INTO events (key, resource, event, payload, order_key, available_at, received_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    [(key, resource, event, payload, order_key, received_at, received_at)
                     for _seq, key, resource, event, payload, order_key, received_at in moved])
        return len(moved)

    def claim(self, owner: str, lease_seconds: float, now: float | None = None) -> Event | None:
        """Lease the oldest ready event to ``owner``; an expired lease (crashed worker) is reclaimable.

        Only the first pending event of its ordering group is ready: a later one waits until the earlier is
        done or failed, also while the earlier one runs or waits for its retry. The deliveries acknowledged
        since the last claim join ``events`` first (``admit_received``)."""
        now = time.time() if now is None else now
        while self.admit_received() == ADMIT_BATCH:
            pass   # a backlog of deliveries (no worker ran for a while): moved in batches, acks go on between
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

    def lease_holder(self, key: str) -> str | None:
        """Who holds the event's lease now; None when nobody does (finished, waiting for a retry, or unknown)."""
        row = self.db.execute("SELECT lease_owner FROM events WHERE key = ?", [key]).fetchone()
        return None if row is None else row[0]

    def retry_later(self, key: str, owner: str, available_at: float, error: str) -> bool:
        return self._update_held(key, owner, {"available_at": available_at, "last_error": error}, release=True)

    def prune(self, finished_before: float, limit: int) -> list[str]:
        """Delete up to ``limit`` of the oldest events that finished (done or failed) before ``finished_before``;
        their keys. A redelivery of a deleted event would be handled again: the caller keeps them longer than
        Webex redelivers (hours)."""
        return [row[0] for row in self.db.execute(
            "DELETE FROM events WHERE seq IN (SELECT seq FROM events WHERE status IN ('done', 'failed') "
            "AND finished_at < ? ORDER BY seq LIMIT ?) RETURNING key", [finished_before, limit]).fetchall()]

    def status(self, key: str) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT status, attempts, last_error FROM events WHERE key = ? "
            "UNION ALL SELECT 'pending', 0, NULL FROM event_inbox WHERE key = ?", [key, key]).fetchone()
        return None if row is None else {"status": row[0], "attempts": row[1], "last_error": row[2]}

    def count(self, status: str) -> int:
        """Events of ``status``; the pending ones include those still in the inbox."""
        inbox = "(SELECT count(*) FROM event_inbox)" if status == "pending" else "0"
        return self.db.execute(f"SELECT count(*) + {inbox} FROM events WHERE status = ?", [status]).fetchone()[0]

    def backlog(self, now: float) -> dict[str, Any]:
        """Pending (the inbox's included) and failed events and the age of the oldest pending one (for /healthz).
        One statement: one snapshot, so an event moving out of the inbox meanwhile is counted once."""
        pending, failed, oldest, received, oldest_received = self.db.execute(
            "SELECT count(*) FILTER (WHERE status = 'pending'), count(*) FILTER (WHERE status = 'failed'), "
            "min(received_at) FILTER (WHERE status = 'pending'), "
            "(SELECT count(*) FROM event_inbox), (SELECT min(received_at) FROM event_inbox) FROM events").fetchone()
        oldest = min((t for t in (oldest, oldest_received) if t is not None), default=None)
        return {"pending": (pending or 0) + received, "failed": failed or 0,
                "oldest_pending_seconds": round(now - oldest, 1) if oldest else 0}
