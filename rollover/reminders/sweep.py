"""Scheduled reminders and weekly digests: decide what is due, post each one once, remember it.

Framework-free: the scheduler (``scheduler.py``), ``bot.py remind`` and the tests call
``run_sweep(services, now)``. One sweep

1. takes the sweep lease in SQLite, so only one process decides and posts at a time (a crashed
   holder's lease simply runs out);
2. when some space's daily slot is open, refreshes every source (the Graph inventory, metadata URLs);
   a failure is logged, stored on the source and shown on the cards, and the reminders still go out;
3. decides what is due for the spaces whose slot is open and records it as *planned*, together with
   the slots, in one transaction;
4. posts planned reminders one by one: claim, post, record *sent*.

What is due, per space and certificate (a certificate is its SHA-1: listed in two sources, or twice
in one metadata document, it is still one certificate to remind about):

- the space's daily slot is the first sweep at or after local HH:MM on a local date (wall-clock
  comparison: a time inside a skipped daylight-saving hour opens at the first sweep after the jump;
  a repeated hour counts once, because each local date is handled once);
- a certificate whose days left reach a threshold gets the reminder of the *smallest* threshold it
  has reached, once; after downtime that is one catch-up card, not one per missed threshold or day;
- an expired certificate gets one "expired" card, then one a week, until it is removed or rotated
  away (present = 0 in its source: nothing more);
- snoozed: nothing until the snooze ends; acknowledged (someone owns it): only the thresholds of
  ``reminder_final_days`` or fewer, and the expired cards;
- inactive Entra certificates sign nothing, so they get no reminders (they stay in the digest), also when
  another source of the space (Entra's federation metadata URL) lists them;
- the weekly digest goes out at the slot of the digest weekday (or the first slot after it, when
  the bot was down), once per week;
- a space outside ROLLOVER_ALLOWED_ROOMS (when set) gets nothing, and what was planned for it is dropped.

Exactly once: every reminder is a row keyed by (space, subject, kind, step); planning inserts it
once, posting claims it first. A failed post (Webex 429/5xx) goes back to *planned* with a backoff
and is posted by a later sweep (a card that failed to build, a bug, is tried a few times before it
is failed); an unsent reminder is superseded when a newer one about the same certificate is
planned, so an outage ends with the current card, not a backlog. The one window
left is a process dying after Webex accepted a post and before "sent" was committed: its claim
runs out and the reminder is posted again. We chose a possible duplicate in that millisecond
window over a reminder that silently never arrives: Webex has no idempotency key, and a bot
cannot list its own messages in a group space to check.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import queue
import threading
import time
import zlib
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Iterable
from zoneinfo import ZoneInfo

from rollover import metrics
from rollover.describe import certificate_rows, plural
from rollover.errors import Retryable, UserError
from rollover.integrations.webex_client import WebexError, WebexUnavailable
from rollover.leases import backoff_seconds, lease_owner
from rollover.pipeline.access import is_room_allowed
from rollover.pipeline.outbox import Poster, card_dict
from rollover.reminders.facts import ReminderFacts
from rollover.reminders.spaces import SpaceFacts
from rollover.services import Services
from rollover.settings import WEEKDAYS
from rollover.storage import (
    PlannedReminder,
    ReminderCandidate,
    ReminderMark,
    ReminderSubscription,
    Storage,
    TrackedCertificate,
)
from rollover.tracking import (
    refresh_entra_inventory,
    refresh_url_sources,
    view_of,
)

log = logging.getLogger(__name__)

DAY_SECONDS = 86400
SNOOZE_DAYS = 7
EXPIRED_REPEAT_DAYS = 7
SWEEP_LEASE = "reminder-sweep"
POSTERS = 4    # reminders posted at the same time: a sweep of a thousand cards takes a quarter of the time
MAX_INTERNAL_ERROR_ATTEMPTS = 3     # attempts (of any kind) after which a reminder failing on a bug is failed


@dataclass(frozen=True)
class DueReminder:
    room_id: str
    kind: str                     # threshold | expired | digest
    step: int                     # threshold: days; expired, digest: local date ordinal
    subject: str = ""             # certificate SHA-1; '' for a digest
    days_left: int | None = None

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.room_id, self.subject, self.kind, self.step)


@dataclass
class Plan:
    """What one sweep decided: the spaces whose slot it handles (room → local date) and what is due."""

    slots: dict[str, str]
    due: list[DueReminder]


@dataclass(frozen=True)
class ReminderMessage:
    text: str
    card: dict[str, Any]


@dataclass
class SweepReport:
    now: datetime
    dry_run: bool = False
    lease_taken: bool = True
    refresh_problems: list[str] = field(default_factory=list)
    planned: int = 0
    sent: list[str] = field(default_factory=list)          # one line per posted reminder
    waiting: list[str] = field(default_factory=list)       # failed for now, retried by a later sweep
    failed: list[str] = field(default_factory=list)        # Webex refused for good
    previews: list[str] = field(default_factory=list)      # dry run: what would be sent

    def lines(self) -> list[str]:
        moment = self.now.astimezone(timezone.utc).isoformat(timespec="minutes")
        if not self.lease_taken:
            return [f"Reminder sweep at {moment}: another process is running one; nothing done."]
        if self.dry_run:
            return [f"Dry run at {moment} (sources not refreshed; nothing sent or recorded): "
                    f"{plural(len(self.previews), 'reminder')} would be sent.", *self.previews]
        lines = [f"Reminder sweep at {moment}: {self.planned} planned, {len(self.sent)} sent, "
                 f"{len(self.waiting)} waiting for a retry, {len(self.failed)} failed."]
        lines += [f"  refresh problem: {p}" for p in self.refresh_problems]
        lines += [f"  sent: {s}" for s in self.sent] + [f"  retry later: {w}" for w in self.waiting]
        lines += [f"  failed: {f}" for f in self.failed]
        return lines


# --- subscriptions ---------------------------------------------------------------------------------

def subscription_or_default(storage: Storage, config, room_id: str, *, by: str, now: datetime) -> ReminderSubscription:
    """The space's subscription, or the settings' defaults (off) when it never had one."""
    existing = storage.reminders.subscription(room_id)
    if existing is not None:
        return existing
    return ReminderSubscription(room_id, False, tuple(config.reminder_days), config.reminder_time,
                                config.reminder_timezone, now.timestamp(), by, now.timestamp())


def open_slot(subscription: ReminderSubscription, now: datetime) -> str | None:
    """The local date (ISO) whose daily slot is open at ``now`` and not yet handled, else None."""
    local = now.astimezone(ZoneInfo(subscription.time_zone))
    if local.strftime("%H:%M") < subscription.local_time:
        return None
    today = local.date().isoformat()
    # "!=" rather than "<": a sweep run ahead of time (bot.py remind --now) must not block real days.
    return None if subscription.last_slot == today else today


# --- the decision -------------------------------------------------------------------------------------

def decide(storage: Storage, config, now: datetime,
           subscriptions: list[ReminderSubscription] | None = None) -> Plan:
    """Everything due at ``now`` for the spaces whose daily slot is open: two queries and one pass."""
    if subscriptions is None:
        subscriptions = storage.reminders.enabled_subscriptions()
    # A space removed from ROLLOVER_ALLOWED_ROOMS keeps its subscription but gets nothing.
    subscriptions = [s for s in subscriptions if is_room_allowed(config, s.room_id)]
    slots = {s.room_id: day for s in subscriptions if (day := open_slot(s, now)) is not None}
    opened = [s for s in subscriptions if s.room_id in slots]
    if not opened:
        return Plan({}, [])
    thresholds = {s.room_id: s.thresholds for s in opened}
    today = {room_id: date.fromisoformat(day).toordinal() for room_id, day in slots.items()}
    # days_left <= T  <=>  not_after < now + (T + 1) days: nothing later can be due.
    horizon = now.timestamp() + (max(max(t) for t in thresholds.values()) + 1) * DAY_SECONDS
    candidates = storage.reminders.candidates(list(slots), horizon)
    # Candidates come by space, soonest expiry first; digests go after every space's reminders.
    due = certificate_reminders(candidates, thresholds, today, now.timestamp(), config.reminder_final_days)
    due += [d for s in opened if (d := digest_due(s, date.fromisoformat(slots[s.room_id]), config.digest_weekday))]
    return Plan(slots, due)


def certificate_reminders(candidates: Iterable[ReminderCandidate], thresholds: dict[str, tuple[int, ...]],
                          today: dict[str, int], now: float, final_days: int) -> list[DueReminder]:
    """One pass over the candidate rows: at most one reminder per certificate (SHA-1) and space."""
    due, seen = [], set()
    for candidate in candidates:
        certificate = (candidate.room_id, candidate.sha1)
        if certificate in seen:
            continue   # another row of the same certificate: same expiry, marks and history
        seen.add(certificate)
        reminder = certificate_reminder(candidate, thresholds[candidate.room_id], today[candidate.room_id],
                                        now, final_days)
        if reminder is not None:
            due.append(reminder)
    return due


def certificate_reminder(candidate: ReminderCandidate, thresholds: tuple[int, ...], today: int, now: float,
                         final_days: int) -> DueReminder | None:
    """The reminder one certificate is due in its space today (``today``: local date ordinal), if any."""
    if candidate.snoozed_until is not None and now < candidate.snoozed_until:
        return None
    seconds_left = candidate.not_after - now
    days_left = math.floor(seconds_left / DAY_SECONDS)
    if seconds_left < 0:
        last = candidate.last_expired_step
        if last is None or today - last >= EXPIRED_REPEAT_DAYS:
            return DueReminder(candidate.room_id, "expired", today, candidate.sha1, days_left)
        return None
    limit = final_days if candidate.acknowledged_by else None
    threshold = smallest_threshold_reached(days_left, thresholds, limit)
    already = candidate.lowest_threshold_planned
    if threshold is None or (already is not None and threshold >= already):
        return None
    return DueReminder(candidate.room_id, "threshold", threshold, candidate.sha1, days_left)


def smallest_threshold_reached(days_left: int, thresholds: Iterable[int], limit: int | None = None) -> int | None:
    """The smallest threshold with ``days_left <= threshold`` (only thresholds <= ``limit`` when given)."""
    reached = [t for t in thresholds if days_left <= t and (limit is None or t <= limit)]
    return min(reached, default=None)


def digest_due(subscription: ReminderSubscription, local_day: date, weekday: str) -> DueReminder | None:
    """This week's digest, from its weekday on, unless sent (or the space subscribed after that day)."""
    digest_day = local_day - timedelta(days=(local_day.weekday() - WEEKDAYS.index(weekday)) % 7)
    subscribed_on = datetime.fromtimestamp(subscription.enabled_at, ZoneInfo(subscription.time_zone)).date()
    if digest_day < subscribed_on or subscription.last_digest_step == digest_day.toordinal():
        return None
    return DueReminder(subscription.room_id, "digest", digest_day.toordinal())


