"""The append-only audit log of rotations: who did what, when, to which certificate, and which Graph requests.

Every request, approval, refusal, Graph request (as its dry-run description) and result is appended
here. Storage offers no way to change or delete an entry, and SQLite triggers refuse both. Entries
hold thumbprints and key ids, never keys, tokens or secrets: Graph request bodies are the
display-safe descriptions of ``entra_client.PlannedRequest`` (keys shortened, secrets removed).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from rollover.services import Services
from rollover.storage import AuditEntry

BOT_ACTOR = "rollover"
CHAT_ENTRIES = 15


def record(services: Services, rotation, *, actor: str, action: str, detail: str, before: dict | None = None,
           after: dict | None = None, requests: list[str] = (), state_change: tuple[str, str] | None = None) -> None:
    """Append one entry about ``rotation`` (a ``storage.RotationRecord``)."""
    if state_change is not None and state_change[0] != state_change[1]:
        detail = f"{detail} [{state_change[0]} → {state_change[1]}]"
    services.storage.audit.append(
        at=services.clock().timestamp(), room_id=rotation.room_id, rotation_id=rotation.id,
        app=rotation.app_name, actor=actor, action=action, detail=detail, before=before, after=after,
        requests=list(requests))


def record_refusal(services: Services, *, room_id: str, rotation, actor: str, reason: str) -> None:
    """A click or command that was refused (possibly about a rotation of another space, or none)."""
    services.storage.audit.append(
        at=services.clock().timestamp(), room_id=room_id, rotation_id=rotation.id if rotation else None,
        app=rotation.app_name if rotation else "", actor=actor, action="refused", detail=reason,
        before=None, after=None, requests=[])


def snapshot(credentials) -> dict | None:
    """Thumbprints of an ``entra_operations.CredentialSnapshot``: what was active, what existed."""
    if credentials is None:
        return None
    return {"active": credentials.active_thumbprint, "signing": list(credentials.signing_thumbprints),
            "verification": list(credentials.verification_thumbprints)}


def entry_line(entry: AuditEntry, *, markdown: bool = True) -> str:
    """One line: when, which rotation, who, what (Markdown for the chat, plain for the command line)."""
    when = datetime.fromtimestamp(entry.at, timezone.utc).strftime("%Y-%m-%d %H:%M")
    rotation = f"#{entry.rotation_id} " if entry.rotation_id else ""
    action = f"**{entry.action}**" if markdown else entry.action
    stamp = f"`{when}`" if markdown else when
    return f"{stamp} {rotation}{entry.app} · {action} by {entry.actor}: {entry.detail}{_thumbprint_change(entry)}"


def _thumbprint_change(entry: AuditEntry) -> str:
    before = (entry.before or {}).get("active")
    after = (entry.after or {}).get("active")
    if before and after and before != after:
        return f" (active {before[:8]}… → {after[:8]}…)"
    return ""


def export_json(entries: list[AuditEntry]) -> str:
    """The entries as a JSON array, oldest first (``python bot.py audit --json``)."""
    return json.dumps([entry_json(entry) for entry in entries], indent=2, ensure_ascii=False)


def entry_json(entry: AuditEntry) -> dict:
    return {"id": entry.id, "at": datetime.fromtimestamp(entry.at, timezone.utc).isoformat(timespec="seconds"),
            "room_id": entry.room_id, "rotation_id": entry.rotation_id, "app": entry.app, "actor": entry.actor,
            "action": entry.action, "detail": entry.detail, "thumbprints_before": entry.before,
            "thumbprints_after": entry.after, "graph_requests": entry.requests}
