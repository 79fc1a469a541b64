"""The steps of a rotation that change or check Entra: one named function per running state.

Each step gets a ``Step`` (the rotation, Graph operations, a way to store progress) and returns an
``Outcome``: the event that decides the next state, facts to remember, messages to post with the
next card. Writes go through ``entra_operations`` (idempotent, verified by re-reading Graph); each
step stores an attempt counter *before* its Graph write, so a step resumed after a crash knows a
request may already have gone out (``wait_for_previous_attempt``) and never creates or activates
twice. In report-only mode (ROLLOVER_REPORT_ONLY) a write is replaced by its dry-run description,
posted in the space and audited; nothing is sent.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from rollover.certificates.health import thumbprint as sha1_of
from rollover.certificates.parsing import parse_document
from rollover.certificates.sources import entra_federation_metadata_url, fetch_url
from rollover.describe import plain, short_thumbprint
from rollover.errors import UserError
from rollover.integrations.entra_client import GraphNotFoundError, GraphPermissionError, GraphRequestError
from rollover.integrations.entra_operations import EntraOperations, OperationRefusedError, OperationResult
from rollover.rotation import audit
from rollover.rotation.audit import BOT_ACTOR
from rollover.rotation.guidance import one_idp_certificate, relying_party
from rollover.services import Services

NEW_CERTIFICATE_NAME = "CN=Microsoft Azure Federated SSO Certificate"
THUMBPRINT_PLACEHOLDER = "<thumbprint of the new certificate>"
_REFUSALS = (OperationRefusedError, GraphPermissionError, GraphNotFoundError, GraphRequestError)


@dataclass
class Outcome:
    event: str
    data: dict = field(default_factory=dict)        # merged into the rotation's data
    posts: list[dict] = field(default_factory=list)  # messages posted before the next card
    detail: str = ""                                 # one sentence for the audit log and the card


def is_report_only(services: Services, record) -> bool:
    """Report-only when the rotation started so, or when an operator turned it on since: a brake that
    holds mid-rotation too."""
    return bool(record.plan.get("report_only") or services.config.report_only)


class LeaseLost(UserError):
    """Another process took the rotation over (this one was too slow); stop before touching Graph."""


class Step:
    """What a step function works with."""

    def __init__(self, services, record, owner: str):
        self.services = services
        self.record = record
        self.owner = owner
        self.data = dict(record.data)

    @property
    def plan(self) -> dict:
        return self.record.plan

    @property
    def report_only(self) -> bool:
        return is_report_only(self.services, self.record)

    @property
    def sp_id(self) -> str:
        return self.record.plan["app"]["sp_id"]

    def now(self) -> datetime:
        return self.services.clock()

    def operations(self) -> EntraOperations:
        wait = self.services.config.graph_consistency_seconds
        return EntraOperations(self.services.entra, poll_timeout=wait, poll_interval=max(0.05, min(5.0, wait / 10)))

    def attempt(self, name: str) -> int:
        """Count an attempt of ``name`` and store it before the Graph call; returns earlier attempts."""
        earlier = int(self.data.get(f"{name}_attempts", 0))
        self.data[f"{name}_attempts"] = earlier + 1
        if not self.services.storage.rotations.save_data(self.record.id, self.owner, self.data):
            raise LeaseLost(f"Rotation #{self.record.id} is being continued by another worker.")
        return earlier

    def audit(self, action: str, result: OperationResult) -> None:
        audit.record(self.services, self.record, actor=BOT_ACTOR, action=action, detail=result.detail,
                     before=audit.snapshot(result.before), after=audit.snapshot(result.after),
                     requests=[request.describe() for request in result.requests])

    def audit_planned(self, action: str, detail: str, requests: list[str]) -> None:
        audit.record(self.services, self.record, actor=BOT_ACTOR, action=action, detail=detail, requests=requests)


# --- entra-signing ----------------------------------------------------------------------------------

def create_certificate(step: Step) -> Outcome:
    """POST addTokenSigningCertificate once (idempotency marker = the rotation's marker); it stays inactive."""
    earlier = step.attempt("create")
    operations = step.operations()
    end = datetime.fromisoformat(step.plan["new"]["not_after"])

    def create(dry_run: bool) -> OperationResult:
        return operations.create_token_signing_certificate(
            step.sp_id, NEW_CERTIFICATE_NAME, end, now=step.now(), idempotency_marker=step.record.marker,
            wait_for_previous_attempt=earlier > 0, dry_run=dry_run)

    result = _write(step, create, "created", "Report only: the certificate was not created.")
    if isinstance(result, Outcome):
        return result
    der = _signing_certificate_der(step, result.thumbprint)
    certificate = x509.load_der_x509_certificate(der)
    facts = {"new_thumbprint": result.thumbprint,
             "new_not_before": certificate.not_valid_before_utc.isoformat(),
             "new_not_after": certificate.not_valid_after_utc.isoformat()}
    return Outcome("created", facts, posts=[certificate_post(step, result.thumbprint, der)], detail=result.detail)


def activate_certificate(step: Step) -> Outcome:
    """PATCH preferredTokenSigningKeyThumbprint to the new certificate (a no-op when it already is)."""
    return _activate(step, step.data.get("new_thumbprint"), "activate", "activated",
                     "Report only: the new certificate was not activated.")


def verify_activation(step: Step) -> Outcome:
    """Graph shows the new certificate active AND Entra's federation metadata publishes it first."""
    if step.report_only:
        return Outcome("simulated", detail="Report only: nothing was activated, so there is nothing to verify.")
    new = step.data["new_thumbprint"]
    deadline = time.monotonic() + step.services.config.graph_consistency_seconds
    while True:
        problems, metadata = _activation_problems(step, new)
        if not problems or time.monotonic() >= deadline:
            break
        time.sleep(max(0.05, min(5.0, step.services.config.graph_consistency_seconds / 10)))
    if problems:
        return Outcome("unverified", {"verification_problems": problems},
                       detail="Verification failed: " + " ".join(problems))
    return Outcome("verified", {"verification_problems": []}, posts=[metadata_post(step, metadata, after="activation")],
                   detail=f"Verified: Graph shows {new} active and the federation metadata publishes it first.")


def roll_back(step: Step) -> Outcome:
    """Re-activate the certificate that was active before (EntraOperations refuses an expired one)."""
    outcome = _activate(step, step.plan["current"]["thumbprint"], "rollback", "rolled-back",
                        "Report only: the previous certificate was not re-activated.")
    if outcome.event == "refused":
        outcome.data["rollback_refused"] = True          # the card says what to do instead
    elif outcome.event == "rolled-back" and not step.report_only:
        outcome.posts.append(_metadata_post_or_hint(step, after="the roll back"))
    return outcome


def _activate(step: Step, thumbprint: str | None, name: str, event: str, simulated: str) -> Outcome:
    earlier = step.attempt(name)
    if step.report_only:
        request = step.services.entra.plan_set_preferred_thumbprint(step.sp_id, thumbprint or THUMBPRINT_PLACEHOLDER)
        step.audit_planned("graph-dry-run", simulated, [request.describe()])
        return Outcome(event, {"simulated": True}, posts=[dry_run_post([request])], detail=simulated)
    operations = step.operations()
    try:
        preview = operations.activate_certificate(step.sp_id, thumbprint, now=step.now(), dry_run=True)
        step.audit("graph-request", preview)
        result = operations.activate_certificate(step.sp_id, thumbprint, now=step.now())
    except _REFUSALS as error:
        return Outcome("refused", detail=str(error))
    step.audit("graph-result", result)
    resumed = " (resumed after an interruption)" if earlier else ""
    return Outcome(event, {"active_thumbprint": thumbprint}, detail=result.detail + resumed)


def _activation_problems(step: Step, new: str) -> tuple[list[str], bytes | None]:
    problems = []
    sp = step.services.entra.get_service_principal(step.sp_id, with_keys=False)
    active = (sp.preferred_token_signing_key_thumbprint or "").upper()
    if active != new:
        problems.append(f"Graph reports {active or 'no certificate'} as active, not {new}.")
    try:
        metadata = fetch_federation_metadata(step)
    except UserError as error:
        return problems + [f"I could not read the federation metadata: {error}"], None
    published = published_signing_thumbprints(step, metadata)
    if new not in published:
        problems.append(f"The federation metadata does not publish {new} yet.")
    elif published[0] != new:
        problems.append(f"The federation metadata lists {published[0]} first; "
                        f"{relying_party(step.plan)} would use that one.")
    return problems, metadata


# --- webex-sp ---------------------------------------------------------------------------------------

def upload_webex_certificate(step: Step) -> Outcome:
    """Append Webex's new certificate as a verification certificate, keeping every existing credential."""
    earlier = step.attempt("upload")
    webex = step.plan["webex"]
    der = base64.b64decode(webex["der_b64"])
    operations = step.operations()

    def upload(dry_run: bool) -> OperationResult:
        # require_signed_requests=False leaves the app's setting as it is: the bot adds, never enforces.
        # Resumed after a crash, it waits for an earlier PATCH to show rather than adding a second key.
        return operations.add_verification_certificate(
            step.plan["app"]["application_object_id"], der, webex["display_name"], now=step.now(),
            require_signed_requests=False, wait_for_previous_attempt=earlier > 0, dry_run=dry_run)

    result = _write(step, upload, "uploaded", "Report only: the Webex certificate was not added to Entra.")
    return result if isinstance(result, Outcome) else Outcome("uploaded", detail=result.detail)


def verify_upload(step: Step) -> Outcome:
    """Re-read the app registration: the new Webex certificate is a verification certificate."""
    if step.report_only:
        return Outcome("verified", detail="Report only: nothing was added, so there is nothing to verify.")
    webex = step.plan["webex"]
    application = step.services.entra.get_application(step.plan["app"]["application_object_id"], with_keys=True)
    present = {kc.thumbprint for kc in application.verification_certificates}
    if webex["thumbprint"] not in present:
        return Outcome("unverified", detail=f"Entra does not list {webex['thumbprint']} among the verification "
                                            "certificates of the app registration.")
    return Outcome("verified", detail=f"Verified: {webex['thumbprint']} is a verification certificate of "
                                      f"{step.record.app_name}, next to every earlier credential.")


# --- entra-cleanup ----------------------------------------------------------------------------------

def remove_old_certificate(step: Step) -> Outcome:
    """Remove the expired, inactive certificate (Sign + Verify keys and its password) and nothing else."""
    step.attempt("remove")
    old = step.plan["old"]["thumbprint"]
    operations = step.operations()

    def remove(dry_run: bool) -> OperationResult:
        return operations.remove_expired_signing_certificate(step.sp_id, old, now=step.now(), dry_run=dry_run)

    result = _write(step, remove, "removed", "Report only: the old certificate was not removed.")
    return result if isinstance(result, Outcome) else Outcome("removed", detail=result.detail)


def _write(step: Step, write: Callable[[bool], OperationResult], event: str,
           simulated: str) -> OperationResult | Outcome:
    """Audit the dry run of ``write`` (the exact request); in report-only mode stop there with an Outcome
    that posts it, else send it and audit the result."""
    preview = write(True)
    step.audit("graph-dry-run" if step.report_only else "graph-request", preview)
    if step.report_only:
        return Outcome(event, {"simulated": True}, posts=[dry_run_post(preview.requests)], detail=simulated)
    result = write(False)
    step.audit("graph-result", result)
    return result


# --- federation metadata ----------------------------------------------------------------------------

def federation_metadata_url(step: Step) -> str:
    config = step.services.config
    if not config.azure_tenant_id:
        raise UserError("AZURE_TENANT_ID is not set, so I cannot read the app's federation metadata URL.")
    return entra_federation_metadata_url(config.azure_tenant_id, step.plan["app"]["app_id"],
                                         config.federation_metadata_base)


def fetch_federation_metadata(step: Step) -> bytes:
    # The URL comes from the operator's settings, not from chat: no private-address check needed.
    return fetch_url(federation_metadata_url(step), max_bytes=step.services.config.max_document_bytes)


def published_signing_thumbprints(step: Step, metadata: bytes) -> list[str]:
    """SHA-1 thumbprints of the IdP signing certificates, in the order the metadata lists them."""
    document = parse_document(metadata, source="Entra federation metadata",
                              max_bytes=step.services.config.max_document_bytes)
    ordered: list[str] = []
    for found in document.certificates:
        if found.role in (None, "idp") and found.use in (None, "signing"):
            sha1 = sha1_of(found.der)
            if sha1 not in ordered:
                ordered.append(sha1)
    return ordered


# --- messages posted with the next card -------------------------------------------------------------

def dry_run_post(requests) -> dict:
    # Escaped rather than in a code span: a display name from a document could close the span.
    lines = "\n".join(f"- {plain(request.describe())}" for request in requests) or "- (no request: nothing to change)"
    return {"markdown": f"**Report only** (ROLLOVER_REPORT_ONLY): these Graph writes were NOT sent:\n{lines}"}


def certificate_post(step: Step, thumbprint: str, der: bytes) -> dict:
    pem = x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM).decode()
    trust = step.plan["trust"]
    # Short thumbprints for the eye; the whole one is in the .cer file (and behind the card's Details).
    return {"markdown": (f"**New token-signing certificate for {plain(step.record.app_name)}** (inactive): "
                         f"{short_thumbprint(thumbprint)}, the .cer file below. Sign-ins still use "
                         f"{short_thumbprint(step.plan['current']['thumbprint'])}.\n\n"
                         f"Where it goes: {trust['import_guidance']}"),
            "file_name": f"{_slug(step.record.app_name)}-{thumbprint[:8]}.cer", "file_text": pem}