# --- one sweep ----------------------------------------------------------------------------------------

def run_sweep(services: Services, now: datetime | None = None, *, owner: str | None = None,
              dry_run: bool = False) -> SweepReport:
    """Refresh, decide, record and post, as of ``now``; a dry run only decides and describes."""
    now = now or datetime.now(timezone.utc)
    services = at_moment(services, now)
    if dry_run:
        return preview(services, now)
    storage, config = services.storage, services.config
    owner = owner or lease_owner()
    if not storage.leases.acquire(SWEEP_LEASE, owner, seconds=config.reminder_lease_seconds, wall_now=time.time()):
        log.info("reminder sweep skipped: another process holds the lease")
        return SweepReport(now, lease_taken=False)
    try:
        return _sweep(services, now, owner)
    finally:
        storage.leases.release(SWEEP_LEASE, owner)


def _sweep(services: Services, now: datetime, owner: str) -> SweepReport:
    storage, config = services.storage, services.config
    report = SweepReport(now)
    subscriptions = storage.reminders.enabled_subscriptions()
    if any(open_slot(s, now) for s in subscriptions):
        report.refresh_problems = refresh_sources(services)
        if not _keep_lease(storage, config, owner):
            return report
        subscriptions = storage.reminders.enabled_subscriptions()
    plan = decide(storage, config, now, subscriptions)
    report.planned = storage.reminders.plan([d.key for d in plan.due], plan.slots, now.timestamp())
    post_planned(services, now, owner, report)
    return report


