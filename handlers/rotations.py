"""rotate, rotations, cancel, cleanup, and the buttons of rotation cards.

Every click is authorized again here, from the person Webex reports for the fetched action
(``ctx.person_email``): the card must be the rotation's current card in its own space, at the
version it was posted for, within its deadline, and the person must hold the right for that
step. Anything else gets a private answer, is audited, and changes nothing.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from cards.rotations import rotations_list
from handlers import actions as action_ids
from rollover.errors import UserError
from rollover.pipeline.dispatcher import Context
from rollover.pipeline.registry import card_action, command
from rollover.rotation import audit
from rollover.rotation import engine as rotation
from rollover.rotation.approvals import STAGES, approval_refusal, may_decide, require_approvers
from rollover.rotation.guidance import relying_party
from rollover.rotation.machine import machine_of, requester_of, state_of, step_of
from rollover.rotation.plans import NewRotation, plan_cleanup, plan_entra_signing, plan_webex_sp
from rollover.rotation.view import window_moment
from rollover.tracking import find_entra_app, require_graph

WEBEX_SP_WORD = "webex-sp"
PLANNERS = {"entra-signing": plan_entra_signing, "webex-sp": plan_webex_sp}
WINDOW_GRACE = timedelta(minutes=5)    # a window "now" typed a minute ago is still now
_ROTATION_NUMBER = re.compile(r"[0-9]{1,9}")


# --- commands ------------------------------------------------------------------------------------

@command("rotate", usage="rotate <Entra app> | rotate webex-sp <Entra app>")
def rotate(ctx: Context) -> None:
    """Rotate a certificate step by step: approvals drive the Entra changes, I guide the Webex side."""
    words = ctx.args.split(" ", 1)
    if words[0].lower() == WEBEX_SP_WORD:
        _start(ctx, "webex-sp", words[1] if len(words) > 1 else "")
    else:
        _start(ctx, "entra-signing", ctx.args)


@card_action(action_ids.ROTATION_START)
def start_button(ctx: Context) -> None:
    kind = str(ctx.inputs.get("kind") or "entra-signing")
    if kind not in PLANNERS:
        raise UserError("That button asks for a kind of rotation I do not know; `rotate <app>` starts one.")
    _start(ctx, kind, str(ctx.inputs.get("app", "")))


@command("rotations", button="Rotations")
def list_rotations(ctx: Context) -> None:
    """List the open rotations of this space with their current step."""
    views = [rotation.view_of(ctx.services, record) for record in ctx.storage.rotations.all(room_id=ctx.room_id)]
    text, card = rotations_list(views)
    ctx.reply(text, card=card)


@command("cancel", usage="cancel <rotation id>")
def cancel(ctx: Context) -> None:
    """Cancel a rotation that has not activated anything yet."""
    record = _rotation_of_room(ctx, ctx.args, "cancel")
    reason = _cancel_refusal(ctx, record)
    if reason:
        raise UserError(reason)
    _cancel(ctx, record)


@command("cleanup", usage="cleanup <rotation id>")
def cleanup(ctx: Context) -> None:
    """Remove the old certificate of a finished rotation once it has expired (with an approval)."""
    _start_cleanup(ctx, _rotation_of_room(ctx, ctx.args, "cleanup"))


# --- buttons -----------------------------------------------------------------------------------

@card_action(action_ids.ROTATION_APPROVE)
def approve_button(ctx: Context) -> None:
    record = _clicked(ctx, "approved")
    if record is None:
        return
    refusal = _approval_refusal(ctx, record)
    if refusal:
        _refuse(ctx, record, refusal)
        return
    updated, _ = rotation.approve(ctx.services, record, actor=ctx.person_email, event_key=ctx.event_key)
    if updated is None:
        _someone_first(ctx, record)


def _approval_refusal(ctx: Context, record) -> str | None:
    approved = [email for email, _ in ctx.storage.rotations.approvals(record.id, record.state_version)]
    refusal = approval_refusal(ctx.services, stage=state_of(record).stage, email=ctx.person_email,
                               requested_by=requester_of(record), already_approved=approved)
    if refusal or record.state != "awaiting-rollback-approval":
        return refusal
    # The previous certificate may have expired since the roll back was asked for.
    expired = _rollback_refusal(ctx, record)
    return expired and f"{expired} Reject the roll back to go on with the new certificate."


@card_action(action_ids.ROTATION_REJECT)
def reject_button(ctx: Context) -> None:
    record = _clicked(ctx, "rejected")
    if record is None:
        return
    refusal = may_decide(ctx.services, state_of(record).stage, ctx.person_email)
    if refusal:
        _refuse(ctx, record, refusal)
        return
    _act(ctx, record, "rejected", "Rejected.")


@card_action(action_ids.ROTATION_CANCEL)
def cancel_button(ctx: Context) -> None:
    record = _clicked(ctx, "cancelled")
    if record is None:
        return
    refusal = _cancel_refusal(ctx, record)
    if refusal:
        _refuse(ctx, record, refusal)
        return
    _cancel(ctx, record)


@card_action(action_ids.ROTATION_WINDOW)
def window_button(ctx: Context) -> None:
    record = _clicked(ctx, "window-chosen")
    if record is None:
        return
    try:
        start = _window_start(ctx)
    except ValueError as error:
        _refuse(ctx, record, str(error))
        return
    _choose_window(ctx, record, start)


@card_action(action_ids.ROTATION_WINDOW_NOW)
def window_now_button(ctx: Context) -> None:
    record = _clicked(ctx, "window-chosen")
    if record is not None:
        _choose_window(ctx, record, ctx.now())


@card_action(action_ids.ROTATION_SIGNED_IN)
def signed_in_button(ctx: Context) -> None:
    record = _clicked(ctx, "sign-in-confirmed")
    if record is not None:                      # the app the sign-in went to: Webex or another SAML app
        _act(ctx, record, "sign-in-confirmed", f"Confirmed a test sign-in to {relying_party(record.plan)}.")


@card_action(action_ids.ROTATION_ROLLBACK)
def rollback_button(ctx: Context) -> None:
    record = _clicked(ctx, "rollback-requested")
    if record is None:
        return
    refusal = _rollback_refusal(ctx, record)
    if refusal:
        _refuse(ctx, record, refusal)
        return
    _act(ctx, record, "rollback-requested", f"Asked to roll back to {record.plan['current']['thumbprint']}.",
         data={"rollback_requested_by": ctx.person_email, "rollback_from": record.state})


def _rollback_refusal(ctx: Context, record) -> str | None:
    """Why the rotation cannot roll back now; None when the previous certificate can still sign."""
    previous = record.plan.get("current")
    if not previous:
        return "No certificate was active before this rotation, so there is nothing to roll back to."
    if datetime.fromisoformat(previous["not_after"]) <= ctx.now():
        return (f"The previous certificate {previous['thumbprint']} expired on {previous['not_after'][:10]}; it "
                "can no longer sign, so I cannot roll back to it.")
    return None


@card_action(action_ids.ROTATION_VERIFY)
def verify_button(ctx: Context) -> None:
    _operator_step(ctx, "verify-again", "Asked to verify again.")


@card_action(action_ids.ROTATION_WEBEX_ACTIVATED)
def webex_activated_button(ctx: Context) -> None:
    _operator_step(ctx, "webex-activated", "Activated the new certificate in Webex.")


@card_action(action_ids.ROTATION_CLEANUP)
def cleanup_button(ctx: Context) -> None:
    record = _clicked(ctx, None)
    if record is not None:
        _start_cleanup(ctx, record)


# --- starting -----------------------------------------------------------------------------------

def _start(ctx: Context, kind: str, name: str) -> None:
    if not name.strip():
        raise UserError("Which Entra app? `rotate <app>` rotates its token-signing certificate, `rotate webex-sp "
                        "<app>` brings Webex's new certificate to it; `apps` lists the SAML apps.")
    require_graph(ctx.services)
    app = find_entra_app(ctx.services, name)
    open_rotation = ctx.storage.rotations.open_for_app(app["sp_id"])
    if open_rotation is not None and open_rotation.last_event_key == ctx.event_key:
        rotation.advance(ctx.services, open_rotation.id)      # this very request, retried after a crash
        return
    if open_rotation is not None:
        raise UserError(rotation.already_open_message(ctx.services, app["sp_id"], ctx.room_id))
    new = PLANNERS[kind](ctx.services, app, ctx.room_id)
    _start_planned(ctx, new)


def _start_cleanup(ctx: Context, finished) -> None:
    require_graph(ctx.services)
    _start_planned(ctx, plan_cleanup(ctx.services, finished))


def _start_planned(ctx: Context, new: NewRotation) -> None:
    needs = STAGES if new.kind == "entra-signing" else ("create",)
    if new.kind != "webex-sp" or new.plan.get("needs_upload"):
        require_approvers(ctx.config, needs)
    rotation.start(ctx.services, new, room_id=ctx.room_id, requester=ctx.person_email, event_key=ctx.event_key)


# --- checking a click ---------------------------------------------------------------------------

_SOMEONE_FIRST = "Someone acted on this card at the same moment; nothing was changed by your click."
_TOO_LATE = {"timed-out": "Too late: this request expired after {hours} hours without a decision. Your click "
                          "changed nothing; the expired card says how to start again.",
             "window-started": "Too late: the maintenance window has started and the activation is under way. "
                               "Your click changed nothing.",
             "window-passed": "Too late: the maintenance window had passed long ago, so nothing was activated; the "
                              "new card asks for a new window. Your click changed nothing."}


def _clicked(ctx: Context, event: str | None):
    """The rotation a click is about, when the click may act on it now; otherwise answer privately."""
    record = _record_of_card(ctx)
    if record is None:
        _refuse(ctx, None, "That rotation does not exist (any more); `rotations` lists the open ones.")
        return None
    if record.room_id != ctx.room_id:
        _refuse(ctx, record, f"Rotation #{record.id} belongs to another space; act on it there.")
        return None
    if record.last_event_key == ctx.event_key:
        rotation.advance(ctx.services, record.id)    # this very click moved it: finish its work, say nothing
        return None
    if str(ctx.inputs.get("version")) != str(record.version) or ctx.card_message_id != record.card_message_id:
        step = step_of(record)
        _refuse(ctx, record, f"This card is outdated: rotation #{record.id} is now at “{step}”. Use its latest "
                             "card; nothing was changed by this click.")
        return None
    if rotation.is_overdue(ctx.services, record) and state_of(record).on_timeout:
        moved = rotation.time_out(ctx.services, record, event_key=ctx.event_key)
        passed = moved is not None and moved.state == "awaiting-window"
        _refuse(ctx, record, _TOO_LATE["window-passed" if passed else state_of(record).on_timeout].format(
            hours=ctx.config.approval_hours))
        return None
    if event is not None and not machine_of(record).allows(record.state, event):
        _refuse(ctx, record, "That button does not apply to the current step; nothing was changed.")
        return None
    return record


def _record_of_card(ctx: Context):
    number = _rotation_number(ctx.inputs.get("rotation"))
    return None if number is None else ctx.storage.rotations.get(number)


def _rotation_number(value) -> int | None:
    """A rotation id as typed or carried by a card: ASCII digits only (int() takes '²' and SQLite no huge ones)."""
    text = str(value if value is not None else "").strip().lstrip("#")
    return int(text) if _ROTATION_NUMBER.fullmatch(text) else None


def _refuse(ctx: Context, record, reason: str) -> None:
    """Answer only the person who clicked, and keep the refusal in the audit log."""
    ctx.reply(reason, to_person_id=ctx.person_id)
    audit.record_refusal(ctx.services, room_id=ctx.room_id, rotation=record, actor=ctx.person_email, reason=reason)


def _operator_step(ctx: Context, event: str, detail: str) -> None:
    """A step any member of the space may take (they are the operators): no approval involved."""
    record = _clicked(ctx, event)
    if record is not None:
        _act(ctx, record, event, detail)


def _act(ctx: Context, record, event: str, detail: str, data: dict | None = None) -> None:
    if rotation.act(ctx.services, record, event, actor=ctx.person_email, event_key=ctx.event_key,
                    detail=detail, data=data) is None:
        _someone_first(ctx, record)


def _someone_first(ctx: Context, record) -> None:
    """The click's compare-and-set failed: refused when someone changed the rotation first; tried again
    later (the worker retries the event) when only its lease was busy, since then nobody acted."""
    if rotation.unchanged_since(ctx.services, record):
        raise rotation.busy(record)
    _refuse(ctx, record, _SOMEONE_FIRST)


# --- cancelling and windows ------------------------------------------------------------------------

def _cancel_refusal(ctx: Context, record) -> str | None:
    refusal = rotation.cancel_refusal(record)
    if refusal:
        return refusal
    if ctx.person_email == record.requested_by.lower():
        return None
    if any(may_decide(ctx.services, stage, ctx.person_email) is None for stage in STAGES):
        return None
    return "Only the person who requested this rotation or an approver may cancel it."


def _cancel(ctx: Context, record) -> None:
    _act(ctx, record, "cancelled", "Cancelled.")


def _window_start(ctx: Context) -> datetime:
    """The window's start as entered on the card, in the space's time zone (the inputs say which), in UTC."""
    zone = rotation.space_time_zone(ctx.services, ctx.room_id)
    day, clock = str(ctx.inputs.get("window_date", "")).strip(), str(ctx.inputs.get("window_time", "")).strip()
    try:
        local = datetime.strptime(f"{day} {clock}", "%Y-%m-%d %H:%M").replace(tzinfo=ZoneInfo(zone))
    except ValueError:
        raise ValueError(f"Give the window's start as a date and a time ({zone}), e.g. 2025-06-01 and "
                         "22:00.") from None
    start = local.astimezone(timezone.utc)
    if start < ctx.now() - WINDOW_GRACE:
        raise ValueError(f"{window_moment(start, zone)} is in the past; choose a later window, or Now.")
    return start


def _choose_window(ctx: Context, record, start: datetime) -> None:
    current = record.plan.get("current")
    if current and datetime.fromisoformat(current["not_after"]) <= start:
        _refuse(ctx, record, f"The current certificate expires on {current['not_after'][:16].replace('T', ' ')} "
                             "UTC, before that window: sign-ins would fail in between. Choose an earlier window.")
        return
    start = max(start, ctx.now())
    zone = rotation.space_time_zone(ctx.services, ctx.room_id)
    _act(ctx, record, "window-chosen", f"Chose the maintenance window {window_moment(start, zone)}.",
         data={"window_start": start.isoformat(), "missed_window": None})


def _rotation_of_room(ctx: Context, args: str, command: str):
    number = _rotation_number(args)
    if number is None:
        raise UserError(f"Which rotation? Give its number, e.g. `{command} 3`; `rotations` lists them.")
    record = ctx.storage.rotations.get(number)
    if record is None or record.room_id != ctx.room_id:
        raise UserError(f"This space has no rotation #{number}; `rotations` lists the open ones.")
    return record
