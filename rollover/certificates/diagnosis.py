"""Trust diagnosis between Webex (SAML SP) and Microsoft Entra ID (SAML IdP), in plain language.

Two certificates matter and admins mix them up:
- Entra's **token-signing certificate** signs the SAML assertions. Webex must trust exactly that
  certificate (Control Hub: the imported IdP metadata; Site Administration: Site Certificate Manager).
- Webex's own **SP certificate** signs Webex's requests and decrypts encrypted assertions. Cisco renews
  it; it only has to reach Entra when Entra requires verification certificates (signed requests) or
  encrypts tokens for Webex.

The question Rollover exists for, "do I upload the new Webex certificate to Azure, or just activate it?",
is decided only by what Entra holds for the Webex app, never by the ``use`` the Webex metadata gives:
- Microsoft Learn "Enforce signed SAML authentication requests": with 'Require verification certificates'
  on, Entra rejects a request signed by a certificate it does not hold ("No certificate matching with
  provided key identifier") and an unsigned one ("Request not signed, but verification is enabled",
  AADSTS76021); with it off, Entra "does not validate signed authentication requests".
- Microsoft Learn "Configure SAML token encryption": Entra encrypts assertions with the certificate that
  ``tokenEncryptionKeyId`` names ("Encryption certificates are stored on the application object");
  Webex can only decrypt with its active certificate, so both switch in one window.

``diagnose(facts, now)`` is pure: parsed documents plus Entra app facts in, findings, a summary (the
most urgent thing first, then the answer) and the answer out. Findings drawn from sources the notes
mark as inferred or UNCONFIRMED carry ``inferred=True``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Optional

from rollover.certificates import entra_findings
from rollover.certificates.health import FINDINGS, CertificateReport, assess_document, iso_utc, normalise_thumbprint
from rollover.certificates.parsing import Document
from rollover.certificates.places import (  # noqa: F401  (re-exported: rotations and cards name these places)
    ENTRA_SIGNING_PLACE,
    IDP_CERT_PLACE,
    SP_CERT_PLACE,
    TOKEN_ENCRYPTION_PLACE,
    VERIFICATION_PLACE,
    activation_place,
    token_encryption_place,
    verification_place,
)
from rollover.certificates.trust_facts import (  # noqa: F401  (re-exported)
    SEVERITY_ORDER,
    TE_OFF,
    TE_ON,
    TE_UNIDENTIFIED,
    TE_UNKNOWN,
    EntraAppFacts,
    EntraSigningCertificate,
    Finding,
    TrustFacts,
)
from rollover.certificates.webex_trust import (  # noqa: F401  (re-exported)
    ACTIVATE_IN,
    CONTROL_HUB,
    SITE_ADMIN,
    WebexTrust,
    app_serves,
    classify_webex_entity,
    is_webex_document,
    recognise_trusts,
)
from rollover.describe import plural

VERDICT_ACTIVATE_ONLY = "activate-only"
VERDICT_UPLOAD_FIRST = "upload-then-activate"
VERDICT_UNKNOWN = "unknown"
VERDICT_NOT_APPLICABLE = "not-applicable"
LEGACY_VERDICTS = {"upload-before-activating": VERDICT_UPLOAD_FIRST}   # stored in rotation plans before issue 10
UPLOAD_VERIFICATION, UPLOAD_TOKEN_ENCRYPTION = "verification", "token-encryption"
UNKNOWN_TITLE = "Unknown whether Entra needs the new Webex certificate"
HOW_TO_GET_APP_FACTS = (
    "For a definite answer drop the app's JSON here (`az ad app show --id <appId>` and `az ad sp show --id "
    "<appId>`), pass it to `bot.py explain --entra-app`, or let an operator grant Graph read access "
    "(Application.Read.All).")


@dataclass
class Diagnosis:
    findings: list[Finding]
    summary: str
    upload_verdict: str  # "activate-only" | "upload-then-activate" | "unknown" | "not-applicable"
    upload_answer: str
    trusts: list[WebexTrust] = field(default_factory=list)
    upload_to: list[str] = field(default_factory=list)
    activate_in: Optional[str] = None   # "control-hub" | "site-administration" | None
    urgent: str = ""       # the summary's first sentence when something more urgent than the answer leads it
    next_step: str = ""    # how to get a definite answer when Entra's side is not known

    @property
    def severity(self) -> str:
        return max((f.severity for f in self.findings), key=SEVERITY_ORDER.index, default="ok")

    @property
    def about_webex_certificate(self) -> bool:
        """False when no Webex document was given: then nobody is asked the Webex upload question."""
        return self.upload_verdict != VERDICT_NOT_APPLICABLE

    def to_json(self) -> dict:
        """The JSON of ``bot.py explain --json``."""
        return {"answer": self.upload_verdict, "upload_to": list(self.upload_to), "activate_in": self.activate_in,
                "summary": self.summary, "findings": [f.to_json() for f in self.findings]}


@dataclass(frozen=True)
class _Case:
    """One Entra app serving one Webex trust, and what the trust's new certificate needs there."""

    app: EntraAppFacts
    trust: WebexTrust
    new: CertificateReport
    known: frozenset[str]          # every certificate of the trust (sha1), current and new
    need_verification: bool
    need_token_encryption: bool

    @property
    def unsure(self) -> bool:
        return (self.app.requires_signed_requests is None
                or self.app.token_encryption in (TE_UNIDENTIFIED, TE_UNKNOWN))


