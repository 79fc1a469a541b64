"""Reminder and weekly digest cards (Adaptive Card 1.3), with their plain-text fallbacks.

A reminder speaks of its own certificate: what it is, when it expires, what to do next; the diagnosis findings
about it and the "upload the new Webex certificate to Azure?" answer (a Webex certificate's only) sit behind
Details. The digest has one row per certificate, as `status` does.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from webexpythonsdk.models.cards import AdaptiveCard, TextBlock
from webexpythonsdk.models.cards.options import ActionStyle, Colors, FontWeight

from cards.certificates import VERDICT_TITLE, certificate_blocks, certificate_details, certificate_lines
from cards.common import card, details, facts, heading, paragraph, plain, submit
from cards.paths import PathsSaid
from handlers import actions as action_ids
from rollover.certificates.health import STATUS_EMOJI, worst
from rollover.describe import day, plural, short_thumbprint, when
from rollover.reminders.facts import ReminderFacts

VERDICT_SHORT = {"activate-only": "No", "upload-before-activating": "Yes", "upload-then-activate": "Yes",
                 "unknown": "Not known yet (see Details)"}   # other verdicts: no Webex certificate, no question


def reminder_headline(f: ReminderFacts) -> str:
    verb = "expired" if f.kind == "expired" else "expires"
    return f"{f.title} {verb} {relative_day(f.days_left)}"


def relative_day(days_left: int) -> str:
    """'in 12 days', 'today', '1 day ago' (days_left is floored: expired an hour ago is -1)."""
    if days_left < 0:
        return f"{plural(-days_left, 'day')} ago"
    return when(days_left)


def reminder_why(f: ReminderFacts) -> str:
    if f.kind == "expired":
        return "Expired: I remind you weekly until it is rotated or removed."
    owner = (f" Acknowledged by {f.acknowledged_by}: only the final reminders ({f.final_days} days or fewer) "
             "follow." if f.acknowledged_by else "")
    return f"It reached this space's {f.threshold}-day reminder.{owner}"


def next_step(f: ReminderFacts) -> str:
    """The one thing to do about this certificate."""
    if f.certificate_kind == "entra":
        if f.rotation_app:
            return (f"Rotate it before {day(f.not_after)}: Start rotation creates the new certificate after an "
                    "approval and guides the switch in Webex.")
        return f"Rotate it before {day(f.not_after)}: `watch <Entra app>` then `rotate <Entra app>` guide you."
    if f.webex_question:
        upload = VERDICT_SHORT.get(f.webex_question[0], VERDICT_TITLE.get(f.webex_question[0], "see Details"))
        return (f"Activate Webex's new certificate before {day(f.not_after)} (Cisco publishes it about two months "
                f"ahead). Upload it to Azure first? {upload}.")
    return f"Replace it before {day(f.not_after)}; Details says what I know about it."


def reminder_card(reminder: ReminderFacts) -> AdaptiveCard:
    f = _markdown_safe(reminder)
    body = [*heading(f"{STATUS_EMOJI[f.status]} {reminder_headline(f)}"),
            paragraph(next_step(f)),
            facts([("Expires", f"{day(f.not_after)} ({relative_day(f.days_left)})"), ("Seen in", f.where),
                   ("SHA-1", short_thumbprint(f.sha1))])]
    if f.acknowledged_by:
        body.append(paragraph(f"Acknowledged by {f.acknowledged_by}.", subtle=True))
    body += [paragraph(f"⚠️ {note}", color=Colors.WARNING) for note in f.notes]
    actions = []
    if f.rotation_app:
        actions.append(submit("Start rotation", action_ids.ROTATION_START, style=ActionStyle.POSITIVE,
                              app=reminder.rotation_app))
    actions.append(submit("Snooze 7 days", action_ids.REMINDER_SNOOZE, sha1=reminder.sha1))
    if not f.acknowledged_by:
        actions.append(submit("Acknowledge", action_ids.REMINDER_ACKNOWLEDGE, sha1=reminder.sha1))
    actions.append(details("Details", _reminder_details(f)))
    return card(body, actions=actions)


def _reminder_details(f: ReminderFacts) -> list:
    blocks: list = [facts([("SHA-1", f.sha1), ("Subject", f.subject), ("Trust", f.trust)])]
    blocks += [paragraph(advice) for advice in f.advice]
    if f.webex_question:
        verdict, answer = f.webex_question
        blocks += [TextBlock(VERDICT_TITLE[verdict], weight=FontWeight.BOLDER, wrap=True), paragraph(answer)]
    blocks.append(paragraph(reminder_why(f), subtle=True))
    return blocks


def _markdown_safe(f: ReminderFacts) -> ReminderFacts:
    """File names, subjects and Graph errors shown literally: TextBlocks render Markdown."""
    question = f.webex_question and (f.webex_question[0], plain(f.webex_question[1]))
    return replace(f, title=plain(f.title), subject=plain(f.subject), trust=plain(f.trust), where=plain(f.where),
                   advice=[plain(text) for text in f.advice], webex_question=question,
                   notes=[plain(note) for note in f.notes],
                   acknowledged_by=f.acknowledged_by and plain(f.acknowledged_by))


def reminder_text(f: ReminderFacts) -> str:
    """Fallback for clients that cannot show cards: everything the card and its Details say."""
    lines = [f"{STATUS_EMOJI[f.status]} {reminder_headline(f)}. {next_step(f)}",
             f"Not after {day(f.not_after)} · seen in {f.where} · SHA-1 {f.sha1}", f"Trust: {f.trust}", *f.advice]
    if f.webex_question:
        lines.append(f"{VERDICT_TITLE[f.webex_question[0]]}: {f.webex_question[1]}")
    lines.append(reminder_why(f))
    return "\n".join(PathsSaid().lines(lines + [f"⚠️ {note}" for note in f.notes]))


# --- the weekly digest -------------------------------------------------------------------------------

def digest_card(rows: list[dict], week_of: date, notes: list[str]) -> AdaptiveCard:
    """``rows``: one per certificate (rollover.describe.certificate_rows), worst first."""
    overall = worst(r["status"] for r in rows)
    body = [*heading(f"{STATUS_EMOJI[overall]} Weekly digest, week of {week_of.isoformat()}"),
            paragraph(plain(digest_summary(rows)))]
    body += certificate_blocks(rows, "`status`")
    body += [paragraph(f"⚠️ {plain(note)}", color=Colors.WARNING) for note in notes]
    return card(body, actions=[submit("Explain", action_ids.RUN_COMMAND, command="explain"),
                               details("Details", certificate_details(rows))])


def digest_text(rows: list[dict], week_of: date, notes: list[str]) -> str:
    lines = [f"Weekly digest, week of {week_of.isoformat()}: {digest_summary(rows)}", *certificate_lines(rows)]
    return "\n".join(lines + [f"⚠️ {note}" for note in notes])


def digest_summary(rows: list[dict]) -> str:
    """'2 certificates: 1 expiring very soon, 1 expiring soon. The first: …' — what needs attention first."""
    words = {"expired": "expired", "critical": "expiring very soon", "warning": "expiring soon"}
    counts = {status: sum(1 for r in rows if r["status"] == status) for status in words}
    attention = ", ".join(f"{n} {words[status]}" for status, n in counts.items() if n)
    total = plural(len(rows), "certificate")
    if not attention:
        return f"{total}, all valid."
    return f"{total}: {attention}. The first: the {rows[0]['title']} {rows[0]['state']}."
