"""The audit log: append-only (there is no update or delete here, and triggers refuse both)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rollover.storage.connection import Database, where_clause


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: float
    room_id: str
    rotation_id: int | None
    app: str
    actor: str
    action: str
    detail: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    requests: list[str]


class Audit:
    def __init__(self, database: Database):
        self.database = database

    @property
    def db(self) -> Database:
        return self.database

    def append(self, *, at: float, room_id: str, rotation_id: int | None, app: str, actor: str, action: str,
                     detail: str, before: dict | None, after: dict | None, requests: list[str]) -> int:
        return self.db.execute(
            "INSERT INTO audit_log (at, room_id, rotation_id, app, actor, action, detail, before, after, requests) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            [at, room_id, rotation_id, app, actor, action, detail, None if before is None else json.dumps(before),
             None if after is None else json.dumps(after), json.dumps(requests)]).fetchone()[0]

    def entries(self, *, room_id: str | None = None, rotation_id: int | None = None,
                      limit: int | None = None) -> list[AuditEntry]:
        """Oldest first; with ``limit``, the latest ``limit`` entries."""
        where, params = where_clause({"room_id = ?": room_id, "rotation_id = ?": rotation_id})
        rows = self.db.execute(
            "SELECT id, at, room_id, rotation_id, app, actor, action, detail, before, after, requests FROM audit_log"
            f"{where} ORDER BY id DESC{'' if limit is None else ' LIMIT ?'}",
            params + ([] if limit is None else [limit])).fetchall()
        return [_audit_entry(row) for row in reversed(rows)]


def _audit_entry(row: tuple) -> AuditEntry:
    id_, at, room_id, rotation_id, app, actor, action, detail, before, after, requests = row
    return AuditEntry(id_, at, room_id, rotation_id, app, actor, action, detail,
                      None if before is None else json.loads(before), None if after is None else json.loads(after),
                      json.loads(requests))