@dataclass
class _Answer:
    verdict: str
    upload_to: list[str]
    activate_in: Optional[str]
    sentence: str
    findings: list[Finding]


# ---------------------------------------------------------------------------------------------
# Entry point


def diagnose(facts: TrustFacts, now: datetime) -> Diagnosis:
    """Explain the state of the Webex/Entra SSO trust at ``now``."""
    documents = [*facts.webex_documents, *facts.entra_documents, *facts.other_sp_documents]
    trusts = recognise_trusts(documents)
    webex = _certificates_by_entity(documents, facts, now, {t.entity_id for t in trusts})
    others = _other_sp_certificates(documents, facts, now, {t.entity_id for t in trusts})
    findings: list[Finding] = []
    if trusts or any(app.webex_kind or not app.identity.known for app in facts.entra_apps):
        findings.append(_which_is_which())
    findings += [_trust_finding(t) for t in trusts]
    for trust in trusts:
        findings += _webex_certificate_findings(trust, webex[trust.entity_id])
    answer = _decide(facts, trusts, webex)
    findings += answer.findings
    for entity_id, reports in others.items():
        findings += _other_sp_findings(entity_id, reports)
    findings += _stale_metadata_findings(documents, facts, now)
    findings += entra_findings.app_findings(facts, trusts, now)
    findings += entra_findings.document_findings(facts, documents, trusts, now)
    findings += entra_findings.trusted_idp_findings(facts, documents, trusts, now)
    findings.sort(key=lambda f: -SEVERITY_ORDER.index(f.severity))
    summary = _summary(findings, answer, facts, now)
    urgent = next((f.headline for f in findings if f.severity in ("expired", "critical") and not f.answer), "")
    unknown = any(f.title == UNKNOWN_TITLE for f in findings)
    return Diagnosis(findings, summary, answer.verdict, answer.sentence, trusts, answer.upload_to, answer.activate_in,
                     urgent, HOW_TO_GET_APP_FACTS if unknown else "")


def verdict_of(stored: str) -> str:
    """A verdict read back from storage, in today's words."""
    return LEGACY_VERDICTS.get(stored, stored)


