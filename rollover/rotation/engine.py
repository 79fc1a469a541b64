"""Guided certificate rotations: declared state machines, persisted in SQLite, resumable after a crash.

A rotation walks one Entra enterprise app through one certificate change, in the space that
asked for it, one card at a time. Three kinds (``MACHINES``):

* ``entra-signing`` — Entra's token-signing certificate, which Webex must trust: approval → create it
  in Entra (inactive) → the certificate and where to import it → maintenance window → approval →
  activate → verify (Graph and the federation metadata URL) → test sign-in → done. Until the
  sign-in is confirmed, an approved Roll back re-activates the previous certificate.
* ``webex-sp`` — Webex's renewed SP certificate: when Entra needs it (verification certificates
  required), approval → add it to the app registration keeping every credential → verify; then the
  operator activates it in Webex. When Entra does not need it, only the Webex step remains.
* ``entra-cleanup`` — after a finished ``entra-signing`` rotation, once the old certificate has
  expired: approval → remove it from the app.

Every state is declared with its kind (approval, operator, running, waiting, terminal), the
events it accepts and where each leads, its timeout, and — for running states — the named step
function of ``rotation_steps`` that does the Graph work.

Crash safety: every change is a compare-and-set on the rotation's ``version``, which each card
carries, so an older card, a double click or a duplicate event changes nothing. Work on a rotation
holds a lease in SQLite; a step stores its progress before each Graph call and its outcome after
it; the messages of a version go out through the outbox keyed by rotation and version. ``sweep``
(when the worker starts, then periodically) expires overdue approvals, starts scheduled
activations and finishes whatever a killed process left half done, one rotation's failure never
stopping the others. A card Webex refuses for good (403/404: the bot left the space) is audited and
the rotation goes on; a rotation whose space left ROLLOVER_ALLOWED_ROOMS waits untouched.
"""

from __future__ import annotations

import logging
import secrets
import time
from datetime import datetime, timedelta, timezone

from rollover.errors import Retryable, UserError
from rollover.integrations.entra_client import GraphUnavailableError
from rollover.integrations.webex_client import WebexError, WebexUnavailable
from rollover.leases import lease_owner
from rollover.pipeline.access import is_room_allowed
from rollover.pipeline.outbox import Poster
from rollover.rotation import audit, steps
from rollover.rotation.approvals import approvers_for
from rollover.rotation.audit import BOT_ACTOR
from rollover.rotation.machine import (
    MACHINES,
    RUNNING,
    TERMINAL,
    State,
    declared_event,
    machine_of,
    state_of,
    step_of,
)
from rollover.rotation.steps import Outcome, Step
from rollover.rotation.view import RotationView, window_moment
from rollover.services import Services
from rollover.storage import RotationChange, RotationRecord
from rollover.tracking import refresh_entra_app

log = logging.getLogger(__name__)

GRAPH_RETRY_SECONDS = 60.0   # a step Graph throttled or could not reach is tried again after this


# Nobody acted on the rotation, but another thread holds its lease for a moment (the sweeper posting a card,
# another worker): a click is retried after this (``errors.Retryable``), not refused.
BUSY_RETRY_SECONDS = 2.0


def busy(record: RotationRecord) -> Retryable:
    """The click's "try again later"; the outbox keeps what it posted already from being posted twice."""
    return Retryable(f"Rotation #{record.id} was busy with another step each time I tried your click; please "
                     "click again.", retry_after=BUSY_RETRY_SECONDS)


def unchanged_since(services: Services, record: RotationRecord) -> bool:
    """The rotation is still at ``record``'s version: a compare-and-set on it failed only on a busy lease."""
    current = services.storage.rotations.get(record.id)
    return current is not None and current.version == record.version


# --- leases: which thread of which process works on a rotation (rollover.leases.lease_owner) ---------

def _lease_until(services: Services) -> float:
    # Wall-clock time, not services.clock: a lease is about a live process, not about the plan's dates.
    return time.time() + services.config.rotation_lease_seconds


