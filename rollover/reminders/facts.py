"""What a reminder card says about one certificate: the sweep decides it, the chat layer's card draws it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class ReminderFacts:
    """Everything a reminder card says about one certificate."""

    kind: str                      # threshold | expired
    threshold: int | None
    status: str
    days_left: int
    title: str                     # "<source label>: <what it is>", as `status` words it
    subject: str
    trust: str
    not_after: datetime
    sha1: str
    diagnosis: str                 # the space's diagnosis summary
    acknowledged_by: str | None
    final_days: int
    notes: list[str] = field(default_factory=list)   # e.g. the source could not be refreshed
    rotation_app: str | None = None                  # Entra app whose rotation a button may start