def app_standing_answer(app: EntraAppFacts) -> tuple[str, str]:
    """What one app's settings mean for the next certificate change, before any Webex metadata is seen:
    ("other-app", guidance) for another application's app, else a verdict and its sentence."""
    name = app.display_name
    if app.identity.known and app.webex_kind is None:
        return "other-app", (f"{name} is not a Webex app: when Entra's signing certificate for it changes, update "
                             f"the IdP signing certificate in {name}'s SAML settings (import Entra's new Federation "
                             "Metadata XML or its certificate there).")
    act = activation_place({app.webex_kind} if app.webex_kind else set())
    needs = [place for place, needed in ((verification_place(name), app.requires_signed_requests is True),
                                         (token_encryption_place(name), app.token_encryption == TE_ON)) if needed]
    if needs:
        return VERDICT_UPLOAD_FIRST, (f"When Webex renews its certificate, add the new one in {' and in '.join(needs)} "
                                      f"first, then activate it in {act} (one maintenance window for token "
                                      "encryption).")
    if app.requires_signed_requests is None or app.token_encryption in (TE_UNIDENTIFIED, TE_UNKNOWN):
        return VERDICT_UNKNOWN, (f"Not known: I could not read all of {name}'s settings; check "
                                 f"{verification_place(name)} and {token_encryption_place(name)} before activating "
                                 f"Webex's next certificate in {act}.")
    return VERDICT_ACTIVATE_ONLY, (f"When Webex renews its certificate, no upload to Azure: {name} neither requires "
                                   f"verification certificates nor encrypts tokens, so just activate it in {act}.")


# ---------------------------------------------------------------------------------------------
# Webex SP certificates


def _certificates_by_entity(documents, facts: TrustFacts, now, entity_ids: set[str]) -> dict[str, list]:
    """Each Webex entity's SP certificates, once per certificate whatever ``use`` the metadata gives
    (Webex uses one certificate for signing and decryption; Entra decides what it needs)."""
    merged: dict[str, dict[str, CertificateReport]] = {entity_id: {} for entity_id in entity_ids}
    for document in documents:
        for report in _reports(document, facts, now):
            if report.role == "sp" and report.entity_id in merged:
                merged[report.entity_id].setdefault(report.sha1, report)
    return {entity_id: list(reports.values()) for entity_id, reports in merged.items()}


def _other_sp_certificates(documents, facts: TrustFacts, now, webex_ids: set[str]) -> dict[str, list]:
    merged: dict[str, dict[str, CertificateReport]] = {}
    for document in documents:
        for report in _reports(document, facts, now):
            if report.role == "sp" and report.entity_id not in webex_ids:
                merged.setdefault(report.entity_id or "", {}).setdefault(report.sha1, report)
    return {entity_id: list(reports.values()) for entity_id, reports in merged.items()}


def _reports(document: Document, facts: TrustFacts, now: datetime) -> list[CertificateReport]:
    return assess_document(document, now, warning_days=facts.warning_days, critical_days=facts.critical_days)


def _newest(reports: list[CertificateReport]) -> Optional[CertificateReport]:
    """The certificate to activate: the one that expires last (then the one valid last)."""
    return max(reports, key=lambda r: (r.not_after, r.not_before), default=None)


def _webex_certificate_findings(trust: WebexTrust, reports: list[CertificateReport]) -> list[Finding]:
    findings = []
    newest = _newest(reports)
    for report in reports:
        finding = _webex_status_finding(report, trust, superseded=report is not newest)
        if finding:
            findings.append(finding)
        findings += _crypto_findings(report, "Webex certificate", trust.kind)
    if not reports:
        findings.append(Finding("warning", "No certificate in the Webex metadata",
                                f"The Webex metadata of {trust.entity_id} holds no certificate, so there is no new "
                                "certificate to activate; download it again from Webex.", False, trust.kind))
    return findings


def _crypto_findings(report: CertificateReport, what: str, kind: Optional[str]) -> list[Finding]:
    """The certificate's own weaknesses, each with its own text. Its SHA-1 *signature* is not the RSA-SHA1
    *request signature* option of Entra (that one is F-ALG in ``_verification_findings``)."""
    findings = []
    if "sha1-signature" in report.findings or "md5-signature" in report.findings:
        code = "sha1-signature" if "sha1-signature" in report.findings else "md5-signature"
        digest = "SHA-1" if code == "sha1-signature" else "MD5"
        findings.append(Finding("info", f"{what} signed with {digest}",
                                f"{_describe(report)}: {FINDINGS[code]} This is the certificate's own signature, "
                                "not how requests are signed.", False, kind, report.sha1))
    if "weak-key" in report.findings:
        findings.append(Finding("warning", f"{what} key under 2048 bits",
                                f"{report.subject} has an {report.key} key (thumbprint {report.sha1}). "
                                f"{FINDINGS['weak-key']}", False, kind, report.sha1))
    return findings