# --- starting ----------------------------------------------------------------------------------------

def start(services: Services, new, *, room_id: str, requester: str, event_key: str) -> RotationRecord:
    """Store a planned rotation (``rotation_plans.NewRotation``) and post its card. One open rotation per
    app: the database refuses a second."""
    if not is_room_allowed(services.config, room_id):
        raise UserError("Rotations run only in the spaces of ROLLOVER_ALLOWED_ROOMS, and this is not one of them.")
    now = services.clock()
    state = MACHINES[new.kind].state(new.state)
    with services.storage.transaction():        # the rotation and its "requested" entry, or neither
        rotation_id = services.storage.rotations.create(
            kind=new.kind, app_key=new.app_key, app_name=new.app_name, room_id=room_id, requested_by=requester,
            marker=new.marker, state=new.state, plan=new.plan,
            data={"history": [_history(now, requester, "Requested.")]},
            deadline=_deadline(services, state, now, {}), event_key=event_key, now=now.timestamp())
        if rotation_id is not None:
            audit.record(services, services.storage.rotations.get(rotation_id), actor=requester, action="requested",
                         detail=f"Requested a rotation of the {MACHINES[new.kind].label}; it starts at "
                                f"“{state.step_for(new.plan)}”.", requests=new.plan.get("requests", []))
    if rotation_id is None:
        raise UserError(already_open_message(services, new.app_key, room_id))
    advance(services, rotation_id)
    return services.storage.rotations.get(rotation_id)


def already_open_message(services: Services, app_key: str, room_id: str) -> str:
    other = services.storage.rotations.open_for_app(app_key)
    if other is None:
        return "Another rotation of this app was started at the same moment; `rotations` shows it."
    opened = f"Rotation #{other.id} of {other.app_name} is still open"
    if other.room_id == room_id:
        return (f"{opened} (step: {step_of(other)}). Finish it or `cancel {other.id}` first: one rotation "
                "per app at a time.")
    # `cancel` works only in the rotation's own space: say which one, and the operator's way out.
    return (f"{opened} in {space_name(services, other.room_id)} (step: {step_of(other)}). Finish it or "
            f"`cancel {other.id}` there, or an operator runs `python bot.py rotations --cancel {other.id}`: one "
            "rotation per app at a time.")


def space_name(services: Services, room_id: str) -> str:
    """“the space “<title>”” as Webex names it, or the space's id when Webex cannot tell (the bot left it)."""
    try:
        return f"the space “{services.webex.room_title(room_id)}”"
    except WebexError as error:
        log.warning("could not read the title of space %s: %s", room_id, error)
        return f"another space ({room_id})"


# --- events from people ------------------------------------------------------------------------------

OPERATOR_ACTOR = "operator (command line)"


def cancel_refusal(record: RotationRecord) -> str | None:
    """Why the rotation cannot be cancelled at its step (it is finished, or activated something); None if it can."""
    if machine_of(record).allows(record.state, "cancelled"):
        return None
    activated = record.state in ("awaiting-sign-in-test", "verification-failed")
    return (f"Rotation #{record.id} cannot be cancelled at “{step_of(record)}”"
            + (": the new certificate is active; confirm the sign-in or roll back." if activated else "."))


def operator_line(record: RotationRecord) -> str:
    """One line of ``python bot.py rotations``: which rotation, its step, its space, who asked and when."""
    asked = datetime.fromtimestamp(record.created_at, timezone.utc).strftime("%Y-%m-%d %H:%M")
    cancellable = "" if cancel_refusal(record) else " · can be cancelled"
    return (f"#{record.id}  {record.app_name} ({machine_of(record).label}) · step: {step_of(record)}"
            f"{cancellable} · space {record.room_id} · requested by {record.requested_by} at {asked} UTC")


