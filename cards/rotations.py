"""Rotation cards: the plan, each approval, the operator's steps and the outcome, each with fallback text.

One card per rotation state; the bot deletes the previous card and posts the next (Webex cannot
edit cards). Every button carries the rotation id and the version the card was posted for, so a
click on an older card is recognised and changes nothing.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

from webexpythonsdk.models.cards import AdaptiveCard, Column, ColumnSet, TextBlock
from webexpythonsdk.models.cards.inputs import Date, Time
from webexpythonsdk.models.cards.options import ActionStyle, ContainerStyle, FontWeight, Spacing

from rollover.rotation.view import RotationView, moment_utc as _moment, window_moment
from cards.common import card, facts, heading, paragraph, plain, section, submit
from handlers import actions as action_ids

HISTORY_LINES = 3
NOT_YET = "chosen after the new certificate exists"

def rotation_card(view: RotationView) -> tuple[str, AdaptiveCard]:
    """The card of the rotation's current state and its fallback text."""
    shown = _markdown_safe(view)           # TextBlocks render Markdown; the fallback is plain text
    body = [*heading(f"{shown.emoji} Rotation #{shown.id}: {shown.app_name}",
                     subtitle=f"{shown.kind_label} · {shown.step}")]
    if shown.report_only:
        body.append(section([paragraph("REPORT ONLY: Graph writes are described here, never sent "
                                       "(ROLLOVER_REPORT_ONLY).", bold=True)], style=ContainerStyle.WARNING))
    body.append(paragraph(_guidance(shown)))
    body.append(facts(_facts(shown)))
    if shown.state_kind == "approval" and shown.state in _PLAN_STATES:
        body.append(_changes_block(shown))
    body += _history_blocks(shown)
    if shown.state == "awaiting-window":
        body += _window_inputs(shown)
    return _fallback_text(view, _guidance(view)), card(body, actions=_buttons(view))


def _markdown_safe(view: RotationView) -> RotationView:
    """The view with every text that comes from people, Graph or documents escaped for Markdown."""
    return replace(view, app_name=plain(view.app_name), requested_by=plain(view.requested_by),
                   plan=_plain_values(view.plan), data=_plain_values(view.data),
                   approvals=[plain(email) for email in view.approvals], approvers=plain(view.approvers))


