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
    title: str                     # what the certificate is, as `status` words it
    subject: str
    trust: str
    not_after: datetime
    sha1: str
    acknowledged_by: str | None
    final_days: int
    where: str = ""                # where the space sees it: sources (numbered as `forget` takes them) and uses
    certificate_kind: str = ""     # entra | webex | sp | idp | file (rollover.describe.certificate_rows)
    advice: list[str] = field(default_factory=list)   # the diagnosis findings about this very certificate
    webex_question: tuple[str, str] | None = None     # (verdict, answer) of "upload it to Azure?": Webex's only
    notes: list[str] = field(default_factory=list)   # e.g. the source could not be refreshed
    rotation_app: str | None = None                  # Entra app whose rotation a button may start