def _webex_status_finding(report: CertificateReport, trust: WebexTrust, superseded: bool) -> Optional[Finding]:
    name, place, kind = f"Webex SP certificate {_describe(report)}", SP_CERT_PLACE[trust.kind], trust.kind
    if report.status == "expired":
        if superseded:
            return Finding("info", "Old Webex certificate expired",
                           f"{name} expired on {_day(report.not_after)}; a newer Webex certificate is present, "
                           "so this one only matters if it is still the active one.", False, kind, report.sha1)
        return Finding("expired", "Webex SP certificate expired",
                       f"{name} expired on {_day(report.not_after)}. Cisco renews it: get the new Webex SP "
                       f"metadata and activate the new certificate in {place}.", False, kind, report.sha1,
                       f"Webex's SP certificate {report.sha1} expired on {_day(report.not_after)}: get the new "
                       f"Webex SP metadata and activate the new certificate in {place}.")
    if report.status == "not-yet-valid":
        return Finding("info", "New Webex certificate not valid yet",
                       f"{name} is valid only from {_day(report.not_before)}; do not activate it before then.",
                       False, kind, report.sha1)
    if report.status in ("critical", "warning") and not superseded:
        return Finding(report.status, "Webex SP certificate expiring",
                       f"{name} expires in {plural(report.days_left, 'day')} ({_day(report.not_after)}). Cisco "
                       f"publishes the new certificate about two months ahead; activate it in {place}.", False, kind,
                       report.sha1,
                       f"Webex's SP certificate {report.sha1} expires in {plural(report.days_left, 'day')} "
                       f"({_day(report.not_after)}) and no newer one is in the metadata: get the new Webex SP "
                       f"metadata and activate its certificate in {place}.")
    return None


# ---------------------------------------------------------------------------------------------
# Other service providers: never Webex's, generic guidance


def _other_sp_findings(entity_id: str, reports: list[CertificateReport]) -> list[Finding]:
    findings, newest = [], _newest(reports)
    advice = ("It is that provider's own certificate, not Webex's: get the provider's new metadata; if its Entra "
              "app requires verification certificates or encrypts tokens, add the new certificate there.")
    for report in reports:
        findings += _crypto_findings(report, f"Service provider {entity_id}: certificate", None)
        superseded = report is not newest
        if report.status == "expired" and not superseded:
            state, severity = f"expired on {_day(report.not_after)}", "expired"
        elif report.status in ("critical", "warning") and not superseded:
            state, severity = f"expires in {plural(report.days_left, 'day')} ({_day(report.not_after)})", report.status
        elif report.status == "not-yet-valid":
            state, severity = f"is valid only from {_day(report.not_before)}", "info"
        else:
            continue
        title = {"expired": "expired", "info": "not valid yet"}.get(severity, "expiring")
        findings.append(Finding(severity, f"Service provider {entity_id}: certificate {title}",
                                f"{_describe(report)} of service provider {entity_id} {state}. {advice}",
                                False, None, report.sha1,
                                f"Service provider {entity_id}: its certificate {report.sha1} {state}; get the "
                                "provider's new metadata (it is not Webex's certificate)."))
    return findings


def _stale_metadata_findings(documents: list[Document], facts: TrustFacts, now: datetime) -> list[Finding]:
    return [Finding("warning", "Metadata validUntil passed", f"{document.source or 'The metadata'}: "
                    f"{FINDINGS['metadata-expired']} Download it again from its publisher.")
            for document in documents
            if any("metadata-expired" in r.findings for r in _reports(document, facts, now))]


# ---------------------------------------------------------------------------------------------
# Does the new Webex certificate have to go to Entra?


