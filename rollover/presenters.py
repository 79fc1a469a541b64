"""The card builders the core posts with, handed in by the chat layer (the core never imports cards/).

Rotations and reminders post cards without a chat message to answer; they call these.
Each returns the fallback text (for clients without cards) and the card.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Callable

from rollover.reminders.facts import ReminderFacts
from rollover.rotation.view import RotationView

Message = tuple[str, Any]   # (fallback text, Adaptive Card or its dict)


@dataclass(frozen=True)
class Presenters:
    rotation: Callable[[RotationView], Message]
    reminder: Callable[[ReminderFacts], Message]
    digest: Callable[[list[dict], date, list[str]], Message]   # status rows worst first, week, notes
