"""Certificate cards: what a check found, the status of a space, the chain-of-trust explanation."""

from __future__ import annotations

from webexpythonsdk.models.cards import AdaptiveCard, Column, ColumnSet, Container, TextBlock
from webexpythonsdk.models.cards.options import ActionStyle, Colors, ContainerStyle, FontWeight, Spacing

from cards.common import card, details, facts, heading, paragraph, plain, section, submit
from handlers import actions as action_ids
from rollover.certificates.diagnosis import Diagnosis, Finding
from rollover.certificates.health import FINDINGS, STATUS_EMOJI, CertificateReport, worst
from rollover.describe import STATUS_WORDS, day, plural, when

SEVERITY_EMOJI = {"expired": "🔴", "critical": "🔴", "warning": "🟡", "info": "ℹ️", "ok": "🟢"}
VERDICT_TITLE = {"activate-only": "No upload to Azure needed",
                 "upload-then-activate": "Upload to Entra first, then activate in Webex",
                 "upload-before-activating": "Upload to Entra first, then activate in Webex",  # plans stored earlier
                 "unknown": "Upload to Azure? Not known yet",
                 "not-applicable": "No Webex certificate here",
                 "other-app": "Not a Webex app"}
MAX_ROWS = 25   # a card stays readable; the fallback text says how many were left out


STATUS_COLOURS = {"expired": Colors.ATTENTION, "critical": Colors.ATTENTION, "warning": Colors.WARNING,
                  "not-yet-valid": Colors.ACCENT, "ok": Colors.GOOD}


def certificate_row(*, status: str, title: str, detail: str) -> ColumnSet:
    """One certificate: status emoji, what it is, then its state in the status colour and the details.

    ``detail`` reads "<state>: <the rest>"; the state part is coloured so the eye finds the bad rows.
    """
    state, _, rest = detail.partition(": ")
    return ColumnSet(columns=[
        Column(items=[TextBlock(STATUS_EMOJI[status])], width="auto"),
        Column(items=[
            TextBlock(plain(title), weight=FontWeight.BOLDER, wrap=True),
            TextBlock(plain(state.capitalize()), color=STATUS_COLOURS[status], weight=FontWeight.BOLDER,
                      wrap=True, spacing=Spacing.NONE),
            TextBlock(plain(rest or state), isSubtle=True, wrap=True, spacing=Spacing.NONE),
        ], width="stretch"),
    ], spacing=Spacing.SMALL)


def report_detail(report: CertificateReport) -> str:
    role = {"idp": "identity provider", "sp": "service provider"}.get(report.role or "", "")
    use = f"{report.use or 'signing+encryption (no use given)'} " if report.role else ""
    parts = [f"{STATUS_WORDS[report.status]}: not after {day(report.not_after)} ({when(report.days_left)})",
             f"{role + ' ' if role else ''}{use}certificate".strip(), f"SHA-1 {report.sha1}"]
    return " · ".join(p for p in parts if p)


# --- a check (file or URL) -----------------------------------------------------------------------------

def reading_card(label: str, reports: list[CertificateReport], diagnosis: Diagnosis | None) -> AdaptiveCard:
    overall = worst(r.status for r in reports)
    body = [*heading(f"{STATUS_EMOJI[overall]} {plain(label)}",
                     subtitle=f"{len(reports)} certificate{'s' if len(reports) != 1 else ''} found · now tracked "
                              "in this space")]
    if not reports:
        body.append(paragraph("This document holds no certificate, so there is nothing to expire."))
    for report in reports[:MAX_ROWS]:
        body.append(certificate_row(status=report.status, title=report.subject, detail=report_detail(report)))
        for code in report.findings:
            body.append(paragraph(f"⚠️ {plain(FINDINGS.get(code, code))}", subtle=True))
    if diagnosis is not None and diagnosis.about_webex_certificate:
        body.append(_verdict_block(diagnosis))
    elif diagnosis is not None:
        body.append(paragraph(plain(diagnosis.summary)))
    return card(body, actions=[submit("Explain", action_ids.RUN_COMMAND, command="explain"),
                               submit("Status of this space", action_ids.RUN_COMMAND, command="status")])