def _decide(facts: TrustFacts, trusts: list[WebexTrust], webex: dict[str, list]) -> _Answer:
    if not trusts:
        return _Answer(VERDICT_NOT_APPLICABLE, [], None, "", [])
    kinds = {t.kind for t in trusts}
    activate_in = ACTIVATE_IN[next(iter(kinds))] if len(kinds) == 1 else None
    act = activation_place(kinds)
    findings, cases, unpaired = [], [], []
    for trust in trusts:
        new = _newest(webex[trust.entity_id])
        if new is None:
            unpaired.append((trust, None))
            continue
        apps = _apps_serving(facts.entra_apps, trust, findings)
        if not apps:
            unpaired.append((trust, new))
        known = frozenset(r.sha1 for r in webex[trust.entity_id])
        for app in apps:
            case = _case(app, trust, new, known)
            cases.append(case)
            findings += _verification_findings(case, act) + _token_encryption_findings(case, act)
    upload_to = [what for what, needed in ((UPLOAD_VERIFICATION, any(c.need_verification for c in cases)),
                                           (UPLOAD_TOKEN_ENCRYPTION, any(c.need_token_encryption for c in cases)))
                 if needed]
    unsure = bool(unpaired) or any(c.unsure for c in cases)
    verdict = VERDICT_UPLOAD_FIRST if upload_to else VERDICT_UNKNOWN if unsure else VERDICT_ACTIVATE_ONLY
    for trust, new in unpaired:
        if new is not None:
            findings.append(_unknown_finding(trust, new, facts, act))
    return _Answer(verdict, upload_to, activate_in, _answer_sentence(verdict, cases, unpaired, act), findings)


def _apps_serving(apps: list[EntraAppFacts], trust: WebexTrust, findings: list[Finding]) -> list[EntraAppFacts]:
    """The apps whose Identifier or reply URL names the trust; apps without either serve every trust; a
    single app given is used anyway (with a warning that its Identifier does not match)."""
    matching = [app for app in apps if app_serves(app.identity, trust)]
    if matching:
        return matching
    unlabelled = [app for app in apps if not app.identity.known]
    if unlabelled:
        return unlabelled
    if len(apps) == 1:
        app = apps[0]
        findings.append(Finding(
            "warning", f"{app.display_name}: Identifier does not match the Webex metadata",
            f"{app.display_name}'s Identifier ({', '.join(app.sp_entity_ids) or 'none'}) does not match the "
            f"Webex metadata's entityID {trust.entity_id}; I used its settings anyway because it is the only app "
            "given. Check that it is the Webex app.", False, trust.kind))
        return [app]
    return []


def _case(app: EntraAppFacts, trust: WebexTrust, new: CertificateReport, known: frozenset[str]) -> _Case:
    uploaded = {normalise_thumbprint(t) for t in app.verification_certificate_thumbprints}
    encrypting = normalise_thumbprint(app.token_encryption_thumbprint or "")
    need_verification = app.requires_signed_requests is True and new.sha1 not in uploaded
    need_token_encryption = app.token_encryption == TE_ON and encrypting != new.sha1
    return _Case(app, trust, new, known, need_verification, need_token_encryption)


