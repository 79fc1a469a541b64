"""Claiming work with leases, and retrying it later: the one mechanism events, reminders and rotations share.

A row of work (a webhook event, a planned reminder, a rotation) is *claimed* by writing its lease owner
and the wall-clock time the lease runs until, in one UPDATE that also picks the row, so two workers never
take the same row. Only the owner may then change it (every write is guarded by ``owner = ?``); a crashed
owner's lease simply runs out and the row becomes claimable again. Work that could not be done now
(``errors.Retryable``) is released with a later ``available_at``, after an exponential backoff that never
comes sooner than the other side asked.

Named leases (``NamedLeases``) keep a periodic job (the reminder sweep) to one process at a time.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from dataclasses import dataclass
from typing import Any

MAX_BACKOFF_SECONDS = 300.0

# The process part of every owner id: host and pid, plus a random part, because two containers may share
# both (pid 1 on a reused host name) and must still never mistake each other's leases for their own.
def _process_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


_PROCESS = _process_id()


def _forked() -> None:
    global _PROCESS
    _PROCESS = _process_id()   # a forked child (gunicorn --preload) must not share its parent's owner ids


os.register_at_fork(after_in_child=_forked)


def lease_owner() -> str:
    """This thread of this process: the worker thread and the sweeper thread never share a lease."""
    return f"{_PROCESS}:{threading.get_ident()}"


def backoff_seconds(attempts: int, retry_after: float | None = None) -> float:
    """Exponential backoff (1, 2, 4 … s), never sooner than the other side asked, and never longer than
    MAX_BACKOFF_SECONDS: a Retry-After of an hour must not park a click in silence for an hour."""
    exponential = 2.0 ** max(0, attempts - 1)
    return min(MAX_BACKOFF_SECONDS, max(exponential, retry_after or 0.0))


@dataclass(frozen=True)
class Lease:
    """The lease columns of one table of work, and the statements that claim, renew and release its rows.

    ``db`` is the store (``rollover.storage.connection.Database``). A claim is one UPDATE that picks and
    leases the row together; on PostgreSQL the pick skips rows another transaction is claiming (SKIP
    LOCKED), where READ COMMITTED would otherwise let two workers take the same row.
    """

    table: str
    key: str                       # the column naming a row
    owner: str = "lease_owner"
    until: str = "lease_until"     # wall-clock epoch seconds
    order: str = ""                # which ready row goes first (default: the key)
    index: str = ""                # SQLite: the index a claim walks the ready rows by, when the planner would not

    def free_for(self, owner: str, now: float) -> tuple[str, list[Any]]:
        """Nobody else holds the row: no lease, ``owner``'s own, or an expired one (a crashed process)."""
        return f"({self.owner} IS NULL OR {self.owner} = ? OR {self.until} < ?)", [owner, now]

    def claim_next(self, db, *, ready: str, params: list[Any], owner: str, until: float, now: float,
                   returning: str, also_set: str = "") -> tuple | None:
        """Lease the first row (by key) that is ``ready`` and not leased by a live owner; counts the attempt."""
        row = db.execute(
            f"UPDATE {self.table} SET {self.owner} = ?, {self.until} = ?, attempts = attempts + 1{also_set} "
            f"WHERE {self.key} = (SELECT {self.key} FROM {self.table}{self._indexed_by(db)} WHERE ({ready}) "
            f"AND ({self.owner} IS NULL OR {self.until} < ?) ORDER BY {self.order or self.key} LIMIT 1"
            f"{db.skip_locked}) RETURNING {returning}",
            [owner, until, *params, now]).fetchone()
        return None if row is None else tuple(row)

    def _indexed_by(self, db) -> str:
        return f" INDEXED BY {self.index}" if self.index and db.dialect == "sqlite" else ""

    def claim(self, db, key: Any, *, owner: str, until: float, now: float, returning: str) -> tuple | None:
        """Lease one row unless another live owner holds it (renews the lease when ``owner`` holds it)."""
        free, params = self.free_for(owner, now)
        # By key, the UPDATE itself locks the row and re-checks the whole WHERE on it: no SKIP LOCKED needed.
        row = db.execute(f"UPDATE {self.table} SET {self.owner} = ?, {self.until} = ? WHERE {self.key} = ? "
                         f"AND {free} RETURNING {returning}", [owner, until, key, *params]).fetchone()
        return None if row is None else tuple(row)

    def update_held(self, db, key: Any, owner: str, values: dict[str, Any], *, release: bool,
                    condition: str = "") -> bool:
        """Write ``values`` only while ``owner`` holds the row; ``release`` ends the lease in the same write.
        False when the lease was lost (to another worker, after it ran out)."""
        values = {**values, self.owner: None, self.until: None} if release else values
        assignments = ", ".join(f"{column} = ?" for column in values)
        cursor = db.execute(f"UPDATE {self.table} SET {assignments} WHERE {self.key} = ? AND {self.owner} = ?"
                            f"{' AND ' + condition if condition else ''}", [*values.values(), key, owner])
        return cursor.rowcount == 1

    def renew(self, db, key: Any, owner: str, until: float) -> bool:
        """Keep a long-running item ours; False once another worker has taken it over."""
        return self.update_held(db, key, owner, {self.until: until}, release=False)

    def release(self, db, key: Any, owner: str) -> bool:
        return self.update_held(db, key, owner, {}, release=True)


class NamedLeases:
    """One holder at a time per name (the reminder sweep), across processes; an expired lease is free."""

    def __init__(self, database):
        self.database = database

    def acquire(self, name: str, owner: str, *, seconds: float, wall_now: float) -> bool:
        """Take (or extend, for its owner) a named lease; False while another owner's lease runs."""
        cursor = self.database.execute(
            "INSERT INTO scheduler_leases (name, owner, until) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE "
            "SET owner = excluded.owner, until = excluded.until "
            "WHERE scheduler_leases.owner = excluded.owner OR scheduler_leases.until < ?",
            [name, owner, wall_now + seconds, wall_now])
        return cursor.rowcount == 1

    def release(self, name: str, owner: str) -> None:
        self.database.execute("DELETE FROM scheduler_leases WHERE name = ? AND owner = ?", [name, owner])
