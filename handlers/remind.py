"""remind: the space's reminder subscription; the Snooze and Acknowledge buttons of reminder cards."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

from cards.common import plain
from handlers import actions as action_ids
from rollover.describe import certificate_title
from rollover.errors import UserError
from rollover.pipeline.dispatcher import Context
from rollover.pipeline.registry import card_action, command
from rollover.reminders import sweep as reminders
from rollover.settings import parse_clock_time, parse_days_list, parse_timezone

USAGE = ("`remind` shows this space's reminders; `remind on` / `remind off`; `remind at 60,30,14,7,1` sets the "
         "days before expiry; `remind time 09:00 Europe/Stockholm` sets the daily time and time zone.")
MAX_THRESHOLDS = 10
MAX_THRESHOLD_DAYS = 3650


@command("remind", usage="remind [on | off | at 60,30,14,7,1 | time 09:00 Europe/Stockholm]")
def remind(ctx: Context) -> None:
    """Reminders in this space: show them, turn them on or off, choose the days and the daily time."""
    word, _, rest = ctx.args.partition(" ")
    current = reminders.subscription_or_default(ctx.storage, ctx.config, ctx.room_id, by=ctx.person_email,
                                                now=ctx.now())
    change = CHANGES.get(word.lower())
    if change is None and word:
        raise UserError(f"I don't know `remind {word}`. {USAGE}")
    if change is not None:
        current = change(ctx, current, rest.strip())
    ctx.reply(markdown=describe_subscription(ctx, current))


def turn_on(ctx: Context, current, rest: str):
    _no_arguments("on", rest)
    if not current.enabled:
        current = dataclasses.replace(current, enabled=True, enabled_at=ctx.now().timestamp())
    return _save(ctx, current)


def turn_off(ctx: Context, current, rest: str):
    _no_arguments("off", rest)
    current = _save(ctx, dataclasses.replace(current, enabled=False))
    ctx.storage.reminders.cancel_planned(ctx.room_id)
    return current


def set_thresholds(ctx: Context, current, rest: str):
    return _save(ctx, dataclasses.replace(current, thresholds=parse_thresholds(rest)))


def set_time(ctx: Context, current, rest: str):
    local_time, zone = parse_reminder_time(rest)
    return _save(ctx, dataclasses.replace(current, local_time=local_time, time_zone=zone or current.time_zone))


CHANGES = {"on": turn_on, "off": turn_off, "at": set_thresholds, "time": set_time}


def _save(ctx: Context, subscription):
    subscription = dataclasses.replace(subscription, changed_by=ctx.person_email, changed_at=ctx.now().timestamp())
    ctx.storage.reminders.save_subscription(subscription)
    return subscription


def _no_arguments(word: str, rest: str) -> None:
    if rest:
        raise UserError(f"`remind {word}` takes nothing after it. {USAGE}")


def parse_thresholds(text: str) -> tuple[int, ...]:
    """'60,30,14,7,1' (or spaces) → (60, 30, 14, 7, 1); a UserError that says what is wrong otherwise."""
    if not text:
        raise UserError("Which days? For example `remind at 60,30,14,7,1` (days before a certificate expires).")
    try:
        days = parse_days_list(text)
    except ValueError:
        raise UserError(f"`{text}` is not a list of days. Write whole numbers of days before expiry, separated "
                        "by commas, e.g. `remind at 60,30,14,7,1`.") from None
    if len(days) > MAX_THRESHOLDS or days[0] > MAX_THRESHOLD_DAYS:
        raise UserError(f"Give at most {MAX_THRESHOLDS} reminder days, each {MAX_THRESHOLD_DAYS} or fewer.")
    return days


def parse_reminder_time(text: str) -> tuple[str, str | None]:
    """'09:00 Europe/Stockholm' → ('09:00', 'Europe/Stockholm'); the zone is optional."""
    parts = text.split()
    if not parts or len(parts) > 2:
        raise UserError("Which time? For example `remind time 09:00 Europe/Stockholm` (24-hour time, then an "
                        "optional IANA time zone).")
    try:
        local_time = parse_clock_time(parts[0])
    except ValueError:
        raise UserError(f"`{parts[0]}` is not a time of day. Write 24-hour HH:MM, such as 09:00 or 16:30.") from None
    if len(parts) == 1:
        return local_time, None
    try:
        return local_time, parse_timezone(parts[1])
    except ValueError:
        raise UserError(f"I don't know the time zone `{parts[1]}`. Use an IANA name such as Europe/Stockholm, "
                        "America/New_York or UTC.") from None


def describe_subscription(ctx: Context, s) -> str:
    days = _spoken_list([str(d) for d in s.thresholds])
    when = f"daily at {s.local_time} ({s.time_zone})"
    if not s.enabled:
        return (f"Reminders are **off** in this space. `remind on` sends them {days} days before a certificate "
                f"expires, {when}, with a weekly digest on {ctx.config.digest_weekday.capitalize()}s.")
    marks = ctx.storage.reminders.marks(ctx.room_id)
    now = ctx.now().timestamp()
    snoozed = sum(1 for m in marks.values() if m.snoozed_until and m.snoozed_until > now)
    owned = sum(1 for m in marks.values() if m.acknowledged_by)
    return (f"Reminders are **on** in this space: {days} days before a certificate expires, {when}; a weekly "
            f"digest on {ctx.config.digest_weekday.capitalize()}s; expired certificates weekly until rotated or "
            f"removed. Snoozed now: {snoozed}. Acknowledged (only reminders at {ctx.config.reminder_final_days} "
            f"days or fewer): {owned}.")


def _spoken_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


# --- reminder card buttons ------------------------------------------------------------------------

@card_action(action_ids.REMINDER_SNOOZE)
def snooze(ctx: Context) -> None:
    """Snooze 7 days: no reminders about this certificate in this space until then."""
    sha1, label = _clicked_certificate(ctx)
    now = ctx.now()
    until = now + timedelta(days=reminders.SNOOZE_DAYS)
    if ctx.storage.reminders.snooze(ctx.room_id, sha1, until=until.timestamp(), by=ctx.person_email,
                                    card_message_id=ctx.card_message_id or "", event_key=ctx.event_key,
                                    now=now.timestamp()):
        _snoozed(ctx, label, until.timestamp())
        return
    mark = ctx.storage.reminders.marks(ctx.room_id)[sha1]
    if mark.snoozed_by_event == ctx.event_key:
        # This very click snoozed it and is retried (its confirmation met a Webex 429): the space must still
        # learn who snoozed; the outbox posts the confirmation once.
        _snoozed(ctx, label, mark.snoozed_until)
        return
    if mark.snoozed_until and mark.snoozed_until > now.timestamp():
        answer = f"Already snoozed by {mark.snoozed_by} until {_day(mark.snoozed_until)}; nothing changed."
    else:
        answer = "This card's snooze was used already; the next reminder brings a new one. Nothing changed."
    ctx.reply(answer, to_person_id=ctx.person_id)   # privately: a second click is no news for the space


@card_action(action_ids.REMINDER_ACKNOWLEDGE)
def acknowledge(ctx: Context) -> None:
    """Acknowledge: record who owns the certificate; from now on only the final reminders."""
    sha1, label = _clicked_certificate(ctx)
    if ctx.storage.reminders.acknowledge(ctx.room_id, sha1, by=ctx.person_email, event_key=ctx.event_key,
                                         now=ctx.now().timestamp()):
        _acknowledged(ctx, label)
        return
    mark = ctx.storage.reminders.marks(ctx.room_id)[sha1]
    if mark.acknowledged_by_event == ctx.event_key:
        _acknowledged(ctx, label)     # this very click, retried after its confirmation failed: say it again
        return
    ctx.reply(f"Already acknowledged by {mark.acknowledged_by} on {_day(mark.acknowledged_at)}; nothing changed.",
              to_person_id=ctx.person_id)


def _snoozed(ctx: Context, label: str, until: float) -> None:
    ctx.reply(markdown=f"{plain(ctx.person_email)} snoozed the reminders about **{label}** for "
                       f"{reminders.SNOOZE_DAYS} days, until {_day(until)}.")


def _acknowledged(ctx: Context, label: str) -> None:
    ctx.reply(markdown=f"{plain(ctx.person_email)} owns **{label}** now. Only the final reminders "
                       f"({ctx.config.reminder_final_days} days or fewer) and the expired card will follow.")


def _clicked_certificate(ctx: Context) -> tuple[str, str]:
    """The SHA-1 the card is about and a name for it; it must be tracked in the space clicked in."""
    sha1 = str(ctx.inputs.get("sha1", ""))
    tracked = [c for c in ctx.storage.tracking.certificates(room_id=ctx.room_id) if c.sha1 == sha1]
    if not sha1 or not tracked:
        raise UserError("That certificate is no longer tracked in this space (rotated away or removed), so no "
                        "reminders about it will come.")
    # Shown in Markdown: a file name or subject must not become a link, a mention or formatting.
    return sha1, plain(certificate_title(tracked))


def _day(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d")