def reading_text(label: str, reports: list[CertificateReport], diagnosis: Diagnosis | None) -> str:
    lines = [f"{label}: {plural(len(reports), 'certificate')}, now tracked in this space."]
    lines += [f"{STATUS_EMOJI[r.status]} {r.subject} — {report_detail(r)}" for r in reports[:MAX_ROWS]]
    if diagnosis is not None and diagnosis.about_webex_certificate:
        lines.append(f"{VERDICT_TITLE[diagnosis.upload_verdict]}: {diagnosis.upload_answer}")
    elif diagnosis is not None:
        lines.append(diagnosis.summary)
    return "\n".join(lines)


# --- the space's status -------------------------------------------------------------------------------

def status_card(rows: list[dict], diagnosis: Diagnosis | None, *, rotatable_apps: list[str]) -> AdaptiveCard:
    """``rows``: one per certificate (rollover.describe.certificate_rows), worst first."""
    overall = worst(r["status"] for r in rows)
    body = [*heading(f"{STATUS_EMOJI[overall]} SSO certificates of this space"),
            paragraph(plain(status_answer(rows, rotatable_apps)))]
    body += certificate_blocks(rows, "`status`")
    verdict = _verdict_fact(diagnosis)
    if verdict:
        body.append(facts([verdict]))
    actions = [submit(f"Start rotation: {name}"[:40], action_ids.ROTATION_START, style=ActionStyle.POSITIVE,
                      app=name) for name in rotatable_apps[:3]]
    actions += [submit("Explain", action_ids.RUN_COMMAND, command="explain"),
                details("Details", certificate_details(rows) + _verdict_details(diagnosis))]
    return card(body, actions=actions)


def status_text(rows: list[dict], diagnosis: Diagnosis | None, rotatable_apps: list[str] = ()) -> str:
    lines = [f"SSO certificates of this space: {status_answer(rows, rotatable_apps)}"]
    lines += certificate_lines(rows)
    if _verdict_fact(diagnosis):
        lines.append(f"{VERDICT_TITLE[diagnosis.upload_verdict]}: {diagnosis.upload_answer}")
    return "\n".join(lines)


def status_answer(rows: list[dict], rotatable_apps=()) -> str:
    """The sentence read first: which certificate needs attention and what to do, or that all are fine."""
    if not rows:
        return "No certificate is tracked here yet."
    first = rows[0]
    needing = [r for r in rows if r["status"] != "ok"]
    if not needing:
        soonest = min(rows, key=lambda r: r["days_left"])
        count = "The certificate is" if len(rows) == 1 else f"All {len(rows)} certificates are"
        return f"{count} valid; the first to expire is the {soonest['title']}, {when(soonest['days_left'])}."
    others = len(needing) - 1
    more = f" {plural(others, 'other certificate')} {'needs' if others == 1 else 'need'} attention too." \
        if others else ""
    return f"The {first['title']} {first['state']}. {_next_step(first, rotatable_apps)}{more}"


def _next_step(row: dict, rotatable_apps) -> str:
    if row["kind"] == "entra" and rotatable_apps:
        return f"Start rotation: {rotatable_apps[0]} walks you through it, with approvals."
    if row["kind"] == "entra":
        return "`rotate <app>` walks you through its rotation."
    if row["kind"] == "webex":
        return "Activate Webex's new certificate once Cisco publishes it: Explain says where."
    return "Explain says what to do."


def certificate_blocks(rows: list[dict], full_list: str) -> list:
    """One row per certificate (worst first, at most MAX_ROWS) and how many more ``full_list`` shows."""
    blocks: list = [certificate_row(status=r["status"], title=r["title"], detail=r["detail"]) for r in rows[:MAX_ROWS]]
    if len(rows) > MAX_ROWS:
        blocks.append(paragraph(f"… and {len(rows) - MAX_ROWS} more ({full_list} lists them all).", subtle=True))
    return blocks