def cancel_by_operator(services: Services, rotation_id: int) -> RotationRecord:
    """``bot.py rotations --cancel ID``: cancel a rotation of any space that has not activated anything yet.

    The change is committed (and audited) before its card is posted: a WebexUnavailable raised after it
    leaves the card to the sweeper."""
    record = services.storage.rotations.get(rotation_id)
    if record is None or record.finished_at is not None:
        raise UserError(f"There is no open rotation #{rotation_id}; `python bot.py rotations` lists them.")
    refusal = cancel_refusal(record)
    if refusal:
        raise UserError(refusal)
    cancelled = act(services, record, "cancelled", actor=OPERATOR_ACTOR, detail="Cancelled.",
                    event_key=f"operator-cancel:{record.id}:v{record.version}")
    if cancelled is None:
        raise UserError(f"Rotation #{record.id} is changing at this moment; run the command again.")
    return cancelled


def act(services: Services, record: RotationRecord, event: str, *, actor: str, event_key: str, detail: str,
        data: dict | None = None) -> RotationRecord | None:
    """Apply ``event`` if the rotation is still at ``record.version``; None when someone acted first."""
    change = _change(services, record, event, actor=actor, detail=detail, data=data, event_key=event_key)
    owner = lease_owner()
    with services.storage.transaction():        # the change and its audit entry, or neither
        if not services.storage.rotations.change(record.id, record.version, change, lease_owner=owner,
                                                lease_until=_lease_until(services), now=time.time()):
            return None
        audit.record(services, record, actor=actor, action=event, detail=detail,
                     state_change=(record.state, change.state))
    _refresh_tracking(services, record, event, change.state)
    advance(services, record.id)
    return services.storage.rotations.get(record.id)


def approve(services: Services, record: RotationRecord, *, actor: str,
            event_key: str) -> tuple[RotationRecord | None, int]:
    """Add ``actor``'s approval; with enough approvals the rotation moves on. (None, 0) when outdated."""
    state = state_of(record)
    required = services.config.required_approvals
    event = _approval_event(services, record)
    detail, data = ("Approved.", None) if event != "window-passed" else _window_passed(services, record)
    # The approval is recorded first (one version), then the rotation moves on (the next one).
    approved = _change(services, record, event, actor=actor, event_key=event_key, detail=detail, data=data,
                       version=record.version + 1)
    pending = RotationChange(state=record.state, data=_with_history(record.data, services, actor, "Approved."),
                             deadline=record.deadline, finished=False, event_key=event_key,
                             now=services.clock().timestamp(), state_changed=False)
    with services.storage.transaction():        # the approval, the move and the audit entry, or none of them
        count = services.storage.rotations.approve(record.id, record.version, actor, required=required,
                                                  approved=approved, pending=pending, lease_owner=lease_owner(),
                                                  lease_until=_lease_until(services), now=time.time())
        if count is None:
            return None, 0
        moved = count >= required
        following = machine_of(record).state(approved.state).step_for(record.plan)
        audit.record(services, record, actor=actor, action="approved",
                     detail=(f"Approval {count} of {required} for “{state.step_for(record.plan)}”."
                             + (f" Moving on: {following}." if moved else "")),
                     state_change=(record.state, approved.state) if moved else None)
    advance(services, record.id)
    return services.storage.rotations.get(record.id), count


def _approval_event(services: Services, record: RotationRecord) -> str:
    """Activation approved before the chosen window waits for it, approved long after it asks for a new
    one; everything else proceeds at once."""
    window = record.data.get("window_start")
    if record.state == "awaiting-activate-approval" and window:
        if datetime.fromisoformat(window) > services.clock():
            return "approved-before-window"
        if _is_window_over(services, record):
            return "window-passed"
    return "approved"


def _is_window_over(services: Services, record: RotationRecord) -> bool:
    """The window started more than the grace ago: whoever was to import into Webex may be gone."""
    grace = timedelta(minutes=services.config.window_grace_minutes)
    return datetime.fromisoformat(record.data["window_start"]) + grace < services.clock()


