"""Trust diagnosis between Webex (SAML SP) and Microsoft Entra ID (SAML IdP), in plain language.

Two certificates matter and admins mix them up:
- Entra's **token-signing certificate** signs the SAML assertions. Webex must trust exactly that
  certificate (Control Hub: the imported IdP metadata; Site Administration: Site Certificate Manager).
- Webex's own **SP certificate** signs Webex's requests and decrypts encrypted assertions. Cisco renews
  it; it only has to reach Entra when Entra requires verification certificates (signed requests) or
  encrypts tokens for Webex (reference notes, section 3 and 1c).

``diagnose(facts, now)`` is pure: it takes parsed documents plus facts read from Graph (converted by
the Graph client into ``EntraAppFacts``) and returns findings, a summary and the answer to the usual
question "do I upload the new Webex certificate to Azure, or just activate it?". Findings drawn
from sources the notes mark as inferred or UNCONFIRMED carry ``inferred=True``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable, Optional
from urllib.parse import parse_qs, urlsplit

from rollover.certificates.health import (
    CertificateReport,
    assess_document,
    days_until,
    iso_utc,
    normalise_thumbprint,
    validity_status,
)
from rollover.certificates.parsing import Document, EntityInfo
from rollover.describe import plural

CONTROL_HUB = "control-hub"
SITE_ADMIN = "site-admin"

SEVERITY_ORDER = ("ok", "info", "warning", "critical")

CONTROL_HUB_HOST = re.compile(r"^idbroker[a-z0-9.-]*\.webex\.com$")
WEBEX_SITE_HOST = re.compile(r"^([a-z0-9-]+)\.webex\.com$")
SITE_ADMIN_DEFAULT_ENTITY_IDS = ("http://www.webex.com", "https://www.webex.com")

SP_CERT_PLACE = {
    CONTROL_HUB: "Control Hub, in the organisation's single sign-on settings (for example Management > "
                 "Organization Settings > Authentication > Single sign-on; the menu wording may differ)",
    SITE_ADMIN: "Site Administration > Configuration > Common Site Settings > SSO Configuration > "
                "Site SP Certificate Manager",
}
IDP_CERT_PLACE = {
    CONTROL_HUB: "Control Hub's single sign-on settings (re-import Entra's Federation Metadata XML; the menu "
                 "wording may differ)",
    SITE_ADMIN: "Site Administration > SSO Configuration > Site Certificate Manager (import Entra's certificate "
                "or its SAML metadata)",
}
VERIFICATION_PLACE = ("Entra admin center > Enterprise applications > (the Webex app) > Single sign-on > "
                      "SAML Certificates > Verification certificates")
TOKEN_ENCRYPTION_PLACE = "Entra admin center > Enterprise applications > (the Webex app) > Token encryption"
ENTRA_SIGNING_PLACE = "Entra admin center > Enterprise applications > (the Webex app) > Single sign-on > SAML Certificates"

VERDICT_ACTIVATE_ONLY = "activate-only"
VERDICT_UPLOAD_FIRST = "upload-before-activating"
VERDICT_UNKNOWN = "unknown"


# ---------------------------------------------------------------------------------------------
# Input and output


@dataclass(frozen=True)
class EntraSigningCertificate:
    """One token-signing certificate of an Entra SAML app (a ``Verify`` keyCredential)."""

    thumbprint: str
    not_before: datetime
    not_after: datetime
    active: bool  # thumbprint == preferredTokenSigningKeyThumbprint


@dataclass(frozen=True)
class EntraAppFacts:
    """What Graph says about one Entra enterprise app used for Webex SSO.

    ``requires_signed_requests`` is None when it could not be read. ``sp_entity_ids`` (the app's
    Identifier values) lets the diagnosis pair the app with a Webex trust; empty = applies to all.
    """

    display_name: str
    app_id: str
    signing_certificates: list[EntraSigningCertificate] = field(default_factory=list)
    requires_signed_requests: Optional[bool] = None
    verification_certificate_thumbprints: list[str] = field(default_factory=list)
    token_encryption_thumbprint: Optional[str] = None
    notification_emails: list[str] = field(default_factory=list)
    sp_entity_ids: list[str] = field(default_factory=list)


@dataclass
class TrustFacts:
    """Everything known about one Webex/Entra SSO setup.

    - ``webex_documents``: Webex SP metadata (Control Hub ``idb-meta-<org>-SP.xml``, Site
      Administration export) or Webex SP certificate files; may hold the current and the new one.
    - ``entra_documents``: what Entra publishes (Federation Metadata XML, the downloaded .cer).
    - ``webex_trusted_idp_documents``: the IdP metadata/certificate Webex is configured with today.
    - ``entra_apps``: Graph facts; empty when Graph was not consulted.
    """

    webex_documents: list[Document] = field(default_factory=list)
    entra_documents: list[Document] = field(default_factory=list)
    entra_apps: list[EntraAppFacts] = field(default_factory=list)
    webex_trusted_idp_documents: list[Document] = field(default_factory=list)
    warning_days: int = 60
    critical_days: int = 14


@dataclass(frozen=True)
class Finding:
    severity: str  # "critical" | "warning" | "info" | "ok"
    title: str
    text: str
    inferred: bool = False
    trust: Optional[str] = None  # "control-hub" | "site-admin" | None
    certificate_sha1: Optional[str] = None


@dataclass(frozen=True)
class WebexTrust:
    """A Webex SP entity recognised as Control Hub or Site Administration SSO."""

    kind: str
    entity_id: str
    name: str  # org id (Control Hub) or site name (Site Administration); "" when unknown
    inferred: bool
    reason: str


@dataclass
class Diagnosis:
    findings: list[Finding]
    summary: str
    upload_verdict: str  # "activate-only" | "upload-before-activating" | "unknown"
    upload_answer: str
    trusts: list[WebexTrust] = field(default_factory=list)

    @property
    def severity(self) -> str:
        return max((f.severity for f in self.findings), key=SEVERITY_ORDER.index, default="ok")


@dataclass(frozen=True)
class _WebexCertificate:
    report: CertificateReport
    trust: Optional[WebexTrust]
    uses: frozenset[str]


# ---------------------------------------------------------------------------------------------
# Entry point


def diagnose(facts: TrustFacts, now: datetime) -> Diagnosis:
    """Explain the state of the Webex/Entra SSO trust at ``now``."""
    trusts = recognise_trusts(facts.webex_documents)
    webex_certs = _webex_certificates(facts, trusts, now)
    newest = _newest_signing_by_trust(webex_certs)
    findings: list[Finding] = [_which_is_which()]
    findings += [_trust_finding(t) for t in trusts]
    findings += _webex_certificate_findings(webex_certs, newest)
    verdict, answer, upload_findings = _upload_decision(facts.entra_apps, newest, trusts)
    findings += upload_findings
    encryption_findings = _token_encryption_findings(facts.entra_apps, webex_certs, trusts)
    if any(f.severity == "critical" for f in encryption_findings):
        verdict, answer = _with_encryption(verdict, answer)
    findings += encryption_findings
    findings += _entra_app_findings(facts, trusts, now)
    findings += _entra_document_findings(facts, trusts, now)
    findings += _trusted_idp_findings(facts, trusts, now)
    findings.sort(key=lambda f: -SEVERITY_ORDER.index(f.severity))
    return Diagnosis(findings, _summary(findings, trusts, answer), verdict, answer, trusts)


# ---------------------------------------------------------------------------------------------
# Recognising the Webex trust


def recognise_trusts(documents: Iterable[Document]) -> list[WebexTrust]:
    """Webex SP entities of the documents, each recognised once."""
    trusts: dict[str, WebexTrust] = {}
    for document in documents:
        for entity in document.entities:
            trust = classify_webex_entity(entity)
            if trust and trust.entity_id not in trusts:
                trusts[trust.entity_id] = trust
    return list(trusts.values())


def classify_webex_entity(entity: EntityInfo) -> Optional[WebexTrust]:
    """Control Hub (idbroker entityID or ACS) or Site Administration (site URL, www.webex.com, dispatcher ACS)."""
    if "sp" not in entity.roles:
        return None
    return _as_control_hub(entity) or _as_site_admin(entity)


def _as_control_hub(entity: EntityInfo) -> Optional[WebexTrust]:
    for url, what in [(entity.entity_id, "entityID")] + [(acs, "ACS URL") for acs in entity.acs_urls]:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if CONTROL_HUB_HOST.match(host):
            segments = [s for s in parts.path.split("/") if s]
            org_id = segments[0] if what == "entityID" and segments else _org_from_meta_alias(segments)
            regional = host != "idbroker.webex.com"
            reason = f"its {what} is on {host}" + (
                " (a regional identity broker host; regional hosts are not confirmed by Cisco documentation)"
                if regional else "")
            return WebexTrust(CONTROL_HUB, entity.entity_id, org_id, regional, reason)
    return None


def _org_from_meta_alias(segments: list[str]) -> str:
    # .../idb/Consumer/metaAlias/<org-id>/sp
    if "metaAlias" in segments and segments.index("metaAlias") + 1 < len(segments):
        return segments[segments.index("metaAlias") + 1]
    return ""


def _as_site_admin(entity: EntityInfo) -> Optional[WebexTrust]:
    for acs in entity.acs_urls:
        parts = urlsplit(acs)
        if parts.path.startswith("/dispatcher/SAML2AuthService"):
            site = parse_qs(parts.query).get("siteurl", [""])[0] or _site_from_host(parts.hostname or "")
            return WebexTrust(SITE_ADMIN, entity.entity_id, site, False,
                              "its ACS URL is a Webex Meetings site's /dispatcher/SAML2AuthService")
    if entity.entity_id.rstrip("/") in SITE_ADMIN_DEFAULT_ENTITY_IDS:
        return WebexTrust(SITE_ADMIN, entity.entity_id, "", False,
                          "its entityID is http://www.webex.com, the Site Administration default SP ID")
    site = _site_from_host(urlsplit(entity.entity_id).hostname or "")
    if site and urlsplit(entity.entity_id).path.strip("/") == "":
        return WebexTrust(SITE_ADMIN, entity.entity_id, site, False, "its entityID is a Webex Meetings site URL")
    return None


def _site_from_host(host: str) -> str:
    match = WEBEX_SITE_HOST.match(host.lower())
    return match.group(1) if match and match.group(1) != "www" and not match.group(1).startswith("idbroker") else ""


def _trust_finding(trust: WebexTrust) -> Finding:
    if trust.kind == CONTROL_HUB:
        title = "Webex Control Hub SSO" + (f" (organisation {trust.name})" if trust.name else "")
        text = (f"This Webex metadata ({trust.entity_id}) belongs to Control Hub SSO because {trust.reason}. "
                f"Its certificates are managed in {SP_CERT_PLACE[CONTROL_HUB]}.")
    else:
        title = "Webex Site Administration SSO" + (f" (site {trust.name})" if trust.name else "")
        text = (f"This Webex metadata ({trust.entity_id}) belongs to a Meetings site's own SSO, configured in Site "
                f"Administration, because {trust.reason}. The Webex certificate is managed in "
                f"{SP_CERT_PLACE[SITE_ADMIN]}; Entra's certificate goes into the Site Certificate Manager.")
    return Finding("info", title, text, trust.inferred, trust.kind)


def _which_is_which() -> Finding:
    return Finding(
        "info",
        "Which certificate is which",
        "Two different certificates keep Webex SSO working. Entra's token-signing certificate signs every "
        "sign-in (the SAML assertion); Webex must trust exactly that one, so when it changes Entra's new "
        "Federation Metadata XML must be imported into Webex. Webex's own SP certificate signs Webex's sign-in "
        "requests and can decrypt encrypted assertions; Cisco renews it, and Entra only needs it when "
        "'Require verification certificates' or token encryption is turned on for the Webex app.",
    )


# ---------------------------------------------------------------------------------------------
# Webex SP certificates


def _webex_certificates(facts: TrustFacts, trusts: list[WebexTrust], now: datetime) -> list[_WebexCertificate]:
    """Webex SP certificates, one per (trust, certificate), with the uses they serve."""
    by_entity = {t.entity_id: t for t in trusts}
    merged: dict[tuple, tuple[CertificateReport, Optional[WebexTrust], set[str]]] = {}
    for document in facts.webex_documents:
        for report in assess_document(document, now, warning_days=facts.warning_days,
                                      critical_days=facts.critical_days):
            if report.role not in (None, "sp"):
                continue
            trust = by_entity.get(report.entity_id)
            key = (trust.entity_id if trust else report.entity_id, report.sha1)
            uses = {report.use} if report.use else {"signing", "encryption"}
            if key in merged:
                merged[key][2].update(uses)
            else:
                merged[key] = (report, trust, uses)
    return [_WebexCertificate(r, t, frozenset(u)) for r, t, u in merged.values()]


def _newest_signing_by_trust(certs: list[_WebexCertificate]) -> dict[Optional[str], _WebexCertificate]:
    """The Webex signing certificate with the latest expiry per trust kind: the one to activate."""
    newest: dict[Optional[str], _WebexCertificate] = {}
    for cert in certs:
        if "signing" not in cert.uses:
            continue
        kind = cert.trust.kind if cert.trust else None
        if kind not in newest or cert.report.not_after > newest[kind].report.not_after:
            newest[kind] = cert
    return newest


def _webex_certificate_findings(certs, newest) -> list[Finding]:
    findings = []
    newest_sha1 = {c.report.sha1 for c in newest.values()}
    for cert in certs:
        report, kind = cert.report, cert.trust.kind if cert.trust else None
        place = SP_CERT_PLACE.get(kind, "Control Hub or Site Administration")
        superseded = report.sha1 not in newest_sha1 and "signing" in cert.uses
        finding = _webex_status_finding(report, kind, place, superseded)
        if finding:
            findings.append(finding)
        if "sha1-signature" in report.findings or "weak-key" in report.findings:
            findings.append(Finding(
                "info", "Webex certificate uses old cryptography",
                f"The Webex certificate {_describe(report)} is {report.signature_algorithm} / {report.key}. Entra "
                "accepts SHA-1 request signatures only when 'allow weak algorithm' is ticked for verification "
                "certificates.", False, kind, report.sha1))
    return findings


def _webex_status_finding(report: CertificateReport, kind, place: str, superseded: bool) -> Optional[Finding]:
    name = f"Webex SP certificate {_describe(report)}"
    if report.status == "expired":
        if superseded:
            return Finding("info", "Old Webex certificate expired",
                           f"{name} expired on {_day(report.not_after)}; a newer Webex certificate is present, "
                           "so this one only matters if it is still the active one.", False, kind, report.sha1)
        return Finding("critical", "Webex SP certificate expired",
                       f"{name} expired on {_day(report.not_after)}. Webex renews its own certificate: get the new "
                       f"one (new SP metadata) and activate it in {place}.", False, kind, report.sha1)
    if report.status == "not-yet-valid":
        return Finding("info", "New Webex certificate not valid yet",
                       f"{name} is valid only from {_day(report.not_before)}; do not activate it before then.",
                       False, kind, report.sha1)
    if report.status in ("critical", "warning") and not superseded:
        return Finding(report.status, "Webex SP certificate expiring",
                       f"{name} expires in {plural(report.days_left, 'day')} ({_day(report.not_after)}). Cisco "
                       f"publishes the new certificate about two months ahead; activate it in {place}.", False, kind, report.sha1)
    return None


# ---------------------------------------------------------------------------------------------
# Does the new Webex certificate have to go to Entra?

def _upload_decision(apps: list[EntraAppFacts], newest, trusts) -> tuple[str, str, list[Finding]]:
    """Verdict, one-sentence answer and per-app findings about verification certificates."""
    where = _activation_place(trusts)
    if not apps:
        return VERDICT_UNKNOWN, (
            "Probably not: Entra only checks Webex's certificate when 'Require verification certificates' is "
            f"on, which is off by default, so usually you just activate the new certificate in {where}. I could "
            f"not read the Entra app to be sure; check {VERIFICATION_PLACE}."
        ), [Finding(
            "warning", "Unknown whether Entra requires verification certificates",
            "Without Graph access I cannot see whether the Webex app in Entra requires signed requests. If "
            f"'Require verification certificates' is on in {VERIFICATION_PLACE}, the new Webex signing "
            f"certificate must be uploaded there BEFORE it is activated in {where}; otherwise it does not need "
            "to be uploaded to Azure (inferred from Microsoft's and Cisco's documentation).", True, _single_kind(trusts))]
    decisions = [_verification_decision(app, newest, where, trusts) for app in apps]
    verdicts = {verdict for verdict, _ in decisions}
    findings = [finding for _, finding in decisions]
    if VERDICT_UPLOAD_FIRST in verdicts:
        return VERDICT_UPLOAD_FIRST, (
            f"Yes: upload the new Webex signing certificate to Entra ({VERIFICATION_PLACE}) first, then "
            f"activate it in {where}."), findings
    if VERDICT_UNKNOWN in verdicts:
        return VERDICT_UNKNOWN, (
            f"Not sure: I could not read whether Entra requires verification certificates; check "
            f"{VERIFICATION_PLACE}. If it does, upload first; otherwise just activate it in {where}."), findings
    if any(app.requires_signed_requests for app in apps):
        return VERDICT_ACTIVATE_ONLY, (
            f"No further upload: the new Webex certificate is already a verification certificate in Entra; "
            f"activate it in {where}."), findings
    return VERDICT_ACTIVATE_ONLY, (
        f"No: the new Webex certificate does not need to be uploaded to Azure; just activate it in {where}."), findings


def _verification_decision(app: EntraAppFacts, newest, where: str, trusts) -> tuple[str, Finding]:
    kind = _single_kind(trusts)
    new_cert = _newest_for_app(app, newest, trusts)
    if app.requires_signed_requests is None:
        return VERDICT_UNKNOWN, Finding(
            "warning", f"{app.display_name}: verification setting unknown",
            f"Graph did not say whether {app.display_name} requires signed requests. Check {VERIFICATION_PLACE}.",
            True, kind)
    if not app.requires_signed_requests:
        return VERDICT_ACTIVATE_ONLY, Finding(
            "ok", f"{app.display_name}: no verification certificates required",
            f"{app.display_name} does not require verification certificates, so Entra does not check Webex's "
            "request signatures: the new Webex certificate does not need to be uploaded to Azure; activate it in "
            f"{where}. (Inferred from Microsoft's documentation; it assumes no single-logout signature checks.)",
            True, kind)
    uploaded = {normalise_thumbprint(t) for t in app.verification_certificate_thumbprints}
    if new_cert is None:
        return VERDICT_UPLOAD_FIRST, Finding(
            "warning", f"{app.display_name}: verification certificates required",
            f"{app.display_name} requires verification certificates. Upload Webex's new signing certificate in "
            f"{VERIFICATION_PLACE} BEFORE activating it in {where}, or sign-ins fail.", False, kind)
    if new_cert.report.sha1 in uploaded:
        return VERDICT_ACTIVATE_ONLY, Finding(
            "ok", f"{app.display_name}: new Webex certificate already uploaded",
            f"The new Webex signing certificate {_describe(new_cert.report)} is already a verification certificate "
            f"of {app.display_name}; you can activate it in {where}.", False, kind, new_cert.report.sha1)
    return VERDICT_UPLOAD_FIRST, Finding(
        "critical", f"{app.display_name}: upload the new Webex certificate before activating it",
        f"{app.display_name} requires verification certificates and the new Webex signing certificate "
        f"{_describe(new_cert.report)} is not among them. Upload it in {VERIFICATION_PLACE} BEFORE activating it "
        f"in {where}: Entra rejects sign-in requests signed with an unknown certificate.",
        False, kind, new_cert.report.sha1)


def _with_encryption(verdict: str, answer: str) -> tuple[str, str]:
    """Token encryption for the Webex certificate forces an Entra change whatever the verification setting."""
    encryption = ("Entra encrypts tokens with the Webex certificate, so the new one must also be uploaded in "
                  f"{TOKEN_ENCRYPTION_PLACE} and switched together with Webex in one maintenance window.")
    if verdict == VERDICT_UPLOAD_FIRST:
        return verdict, f"{answer} Also: {encryption}"
    return VERDICT_UPLOAD_FIRST, f"Yes: {encryption}"


def _newest_for_app(app: EntraAppFacts, newest, trusts) -> Optional[_WebexCertificate]:
    matching = [c for c in newest.values() if c.trust and c.trust.entity_id in app.sp_entity_ids]
    candidates = matching or list(newest.values())
    return max(candidates, key=lambda c: c.report.not_after, default=None)


def _token_encryption_findings(apps, certs, trusts) -> list[Finding]:
    findings = []
    kind = _single_kind(trusts)
    encryption = {c.report.sha1: c for c in certs if "encryption" in c.uses}
    newest_encryption = max(encryption.values(), key=lambda c: c.report.not_after, default=None)
    for app in apps:
        if not app.token_encryption_thumbprint:
            continue
        current = normalise_thumbprint(app.token_encryption_thumbprint)
        findings.append(_encryption_finding(app, current, encryption, newest_encryption, kind))
    return findings


def _encryption_finding(app, current: str, encryption: dict, newest_encryption, kind) -> Finding:
    name = app.display_name
    if not encryption:
        return Finding("warning", f"{name}: token encryption uses a Webex certificate",
                       f"{name} encrypts tokens with certificate {current}. When Webex's certificate changes, the "
                       f"token encryption certificate in {TOKEN_ENCRYPTION_PLACE} must change at the same moment.",
                       True, kind, current)
    if current not in encryption:
        return Finding("critical", f"{name}: token encryption certificate is not Webex's",
                       f"{name} encrypts tokens with certificate {current}, which is not in the Webex metadata I was "
                       f"given; Webex may be unable to decrypt sign-ins. Compare it with {TOKEN_ENCRYPTION_PLACE}.",
                       True, kind, current)
    if newest_encryption and current != newest_encryption.report.sha1:
        return Finding("critical", f"{name}: token encryption must switch together with Webex",
                       f"{name} encrypts tokens for the current Webex certificate {current}. Upload the new Webex "
                       f"certificate {_describe(newest_encryption.report)} in {TOKEN_ENCRYPTION_PLACE} and, in one "
                       "maintenance window, activate it there and in Webex; otherwise Webex cannot decrypt sign-ins.",
                       True, kind, newest_encryption.report.sha1)
    return Finding("info", f"{name}: token encryption uses the newest Webex certificate",
                   f"{name} encrypts tokens for {_describe(encryption[current].report)}; make sure that certificate "
                   "is the active one in Webex.", True, kind, current)


# ---------------------------------------------------------------------------------------------
# Entra token-signing certificates


def _entra_app_findings(facts: TrustFacts, trusts, now: datetime) -> list[Finding]:
    findings = []
    for app in facts.entra_apps:
        findings += _entra_signing_findings(app, trusts, now, facts.warning_days, facts.critical_days)
        if not app.notification_emails:
            findings.append(Finding(
                "warning", f"{app.display_name}: nobody receives Entra's expiry e-mails",
                f"{app.display_name} has no notification e-mail address, so Entra's certificate expiry mails "
                f"(60, 30 and 7 days before) go nowhere. Add one in {ENTRA_SIGNING_PLACE}.", False, _single_kind(trusts)))
    return findings


def _entra_signing_findings(app: EntraAppFacts, trusts, now, warning_days, critical_days) -> list[Finding]:
    kind, import_place = _single_kind(trusts), _import_place(trusts)
    active = [c for c in app.signing_certificates if c.active]
    if not active:
        return [Finding("warning", f"{app.display_name}: no active signing certificate found",
                        f"Graph lists no active token-signing certificate for {app.display_name}; check "
                        f"{ENTRA_SIGNING_PLACE}.", False, kind)]
    current = active[0]
    findings = [_entra_active_finding(app, current, now, warning_days, critical_days, import_place, kind)]
    for candidate in app.signing_certificates:
        if not candidate.active and candidate.not_after > current.not_after:
            findings.append(_entra_rollover_finding(app, current, candidate, now, import_place, kind))
    return [f for f in findings if f]


def _entra_active_finding(app, cert: EntraSigningCertificate, now, warning_days, critical_days, import_place, kind):
    status = validity_status(cert.not_before, cert.not_after, now, warning_days=warning_days, critical_days=critical_days)
    thumb = normalise_thumbprint(cert.thumbprint)
    if status == "expired":
        return Finding("critical", f"{app.display_name}: Entra signing certificate expired",
                       f"Entra signs Webex sign-ins for {app.display_name} with certificate {thumb}, which expired on "
                       f"{_day(cert.not_after)}; Webex rejects assertions signed with it, so SSO is failing. Create a "
                       f"new certificate in {ENTRA_SIGNING_PLACE}, make it active and import the new Federation "
                       f"Metadata XML into {import_place} in the same maintenance window.", False, kind, thumb)
    if status == "not-yet-valid":
        return Finding("critical", f"{app.display_name}: active Entra signing certificate not valid yet",
                       f"The active signing certificate {thumb} is valid only from {_day(cert.not_before)}; Webex "
                       "rejects assertions signed with it until then.", False, kind, thumb)
    if status in ("critical", "warning"):
        return Finding(status, f"{app.display_name}: Entra signing certificate expiring",
                       f"Entra's token-signing certificate {thumb} for {app.display_name} expires in "
                       f"{plural(days_until(cert.not_after, now), 'day')} ({_day(cert.not_after)}). Create a new one "
                       f"in {ENTRA_SIGNING_PLACE} (it stays inactive), then in a maintenance window make it active and "
                       f"import the new Federation Metadata XML into {import_place}.", False, kind, thumb)
    return Finding("ok", f"{app.display_name}: Entra signing certificate valid",
                   f"Entra's active token-signing certificate {thumb} is valid until {_day(cert.not_after)}.",
                   False, kind, thumb)


def _entra_rollover_finding(app, current, candidate, now, import_place, kind) -> Finding:
    thumb = normalise_thumbprint(candidate.thumbprint)
    not_yet = now < candidate.not_before
    timing = (f" It is valid only from {_day(candidate.not_before)}: do not activate it before then."
              if not_yet else "")
    return Finding(
        "warning", f"{app.display_name}: Entra certificate rollover prepared",
        f"{app.display_name} has an inactive signing certificate {thumb} (valid {_day(candidate.not_before)} to "
        f"{_day(candidate.not_after)}) next to the active {normalise_thumbprint(current.thumbprint)}. Webex trusts "
        "only one IdP certificate (it uses the first one in the metadata), so making it active in Entra and "
        f"importing the new Federation Metadata XML into {import_place} must happen together in a maintenance "
        f"window.{timing}", True, kind, thumb)


def _entra_document_findings(facts: TrustFacts, trusts, now: datetime) -> list[Finding]:
    """Entra metadata/certificate files: statuses, and a rollover hint when they list several certificates."""
    findings = []
    kind, import_place = _single_kind(trusts), _import_place(trusts)
    for document in facts.entra_documents:
        signing = _idp_signing_reports(document, now, facts)
        if not signing:
            continue
        usable = [r for r in signing if r.status not in ("expired", "not-yet-valid")]
        if not usable:
            expired = [r for r in signing if r.status == "expired"]
            findings.append(Finding(
                "critical", "No valid Entra signing certificate in the metadata",
                f"{document.source or 'The Entra metadata'} has no currently valid signing certificate ("
                + "; ".join(f"{_describe(r)}: {r.status}" for r in signing) + "). Webex rejects assertions signed "
                f"with an expired certificate; create a new certificate in {ENTRA_SIGNING_PLACE}.",
                False, kind, expired[0].sha1 if expired else signing[0].sha1))
        elif not facts.entra_apps:
            for report in usable:
                if report.status in ("critical", "warning"):
                    findings.append(Finding(report.status, "Entra certificate in the metadata expiring",
                                            f"Entra's signing certificate {_describe(report)} expires in "
                                            f"{plural(report.days_left, 'day')}.", False, kind, report.sha1))
        if len(signing) > 1 and not facts.entra_apps:
            findings.append(Finding(
                "warning", "Entra metadata lists several signing certificates",
                f"{document.source or 'The Entra metadata'} lists {len(signing)} signing certificates, which "
                "usually means a rollover is prepared. Webex uses only the first one, so make the new one active in "
                f"Entra and import the metadata into {import_place} together. Which one is active is not visible "
                "here; Graph access would tell.", True, kind))
    return findings


def _trusted_idp_findings(facts: TrustFacts, trusts, now: datetime) -> list[Finding]:
    """Compare the IdP certificate Webex is configured with against the one Entra signs with."""
    trusted = [reports[0] for d in facts.webex_trusted_idp_documents if (reports := _idp_signing_reports(d, now, facts))]
    if not trusted:
        return []
    kind, import_place = _single_kind(trusts), _import_place(trusts)
    signing_now, how = _entra_signing_thumbprint(facts, now)
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
                f"{import_place}, or make the trusted certificate active again in Entra.",
                how != "Graph", kind, report.sha1))
    return findings


def _entra_signing_thumbprint(facts: TrustFacts, now: datetime) -> tuple[Optional[str], str]:
    active = [normalise_thumbprint(c.thumbprint) for a in facts.entra_apps for c in a.signing_certificates if c.active]
    if active:
        return active[0], "Graph"
    reports = [r for d in facts.entra_documents for r in _idp_signing_reports(d, now, facts)]
    if len({r.sha1 for r in reports}) == 1:
        return reports[0].sha1, "the only certificate in Entra's metadata"
    return None, ""


def _idp_signing_reports(document: Document, now: datetime, facts: TrustFacts) -> list[CertificateReport]:
    """IdP signing certificates in document order, once each (plain certificate files count)."""
    seen, reports = set(), []
    for report in assess_document(document, now, warning_days=facts.warning_days, critical_days=facts.critical_days):
        if (report.role is None or (report.role == "idp" and report.use == "signing")) and report.sha1 not in seen:
            seen.add(report.sha1)
            reports.append(report)
    return reports


# ---------------------------------------------------------------------------------------------
# Wording helpers


def _summary(findings: list[Finding], trusts: list[WebexTrust], answer: str) -> str:
    critical = [f for f in findings if f.severity == "critical"]
    warnings = [f for f in findings if f.severity == "warning"]
    if trusts:
        names = ", ".join(_trust_label(t) for t in trusts)
        context = f"Webex side: {names}."
    else:
        context = "I could not tell from the documents whether this is Control Hub or Site Administration SSO."
    if critical:
        titles = "; ".join(dict.fromkeys(f.title for f in critical))
        state = f"{plural(len(critical), 'urgent problem')}: {titles}."
    elif warnings:
        titles = "; ".join(dict.fromkeys(f.title for f in warnings))
        state = f"No outage risk right now, {plural(len(warnings), 'thing')} to plan: {titles}."
    else:
        state = "Everything checked is in order."
    return f"{state} {context} New Webex certificate: {answer}"


def _trust_label(trust: WebexTrust) -> str:
    label = "Control Hub" if trust.kind == CONTROL_HUB else "Site Administration"
    suffix = f" {trust.name}" if trust.name else ""
    return f"{label}{suffix}" + (" (inferred)" if trust.inferred else "")


def _single_kind(trusts: list[WebexTrust]) -> Optional[str]:
    kinds = {t.kind for t in trusts}
    return kinds.pop() if len(kinds) == 1 else None


def _activation_place(trusts: list[WebexTrust]) -> str:
    kinds = sorted({t.kind for t in trusts}) or [CONTROL_HUB, SITE_ADMIN]
    return " or ".join(SP_CERT_PLACE[k] for k in kinds)


def _import_place(trusts: list[WebexTrust]) -> str:
    kinds = sorted({t.kind for t in trusts}) or [CONTROL_HUB, SITE_ADMIN]
    return " or ".join(IDP_CERT_PLACE[k] for k in kinds)


def _describe(report: CertificateReport) -> str:
    return f"{report.subject} (thumbprint {report.sha1}, expires {_day(report.not_after)})"


def _day(moment: datetime) -> str:
    return iso_utc(moment)[:10]
