"""What a rotation card shows, as plain values: the core builds it, the chat layer's card draws it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

STATE_EMOJI = {"approval": "🟡", "operator": "👉", "running": "⏳", "waiting": "🕒"}
TERMINAL_EMOJI = {"done": "✅", "cancelled": "⚪", "rolled-back": "↩️", "failed": "🔴", "expired": "⌛"}


@dataclass(frozen=True)
class RotationView:
    """Everything a rotation card shows, as plain values (built by ``rollover.rotation.engine.view_of``)."""

    id: int
    kind: str
    kind_label: str
    app_name: str
    state: str
    state_kind: str
    step: str
    version: int
    requested_by: str
    plan: dict
    data: dict
    approvals: list[str]
    required_approvals: int
    approvers: str
    deadline: datetime | None
    report_only: bool
    now: datetime
    time_zone: str = "UTC"          # the space's (its reminder time zone): maintenance windows are shown in it

    @property
    def emoji(self) -> str:
        return TERMINAL_EMOJI.get(self.state) or STATE_EMOJI[self.state_kind]

    @property
    def new_thumbprint(self) -> str | None:
        return self.data.get("new_thumbprint")

    @property
    def current_thumbprint(self) -> str:
        current = self.plan.get("current")
        return current["thumbprint"] if current else "none"

    @property
    def last_detail(self) -> str:
        history = self.data.get("history") or []
        return history[-1]["what"] if history else ""

    @property
    def last_decision(self) -> str:
        """The last history line with who decided, e.g. "Rejected by bob@example.com"."""
        history = self.data.get("history") or []
        return f"{history[-1]['what'].rstrip('.')} by {history[-1]['by']}" if history else ""


def window_moment(moment: datetime, zone: str) -> str:
    """A maintenance window's start as the space reads it: in its time zone, with UTC beside it."""
    utc = f"{moment_utc(moment)} UTC"
    if zone == "UTC":
        return utc
    return f"{moment.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M} {zone} ({utc})"



def moment_utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M")