def _window_passed(services: Services, record: RotationRecord) -> tuple[str, dict]:
    """The history line and data of going back to choosing a window."""
    start = datetime.fromisoformat(record.data["window_start"])
    return (f"The maintenance window of {window_moment(start, space_time_zone(services, record.room_id))} had "
            "passed, so nothing was activated. Choose a new window when someone is ready to import the certificate "
            "into Webex.",
            {"window_start": None, "missed_window": start.isoformat()})


def is_overdue(services: Services, record: RotationRecord) -> bool:
    return record.deadline is not None and record.deadline <= services.clock().timestamp()


def time_out(services: Services, record: RotationRecord, *, event_key: str | None = None) -> RotationRecord | None:
    """Fire the state's timeout (approval expired, maintenance window reached)."""
    state = state_of(record)
    key = event_key or f"timeout:{record.id}:{record.version}"
    if state.on_timeout == "window-started" and _is_window_over(services, record):
        detail, data = _window_passed(services, record)
        return act(services, record, "window-passed", actor=BOT_ACTOR, event_key=key, detail=detail, data=data)
    detail = {"timed-out": f"No decision within {services.config.approval_hours} hours: the request expired "
                           "and nothing was changed by it.",
              "window-started": "The maintenance window has started."}[state.on_timeout]
    return act(services, record, state.on_timeout, actor=BOT_ACTOR, event_key=key, detail=detail)


# --- doing the bot's part: post the card, run the step ----------------------------------------------

def advance(services: Services, rotation_id: int) -> None:
    """Post the card of the rotation's current version and run its step, until it waits for people."""
    owner = lease_owner()
    while True:
        record = services.storage.rotations.claim(rotation_id, owner, _lease_until(services), time.time())
        if record is None:
            return                                   # another thread or process works on it right now
        try:
            announce(services, record)
            state = state_of(record)
            if state.kind != RUNNING:
                return
            if not _run_step(services, record, state, owner):
                return
        finally:
            services.storage.rotations.release(rotation_id, owner)


def _run_step(services: Services, record: RotationRecord, state: State, owner: str) -> bool:
    """Run a running state's step and store where it leads; False when it must be retried later."""
    step = Step(services, record, owner)
    try:
        outcome = state.run(step)
    except steps.LeaseLost as error:
        log.info("rotation %s: %s", record.id, error)
        return False
    except GraphUnavailableError as error:          # throttled too: a Retryable the step waits out
        wait = max(GRAPH_RETRY_SECONDS, error.retry_after or 0.0)   # never sooner than Graph's Retry-After
        log.warning("rotation %s: %s; retrying in %.0f s", record.id, error, wait)
        audit.record(services, record, actor=BOT_ACTOR, action="graph-unavailable",
                     detail=f"{error} The step “{state.step_for(record.plan)}” is retried in {wait:.0f} s.")
        services.storage.rotations.postpone(record.id, owner, time.time() + wait)
        return False
    except UserError as error:
        outcome = Outcome("failed", detail=str(error))
    except Exception:
        incident = secrets.token_hex(4)
        log.exception("incident %s: rotation %s failed in step %s", incident, record.id, state.name)
        outcome = Outcome("failed", detail=f"An internal error stopped “{state.step_for(record.plan)}” (incident "
                                           f"`{incident}`). Check the app in the Entra admin center before going on.")
    current = services.storage.rotations.get(record.id)       # the step saved its progress meanwhile
    change = _change(services, current, outcome.event, actor=BOT_ACTOR, detail=outcome.detail,
                     data=outcome.data, posts=outcome.posts, event_key=None)
    with services.storage.transaction():        # the outcome and its audit entry, or neither
        if not services.storage.rotations.change(record.id, current.version, change, lease_owner=owner,
                                                lease_until=_lease_until(services), now=time.time()):
            log.error("rotation %s changed under its own lease; leaving it for the sweep", record.id)
            return False
        audit.record(services, current, actor=BOT_ACTOR, action=outcome.event, detail=outcome.detail,
                     state_change=(current.state, change.state))
    _refresh_tracking(services, current, outcome.event, change.state)
    return True


