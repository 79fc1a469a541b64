"""Rotation cards: the plan, each approval, the operator's steps and the outcome, each with fallback text.

One card per rotation state; the bot deletes the previous card and posts the next (Webex cannot
edit cards). Every button carries the rotation id and the version the card was posted for, so a
click on an older card is recognised and changes nothing.
"""

from __future__ import annotations

from dataclasses import replace
from zoneinfo import ZoneInfo

from webexpythonsdk.models.cards import AdaptiveCard, Column, ColumnSet, TextBlock
from webexpythonsdk.models.cards.inputs import Date, Time
from webexpythonsdk.models.cards.options import ActionStyle, ContainerStyle, FontWeight, Spacing

from cards.common import MAX_ACTIONS, card, details, facts, heading, paragraph, plain, section, submit
from cards.paths import PathsSaid
from handlers import actions as action_ids
from rollover.rotation.guidance import NOT_YET, relying_party, trust_text, window_text
from rollover.rotation.machine import MACHINES, State
from rollover.rotation.view import RotationView

HISTORY_LINES = 10          # behind History; the audit log keeps every entry


def rotation_card(view: RotationView) -> tuple[str, AdaptiveCard]:
    """The card of the rotation's current state and its fallback text: where the rotation is (the step
    indicator), what to do now (the step's guidance), the key facts; the rest behind Details, Graph request
    and History."""
    shown = _markdown_safe(view)           # TextBlocks render Markdown; the fallback is plain text
    body = [*heading(f"{shown.emoji} Rotation #{shown.id}: {shown.app_name}",
                     subtitle=f"{shown.kind_label} · {shown.step}")]
    indicator = step_indicator(view, current="**{}**")
    if indicator:
        body.append(TextBlock(indicator, wrap=True, spacing=Spacing.SMALL))
    if shown.report_only:
        body.append(section([paragraph("REPORT ONLY: Graph writes are described here, never sent "
                                       "(ROLLOVER_REPORT_ONLY).", bold=True)], style=ContainerStyle.WARNING))
    body.append(paragraph(_state(shown).guide(shown)))
    body.append(facts(_key_facts(shown)))
    if shown.state == "awaiting-window":
        body += _window_inputs(shown)
    buttons = _buttons(view)
    return _fallback_text(view), card(body, actions=buttons + _more(shown, MAX_ACTIONS - len(buttons)))


def step_indicator(view: RotationView, current: str = "{}") -> str:
    """'1 Create ✓ · 2 Window ✓ · 3 Activate · 4 Verify · 5 Done', from the machine's declared phases;
    ``current`` formats the phase the rotation is in. Empty once it stopped short of Done."""
    marks = {"done": "{} ✓", "current": current, "next": "{}"}
    return " · ".join(marks[mark].format(f"{number} {name}")
                      for number, name, mark in MACHINES[view.kind].progress(view))


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


# --- facts ---------------------------------------------------------------------------------------

def _facts(view: RotationView) -> list[tuple[str, str]]:
    """Every fact: behind Details and in the fallback text."""
    app = view.plan["app"]
    pairs = [("Enterprise app", f"{app['name']} (appId {app['app_id']})")]
    pairs += _KIND_FACTS[view.kind](view)
    pairs.append(("Requested by", view.requested_by))
    pairs.append(("Step", view.step))
    if view.state_kind == "approval":
        approved = f" ({', '.join(view.approvals)})" if view.approvals else ""
        pairs.append(("Approvals", f"{len(view.approvals)} of {view.required_approvals}{approved}"))
    return pairs


_KEY_FACTS = ("Current certificate", "Previous certificate", "New certificate", "Maintenance window",
              "New Webex certificate", "Entra needs it", "Old certificate", "Active certificate (stays)")


def _key_facts(view: RotationView) -> list[tuple[str, str]]:
    """What the card shows at first: the certificates, the window once chosen, approvals once some came."""
    pairs = [(title, value) for title, value in _facts(view)
             if title in _KEY_FACTS and value != NOT_YET or title == "Approvals" and view.approvals]
    return [(title, value.split(" · thumbprint known")[0]) for title, value in pairs]


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
            ("Webex trust" if relying_party(view.plan) == "Webex" else "Trusted by", trust_text(view, "label")),
            ("Maintenance window", window_text(view))]


def _webex_facts(view: RotationView) -> list[tuple[str, str]]:
    webex = view.plan["webex"]
    verdict = view.plan["verdict"]
    needs = ("yes: verification certificates are required" if view.plan["needs_upload"]
             else "yes: token encryption, switched by hand (see below)" if verdict == "upload-then-activate"
             else "no" if verdict == "activate-only" else "not known (see below)")
    return [("New Webex certificate", f"{webex['thumbprint']} · valid {_day(webex['not_before'])} to "
                                      f"{_day(webex['not_after'])}"),
            ("Subject", webex["subject"]),
            ("Webex trust", trust_text(view, "label")),
            ("Entra needs it", needs)]