def certificate_details(rows: list[dict]) -> list:
    """Behind Details: each certificate's full thumbprint, subject and validity."""
    blocks: list = []
    for row in rows[:MAX_ROWS]:
        blocks.append(TextBlock(plain(row["title"]), weight=FontWeight.BOLDER, wrap=True))
        blocks.append(facts([("SHA-1", row["sha1"]), ("Subject", plain(row["subject"])),
                             ("Valid", f"{row['not_before']} to {row['not_after']}")]))
    return blocks


def certificate_lines(rows: list[dict]) -> list[str]:
    """The rows as plain text, full thumbprints included (clients without cards have no Details)."""
    lines = [f"{STATUS_EMOJI[r['status']]} {r['title']}: {r['detail']} · SHA-1 {r['sha1']}" for r in rows[:MAX_ROWS]]
    if len(rows) > MAX_ROWS:
        lines.append(f"… and {len(rows) - MAX_ROWS} more.")
    return lines


def _verdict_fact(diagnosis: Diagnosis | None) -> tuple[str, str] | None:
    """The upload question's answer, only where a Webex certificate is known."""
    if diagnosis is None or not diagnosis.findings or not diagnosis.about_webex_certificate:
        return None
    return "New Webex certificate", VERDICT_TITLE[diagnosis.upload_verdict]


def _verdict_details(diagnosis: Diagnosis | None) -> list:
    if _verdict_fact(diagnosis) is None:
        return []
    return [TextBlock(VERDICT_TITLE[diagnosis.upload_verdict], weight=FontWeight.BOLDER, wrap=True, separator=True),
            paragraph(plain(diagnosis.upload_answer))]


def empty_status_text() -> str:
    return ("This space tracks no certificate yet. Drop a SAML metadata or certificate file here, "
            "write `check <metadata URL>`, or `watch <Entra app>` when Graph is connected.")


# --- the chain of trust ---------------------------------------------------------------------------------

def diagnosis_card(diagnosis: Diagnosis) -> AdaptiveCard:
    # The summary's first sentence is the headline; the verdict block and findings carry the rest.
    headline = diagnosis.summary.split(". ")[0].rstrip(".") + "."
    body = [*heading("Chain of trust", subtitle=plain(headline))]
    if diagnosis.about_webex_certificate:   # the Webex question only about a Webex certificate
        body.append(_verdict_block(diagnosis))
    for finding in diagnosis.findings:
        body.append(_finding_block(finding))
    if any(f.inferred for f in diagnosis.findings):
        body.append(paragraph("(inferred) marks advice drawn from documentation and practice rather than read "
                              "from your tenant; check it in the Entra portal before relying on it.", subtle=True))
    return card(body, actions=[submit("Status", action_ids.RUN_COMMAND, command="status")])


def diagnosis_text(diagnosis: Diagnosis) -> str:
    lines = [diagnosis.summary]
    lines += [f"{SEVERITY_EMOJI[f.severity]} {f.title}{' (inferred)' if f.inferred else ''}: {f.text}"
              for f in diagnosis.findings]
    return "\n".join(lines)


def _verdict_block(diagnosis: Diagnosis) -> Container:
    style = {"activate-only": ContainerStyle.GOOD, "upload-then-activate": ContainerStyle.WARNING}.get(
        diagnosis.upload_verdict, ContainerStyle.EMPHASIS)
    return section([
        TextBlock("Do I need to upload the new Webex certificate to Azure?", isSubtle=True, wrap=True),
        TextBlock(VERDICT_TITLE[diagnosis.upload_verdict], weight=FontWeight.BOLDER, wrap=True),
        TextBlock(plain(diagnosis.upload_answer), wrap=True, spacing=Spacing.SMALL),
    ], style=style)


def _finding_block(finding: Finding) -> Container:
    title = f"{SEVERITY_EMOJI[finding.severity]} {finding.title}{' (inferred)' if finding.inferred else ''}"
    colour = {"expired": Colors.ATTENTION, "critical": Colors.ATTENTION,
              "warning": Colors.WARNING}.get(finding.severity)
    return section([TextBlock(plain(title), weight=FontWeight.BOLDER, wrap=True, color=colour),
                    TextBlock(plain(finding.text), wrap=True, spacing=Spacing.SMALL)],
                   style=None)

