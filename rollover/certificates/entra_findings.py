"""The Entra side of the diagnosis: token-signing certificates (Graph or federation metadata) and the
IdP certificate Webex trusts.

Entra's token-signing certificate signs every assertion, and the application trusts exactly that one:
Webex uses the first certificate of the imported metadata (Cisco help "Single sign-on integration in
Control Hub": "the first entry is configured for use in Webex"). Rolling it over therefore means: create
a new certificate (it stays Inactive), then in one maintenance window "Make certificate active" and import
the new Federation Metadata XML into the application (Microsoft Learn "Manage certificates for federated
single sign-on"; "If the application can only handle one certificate at a time, pick a downtime interval").
"""

from __future__ import annotations

from datetime import datetime
from typing import Optional

from rollover.certificates.health import (
    CertificateReport,
    assess_document,
    days_until,
    iso_utc,
    normalise_thumbprint,
    validity_status,
)
from rollover.certificates.parsing import Document
from rollover.certificates.places import import_place, other_app_import_place, signing_place
from rollover.certificates.trust_facts import EntraAppFacts, EntraSigningCertificate, Finding, TrustFacts
from rollover.certificates.webex_trust import WebexTrust
from rollover.describe import plural


def app_findings(facts: TrustFacts, trusts: list[WebexTrust], now: datetime) -> list[Finding]:
    """Per Entra app: its active signing certificate, a prepared rollover, who gets Entra's expiry mails."""
    findings = []
    for app in facts.entra_apps:
        findings += _signing_findings(app, trusts, now, facts)
        if not app.notification_emails:
            findings.append(Finding(
                "warning", f"{app.display_name}: nobody receives Entra's expiry e-mails",
                f"{app.display_name} has no notification e-mail address, so Entra's certificate expiry mails "
                f"(60, 30 and 7 days before) go nowhere. Add one in {signing_place(app.display_name)}.",
                False, _kind_of(app, trusts)))
    return findings


def _signing_findings(app: EntraAppFacts, trusts, now: datetime, facts: TrustFacts) -> list[Finding]:
    if not app.signing_certificates:
        return []   # an application object read alone has no signing certificates: nothing to say
    active = [c for c in app.signing_certificates if c.active]
    if not active:
        return [Finding("warning", f"{app.display_name}: no active signing certificate found",
                        f"Graph lists no active token-signing certificate for {app.display_name}; check "
                        f"{signing_place(app.display_name)}.", False, _kind_of(app, trusts))]
    current = active[0]
    findings = [_active_finding(app, current, now, facts, trusts)]
    for candidate in app.signing_certificates:
        if not candidate.active and candidate.not_after > current.not_after:
            findings.append(_rollover_finding(app, current, candidate, now, trusts))
    return findings


def _active_finding(app: EntraAppFacts, cert: EntraSigningCertificate, now, facts: TrustFacts, trusts) -> Finding:
    status = validity_status(cert.not_before, cert.not_after, now, warning_days=facts.warning_days,
                             critical_days=facts.critical_days)
    thumb, name, kind = normalise_thumbprint(cert.thumbprint), app.display_name, _kind_of(app, trusts)
    who, target = _relying_party(app, trusts), _import_target(app, trusts)
    if status == "expired":
        lead = (f"Entra's signing certificate {thumb} for {name} expired on {_day(cert.not_after)}, so sign-ins "
                f"fail: create a new one in {signing_place(name)}, make it active and import the new Federation "
                f"Metadata XML into {target} now.")
        return Finding("expired", f"{name}: Entra signing certificate expired",
                       f"Entra signs sign-ins for {name} with certificate {thumb}, which expired on "
                       f"{_day(cert.not_after)}; {who} rejects assertions signed with it, so SSO is failing. Create "
                       f"a new certificate in {signing_place(name)}, make it active and import the new Federation "
                       f"Metadata XML into {target} in the same maintenance window.", False, kind, thumb, lead)
    if status == "not-yet-valid":
        return Finding("critical", f"{name}: active Entra signing certificate not valid yet",
                       f"The active signing certificate {thumb} of {name} is valid only from "
                       f"{_day(cert.not_before)}; {who} rejects assertions signed with it until then.",
                       False, kind, thumb)
    if status in ("critical", "warning"):
        lead = expiring_lead(thumb, name, days_until(cert.not_after, now), cert.not_after, target)
        return Finding(status, f"{name}: Entra signing certificate expiring",
                       f"Entra's token-signing certificate {thumb} for {name} expires in "
                       f"{plural(days_until(cert.not_after, now), 'day')} ({_day(cert.not_after)}). Create a new "
                       f"one in {signing_place(name)} (it stays inactive), then in a maintenance window make it active "
                       f"and import the new Federation Metadata XML into {target}.", False, kind, thumb, lead)
    return Finding("ok", f"{name}: Entra signing certificate valid",
                   f"Entra's active token-signing certificate {thumb} for {name} is valid until "
                   f"{_day(cert.not_after)}.", False, kind, thumb)


