"""Certificate cards: what a check found, the status of a space, the chain-of-trust explanation."""

from __future__ import annotations

from webexpythonsdk.models.cards import AdaptiveCard, Column, ColumnSet, TextBlock
from webexpythonsdk.models.cards.options import ActionStyle, Colors, FontWeight, Spacing

from cards.common import card, details, facts, heading, paragraph, plain, submit
from cards.paths import PathsSaid
from handlers import actions as action_ids
from rollover.certificates.diagnosis import Diagnosis
from rollover.certificates.health import FINDINGS, STATUS_EMOJI, CertificateReport, worst
from rollover.describe import STATUS_WORDS, day, lifetime, plural, short_ids, when  # noqa: F401  (apps cards use them)

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


def reading_rows(reports: list[CertificateReport]) -> list[dict]:
    """One row per certificate (by SHA-1) of a document just read, with the uses it serves there."""
    rows: dict[str, dict] = {}
    for report in reports:
        row = rows.setdefault(report.sha1, {"report": report, "uses": []})
        use = report.use or ("signing+encryption" if report.role else "")
        if use and use not in row["uses"]:
            row["uses"].append(use)
    return [_reading_row(row["report"], row["uses"]) for row in rows.values()]


def _reading_row(report: CertificateReport, uses: list[str]) -> dict:
    role = {"idp": "identity provider", "sp": "service provider"}.get(report.role or "", "")
    what = " ".join(part for part in (role, ", ".join(uses), "certificate") if part)
    state = lifetime(report.status, report.days_left, report.not_before, report.not_after)
    return {"status": report.status, "title": report.subject, "sha1": report.sha1, "subject": report.subject,
            "state": state, "detail": f"{state}: {what}", "findings": report.findings,
            "not_before": day(report.not_before), "not_after": day(report.not_after)}


# --- a check (file or URL) -----------------------------------------------------------------------------

def reading_card(label: str, reports: list[CertificateReport], diagnosis: Diagnosis | None) -> AdaptiveCard:
    rows = reading_rows(reports)
    body = [*heading(f"{STATUS_EMOJI[worst(r['status'] for r in rows)]} {plain(short_ids(label))}"),
            paragraph(plain(reading_answer(rows, diagnosis)))]
    for row in rows[:MAX_ROWS]:
        body.append(certificate_row(status=row["status"], title=row["title"], detail=row["detail"]))
        body += [paragraph(f"⚠️ {plain(FINDINGS.get(code, code))}", subtle=True) for code in row["findings"]]
    return card(body, actions=[submit("Explain", action_ids.RUN_COMMAND, command="explain"),
                               submit("Status of this space", action_ids.RUN_COMMAND, command="status"),
                               details("Details", certificate_details(rows))])


def reading_answer(rows: list[dict], diagnosis: Diagnosis | None) -> str:
    """What was found and what to do: the upload answer for a Webex document, the diagnosis summary else."""
    if not rows:
        return "This document holds no certificate, so there is nothing to expire; nothing is tracked."
    found = f"{plural(len(rows), 'certificate')}, now tracked in this space"
    if diagnosis is None:
        return f"{found}."
    if diagnosis.about_webex_certificate:   # the most urgent thing first, then the answer and how to be sure
        said = [diagnosis.urgent, diagnosis.upload_answer, diagnosis.next_step]
        return f"{found}. " + " ".join(sentence for sentence in said if sentence)
    return f"{found}. {diagnosis.summary}"


def reading_text(label: str, reports: list[CertificateReport], diagnosis: Diagnosis | None) -> str:
    rows = reading_rows(reports)
    lines = [f"{label}: {reading_answer(rows, diagnosis)}"]
    lines += [f"{STATUS_EMOJI[r['status']]} {r['title']}: {r['detail']} · SHA-1 {r['sha1']}" for r in rows[:MAX_ROWS]]
    return "\n".join(PathsSaid().lines(lines))


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
    return "\n".join(PathsSaid().lines(lines))


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