def _cleanup_facts(view: RotationView) -> list[tuple[str, str]]:
    old = view.plan["old"]
    return [("Old certificate", f"{old['thumbprint']} · expired {_day(old['not_after'])}"),
            ("Active certificate (stays)", view.plan["active"]["thumbprint"] or "none"),
            ("Follows rotation", f"#{view.plan['follows']}")]


_KIND_FACTS = {"entra-signing": _signing_facts, "webex-sp": _webex_facts, "entra-cleanup": _cleanup_facts}


def _more(view: RotationView, room: int) -> list:
    """The ShowCard buttons: Details (every fact, what will change), Graph request (a plan's requests) and
    History, as many as the card has room for; what does not fit goes into Details."""
    sections = [("Details", _details(view)), ("Graph request", _requests(view)), ("History", _history(view))]
    sections = [(title, blocks) for title, blocks in sections if blocks]
    shown = sections[:max(room, 1)]
    for title, blocks in sections[len(shown):]:
        shown[0][1].extend([TextBlock(title, weight=FontWeight.BOLDER, wrap=True, separator=True), *blocks])
    return [details(title, blocks) for title, blocks in shown]


def _details(view: RotationView) -> list:
    blocks: list = [facts(_facts(view))]
    changes = view.plan.get("changes") or []
    if changes and view.state in _PLAN_STATES:
        blocks.append(TextBlock("What will change", weight=FontWeight.BOLDER, wrap=True))
        # "1\." stays text: as a Markdown list the renderer lets long items run off the card
        blocks += [paragraph(f"{number}\\. {change}") for number, change in enumerate(changes, start=1)]
    return blocks


def _requests(view: RotationView) -> list:
    if view.state not in _PLAN_STATES:
        return []
    return [paragraph(request, subtle=True) for request in view.plan.get("requests", [])]


def _history(view: RotationView) -> list:
    history = (view.data.get("history") or [])[-HISTORY_LINES:]
    return [paragraph(line, subtle=True) for line in _history_lines(history)]


def _history_lines(history: list[dict]) -> list[str]:
    return [f"{entry['at'][:16].replace('T', ' ')} · {entry['by']}: {entry['what']}" for entry in history]


def _window_inputs(view: RotationView) -> list:
    zone = view.time_zone
    today = view.now.astimezone(ZoneInfo(zone))
    return [Date("window_date", label=f"Window start date ({zone})", value=today.strftime("%Y-%m-%d"),
                 min=today.strftime("%Y-%m-%d")),
            Time("window_time", label=f"Window start time ({zone}, 24 h)", value="22:00")]


# --- buttons --------------------------------------------------------------------------------------

def _state(view: RotationView) -> State:
    return MACHINES[view.kind].state(view.state)


_STYLES = {"positive": ActionStyle.POSITIVE, "destructive": ActionStyle.DESTRUCTIVE}


def _buttons(view: RotationView) -> list:
    """The step's declared buttons; each carries the rotation and the version its card was posted for."""
    return [submit(button.title, action_ids.ROTATION_BUTTONS[button.name], style=_STYLES.get(button.style),
                   rotation=view.id, version=view.version)
            for button in _state(view).buttons_for(view)]


# --- text ----------------------------------------------------------------------------------------

def _fallback_text(view: RotationView) -> str:
    """Everything the card and its ShowCards say, as plain text, each where-to-click path once."""
    lines = [f"Rotation #{view.id} of {view.app_name} ({view.kind_label}): {view.step}."]
    if step_indicator(view):
        lines.append(f"Steps: {step_indicator(view)}")
    if view.report_only:
        lines.append("REPORT ONLY: Graph writes are described, never sent.")
    lines.append(_state(view).guide(view))
    lines += [f"{title}: {value}" for title, value in _facts(view)]
    if view.state in _PLAN_STATES:
        lines += [f"What will change: {number}. {change}"
                  for number, change in enumerate(view.plan.get("changes") or [], start=1)]
        lines += [f"Graph request: {request}" for request in view.plan.get("requests", [])]
    lines += [f"History: {line}" for line in _history_lines((view.data.get("history") or [])[-HISTORY_LINES:])]
    return "\n".join(PathsSaid().lines(lines))


def _history_time(data: dict) -> str:
    history = data.get("history") or []
    return f" · since {history[-1]['at'][:16].replace('T', ' ')} UTC" if history else ""



def _day(iso: str | None) -> str:
    return iso[:10] if iso else "?"