def expiring_lead(thumb: str, app: Optional[str], days: int, not_after: datetime, target: str) -> str:
    where = signing_place(app) if app else signing_place()
    return (f"Entra's signing certificate {thumb}{f' for {app}' if app else ''} expires in {plural(days, 'day')} "
            f"({_day(not_after)}): create a new one in {where}, then in one maintenance window make it active "
            f"and import the new Federation Metadata XML into {target}.")


def _rollover_finding(app: EntraAppFacts, current, candidate, now, trusts) -> Finding:
    thumb = normalise_thumbprint(candidate.thumbprint)
    timing = (f" It is valid only from {_day(candidate.not_before)}: do not activate it before then."
              if now < candidate.not_before else "")
    who = _relying_party(app, trusts)
    return Finding(
        "warning", f"{app.display_name}: Entra certificate rollover prepared",
        f"{app.display_name} has an inactive signing certificate {thumb} (valid {_day(candidate.not_before)} to "
        f"{_day(candidate.not_after)}) next to the active {normalise_thumbprint(current.thumbprint)}. "
        + ("Webex trusts only one IdP certificate (it uses the first one in the metadata), so making"
           if who == "Webex" else f"If {who} trusts only one IdP certificate, making")
        + f" it active in Entra and importing the new Federation Metadata XML into {_import_target(app, trusts)} "
        f"must happen together in a maintenance window.{timing}", True, _kind_of(app, trusts), thumb)


def document_findings(facts: TrustFacts, documents: list[Document], trusts, now: datetime) -> list[Finding]:
    """Entra metadata/certificate files: statuses, and a rollover hint when they list several certificates."""
    findings = []
    kind, target = _single_kind(trusts), import_place({t.kind for t in trusts})
    for document in documents:
        signing = idp_signing_reports(document, now, facts)
        if not signing:
            continue
        usable = [r for r in signing if r.status not in ("expired", "not-yet-valid")]
        if not usable:
            findings.append(_no_valid_certificate(document, signing, kind))
        elif not facts.entra_apps:
            for report in usable:
                if report.status in ("critical", "warning"):
                    findings.append(Finding(
                        report.status, "Entra certificate in the metadata expiring",
                        f"Entra's signing certificate {_describe(report)} expires in "
                        f"{plural(report.days_left, 'day')}.",
                        False, kind, report.sha1,
                        expiring_lead(report.sha1, None, report.days_left, report.not_after, target)))
        if len(signing) > 1 and not facts.entra_apps:
            findings.append(Finding(
                "warning", "Entra metadata lists several signing certificates",
                f"{document.source or 'The Entra metadata'} lists {len(signing)} signing certificates, which "
                "usually means a rollover is prepared. Webex uses only the first one, so make the new one active in "
                f"Entra and import the metadata into {target} together. Which one is active is not visible "
                "here; Graph access would tell.", True, kind))
    return findings


def _no_valid_certificate(document: Document, signing: list[CertificateReport], kind) -> Finding:
    expired = [r for r in signing if r.status == "expired"]
    source = document.source or "The Entra metadata"
    return Finding(
        "expired" if expired else "critical", "No valid Entra signing certificate in the metadata",
        f"{source} has no currently valid signing certificate ("
        + "; ".join(f"{_describe(r)}: {r.status}" for r in signing) + "). Applications reject assertions signed "
        f"with an expired certificate; create a new certificate in {signing_place()}.",
        False, kind, expired[0].sha1 if expired else signing[0].sha1,
        f"{source} has no valid Entra signing certificate, so sign-ins signed with it fail: create a new "
        f"certificate in {signing_place()} and make it active.")


