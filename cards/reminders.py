"""Reminder and weekly digest cards (Adaptive Card 1.3), with their plain-text fallbacks."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from webexpythonsdk.models.cards import AdaptiveCard
from webexpythonsdk.models.cards.options import ActionStyle, Colors

from cards.certificates import MAX_ROWS, certificate_row, day, when
from rollover.reminders.facts import ReminderFacts
from cards.common import card, facts, heading, paragraph, plain, submit
from rollover.certificates.health import STATUS_EMOJI, worst
from handlers import actions as action_ids



def reminder_headline(f: ReminderFacts) -> str:
    if f.kind == "expired":
        return f"SSO certificate expired {relative_day(f.days_left)}"
    return f"SSO certificate expires {relative_day(f.days_left)}"


def relative_day(days_left: int) -> str:
    """'in 12 days', 'today', '1 day ago' (days_left is floored: expired an hour ago is -1)."""
    if days_left < 0:
        return f"{-days_left} day{'s' if days_left != -1 else ''} ago"
    return when(days_left)


def reminder_why(f: ReminderFacts) -> str:
    if f.kind == "expired":
        return "Expired: I remind you weekly until it is rotated or removed."
    owner = (f" Acknowledged by {f.acknowledged_by}: only the final reminders ({f.final_days} days or fewer) "
             "follow." if f.acknowledged_by else "")
    return f"It reached this space's {f.threshold}-day reminder.{owner}"


def reminder_card(reminder: ReminderFacts) -> AdaptiveCard:
    f = _markdown_safe(reminder)
    body = [*heading(f"{STATUS_EMOJI[f.status]} {reminder_headline(f)}", subtitle=f.title),
            facts([("Trust", f.trust), ("Subject", f.subject), ("Not after", f"{day(f.not_after)} ({relative_day(f.days_left)})"),
                   ("SHA-1", f.sha1)]),
            paragraph(f"Diagnosis of this space: {f.diagnosis}"),
            paragraph(reminder_why(f), subtle=True)]
    body += [paragraph(f"⚠️ {note}", color=Colors.WARNING) for note in f.notes]
    actions = []
    if f.rotation_app:
        actions.append(submit("Start rotation", action_ids.ROTATION_START, style=ActionStyle.POSITIVE, app=f.rotation_app))
    actions.append(submit("Snooze 7 days", action_ids.REMINDER_SNOOZE, sha1=f.sha1))
    if not f.acknowledged_by:
        actions.append(submit("Acknowledge", action_ids.REMINDER_ACKNOWLEDGE, sha1=f.sha1))
    return card(body, actions=actions)


def _markdown_safe(f: ReminderFacts) -> ReminderFacts:
    """File names, subjects and Graph errors shown literally: TextBlocks render Markdown."""
    return replace(f, title=plain(f.title), subject=plain(f.subject), trust=plain(f.trust),
                   diagnosis=plain(f.diagnosis), notes=[plain(note) for note in f.notes],
                   acknowledged_by=f.acknowledged_by and plain(f.acknowledged_by))


def reminder_text(f: ReminderFacts) -> str:
    """Fallback for clients that cannot show cards."""
    lines = [f"{STATUS_EMOJI[f.status]} {reminder_headline(f)}: {f.title}",
             f"Trust: {f.trust}", f"Not after {day(f.not_after)} · SHA-1 {f.sha1}", f"Diagnosis of this space: {f.diagnosis}",
             reminder_why(f)]
    return "\n".join(lines + [f"⚠️ {note}" for note in f.notes])


# --- the weekly digest -------------------------------------------------------------------------------

def digest_card(rows: list[dict], week_of: date, notes: list[str]) -> AdaptiveCard:
    """``rows``: status rows (status, title, detail), already sorted worst first."""
    overall = worst(r["status"] for r in rows)
    body = [*heading(f"{STATUS_EMOJI[overall]} Weekly digest: SSO certificates of this space",
                     subtitle=f"{digest_summary(rows)} · week of {week_of.isoformat()}")]
    body += [certificate_row(status=r["status"], title=plain(r["title"]), detail=plain(r["detail"]))
             for r in rows[:MAX_ROWS]]
    if len(rows) > MAX_ROWS:
        body.append(paragraph(f"… and {len(rows) - MAX_ROWS} more (`status` lists them all).", subtle=True))
    body += [paragraph(f"⚠️ {plain(note)}", color=Colors.WARNING) for note in notes]
    return card(body, actions=[submit("Explain", action_ids.RUN_COMMAND, command="explain")])


def digest_text(rows: list[dict], week_of: date, notes: list[str]) -> str:
    lines = [f"Weekly digest, week of {week_of.isoformat()}: {digest_summary(rows)}"]
    lines += [f"{STATUS_EMOJI[r['status']]} {r['title']} — {r['detail']}" for r in rows[:MAX_ROWS]]
    if len(rows) > MAX_ROWS:
        lines.append(f"… and {len(rows) - MAX_ROWS} more.")
    return "\n".join(lines + [f"⚠️ {note}" for note in notes])


def digest_summary(rows: list[dict]) -> str:
    """'5 tracked certificates: 1 expired, 2 critical' — the counts that need attention."""
    counts = {status: sum(1 for r in rows if r["status"] == status) for status in ("expired", "critical", "warning")}
    attention = ", ".join(f"{n} {status}" for status, n in counts.items() if n)
    total = f"{len(rows)} tracked certificate{'s' if len(rows) != 1 else ''}"
    return f"{total}: {attention}" if attention else f"{total}, all fine"