def metadata_post(step: Step, metadata: bytes, *, after: str) -> dict:
    trust = step.plan["trust"]
    return {"markdown": (f"**Entra's federation metadata for {plain(step.record.app_name)}**, read after {after}. "
                         f"Import it now into {trust['import_place']}: {one_idp_certificate(step.plan)}, the first "
                         "one listed."),
            "file_name": f"federationmetadata-{_slug(step.record.app_name)}.xml", "file_text": metadata.decode()}


def _metadata_post_or_hint(step: Step, *, after: str) -> dict:
    try:
        return metadata_post(step, fetch_federation_metadata(step), after=after)
    except UserError as error:
        return {"markdown": (f"I could not read the federation metadata after {after} ({plain(error)}). Download it in "
                             "the Entra admin center (Single sign-on > SAML Certificates > Federation Metadata XML) "
                             f"and import it into {step.plan['trust']['import_place']}.")}


def _signing_certificate_der(step: Step, thumbprint: str) -> bytes:
    sp = step.services.entra.get_service_principal(step.sp_id, with_keys=True)
    for credential in sp.key_credentials:
        if credential.usage == "Verify" and credential.der and sha1_of(credential.der) == thumbprint:
            return credential.der
    raise UserError(f"Graph does not return the public key of the new certificate {thumbprint}.")


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in name.lower()).strip("-")[:40] or "app"