def _verification_findings(case: _Case, act: str) -> list[Finding]:
    """Microsoft Learn "Enforce signed SAML authentication requests" (see the module docstring)."""
    app, new, kind = case.app.display_name, case.new, case.trust.kind
    where = verification_place(app)
    required = case.app.requires_signed_requests
    if required is None:
        return [Finding("warning", f"{app}: verification setting unknown",
                        f"I could not read whether {app} requires verification certificates (the app registration's "
                        f"requestSignatureVerification). Look in {where}: if 'Require verification certificates' "
                        f"is on, add the new Webex certificate {new.sha1} there before activating it in {act}.",
                        False, kind, new.sha1, answer=True)]
    if not required:
        return [Finding("ok", f"{app}: verification certificates not required",
                        f"'Require verification certificates' is off for {app}, so Entra does not check Webex's "
                        f"request signatures ({where}).", False, kind, answer=True)]
    findings = []
    if case.need_verification:
        findings.append(Finding(
            "warning", f"{app}: upload the new Webex certificate to Verification certificates",
            f"{app} requires verification certificates and the new Webex certificate {_describe(new)} is not "
            f"among them. Add it in {where} before activating it in {act}: Entra rejects requests signed with a "
            "certificate it does not hold ('No certificate matching with provided key identifier').",
            False, kind, new.sha1, answer=True))
    else:
        findings.append(Finding("ok", f"{app}: new Webex certificate already a verification certificate",
                                f"The new Webex certificate {_describe(new)} is already a verification certificate "
                                f"of {app}.", False, kind, new.sha1, answer=True))
    if case.trust.authn_requests_signed is False:
        findings.append(_unsigned_requests_finding(case, where))
    if (case.app.allowed_weak_algorithms or "").lower() != "rsasha1":
        findings.append(Finding(
            "info", f"{app}: Entra accepts only RSA-SHA256 request signatures",
            f"'Allow weak algorithm' is off for {app}, so Entra rejects requests Webex signs with RSA-SHA1 "
            "('Signature algorithm not allowed. Only RSA-SHA256 is supported'). This is about how requests are "
            "signed, not about the certificate's own signature.", False, kind))
    return findings


def _unsigned_requests_finding(case: _Case, where: str) -> Finding:
    # Microsoft Learn "Enforce signed SAML authentication requests": "Request not signed, but verification is
    # enabled"; error reference: AADSTS76021 ApplicationRequiresSignedRequests.
    app = case.app.display_name
    lead = (f"Sign-ins are rejected now: {app} requires signed requests, but Webex's metadata says it does not sign "
            "them (AuthnRequestsSigned=\"false\"; Entra answers AADSTS76021).")
    return Finding("critical", f"{app}: Entra requires signed requests, Webex does not sign them",
                   f"{lead} Turn on request signing in Webex (Site Administration: 'AuthnRequest Signed' in SSO "
                   f"Configuration) or turn off 'Require verification certificates' in {where}.",
                   False, case.trust.kind, lead=lead)


def _token_encryption_findings(case: _Case, act: str) -> list[Finding]:
    """Microsoft Learn "Configure SAML token encryption" (see the module docstring)."""
    app, new, kind = case.app.display_name, case.new, case.trust.kind
    where = token_encryption_place(app)
    state = case.app.token_encryption
    current = normalise_thumbprint(case.app.token_encryption_thumbprint or "")
    if state == TE_OFF:
        return [Finding("ok", f"{app}: no token encryption", f"Entra does not encrypt tokens for {app} ({where}), "
                        "so Webex's certificate is not needed there.", False, kind, answer=True)]
    if state == TE_UNKNOWN:
        return [Finding("warning", f"{app}: token encryption setting unknown",
                        f"I could not read whether Entra encrypts tokens for {app}. Look in {where}: if a Webex "
                        f"certificate is active there, import the new Webex certificate {new.sha1} and switch it "
                        f"together with {act}.", False, kind, new.sha1, answer=True)]
    if state == TE_UNIDENTIFIED:
        return [Finding("warning", f"{app}: token encryption certificate cannot be identified",
                        f"Entra encrypts tokens for {app} with a key whose thumbprint I cannot read. Compare it in "
                        f"{where} with Webex's certificates: if it is Webex's current one, import the new Webex "
                        f"certificate {new.sha1} there and switch it together with {act}.",
                        True, kind, new.sha1, answer=True)]
    if current == new.sha1:
        return [Finding("warning", f"{app}: token encryption already uses the new Webex certificate",
                        f"{app} encrypts tokens for the new Webex certificate {_describe(new)}; activate it in {act} "
                        "now, or Webex cannot decrypt sign-ins.", False, kind, new.sha1, answer=True)]
    if current not in case.known:
        return [Finding("critical", f"{app}: token encryption certificate is not in the Webex metadata",
                        f"{app} encrypts tokens with certificate {current}, which is not in the Webex metadata I was "
                        f"given, so Webex may be unable to decrypt sign-ins. Import the new Webex certificate "
                        f"{_describe(new)} in {where} and, in one maintenance window, activate it there and in "
                        f"{act}.", False, kind, current, answer=True)]
    return [Finding("warning", f"{app}: token encryption must switch to the new Webex certificate",
                    f"{app} encrypts tokens with Webex's current certificate {current}. Import the new Webex "
                    f"certificate {_describe(new)} in {where} and, in one maintenance window, activate it there "
                    f"('Activate token encryption') and in {act}; otherwise Webex cannot decrypt sign-ins.",
                    False, kind, new.sha1, answer=True)]