def preview(services: Services, now: datetime) -> SweepReport:
    report = SweepReport(now, dry_run=True)
    spaces = SpaceFacts(services, now)
    for due in decide(services.storage, services.config, now).due:
        message = compose(services, PlannedReminder(0, due.room_id, due.subject, due.kind, due.step, 0), now,
                          spaces=spaces)
        if message is not None:
            report.previews.append(f"- to space {due.room_id} ({describe(due)}):\n    "
                                   + message.text.replace("\n", "\n    "))
    return report


def at_moment(services: Services, now: datetime):
    """The services with their clock fixed at ``now`` (the diagnosis and the refresh read the clock)."""
    return dataclasses.replace(services, clock=lambda: now)


def _keep_lease(storage: Storage, config, owner: str) -> bool:
    """Extend the sweep lease; False (and stop) when it ran out and another process took it."""
    if storage.leases.acquire(SWEEP_LEASE, owner, seconds=config.reminder_lease_seconds, wall_now=time.time()):
        return True
    log.warning("reminder sweep lost its lease to another process; stopping here")
    return False


# --- refreshing sources -------------------------------------------------------------------------------

def refresh_sources(services: Services) -> list[str]:
    """Re-read the Graph inventory and every metadata URL; problems are logged, stored and returned."""
    problems = []
    if services.entra is not None:
        problem = _refresh_graph(services)
        if problem:
            problems.append(f"Microsoft Graph: {problem}")
    try:
        for source, error in refresh_url_sources(services):
            if error:
                log.warning("reminder sweep: source %s could not be refreshed: %s", source.id, error)
                problems.append(f"{source.label}: {error}")
    except Exception:
        log.exception("reminder sweep: refreshing the metadata URLs failed")
        problems.append("metadata URLs: unexpected error (see the bot's log)")
    return problems