_ENTRA_SETTLED = ("done", "rolled-back")     # done includes a finished clean-up and a Webex SP upload


def _refresh_tracking(services: Services, record: RotationRecord, event: str, target: str) -> None:
    """Re-read the app once Entra changed (activated, done, rolled back, cleaned up): without it `status`,
    the cards and the reminders would show the replaced certificate as the active one until the next
    inventory refresh. A failure only leaves that wait: logged, and the rotation goes on."""
    if event != "activated" and target not in _ENTRA_SETTLED:
        return
    try:
        refresh_entra_app(services, record.app_key)
    except (UserError, Retryable) as error:       # Graph's own failures carry a sentence without secrets
        log.warning("rotation %s: the app could not be re-read after “%s”: %s", record.id, event, error)
    except Exception:
        log.exception("rotation %s: the app could not be re-read after “%s”", record.id, event)


def announce(services: Services, record: RotationRecord) -> None:
    """Replace the rotation's card with the one of its current version (Webex cannot edit cards).

    The old card is deleted; when Webex refuses, the new card is a threaded reply under it, so the
    space always shows the current state. Posts go through the outbox under ``rotation:<id>:v<version>``:
    a process killed halfway posts the rest, never twice.
    """
    if record.announced_version >= record.version:
        return
    try:
        message_id, parent = _post_card(services, record)
    except WebexUnavailable:
        raise
    except WebexError as error:
        if error.status_code not in (403, 404):
            raise
        # The bot was removed from the space (or may no longer post there): a card nobody can see must
        # not hold the rotation back, so the step still runs and the audit log keeps what happened.
        _space_unreachable(services, record, error)
        message_id, parent = None, None
    services.storage.rotations.mark_announced(record.id, record.version, message_id, parent)


def _post_card(services: Services, record: RotationRecord) -> tuple[str, str | None]:
    """Post the version's messages and card; returns the card's id and the thread it went into."""
    poster = Poster(services.storage, services.webex, f"rotation:{record.id}:v{record.version}", record.room_id)
    deleted = record.card_message_id is None or poster.delete_message(record.card_message_id)
    parent = None if deleted else (record.card_parent_id or record.card_message_id)
    for post in _posts_for_version(record):
        poster.reply(markdown=post["markdown"], file=_file_of(post), parent_id=parent)
    text, card = services.cards.rotation(view_of(services, record))
    return poster.reply(text, card=card, parent_id=parent), parent


def _space_unreachable(services: Services, record: RotationRecord, error: WebexError) -> None:
    log.warning("rotation %s: its card could not be posted (%s); going on without it", record.id, error)
    audit.record(services, record, actor=BOT_ACTOR, action="space-unreachable",
                 detail=f"The card of “{step_of(record)}” could not be posted in the rotation's space "
                        f"({error}); the bot may have been removed from it. The rotation goes on without its card.")


def view_of(services: Services, record: RotationRecord) -> RotationView:
    state = state_of(record)
    approvers = approvers_for(services.config, state.stage) if state.stage else None
    return RotationView(
        id=record.id, kind=record.kind, kind_label=machine_of(record).label, app_name=record.app_name,
        state=record.state, state_kind=state.kind, step=state.step_for(record.plan), version=record.version,
        requested_by=record.requested_by, plan=record.plan, data=record.data,
        approvals=[email for email, _ in services.storage.rotations.approvals(record.id, record.state_version)],
        required_approvals=services.config.required_approvals,
        approvers=approvers.describe() if approvers else "",
        deadline=datetime.fromtimestamp(record.deadline, timezone.utc) if record.deadline else None,
        report_only=steps.is_report_only(services, record), now=services.clock(),
        time_zone=space_time_zone(services, record.room_id))