def _unknown_finding(trust: WebexTrust, new: CertificateReport, facts: TrustFacts, act: str) -> Finding:
    known = ""
    if facts.entra_note:
        known = f"{facts.entra_note} "
    elif facts.entra_apps:
        known = f"None of the Entra apps I know has the Identifier {trust.entity_id}. "
    return Finding(
        "warning", UNKNOWN_TITLE,
        f"{known}Upload the new Webex certificate {new.sha1} to Entra first only if the Webex app requires "
        f"verification certificates (look in {verification_place()}: 'Require verification certificates') or "
        f"encrypts tokens (look in {token_encryption_place()}: an active certificate); otherwise just activate "
        f"it in {act}. {HOW_TO_GET_APP_FACTS}", True, trust.kind, new.sha1, answer=True)


# ---------------------------------------------------------------------------------------------
# Wording: the answer sentence and the summary


def _answer_sentence(verdict: str, cases: list[_Case], unpaired: list, act: str) -> str:
    new = next((c.new for c in cases), None) or next((n for _, n in unpaired if n is not None), None)
    thumb = new.sha1 if new else "(none in the metadata)"
    if verdict == VERDICT_UPLOAD_FIRST:
        return _upload_sentence(cases, act)
    if verdict == VERDICT_UNKNOWN:
        unsure = [c for c in cases if c.unsure]
        if not unsure:
            return (f"Not known without the Entra app's settings: upload the new Webex certificate {thumb} first "
                    f"only if the Webex app requires verification certificates ({verification_place()}) or "
                    f"encrypts tokens ({token_encryption_place()}); otherwise just activate it in {act}.")
        return _unsure_sentence(unsure[0], act)
    names = _names(cases)
    if any(c.app.token_encryption == TE_ON for c in cases):
        return (f"No upload to Azure: {names} already encrypts tokens for the new Webex certificate {thumb}; "
                f"activate it in {act} now, or Webex cannot decrypt sign-ins.")
    if any(c.app.requires_signed_requests for c in cases):
        return (f"No upload to Azure: the new Webex certificate {thumb} is already a verification certificate "
                f"of {names}; activate it in {act}.")
    return (f"No upload to Azure: {names} neither requires verification certificates nor encrypts tokens for "
            f"Webex, so just activate the new Webex certificate {thumb} in {act}.")


def _upload_sentence(cases: list[_Case], act: str) -> str:
    verification = [c for c in cases if c.need_verification]
    encryption = [c for c in cases if c.need_token_encryption]
    thumb = (verification or encryption)[0].new.sha1
    ver, enc = verification_place(_names(verification)), token_encryption_place(_names(encryption))
    if verification and encryption:
        return (f"Upload first: add the new Webex certificate {thumb} to {_names(verification)} in {ver} and "
                f"import it in {enc}, then in one maintenance window activate it for token encryption and in {act}.")
    if verification:
        return (f"Upload first: add the new Webex certificate {thumb} to {_names(verification)} in {ver}, then "
                f"activate it in {act}.")
    return (f"Upload first: import the new Webex certificate {thumb} in {enc}, then in one maintenance window "
            f"activate it there and in {act}.")