def _refresh_graph(services: Services) -> str | None:
    try:
        refresh_entra_inventory(services)
        return None
    except (UserError, Retryable) as error:    # Graph's own failures carry a sentence without secrets
        log.warning("reminder sweep: the Entra inventory could not be refreshed: %s", error)
        problem = str(error)
    except Exception:
        log.exception("reminder sweep: the Entra inventory could not be refreshed")
        problem = "unexpected error (see the bot's log)"
    # On the watched apps' sources, so their cards say the dates are from the previous read.
    now = services.clock().timestamp()
    for source in services.storage.tracking.sources(kind="entra-app"):
        services.storage.tracking.record_source_error(
            source.id, f"Graph could not be read at the last refresh: {problem}", now)
    return problem


# --- posting ----------------------------------------------------------------------------------------

def post_planned(services: Services, now: datetime, owner: str, report: SweepReport) -> None:
    """Post every reminder ready to go, ``POSTERS`` at a time; stop at the first Webex outage (the rest waits
    for a later sweep).

    This thread claims, in order; each claimed reminder goes to the poster of its space (always the same
    one), so a space's reminders, and its digest after them, still arrive in the order they were planned."""
    storage, config = services.storage, services.config
    spaces, outage = SpaceFacts(services, now), threading.Event()
    queues = [queue.Queue(maxsize=2) for _ in range(POSTERS)]      # claims run at most a few posts ahead
    posters = [threading.Thread(target=_poster, args=(services, line, spaces, now, owner, report, outage),
                                name=f"rollover-reminders-{n}", daemon=True) for n, line in enumerate(queues)]
    for poster in posters:
        poster.start()
    renewed = time.monotonic()
    try:
        while not outage.is_set():
            # The sweep's lease is renewed every tenth of its length, not once per card (a write each).
            if time.monotonic() - renewed > config.reminder_lease_seconds / 10:
                if not _keep_lease(storage, config, owner):
                    break
                renewed = time.monotonic()
            planned = storage.reminders.claim(owner, now=now.timestamp(), wall_now=time.time(),
                                              claim_seconds=config.reminder_lease_seconds)
            if planned is None:
                break
            queues[zlib.crc32(planned.room_id.encode()) % POSTERS].put(planned)
    finally:
        for line in queues:
            line.put(None)
        for poster in posters:
            poster.join()


