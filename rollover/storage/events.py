"""Webex webhook deliveries: recorded durably before the acknowledgement, then claimed by workers."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rollover.leases import Lease
from rollover.storage import spool as spool_file
from rollover.storage.connection import Database
from rollover.storage.spool import Position, Spool, SpooledEvent, spool_path

log = logging.getLogger(__name__)

ADMIT_BATCH = 500   # deliveries moved from the inbox or spool per transaction

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


def spool_of(database: Database) -> Spool | None:
    """An SQLite file's acknowledgement spool; None for PostgreSQL (no local disk to count on: its
    acknowledgements go into ``event_inbox``) and for an in-memory database."""
    path = getattr(database, "path", None)
    if database.dialect != "sqlite" or not path or path == ":memory:" or path.startswith("file:"):
        return None
    return Spool(spool_path(path), mode_of=Path(path))


class Events:
    def __init__(self, database: Database):
        self.database = database
        self.spool = spool_of(database)

    @property
    def db(self) -> Database:
        return self.database

    def record(self, key: str, resource: str, event: str, payload: dict[str, Any],
               now: float | None = None) -> bool:
        """Store a delivery durably (written when this returns); False when it is known to be recorded already.

        SQLite: appended to the spool (``storage.spool``), four system calls where an insert is ten; a
        redelivery is recorded again and dropped when a worker reads it (the events' unique key).
        PostgreSQL: inserted into the inbox (``event_inbox``), whose insert is cheaper than one into ``events``;
        one statement, so one snapshot: not in the inbox and not among the events. (Should a move slip between
        the check and the insert, the move drops the second copy: a key is in ``events`` once.)
        Either way the next claim moves it into ``events``."""
        now = time.time() if now is None else now
        order_key = event_order_key(resource, payload)
        if self.spool is not None:
            self.spool.append(SpooledEvent(key, resource, event, payload, order_key, now))
            return True
        cursor = self.db.execute(
            "INSERT INTO event_inbox (key, resource, event, payload, order_key, received_at) "
            "SELECT ?, ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM events WHERE key = ?) ON CONFLICT DO NOTHING",
            [key, resource, event, json.dumps(payload, separators=(",", ":")), order_key, now, key], urgent=True)
        return cursor.rowcount == 1

    def admit_received(self, limit: int | None = None) -> int:
        """Move up to ``limit`` of the oldest deliveries into ``events``, in the order they came, in one
        transaction (a crash moves all or none); the number moved. The inbox table goes first: on SQLite it
        holds only what a version before the spool acknowledged."""
        limit = ADMIT_BATCH if limit is None else limit
        moved = self._admit_inbox(limit)
        if self.spool is not None and moved < limit:
            moved += self._admit_spooled(limit - moved)
        return moved

    def admit_all(self) -> None:
        """Move every delivery acknowledged so far, in batches (acknowledgements go on between them)."""
        while self.admit_received() == ADMIT_BATCH:
            pass

    def _admit_inbox(self, limit: int) -> int:
        """On PostgreSQL a second mover waits for the rows the first has locked, so the moves, too, keep the
        order of arrival."""
        if self.db.execute("SELECT 1 FROM event_inbox LIMIT 1").fetchone() is None:
            return 0     # the usual case: a read, no write lock
        with self.db.transaction():
            moved = sorted(self.db.execute(
                "DELETE FROM event_inbox WHERE seq IN (SELECT seq FROM event_inbox ORDER BY seq LIMIT ?"
                f"{self.db.for_update}) RETURNING seq, key, resource, event, payload, order_key, received_at",
                [limit]).fetchall())
            self._insert([row[1:] for row in moved])
        return len(moved)

    def _insert(self, rows: list[tuple]) -> None:
        """(key, resource, event, payload, order_key, received_at) rows into ``events``; a key already there
        (a redelivery) is dropped."""
        if rows:
            self.db.executemany(
                "INSERT INTO events (key, resource, event, payload, order_key, available_at, received_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [(key, resource, event, payload, order_key, received_at, received_at)
                 for key, resource, event, payload, order_key, received_at in rows])

    def _admit_spooled(self, limit: int) -> int:
        hint, stored = self.spool.size_hint(), self._spool_position()
        if hint is None or (stored is not None and (stored.inode, stored.read_to) == hint):
            return 0     # the usual case: a stat and a read, no write lock
        with self.db.transaction():
            with self.spool.reading() as file:       # the position is worked out under the lock, from this file
                if file is None:
                    return 0
                read = file.read(file.start(self._spool_position()), limit)
            self._insert([event.row for event in read.events])
            self.db.execute("INSERT INTO event_spool (id, inode, read_to, tail) VALUES (1, ?, ?, ?) "
                            "ON CONFLICT (id) DO UPDATE SET inode = excluded.inode, read_to = excluded.read_to, "
                            "tail = excluded.tail", [read.position.inode, read.position.read_to, read.position.tail])
        if read.skipped:
            log.warning("skipped %d records of the event spool %s that were cut short or damaged (deliveries "
                        "never acknowledged: Webex sends them again)", read.skipped, self.spool.path)
        if read.position.read_to >= spool_file.EMPTY_AFTER_BYTES and len(read.events) < limit:
            self._empty_spool()
        return len(read.events)

    def _spool_position(self) -> Position | None:
        row = self.db.execute("SELECT inode, read_to, tail FROM event_spool WHERE id = 1").fetchone()
        return Position.from_row(*row) if row is not None else None

    def _empty_spool(self) -> None:
        """Truncate the spool if it is read through (see ``storage.spool``: the stored position then no longer
        fits the file, so nothing needs committing with it)."""
        with self.spool.exclusive() as file:
            if file is not None and file.size and file.start(self._spool_position()) == file.size:
                file.truncate()

    def claim(self, owner: str, lease_seconds: float, now: float | None = None) -> Event | None:
        """Lease the oldest ready event to ``owner``; an expired lease (crashed worker) is reclaimable.

        Only the first pending event of its ordering group is ready: a later one waits until the earlier is
        done or failed, also while the earlier one runs or waits for its retry. The deliveries acknowledged
        since the last claim join ``events`` first (``admit_received``)."""
        now = time.time() if now is None else now
        self.admit_all()
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
        if row is None and self.spool is not None:
            with self.spool.reading() as file:
                if file is not None and file.find(key, file.start(self._spool_position())):
                    row = ("pending", 0, None)
        return None if row is None else {"status": row[0], "attempts": row[1], "last_error": row[2]}

    def count(self, status: str) -> int:
        """Events of ``status``; the pending ones include those still in the inbox or the spool."""
        if status == "pending":
            return self.backlog(time.time())["pending"]
        return self.db.execute("SELECT count(*) FROM events WHERE status = ?", [status]).fetchone()[0]

    def backlog(self, now: float) -> dict[str, Any]:
        """Pending (the inbox's and spool's included) and failed events and the age of the oldest pending one
        (for /healthz). One statement: one snapshot, so an event moving out of the inbox meanwhile is counted
        once; the spool is counted from where that snapshot says the workers had read it."""
        pending, failed, oldest, received, oldest_received, *position = self.db.execute(
            "SELECT count(*) FILTER (WHERE status = 'pending'), count(*) FILTER (WHERE status = 'failed'), "
            "min(received_at) FILTER (WHERE status = 'pending'), "
            "(SELECT count(*) FROM event_inbox), (SELECT min(received_at) FROM event_inbox), "
            "(SELECT inode FROM event_spool WHERE id = 1), (SELECT read_to FROM event_spool WHERE id = 1), "
            "(SELECT tail FROM event_spool WHERE id = 1) FROM events").fetchone()
        spooled, oldest_spooled = self._spool_pending(Position.from_row(*position))
        oldest = min((t for t in (oldest, oldest_received, oldest_spooled) if t is not None), default=None)
        return {"pending": (pending or 0) + received + spooled, "failed": failed or 0,
                "oldest_pending_seconds": round(now - oldest, 1) if oldest else 0}

    def _spool_pending(self, stored: Position | None) -> tuple[int, float | None]:
        if self.spool is None:
            return 0, None
        with self.spool.reading() as file:
            return (0, None) if file is None else file.pending(file.start(stored))

    def close(self) -> None:
        """Close the spool's file (the process is done with the store)."""
        if self.spool is not None:
            self.spool.close()
