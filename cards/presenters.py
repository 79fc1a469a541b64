"""The cards the core posts on its own (rotation steps, reminders, digests), as ``rollover.presenters`` wants them."""

from __future__ import annotations

from datetime import date

from cards.reminders import digest_card, digest_text, reminder_card, reminder_text
from cards.rotations import rotation_card
from rollover.presenters import Message, Presenters
from rollover.reminders.facts import ReminderFacts


def reminder(facts: ReminderFacts) -> Message:
    return reminder_text(facts), reminder_card(facts)


def digest(rows: list[dict], week_of: date, notes: list[str]) -> Message:
    return digest_text(rows, week_of, notes), digest_card(rows, week_of, notes)


PRESENTERS = Presenters(rotation=rotation_card, reminder=reminder, digest=digest)