def _poster(services: Services, line: queue.Queue, spaces: SpaceFacts, now: datetime, owner: str,
            report: SweepReport, outage: threading.Event) -> None:
    try:
        while (planned := line.get()) is not None:
            if outage.is_set():     # claimed before Webex failed: back to planned, for the next sweep
                _give_back(services, planned, owner, now)
            elif not _post_guarded(services, planned, now, owner, report, spaces):
                outage.set()
    finally:
        services.storage.close()   # this thread's connection


def _give_back(services: Services, planned: PlannedReminder, owner: str, now: datetime) -> None:
    try:
        services.storage.reminders.retry_later(planned.id, owner, now.timestamp(), "not posted: Webex was unavailable")
    except Exception:   # this poster must keep emptying its queue, or the claiming thread waits for it forever
        log.exception("reminder %s could not be given back; its claim runs out instead", planned.id)


def _post_guarded(services: Services, planned: PlannedReminder, now: datetime, owner: str, report: SweepReport,
                  spaces: SpaceFacts) -> bool:
    """post_one, with a bug on one reminder logged instead of ending this poster: its queue would fill and the
    claiming thread wait for it forever. The reminder keeps its claim and is tried again when the claim ends."""
    try:
        return post_one(services, planned, now, owner, report, spaces=spaces)
    except Exception:
        log.exception("reminder %s: posting failed on a bug; tried again when its claim runs out", planned.id)
        return True


def post_one(services: Services, planned: PlannedReminder, now: datetime, owner: str, report: SweepReport, *,
             spaces: SpaceFacts | None = None) -> bool:
    """Post one claimed reminder and record the outcome; False when Webex is unavailable."""
    storage, what = services.storage, describe(planned)
    if not is_room_allowed(services.config, planned.room_id):
        log.info("reminder %s (%s) dropped: space %s is no longer in ROLLOVER_ALLOWED_ROOMS",
                 planned.id, what, planned.room_id)
        storage.reminders.finish(planned.id, owner, "dropped", now=now.timestamp(),
                                error="the space is no longer in ROLLOVER_ALLOWED_ROOMS")
        return True
    try:
        message = compose(services, planned, now, spaces=spaces)
    except Exception:
        log.exception("reminder %s (%s) could not be composed (attempt %d)", planned.id, what, planned.attempts)
        _internal_error(storage, planned, owner, now, report)
        return True
    if message is None:
        storage.reminders.finish(planned.id, owner, "dropped", now=now.timestamp(),
                                error="no longer due (rotated, removed, snoozed or acknowledged)")
        return True
    try:
        # Through the outbox like every post the bot makes on its own: should the "sent" mark below be lost,
        # a retry of this reminder finds its message there instead of posting it twice.
        poster = Poster(storage, services.webex, f"reminder:{planned.id}", planned.room_id)
        message_id = poster.reply(message.text, card=message.card)
    except WebexUnavailable as error:
        storage.reminders.retry_later(planned.id, owner, _retry_at(planned, now, error.retry_after), str(error))
        log.warning("reminder %s (%s) will be retried: %s", planned.id, what, error)
        report.waiting.append(f"{what}: {error}")
        return False
    except WebexError as error:
        storage.reminders.finish(planned.id, owner, "failed", now=now.timestamp(), error=str(error))
        metrics.count("reminders_failed")
        log.error("reminder %s (%s) was refused by Webex: %s", planned.id, what, error)
        report.failed.append(f"{what}: {error}")
        return True
    except Exception:
        log.exception("reminder %s (%s) could not be posted (attempt %d)", planned.id, what, planned.attempts)
        _internal_error(storage, planned, owner, now, report)
        return True
    if not storage.reminders.finish(planned.id, owner, "sent", now=now.timestamp(), message_id=message_id):
        log.warning("reminder %s was posted after its claim ran out", planned.id)
    metrics.count("reminders_posted")
    report.sent.append(f"{what} in space {planned.room_id}")
    return True