def trusted_idp_findings(facts: TrustFacts, entra_documents: list[Document], trusts, now) -> list[Finding]:
    """Compare the IdP certificate Webex is configured with against the one Entra signs with."""
    trusted = [reports[0] for d in facts.webex_trusted_idp_documents if (reports := idp_signing_reports(d, now, facts))]
    if not trusted:
        return []
    kind, target = _single_kind(trusts), import_place({t.kind for t in trusts})
    signing_now, how = _entra_signing_thumbprint(facts, entra_documents, now)
    if signing_now is None:
        return [Finding("info", "Cannot tell which certificate Entra signs with",
                        f"Webex trusts {_describe(trusted[0])}, but without Graph facts or a single-certificate Entra "
                        "metadata I cannot compare it with the certificate Entra uses.", True, kind, trusted[0].sha1)]
    findings = []
    for report in trusted:
        if report.sha1 == signing_now:
            findings.append(Finding("ok", "Webex trusts the certificate Entra signs with",
                                    f"Webex trusts {_describe(report)}, the certificate Entra signs with ({how}).",
                                    how != "Graph", kind, report.sha1))
        else:
            findings.append(Finding(
                "critical", "Webex trusts a different certificate than Entra signs with",
                f"Webex trusts {_describe(report)}, but Entra signs with {signing_now} ({how}). Webex rejects "
                "assertions that are not signed with the certificate it trusts, so sign-ins fail (or will fail as "
                f"soon as this configuration is used). Import Entra's current Federation Metadata XML into "
                f"{target}, or make the trusted certificate active again in Entra.",
                how != "Graph", kind, report.sha1,
                f"Webex trusts {report.sha1}, but Entra signs with {signing_now}, so sign-ins fail: import Entra's "
                f"current Federation Metadata XML into {target}."))
    return findings


def _entra_signing_thumbprint(facts: TrustFacts, documents, now: datetime) -> tuple[Optional[str], str]:
    active = [normalise_thumbprint(c.thumbprint) for a in facts.entra_apps for c in a.signing_certificates if c.active]
    if active:
        return active[0], "Graph"
    reports = [r for d in documents for r in idp_signing_reports(d, now, facts)]
    if len({r.sha1 for r in reports}) == 1:
        return reports[0].sha1, "the only certificate in Entra's metadata"
    return None, ""


def idp_signing_reports(document: Document, now: datetime, facts: TrustFacts) -> list[CertificateReport]:
    """IdP signing certificates in document order, once each (plain certificate files count; a KeyDescriptor
    without use serves signing too)."""
    seen, reports = set(), []
    for report in assess_document(document, now, warning_days=facts.warning_days, critical_days=facts.critical_days):
        idp_signing = report.role == "idp" and report.use in (None, "signing")
        if (report.role is None or idp_signing) and report.sha1 not in seen:
            seen.add(report.sha1)
            reports.append(report)
    return reports


def _relying_party(app: EntraAppFacts, trusts) -> str:
    """Who checks the assertions: Webex, unless the app is known to be another application."""
    return app.display_name if (app.identity.known and app.webex_kind is None) else "Webex"


def _import_target(app: EntraAppFacts, trusts) -> str:
    """Where Entra's new metadata goes for this app: Webex's place, or the other app's own SAML settings."""
    if app.webex_kind:
        return import_place({app.webex_kind})
    if app.identity.known:
        return other_app_import_place(app.display_name)
    return import_place({t.kind for t in trusts})


def _kind_of(app: EntraAppFacts, trusts) -> Optional[str]:
    return app.webex_kind or (None if app.identity.known else _single_kind(trusts))


def _single_kind(trusts: list[WebexTrust]) -> Optional[str]:
    kinds = {t.kind for t in trusts}
    return kinds.pop() if len(kinds) == 1 else None


def _describe(report: CertificateReport) -> str:
    return f"{report.subject} (thumbprint {report.sha1}, expires {_day(report.not_after)})"


def _day(moment: datetime) -> str:
    return iso_utc(moment)[:10]