def _plain_values(value):
    if isinstance(value, str):
        return plain(value)
    if isinstance(value, dict):
        return {key: _plain_values(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain_values(item) for item in value]
    return value


def rotations_list(views: list[RotationView]) -> tuple[str, AdaptiveCard]:
    """The open rotations of a space with their step (``rotations``)."""
    if not views:
        text = "No rotation is open in this space. `rotate <app>` starts one."
        return text, card([*heading("Rotations"), paragraph(text)])
    body = [*heading("Open rotations", subtitle=f"{len(views)} in this space")]
    lines = [f"Open rotations in this space ({len(views)}):"]
    for view in views:
        since = _history_time(view.data)
        body.append(ColumnSet(columns=[
            Column(items=[TextBlock(f"{view.emoji} #{view.id}", weight=FontWeight.BOLDER)], width="auto"),
            Column(items=[TextBlock(f"{plain(view.app_name)} · {view.kind_label}", weight=FontWeight.BOLDER,
                                    wrap=True),
                          TextBlock(f"{view.step}{since}", isSubtle=True, wrap=True, spacing=Spacing.NONE)],
                   width="stretch")], spacing=Spacing.SMALL))
        lines.append(f"#{view.id} {view.app_name} ({view.kind_label}): {view.step}{since}")
    body.append(paragraph("`cancel <id>` cancels one that has not activated anything yet.", subtle=True))
    return "\n".join(lines), card(body)


# --- what to do now -------------------------------------------------------------------------------

_PLAN_STATES = ("awaiting-create-approval", "awaiting-upload-approval", "awaiting-cleanup-approval")


def _guidance(view: RotationView) -> str:
    special = _GUIDANCE.get((view.kind, view.state)) or _GUIDANCE.get((None, view.state))
    text = special(view) if special else view.step + "…"
    if view.state_kind == "approval" and view.deadline:
        text += f" This request expires on {_moment(view.deadline)} UTC."
    return text


def _approval_needed(view: RotationView, what: str) -> str:
    return (f"Approve to {what}. It needs {view.required_approvals} approval"
            f"{'s' if view.required_approvals > 1 else ''} from: {view.approvers}. Nothing changes before that.")


def _new(view: RotationView) -> str:
    return view.new_thumbprint or "the new certificate"


def _window(view: RotationView) -> str:
    start = view.data.get("window_start")
    return window_moment(datetime.fromisoformat(start), view.time_zone) if start else NOT_YET


def _trust(view: RotationView, key: str) -> str:
    return view.plan.get("trust", {}).get(key, "Control Hub or Site Administration")


def _missed_window(view: RotationView) -> str:
    """Why the rotation is back at choosing a window, when the last one had passed."""
    missed = view.data.get("missed_window")
    if not missed:
        return ""
    return (f"The maintenance window of {window_moment(datetime.fromisoformat(missed), view.time_zone)} had passed, "
            "so nothing was activated. ")


def _left_inactive(view: RotationView) -> str:
    if view.new_thumbprint and view.data.get("active_thumbprint") != view.new_thumbprint:
        return f" The new certificate {view.new_thumbprint} stays in Entra, inactive: it signs nothing."
    return ""


def _done(view: RotationView) -> str:
    if view.data.get("simulated"):
        return ("Finished in report-only mode: the Graph writes described above were not sent; the audit log "
                "lists what was.")
    if view.kind == "entra-signing":
        old = view.plan.get("current")
        cleanup = (f" The old certificate {old['thumbprint']} stays, inactive, until {_day(old['not_after'])}; "
                   "after it expired, Clean up removes it (with an approval).") if old else ""
        return f"Done: {_new(view)} signs every sign-in and Webex trusts it.{cleanup}"
    if view.kind == "webex-sp":
        entra = " and Entra knows it" if view.plan.get("needs_upload") else ""
        return f"Done: Webex uses its new certificate{entra}."
    return f"Done: the expired certificate {view.plan['old']['thumbprint']} was removed; nothing else changed."


def _failed(view: RotationView) -> str:
    if view.data.get("rollback_refused"):
        return (f"Roll back refused: {view.last_detail} Nothing was changed: Entra still signs with {_new(view)}. "
                f"Import its federation metadata into {_trust(view, 'import_place')} and test a sign-in. If "
                f"sign-ins fail, {_manual_switch(view, 'another valid certificate')} {_start_again(view)}")
    previous = view.plan.get("current")
    emergency = ""
    if view.kind == "entra-signing" and previous:
        emergency = (f" If sign-ins to Webex fail, "
                     f"{_manual_switch(view, 'the previous certificate ' + previous['thumbprint'])}")
    return (f"Failed: {view.last_detail} Check the app in the Entra admin center before going on."
            f"{_left_inactive(view)} {_start_again(view)}{emergency}")


def _manual_switch(view: RotationView, certificate: str) -> str:
    """The way to switch the signing certificate by hand when the bot cannot (an emergency)."""
    return (f"in the Entra admin center › Enterprise applications › {view.app_name} › Single sign-on › SAML "
            f"Certificates make {certificate} active, then import the app's federation metadata into "
            f"{_trust(view, 'import_place')}.")


def _start_again(view: RotationView) -> str:
    # No code span around the name: on the card it is Markdown-escaped, and escapes show inside one.
    if view.kind == "entra-cleanup":
        return f"“cleanup {view.plan['follows']}” asks for the clean-up again."
    command = "rotate webex-sp" if view.kind == "webex-sp" else "rotate"
    return f"“{command} {view.app_name}” starts again."


def _awaiting_webex(view: RotationView) -> str:
    place = _trust(view, "activation_place")
    if view.plan.get("needs_upload"):
        ready = "Entra now knows Webex's new certificate."
    else:
        ready = f"Entra does not need Webex's new certificate: {view.plan.get('answer', '')}"
    note = f" {view.plan['encryption_note']}" if view.plan.get("encryption_note") else ""
    return f"{ready} Now activate the new certificate in {place}, then press Activated in Webex.{note}"


_GUIDANCE = {
    (None, "awaiting-create-approval"): lambda v: _approval_needed(v, "create the new certificate in Entra"),
    (None, "awaiting-window"): lambda v: (
        f"{_missed_window(v)}The new certificate {_new(v)} exists in Entra, inactive. Webex trusts one IdP "
        "certificate, so activating it in Entra and importing it into Webex must happen together: pick the "
        f"maintenance window ({v.time_zone}), or Now if you are ready."),
    (None, "awaiting-activate-approval"): lambda v: _approval_needed(
        v, f"make {_new(v)} the active certificate in the window starting {_window(v)}"),
    (None, "scheduled"): lambda v: (
        f"Approved. I activate {_new(v)} at {_window(v)}; be ready then to import the federation metadata "
        f"into {_trust(v, 'import_place')}."),
    (None, "verification-failed"): lambda v: (
        " ".join(v.data.get("verification_problems") or [v.last_detail]) + " Verify again in a few minutes "
        "(Entra can take a while to publish), or Roll back."),
    (None, "awaiting-sign-in-test"): lambda v: (
        f"Entra now signs with {_new(v)}. Import the federation metadata file above into "
        f"{_trust(v, 'import_place')} now, then sign in to Webex through SSO in a private browser window. "
        f"Sign-in works finishes the rotation; Roll back re-activates {v.current_thumbprint} after an approval."),
    (None, "awaiting-rollback-approval"): lambda v: _approval_needed(
        v, f"re-activate the previous certificate {v.current_thumbprint}"),
    (None, "awaiting-upload-approval"): lambda v: _approval_needed(
        v, f"add Webex's new certificate {v.plan['webex']['thumbprint']} to {v.app_name} in Entra (every existing "
           "credential stays); only then is it activated in Webex"),
    (None, "awaiting-webex-activation"): _awaiting_webex,
    (None, "awaiting-cleanup-approval"): lambda v: _approval_needed(
        v, f"remove the expired certificate {v.plan['old']['thumbprint']} from {v.app_name}"),
    (None, "done"): _done,
    (None, "cancelled"): lambda v: f"{v.last_decision}: nothing more happens in this rotation.{_left_inactive(v)}",
    (None, "expired"): lambda v: f"Expired: {v.last_detail} {_start_again(v)}{_left_inactive(v)}",
    (None, "failed"): _failed,
    (None, "rolled-back"): lambda v: (
        f"Rolled back: Entra signs with {v.current_thumbprint} again. Import the federation metadata file above "
        f"into {_trust(v, 'import_place')} again.{_left_inactive(v)}"),
}


# --- facts ---------------------------------------------------------------------------------------

def _facts(view: RotationView) -> list[tuple[str, str]]:
    app = view.plan["app"]
    pairs = [("Enterprise app", f"{app['name']} (appId {app['app_id']})")]
    pairs += _KIND_FACTS[view.kind](view)
    pairs.append(("Requested by", view.requested_by))
    if view.state_kind == "approval":
        approved = f" ({', '.join(view.approvals)})" if view.approvals else ""
        pairs.append(("Approvals", f"{len(view.approvals)} of {view.required_approvals}{approved}"))
    return pairs


def _signing_facts(view: RotationView) -> list[tuple[str, str]]:
    current = view.plan.get("current")
    new = view.plan["new"]
    if view.new_thumbprint:
        new_text = f"{view.new_thumbprint} · valid until {_day(view.data['new_not_after'])}"
    else:
        new_text = f"{new['display_name']} · valid until {_day(new['not_after'])} · thumbprint known once created"
    switched = view.new_thumbprint and view.data.get("active_thumbprint") == view.new_thumbprint
    return [("Previous certificate" if switched else "Current certificate",
             f"{current['thumbprint']} · valid until {_day(current['not_after'])}" if current else "none active"),
            ("New certificate", new_text),
            ("Webex trust", _trust(view, "label")),
            ("Maintenance window", _window(view))]


def _webex_facts(view: RotationView) -> list[tuple[str, str]]:
    webex = view.plan["webex"]
    needs = ("yes: verification certificates are required" if view.plan["needs_upload"]
             else "no" if view.plan["verdict"] == "activate-only" else "not known (see below)")
    return [("New Webex certificate", f"{webex['thumbprint']} · valid {_day(webex['not_before'])} to "
                                      f"{_day(webex['not_after'])}"),
            ("Subject", webex["subject"]),
            ("Webex trust", _trust(view, "label")),
            ("Entra needs it", needs)]


def _cleanup_facts(view: RotationView) -> list[tuple[str, str]]:
    old = view.plan["old"]
    return [("Old certificate", f"{old['thumbprint']} · expired {_day(old['not_after'])}"),
            ("Active certificate (stays)", view.plan["active"]["thumbprint"] or "none"),
            ("Follows rotation", f"#{view.plan['follows']}")]


_KIND_FACTS = {"entra-signing": _signing_facts, "webex-sp": _webex_facts, "entra-cleanup": _cleanup_facts}


def _changes_block(view: RotationView):
    items = [TextBlock("What will change", weight=FontWeight.BOLDER, wrap=True)]
    items += [paragraph(f"{number}. {change}") for number, change in enumerate(view.plan["changes"], start=1)]
    for request in view.plan.get("requests", []):
        items.append(paragraph(f"Graph request: {request}", subtle=True))
    return section(items, style=ContainerStyle.EMPHASIS)


def _history_blocks(view: RotationView) -> list:
    history = (view.data.get("history") or [])[-HISTORY_LINES:]
    if not history:
        return []
    lines = [f"{entry['at'][:16].replace('T', ' ')} · {entry['by']}: {entry['what']}" for entry in history]
    return [TextBlock("\n\n".join(lines), isSubtle=True, wrap=True, separator=True)]


def _window_inputs(view: RotationView) -> list:
    zone = view.time_zone
    today = view.now.astimezone(ZoneInfo(zone))
    return [Date("window_date", label=f"Window start date ({zone})", value=today.strftime("%Y-%m-%d"),
                 min=today.strftime("%Y-%m-%d")),
            Time("window_time", label=f"Window start time ({zone}, 24 h)", value="22:00")]


# --- buttons --------------------------------------------------------------------------------------

def _buttons(view: RotationView) -> list:
    def button(title: str, action: str, style: ActionStyle | None = None):
        return submit(title, action, style=style, rotation=view.id, version=view.version)

    cancel = button("Cancel rotation", action_ids.ROTATION_CANCEL)
    if view.state_kind == "approval":
        actions = [button("Approve", action_ids.ROTATION_APPROVE, ActionStyle.POSITIVE),
                   button("Reject", action_ids.ROTATION_REJECT, ActionStyle.DESTRUCTIVE)]
        return actions + ([] if view.state == "awaiting-rollback-approval" else [cancel])
    rollback = button("Roll back", action_ids.ROTATION_ROLLBACK, ActionStyle.DESTRUCTIVE)
    by_state = {
        "awaiting-window": [button("Schedule this window", action_ids.ROTATION_WINDOW, ActionStyle.POSITIVE),
                            button("Now: I'm ready", action_ids.ROTATION_WINDOW_NOW), cancel],
        "scheduled": [cancel],
        "verification-failed": [button("Verify again", action_ids.ROTATION_VERIFY), rollback],
        "awaiting-sign-in-test": [button("Sign-in works", action_ids.ROTATION_SIGNED_IN, ActionStyle.POSITIVE), rollback],
        "awaiting-webex-activation": [button("Activated in Webex", action_ids.ROTATION_WEBEX_ACTIVATED,
                                             ActionStyle.POSITIVE), cancel],
    }
    if view.state == "done" and view.kind == "entra-signing" and view.plan.get("current") \
            and not view.data.get("simulated"):
        return [button("Clean up old certificate", action_ids.ROTATION_CLEANUP)]
    return by_state.get(view.state, [])


# --- text ----------------------------------------------------------------------------------------

def _fallback_text(view: RotationView, guidance: str) -> str:
    lines = [f"Rotation #{view.id} of {view.app_name} ({view.kind_label}): {view.step}.", guidance]
    lines += [f"{title}: {value}" for title, value in _facts(view)]
    if view.report_only:
        lines.insert(1, "REPORT ONLY: Graph writes are described, never sent.")
    return "\n".join(lines)


def _history_time(data: dict) -> str:
    history = data.get("history") or []
    return f" · since {history[-1]['at'][:16].replace('T', ' ')} UTC" if history else ""



def _day(iso: str | None) -> str:
    return iso[:10] if iso else "?"