def _internal_error(storage: Storage, planned: PlannedReminder, owner: str, now: datetime,
                    report: SweepReport) -> None:
    """A bug composing or posting: it may be one a restart or a changed source cures, so later sweeps try
    again, up to MAX_INTERNAL_ERROR_ATTEMPTS attempts; then the reminder is failed for good (the log says why)."""
    what = describe(planned)
    if planned.attempts < MAX_INTERNAL_ERROR_ATTEMPTS:
        storage.reminders.retry_later(planned.id, owner, _retry_at(planned, now), "internal error (see log)")
        report.waiting.append(f"{what}: internal error, tried again by a later sweep")
        return
    storage.reminders.finish(planned.id, owner, "failed", now=now.timestamp(), error="internal error (see log)")
    metrics.count("reminders_failed")
    report.failed.append(f"{what}: internal error after {planned.attempts} attempts")


def _retry_at(planned: PlannedReminder, now: datetime, retry_after: float | None = None) -> float:
    return now.timestamp() + backoff_seconds(planned.attempts, retry_after)


def describe(reminder: PlannedReminder | DueReminder) -> str:
    if reminder.kind == "digest":
        return f"weekly digest of {date.fromordinal(reminder.step).isoformat()}"
    if reminder.kind == "expired":
        return f"expired certificate {reminder.subject}"
    return f"{reminder.step}-day reminder for certificate {reminder.subject}"


# --- composing the cards ----------------------------------------------------------------------------

def compose(services: Services, planned: PlannedReminder, now: datetime, *,
            spaces: SpaceFacts | None = None) -> ReminderMessage | None:
    """The card of a planned reminder, from what is stored now (as the sweep read it once per space, when
    ``spaces`` is given); None when it is no longer due."""
    spaces = spaces or SpaceFacts(services, now)
    if planned.kind == "digest":
        return compose_digest(services, planned.room_id, date.fromordinal(planned.step), now, spaces=spaces)
    certificates = [c for c in spaces.certificates(planned.room_id) if c.sha1 == planned.subject]
    mark = services.storage.reminders.marks(planned.room_id).get(planned.subject)
    # Inactive in an Entra app of the space (replaced by a rotation), it signs nothing, even where another
    # source (Entra's federation metadata URL) still lists it.
    if not certificates or any(c.active is False for c in certificates) \
            or not still_wanted(planned, mark, now, services.config.reminder_final_days):
        return None
    certificate = min(certificates, key=lambda c: (c.source_kind != "entra-app", c.id))
    facts = reminder_facts(services, certificate, planned, mark, now, spaces=spaces)
    text, card = services.cards.reminder(facts)
    return ReminderMessage(text, card_dict(card))


def still_wanted(planned: PlannedReminder, mark: ReminderMark | None, now: datetime, final_days: int) -> bool:
    """A snooze or an acknowledgement that came after the reminder was planned still counts."""
    if mark is None:
        return True
    if mark.snoozed_until is not None and now.timestamp() < mark.snoozed_until:
        return False
    return not (mark.acknowledged_by and planned.kind == "threshold" and planned.step > final_days)