def _unsure_sentence(case: _Case, act: str) -> str:
    app, thumb = case.app.display_name, case.new.sha1
    ver, enc = verification_place(app), token_encryption_place(app)
    verification_unknown = case.app.requires_signed_requests is None
    encryption = case.app.token_encryption
    if verification_unknown and encryption == TE_UNKNOWN:
        return (f"Not known: I could not read whether {app} requires verification certificates or encrypts "
                f"tokens; if it does, add the new Webex certificate {thumb} first ({ver}; {enc}), otherwise just "
                f"activate it in {act}.")
    if verification_unknown:
        return (f"Not known: I could not read whether {app} requires verification certificates; if it does, add "
                f"the new Webex certificate {thumb} in {ver} first, otherwise just activate it in {act}.")
    if encryption == TE_UNIDENTIFIED:
        return (f"Not known: {app} encrypts tokens with a certificate I cannot identify; if it is Webex's current "
                f"one, import the new Webex certificate {thumb} in {enc} first, otherwise just activate it in {act}.")
    return (f"Not known: I could not read whether {app} encrypts tokens; if it does with Webex's current "
            f"certificate, import the new Webex certificate {thumb} in {enc} first, otherwise just activate it in "
            f"{act}.")


def _summary(findings: list[Finding], answer: _Answer, facts: TrustFacts, now: datetime) -> str:
    """At most two sentences: the most urgent problem the answer does not already say, then the answer."""
    urgent = next((f for f in findings if f.severity in ("expired", "critical") and not f.answer), None)
    lead = [urgent.headline] if urgent else []   # findings are sorted worst first
    if answer.verdict != VERDICT_NOT_APPLICABLE:
        return " ".join(lead + [answer.sentence])
    entity_ids = _other_sp_entity_ids(facts)
    if entity_ids:
        names = ", ".join(entity_ids)
        return " ".join(lead + [f"Not a Webex document: service provider {names} is not Webex, so there is nothing "
                                "to upload or activate on Webex's side."])
    if lead:
        return lead[0]
    return _nothing_from_webex(facts, now)


def _other_sp_entity_ids(facts: TrustFacts) -> list[str]:
    documents = [*facts.webex_documents, *facts.entra_documents, *facts.other_sp_documents]
    return list(dict.fromkeys(e.entity_id for d in documents for e in d.entities
                              if "sp" in e.roles and classify_webex_entity(e) is None))


def _nothing_from_webex(facts: TrustFacts, now: datetime) -> str:
    first = "No Webex certificate was given, so there is nothing to upload or activate on Webex's side"
    active = [(a, c) for a in facts.entra_apps for c in a.signing_certificates if c.active]
    if active:
        app, cert = min(active, key=lambda pair: pair[1].not_after)
        return (f"{first}; Entra's signing certificate {normalise_thumbprint(cert.thumbprint)} for {app.display_name} "
                f"is valid until {_day(cert.not_after)}.")
    reports = [r for d in facts.entra_documents for r in entra_findings.idp_signing_reports(d, now, facts)]
    if reports:
        report = min(reports, key=lambda r: r.not_after)
        return f"{first}; Entra's signing certificate {report.sha1} is valid until {_day(report.not_after)}."
    return f"{first}."


def _names(cases: list[_Case]) -> str:
    return " and ".join(dict.fromkeys(c.app.display_name for c in cases)) or "the Webex app"


def _trust_finding(trust: WebexTrust) -> Finding:
    if trust.kind == CONTROL_HUB:
        title = "Webex Control Hub SSO" + (f" (organisation {trust.name})" if trust.name else "")
        text = (f"This Webex metadata ({trust.entity_id}) belongs to Control Hub SSO because {trust.reason}. "
                f"Its certificate is activated in {SP_CERT_PLACE[CONTROL_HUB]}.")
    else:
        title = "Webex Site Administration SSO" + (f" (site {trust.name})" if trust.name else "")
        text = (f"This Webex metadata ({trust.entity_id}) belongs to a Meetings site's own SSO, configured in Site "
                f"Administration, because {trust.reason}. The Webex certificate is activated in "
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


def _describe(report: CertificateReport) -> str:
    return f"{report.subject} (thumbprint {report.sha1}, expires {_day(report.not_after)})"


def _day(moment: datetime) -> str:
    return iso_utc(moment)[:10]