def space_time_zone(services: Services, room_id: str) -> str:
    """The space's time zone, that of its reminders (`remind time 09:00 Europe/Stockholm`): maintenance
    windows are chosen and shown in it."""
    subscription = services.storage.reminders.subscription(room_id)
    return subscription.time_zone if subscription else services.config.reminder_timezone


def _posts_for_version(record: RotationRecord) -> list[dict]:
    posts = record.data.get("posts") or {}
    return posts.get("items", []) if posts.get("version") == record.version else []


def _file_of(post: dict) -> tuple[str, bytes] | None:
    if not post.get("file_name"):
        return None
    return post["file_name"], post["file_text"].encode()


# --- the sweep: timeouts and resuming --------------------------------------------------------------

def sweep(services: Services) -> int:
    """Expire overdue approvals, start due activations, resume interrupted work; returns rotations seen."""
    records = services.storage.rotations.to_sweep()
    for record in records:
        # One rotation that cannot go on (Webex down, a bug) must not keep the others from their deadlines.
        try:
            _sweep_one(services, record)
        except UserError as error:
            log.warning("rotation %s could not go on: %s", record.id, error)
        except Retryable as error:
            log.warning("rotation %s: %s; trying again at the next sweep", record.id, error)
        except Exception:
            log.exception("rotation %s: the sweep failed on it; going on with the next rotation", record.id)
    return len(records)


def _sweep_one(services: Services, record: RotationRecord) -> None:
    if not is_room_allowed(services.config, record.room_id):
        _room_not_allowed(services, record)
        return
    if state_of(record).on_timeout and is_overdue(services, record):
        if time_out(services, record) is not None:
            return
    advance(services, record.id)


def _room_not_allowed(services: Services, record: RotationRecord) -> None:
    """Leave the rotation as it is (no card, no step, no timeout) while its space is not allowed; audited once."""
    log.info("rotation %s waits: its space is not in ROLLOVER_ALLOWED_ROOMS", record.id)
    latest = services.storage.audit.entries(rotation_id=record.id, limit=1)
    if not latest or latest[-1].action != "room-not-allowed":
        audit.record(services, record, actor=BOT_ACTOR, action="room-not-allowed",
                     detail="Its space is no longer in ROLLOVER_ALLOWED_ROOMS: the rotation waits, nothing is "
                            "posted or changed, until the space is allowed again (it stays the app's open "
                            "rotation meanwhile).")


# --- helpers --------------------------------------------------------------------------------------

def _change(services: Services, record: RotationRecord, event: str, *, actor: str, detail: str, event_key: str | None,
            data: dict | None = None, posts: list[dict] | None = None, version: int | None = None) -> RotationChange:
    """The stored effect of ``event`` on ``record`` at ``version`` (default: its own): the next state, its
    deadline, the history line, and the messages to post with the next card."""
    target = machine_of(record).target(record.state, declared_event(record, event))
    state = machine_of(record).state(target)
    now = services.clock()
    merged = {**_with_history(record.data, services, actor, detail), **(data or {})}
    merged["posts"] = {"version": (version or record.version) + 1, "items": posts or []}
    return RotationChange(state=target, data=merged, deadline=_deadline(services, state, now, merged),
                          finished=state.kind == TERMINAL, event_key=event_key, now=now.timestamp(),
                          state_changed=target != record.state)


def _deadline(services: Services, state: State, now: datetime, data: dict) -> float | None:
    if state.timeout == "approval":
        return (now + timedelta(hours=services.config.approval_hours)).timestamp()
    if state.timeout == "window":
        return datetime.fromisoformat(data["window_start"]).timestamp()
    return None


def _with_history(data: dict, services, actor: str, what: str) -> dict:
    history = list(data.get("history", []))[-19:]   # the cards show the last few; the audit log keeps all
    history.append(_history(services.clock(), actor, what))
    return {**data, "history": history}


def _history(now: datetime, actor: str, what: str) -> dict:
    return {"at": now.astimezone(timezone.utc).isoformat(timespec="seconds"), "by": actor, "what": what}
