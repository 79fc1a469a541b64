"""Rotations: compare-and-set on the version, leases, approvals (``rotation/engine.py`` gives the states their
meaning)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rollover.leases import Lease
from rollover.storage.connection import Database, where_clause

LEASE = Lease("rotations", "id")
POSTPONED = "postponed"      # the lease owner of a rotation waiting for Graph: nobody's thread


@dataclass(frozen=True)
class RotationRecord:
    """One rotation as stored (``rotation.py`` gives the states their meaning)."""

    id: int
    kind: str
    app_key: str
    app_name: str
    room_id: str
    requested_by: str
    marker: str
    state: str
    version: int
    state_version: int
    plan: dict[str, Any]
    data: dict[str, Any]
    deadline: float | None
    card_message_id: str | None
    card_parent_id: str | None
    announced_version: int
    last_event_key: str | None
    lease_owner: str | None
    lease_until: float | None
    created_at: float
    updated_at: float
    finished_at: float | None


@dataclass(frozen=True)
class RotationChange:
    """What one transition writes; applied only while the rotation is still at the expected version."""

    state: str
    data: dict[str, Any]
    deadline: float | None
    finished: bool
    event_key: str | None        # None keeps the event of the previous change
    now: float
    state_changed: bool = True   # False: same state (a partial approval), its approvals stay


class Rotations:
    def __init__(self, database: Database):
        self.database = database

    @property
    def db(self) -> Database:
        return self.database

    _ROTATION_COLUMNS = ("id, kind, app_key, app_name, room_id, requested_by, marker, state, version, "
                         "state_version, plan, data, deadline, card_message_id, card_parent_id, announced_version, "
                         "last_event_key, lease_owner, lease_until, created_at, updated_at, finished_at")

    def create(self, *, kind: str, app_key: str, app_name: str, room_id: str, requested_by: str,
                        marker: str, state: str, plan: dict, data: dict, deadline: float | None,
                        event_key: str, now: float) -> int | None:
        """A new rotation; None when the app already has an open one (the partial UNIQUE index)."""
        # ON CONFLICT, not an exception: in PostgreSQL a failed statement would abort the whole transaction.
        row = self.db.execute(
            "INSERT INTO rotations (kind, app_key, app_name, room_id, requested_by, marker, state, plan, data, "
            "deadline, last_event_key, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING RETURNING id",
            [kind, app_key, app_name, room_id, requested_by, marker, state, json.dumps(plan), json.dumps(data),
             deadline, event_key, now, now]).fetchone()
        return None if row is None else row[0]

    def get(self, rotation_id: int) -> RotationRecord | None:
        row = self.db.execute(f"SELECT {self._ROTATION_COLUMNS} FROM rotations WHERE id = ?",
                              [rotation_id]).fetchone()
        return None if row is None else _rotation(row)

    def open_for_app(self, app_key: str) -> RotationRecord | None:
        row = self.db.execute(f"SELECT {self._ROTATION_COLUMNS} FROM rotations WHERE app_key = ? "
                              "AND finished_at IS NULL", [app_key]).fetchone()
        return None if row is None else _rotation(row)

    def all(self, *, room_id: str | None = None, open_only: bool = True) -> list[RotationRecord]:
        where, params = where_clause({"room_id = ?": room_id, "finished_at IS NULL": open_only or None})
        rows = self.db.execute(f"SELECT {self._ROTATION_COLUMNS} FROM rotations{where} ORDER BY id", params)
        return [_rotation(row) for row in rows]

    def to_sweep(self) -> list[RotationRecord]:
        """Open rotations, and finished ones whose last card has not been posted yet."""
        rows = self.db.execute(f"SELECT {self._ROTATION_COLUMNS} FROM rotations WHERE finished_at IS NULL "
                               "OR announced_version < version ORDER BY id")
        return [_rotation(row) for row in rows]

    def change(self, rotation_id: int, expected_version: int, change: RotationChange, *,
               lease_owner: str, lease_until: float, now: float) -> bool:
        """Apply ``change`` only if the rotation is still at ``expected_version`` and nobody else holds its
        lease (compare-and-set); the lease passes to ``lease_owner``. ``now`` is wall-clock time."""
        free, free_params = LEASE.free_for(lease_owner, now)
        cursor = self.db.execute(
            # In an UPDATE every expression sees the old row: `version + 1` is the new version.
            "UPDATE rotations SET state = ?, version = version + 1, "
            "state_version = CASE WHEN ? THEN version + 1 ELSE state_version END, data = ?, deadline = ?, "
            "finished_at = ?, last_event_key = COALESCE(?, last_event_key), lease_owner = ?, lease_until = ?, "
            f"updated_at = ? WHERE id = ? AND version = ? AND {free}",
            [change.state, change.state_changed, json.dumps(change.data), change.deadline,
             change.now if change.finished else None, change.event_key, lease_owner, lease_until, change.now,
             rotation_id, expected_version, *free_params])
        return cursor.rowcount == 1

    def approve(self, rotation_id: int, expected_version: int, approver: str, *, required: int,
                         approved: RotationChange, pending: RotationChange, lease_owner: str, lease_until: float,
                         now: float) -> int | None:
        """In one transaction: compare-and-set on the version, record the approval, then move on
        (``approved``) once ``required`` different people approved this step, else stay (``pending``).
        Returns the number of approvals; None when the rotation moved on or this person already approved."""
        db = self.db
        try:
            with db.transaction():
                # The write comes first, so the transaction holds the write lock from its first statement.
                if not self.change(rotation_id, expected_version, pending, lease_owner=lease_owner,
                                            lease_until=lease_until, now=now):
                    return None
                inserted = db.execute(
                    "INSERT INTO rotation_approvals (rotation_id, state_version, approver, approved_at) "
                    "SELECT id, state_version, ?, ? FROM rotations WHERE id = ? ON CONFLICT DO NOTHING",
                    [approver, pending.now, rotation_id])
                if inserted.rowcount != 1:
                    raise _NotApplied()
                count = db.execute(
                    "SELECT count(*) FROM rotation_approvals a JOIN rotations r ON r.id = a.rotation_id "
                    "AND r.state_version = a.state_version WHERE r.id = ?", [rotation_id]).fetchone()[0]
                if count >= required:
                    self.change(rotation_id, expected_version + 1, approved, lease_owner=lease_owner,
                                         lease_until=lease_until, now=now)
                return count
        except _NotApplied:
            return None

    def approvals(self, rotation_id: int, state_version: int) -> list[tuple[str, float]]:
        return [tuple(row) for row in self.db.execute(
            "SELECT approver, approved_at FROM rotation_approvals WHERE rotation_id = ? AND state_version = ? "
            "ORDER BY approved_at", [rotation_id, state_version])]

    def claim(self, rotation_id: int, owner: str, lease_until: float, now: float) -> RotationRecord | None:
        """Take the rotation's lease unless another live thread holds it; returns the rotation as claimed."""
        row = LEASE.claim(self.db, rotation_id, owner=owner, until=lease_until, now=now,
                          returning=self._ROTATION_COLUMNS)
        return None if row is None else _rotation(row)

    def release(self, rotation_id: int, owner: str) -> None:
        LEASE.release(self.db, rotation_id, owner)

    def postpone(self, rotation_id: int, owner: str, until: float) -> None:
        """Keep every thread off the rotation until ``until`` (a step Graph could not do now)."""
        LEASE.update_held(self.db, rotation_id, owner, {"lease_owner": POSTPONED, "lease_until": until},
                          release=False)

    def save_data(self, rotation_id: int, owner: str, data: dict) -> bool:
        """Store a step's progress (before its Graph call); only the lease holder may."""
        return LEASE.update_held(self.db, rotation_id, owner, {"data": json.dumps(data)}, release=False)

    def mark_announced(self, rotation_id: int, version: int, card_message_id: str,
                                card_parent_id: str | None) -> None:
        self.db.execute("UPDATE rotations SET announced_version = ?, card_message_id = ?, card_parent_id = ? "
                        "WHERE id = ? AND version = ?",
                        [version, card_message_id, card_parent_id, rotation_id, version])


class _NotApplied(Exception):
    """Rolls back an approval that could not be recorded (the person already approved this step)."""


def _rotation(row: tuple) -> RotationRecord:
    values = list(row)
    values[10], values[11] = json.loads(values[10]), json.loads(values[11])   # plan, data
    return RotationRecord(*values)
