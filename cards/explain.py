"""The chain-of-trust card (`explain`): the answer first, one line per problem, the upload answer; every
finding in full behind Details."""

from __future__ import annotations

from webexpythonsdk.models.cards import AdaptiveCard, Column, ColumnSet, Container, TextBlock
from webexpythonsdk.models.cards.options import ActionStyle, Colors, ContainerStyle, FontWeight, Spacing

from cards.common import card, details, heading, paragraph, plain, section, submit
from cards.paths import PathsSaid
from handlers import actions as action_ids
from rollover.certificates.diagnosis import Diagnosis, Finding
from rollover.describe import plural

SEVERITY_EMOJI = {"expired": "🔴", "critical": "🔴", "warning": "🟡", "info": "ℹ️", "ok": "🟢"}
URGENT, TO_PLAN = ("expired", "critical"), ("warning",)
MAX_PROBLEM_ROWS = 5
UPLOAD_QUESTION = "Upload the new Webex certificate to Azure?"
MENU_NOTE = ("Menu paths follow Microsoft's and Cisco's documentation; the consoles may word them a little "
             "differently.")
INFERRED_NOTE = ("(inferred) marks advice drawn from documentation and practice rather than read from your "
                 "tenant; check it in the Entra admin center before relying on it.")


def explain_answer(diagnosis: Diagnosis, rotatable_apps=()) -> str:
    """What is wrong (how many problems) and what to do next."""
    urgent = [f for f in diagnosis.findings if f.severity in URGENT]
    planned = [f for f in diagnosis.findings if f.severity in TO_PLAN]
    if urgent:
        more = f" and {plural(len(planned), 'thing')} to plan" if planned else ""
        lead = f"{plural(len(urgent), 'urgent problem')}{more}: {_problems(diagnosis)[0].headline}"
    elif planned:
        lead = f"No outage risk right now; {plural(len(planned), 'thing')} to plan."
    else:
        return "Everything checked is in order."
    if rotatable_apps:
        return f"{lead} Start rotation: {rotatable_apps[0]} renews Entra's signing certificate, with approvals."
    return f"{lead} Details says what to do about each."


def diagnosis_card(diagnosis: Diagnosis, rotatable_apps: list[str] = ()) -> AdaptiveCard:
    problems = _problems(diagnosis)
    body = [*heading(f"{SEVERITY_EMOJI[_worst(diagnosis)]} Chain of trust"),
            paragraph(plain(explain_answer(diagnosis, rotatable_apps)))]
    body += [_problem_row(f) for f in problems[:MAX_PROBLEM_ROWS]]
    if len(problems) > MAX_PROBLEM_ROWS:
        body.append(paragraph(f"… and {len(problems) - MAX_PROBLEM_ROWS} more in Details.", subtle=True))
    if diagnosis.about_webex_certificate:          # the Webex question only about a Webex certificate
        body.append(_upload_answer(diagnosis))
    actions = [submit(f"Start rotation: {name}"[:40], action_ids.ROTATION_START, style=ActionStyle.POSITIVE,
                      app=name) for name in rotatable_apps[:3]]
    actions += [submit("Status", action_ids.RUN_COMMAND, command="status"),
                details("Details", _finding_details(diagnosis))]
    return card(body, actions=actions)


def diagnosis_text(diagnosis: Diagnosis, rotatable_apps=()) -> str:
    """Fallback for clients without cards: the answer, the upload answer, then every finding in full."""
    lines = [explain_answer(diagnosis, rotatable_apps)]
    if diagnosis.about_webex_certificate:
        lines.append(f"{UPLOAD_QUESTION} {diagnosis.upload_answer}")
    lines += [f"{SEVERITY_EMOJI[f.severity]} {_title(f)}: {f.text}" for f in diagnosis.findings]
    return "\n".join(PathsSaid().lines(lines))


def _problems(diagnosis: Diagnosis) -> list[Finding]:
    """What needs doing, worst first; the upload answer's own findings are said by the answer."""
    return [f for f in diagnosis.findings if f.severity in URGENT + TO_PLAN and not getattr(f, "answer", False)]


def _worst(diagnosis: Diagnosis) -> str:
    severity = diagnosis.severity
    return severity if severity in SEVERITY_EMOJI else "ok"


def _title(finding: Finding) -> str:
    return f"{finding.title}{' (inferred)' if finding.inferred else ''}"


def _problem_row(finding: Finding) -> ColumnSet:
    colour = Colors.ATTENTION if finding.severity in URGENT else Colors.WARNING
    return ColumnSet(columns=[
        Column(items=[TextBlock(SEVERITY_EMOJI[finding.severity])], width="auto"),
        Column(items=[TextBlock(plain(_title(finding)), weight=FontWeight.BOLDER, color=colour, wrap=True),
                      TextBlock(plain(finding.headline), isSubtle=True, wrap=True, spacing=Spacing.NONE)],
               width="stretch"),
    ], spacing=Spacing.SMALL)


def _upload_answer(diagnosis: Diagnosis) -> Container:
    style = {"activate-only": ContainerStyle.GOOD, "upload-then-activate": ContainerStyle.WARNING}.get(
        diagnosis.upload_verdict, ContainerStyle.EMPHASIS)
    return section([TextBlock(UPLOAD_QUESTION, isSubtle=True, wrap=True),
                    TextBlock(plain(diagnosis.upload_answer), wrap=True, spacing=Spacing.NONE)], style=style)


def _finding_details(diagnosis: Diagnosis) -> list:
    """Behind Details: every finding in full (thumbprints whole), then the notes."""
    blocks: list = []
    for finding in diagnosis.findings:
        blocks.append(TextBlock(plain(f"{SEVERITY_EMOJI[finding.severity]} {_title(finding)}"),
                                weight=FontWeight.BOLDER, wrap=True))
        blocks.append(TextBlock(plain(finding.text), wrap=True, spacing=Spacing.NONE))
    if any(f.inferred for f in diagnosis.findings):
        blocks.append(paragraph(INFERRED_NOTE, subtle=True))
    blocks.append(paragraph(MENU_NOTE, subtle=True))
    return blocks
