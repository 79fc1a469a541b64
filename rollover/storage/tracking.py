"""Tracked sources (files, URLs, Entra apps), their certificates, and the Entra inventory."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rollover.storage.connection import Database, where_clause


@dataclass(frozen=True)
class Source:
    id: int
    room_id: str
    kind: str
    location: str
    label: str
    added_by: str
    added_at: float
    read_at: float | None
    error: str | None
    content: bytes | None


@dataclass(frozen=True)
class CertificateRecord:
    """What a source read says about one certificate (input of ``replace_source_certificates``)."""

    sha1: str
    sha256: str
    entity_id: str
    role: str
    use: str
    subject: str
    not_before: float
    not_after: float
    active: bool | None
    details: dict[str, Any]


@dataclass(frozen=True)
class TrackedCertificate(CertificateRecord):
    """A stored certificate with the source it came from; ``present`` is False once it left that source."""

    id: int
    source_id: int
    room_id: str
    source_label: str
    source_kind: str
    present: bool


class Tracking:
    def __init__(self, database: Database):
        self.database = database

    @property
    def db(self) -> Database:
        return self.database

    _SOURCE_COLUMNS = "id, room_id, kind, location, label, added_by, added_at, read_at, error, content"
    _TRACKED_COLUMNS = ("c.id, c.source_id, s.room_id, s.label, s.kind, c.sha1, c.sha256, c.entity_id, c.role, "
                        "c.use, c.subject, c.not_before, c.not_after, c.active, c.details, c.present")

    def upsert_source(self, *, room_id: str, kind: str, location: str, label: str, added_by: str,
                      content: bytes | None, now: float, error: str | None = None) -> Source:
        """Create or refresh a source; re-reading the same location updates it instead of duplicating."""
        db = self.db
        with db.transaction():
            db.execute(
                "INSERT INTO sources (room_id, kind, location, label, added_by, added_at, read_at, error, content) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (room_id, kind, location) DO UPDATE SET label = excluded.label, "
                "read_at = excluded.read_at, error = excluded.error, "
                "content = COALESCE(excluded.content, sources.content)",
                [room_id, kind, location, label, added_by, now, now, error, content])
            row = db.execute(f"SELECT {self._SOURCE_COLUMNS} FROM sources WHERE room_id = ? AND kind = ? "
                             "AND location = ?", [room_id, kind, location]).fetchone()
        return Source(*row)

    def record_source_error(self, source_id: int, error: str, now: float) -> None:
        self.db.execute("UPDATE sources SET error = ?, read_at = ? WHERE id = ?", [error, now, source_id])

    def replace_certificates(self, source_id: int, records: list[CertificateRecord], now: float) -> None:
        """Make the source's present certificates exactly ``records``; the rest become history."""
        db = self.db
        with db.transaction():
            db.execute("UPDATE tracked_certificates SET present = 0 WHERE source_id = ?", [source_id])
            for r in records:
                db.execute(
                    "INSERT INTO tracked_certificates (source_id, sha1, sha256, entity_id, role, use, subject, "
                    "not_before, not_after, active, details, first_seen, last_seen, present) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1) "
                    "ON CONFLICT (source_id, sha1, entity_id, role, use) DO UPDATE SET "
                    "sha256 = excluded.sha256, subject = excluded.subject, not_before = excluded.not_before, "
                    "not_after = excluded.not_after, active = excluded.active, details = excluded.details, "
                    "last_seen = excluded.last_seen, present = 1",
                    [source_id, r.sha1, r.sha256, r.entity_id, r.role, r.use, r.subject, r.not_before,
                     r.not_after, None if r.active is None else int(r.active),
                     json.dumps(r.details, separators=(",", ":")), now, now])

    def sources(self, room_id: str | None = None, kind: str | None = None) -> list[Source]:
        where, params = where_clause({"room_id = ?": room_id, "kind = ?": kind})
        return [Source(*row) for row in self.db.execute(
            f"SELECT {self._SOURCE_COLUMNS} FROM sources{where} ORDER BY id", params)]

    def delete_source(self, source_id: int) -> None:
        self.db.execute("DELETE FROM sources WHERE id = ?", [source_id])

    def certificates(self, *, room_id: str | None = None, present_only: bool = True) -> list[TrackedCertificate]:
        # One space's: the planner must start from its sources (the room_id index), not walk every space's
        # certificates in expiry order (the expiry index, chosen for the ORDER BY) and drop the others'; "+ 0"
        # keeps it off that index. A sweep asked this per space, so it grew as spaces x certificates.
        present = "c.present + 0 = 1" if room_id is not None else "c.present = 1"
        where, params = where_clause({"s.room_id = ?": room_id, present: present_only or None})
        rows = self.db.execute(
            f"SELECT {self._TRACKED_COLUMNS} FROM tracked_certificates c JOIN sources s ON s.id = c.source_id"
            f"{where} ORDER BY c.not_after, c.id", params)
        return [_tracked(row) for row in rows]

    def save_entra_app(self, *, sp_id: str, app_id: str, display_name: str, facts: dict[str, Any],
                       now: float) -> None:
        self.db.execute(
            "INSERT INTO entra_apps (sp_id, app_id, display_name, facts, refreshed_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (sp_id) DO UPDATE SET app_id = excluded.app_id, display_name = excluded.display_name, "
            "facts = excluded.facts, refreshed_at = excluded.refreshed_at",
            [sp_id, app_id, display_name, json.dumps(facts, separators=(",", ":")), now])

    def entra_apps(self) -> list[dict[str, Any]]:
        return [{"sp_id": r[0], "app_id": r[1], "display_name": r[2], "facts": json.loads(r[3]),
                 "refreshed_at": r[4]}
                for r in self.db.execute("SELECT sp_id, app_id, display_name, facts, refreshed_at FROM entra_apps "
                                         "ORDER BY lower(display_name), display_name")]

    def forget_entra_apps_except(self, sp_ids: list[str]) -> None:
        """Drop apps that left the inventory (deleted, or no longer SAML)."""
        placeholders = ",".join("?" for _ in sp_ids) or "''"
        self.db.execute(f"DELETE FROM entra_apps WHERE sp_id NOT IN ({placeholders})", sp_ids)


def _tracked(row: tuple) -> TrackedCertificate:
    (id_, source_id, room_id, label, kind, sha1, sha256, entity_id, role, use, subject, not_before, not_after,
     active, details, present) = row
    return TrackedCertificate(
        sha1=sha1, sha256=sha256, entity_id=entity_id, role=role, use=use, subject=subject, not_before=not_before,
        not_after=not_after, active=None if active is None else bool(active), details=json.loads(details),
        id=id_, source_id=source_id, room_id=room_id, source_label=label, source_kind=kind, present=bool(present))