def reminder_facts(services: Services, certificate: TrackedCertificate, planned: PlannedReminder,
                   mark: ReminderMark | None, now: datetime, *, spaces: SpaceFacts | None = None) -> ReminderFacts:
    """What the reminder says about its own certificate: the diagnosis findings about it, and the "upload the
    new Webex certificate to Azure?" answer only when the certificate is Webex's."""
    spaces = spaces or SpaceFacts(services, now)
    sources = spaces.sources(certificate.room_id)
    same = [c for c in spaces.certificates(certificate.room_id) if c.sha1 == certificate.sha1]
    view = view_of(certificate, now, services.config)
    row = certificate_rows([view_of(c, now, services.config) for c in same or [certificate]],
                           source_numbers(sources))[0]
    diagnosis = spaces.diagnosis(certificate.room_id)
    app_name = entra_app_name(certificate, spaces.entra_apps())
    by_id = {s.id: s for s in sources}
    errors = {by_id[c.source_id].error for c in same if c.source_id in by_id and by_id[c.source_id].error}
    advice = [f"{f.title}: {f.text}" for f in diagnosis.findings
              if (f.certificate_sha1 or "").upper() == certificate.sha1.upper() and f.severity != "info"]
    webex = row["kind"] in ("webex", "sp") and diagnosis.about_webex_certificate
    return ReminderFacts(
        kind=planned.kind, threshold=planned.step if planned.kind == "threshold" else None,
        status=view.status, days_left=view.days_left, title=row["title"], subject=certificate.subject,
        trust=trust_of(certificate, diagnosis, app_name),
        not_after=datetime.fromtimestamp(certificate.not_after, timezone.utc), sha1=certificate.sha1,
        acknowledged_by=mark.acknowledged_by if mark else None,
        final_days=services.config.reminder_final_days, where=row["where"], certificate_kind=row["kind"],
        advice=advice, webex_question=(diagnosis.upload_verdict, diagnosis.upload_answer) if webex else None,
        notes=sorted(errors), rotation_app=app_name or None)


def entra_app_name(certificate: TrackedCertificate, entra_apps: list[dict]) -> str | None:
    """The display name of the Entra app a certificate belongs to (Entra-app sources only)."""
    if certificate.source_kind != "entra-app":
        return None
    sp_id = certificate.details.get("sp_id")
    return next((a["display_name"] for a in entra_apps if a["sp_id"] == sp_id), None)


def trust_of(certificate: TrackedCertificate, diagnosis, app_name: str | None) -> str:
    """Which SSO trust the certificate belongs to, in the words an administrator uses."""
    if certificate.source_kind == "entra-app":
        return f"Entra app {app_name or certificate.source_label} (signs the SAML tokens Webex trusts)"
    for trust in diagnosis.trusts:
        if trust.entity_id == certificate.entity_id:
            if trust.kind == "control-hub":
                return "Webex Control Hub SSO" + (f" (organisation {trust.name})" if trust.name else "")
            return "Webex Site Administration SSO" + (f" (site {trust.name})" if trust.name else "")
    if certificate.role == "idp":
        return "Entra ID, the identity provider (its token-signing certificate)"
    return "not recognised (`explain` shows what I know)"


def compose_digest(services: Services, room_id: str, digest_day: date, now: datetime, *,
                   spaces: SpaceFacts | None = None) -> ReminderMessage | None:
    """The weekly digest: one row per tracked certificate, worst first; None when the space tracks nothing."""
    spaces = spaces or SpaceFacts(services, now)
    views = spaces.views(room_id)
    if not views:
        return None
    sources = spaces.sources(room_id)
    marks = services.storage.reminders.marks(room_id)
    rows = [with_mark(row, marks.get(row["sha1"]), now) for row in certificate_rows(views, source_numbers(sources))]
    notes = sorted({s.error for s in sources if s.error})
    text, card = services.cards.digest(rows, digest_day, notes)
    return ReminderMessage(text, card_dict(card))


def source_numbers(sources: list) -> dict[int, int]:
    """Source ids to the numbers `status` shows and `forget` takes."""
    return {s.id: n for n, s in enumerate(sources, start=1)}


def with_mark(row: dict, mark: ReminderMark | None, now: datetime) -> dict:
    """A status row with who owns the certificate and whether its reminders are snoozed."""
    if mark is None:
        return row
    extra = []
    if mark.acknowledged_by:
        extra.append(f"owner {mark.acknowledged_by}")
    if mark.snoozed_until and now.timestamp() < mark.snoozed_until:
        extra.append(f"snoozed until {datetime.fromtimestamp(mark.snoozed_until, timezone.utc):%Y-%m-%d}")
    return {**row, "detail": " · ".join([row["detail"], *extra])}
