"""Plans: what a rotation will do, decided before anything is approved.

A plan reads Graph (never writes), asks ``entra_operations`` for the dry-run description of each
write it will need, and works out which Webex trust the app serves (Control Hub or Site
Administration) and therefore where the operator imports what. The cards show it all before the
first approval; the steps then follow it.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from rollover.certificates.diagnosis import (
    CONTROL_HUB,
    IDP_CERT_PLACE,
    SITE_ADMIN,
    SP_CERT_PLACE,
    UPLOAD_TOKEN_ENCRYPTION,
    TrustFacts,
    WebexTrust,
    app_serves,
    classify_webex_entity,
    diagnose,
    recognise_trusts,
    token_encryption_place,
)
from rollover.certificates.health import thumbprint as sha1_of
from rollover.certificates.parsing import Document, EntityInfo, FoundCertificate
from rollover.certificates.places import other_app_import_place
from rollover.errors import UserError
from rollover.integrations.entra_client import build_inventory_entry, to_trust_facts
from rollover.integrations.entra_operations import EntraOperations
from rollover.rotation.steps import NEW_CERTIFICATE_NAME
from rollover.services import Services
from rollover.tracking import app_facts as stored_app_facts
from rollover.tracking import room_trust_facts

NEW_CERTIFICATE_DAYS = 1095          # three years, Entra's default and maximum for addTokenSigningCertificate
TRUST_LABEL = {CONTROL_HUB: "Control Hub", SITE_ADMIN: "Site Administration"}
_TRUST_NAME = {CONTROL_HUB: " (organisation {})", SITE_ADMIN: " (site {})"}


@dataclass(frozen=True)
class NewRotation:
    """What a plan decided: the kind, the app, the state it starts in, and the plan the cards show."""

    kind: str
    app_key: str
    app_name: str
    marker: str
    state: str
    plan: dict


def new_marker() -> str:
    """The rotation's idempotency marker: part of the new certificate's name, so a retry finds it."""
    return f"rollover-{secrets.token_hex(4)}"


# --- entra-signing ----------------------------------------------------------------------------------

def plan_entra_signing(services: Services, app: dict, room_id: str) -> NewRotation:
    now, marker = services.clock(), new_marker()
    sp = services.entra.get_service_principal(app["sp_id"], with_keys=True)
    active = sp.active_certificate
    end = now + timedelta(days=NEW_CERTIFICATE_DAYS)
    preview = _operations(services).create_token_signing_certificate(
        app["sp_id"], NEW_CERTIFICATE_NAME, end, now=now, idempotency_marker=marker, dry_run=True)
    trust = webex_trust(services, app, room_id)
    plan = {
        "app": _app(app),
        "current": None if active is None else {
            "thumbprint": active.thumbprint, "not_before": _iso(active.not_before),
            "not_after": _iso(active.not_after), "display_name": active.display_name},
        "new": {"display_name": f"{NEW_CERTIFICATE_NAME} [{marker}]", "not_after": end.isoformat()},
        "trust": trust,
        "requests": [request.describe() for request in preview.requests],
        "changes": [
            f"Entra: create a new token-signing certificate “{NEW_CERTIFICATE_NAME} [{marker}]”, valid until "
            f"{end:%Y-%m-%d}. It is created inactive: sign-ins are not affected.",
            "You: choose a maintenance window. I post the new certificate now and Entra's new federation "
            "metadata right after activation.",
            "Entra (second approval): make the new certificate the active one, in the window.",
            f"{trust['relying_party']}, in the same window: import the new federation metadata into "
            f"{trust['import_place']}" + (" (Webex trusts one IdP certificate)." if trust["kinds"] else "."),
            "Verify: Graph shows it active and the federation metadata URL publishes it; then a test sign-in. "
            "Until you confirm it, Roll back re-activates the current certificate.",
        ],
        "report_only": services.config.report_only,
    }
    return NewRotation("entra-signing", app["sp_id"], app["display_name"], marker, "awaiting-create-approval", plan)


# --- webex-sp ---------------------------------------------------------------------------------------

def plan_webex_sp(services: Services, app: dict, room_id: str) -> NewRotation:
    now, marker = services.clock(), new_marker()
    _refuse_other_apps(app)
    facts = room_trust_facts(services, room_id)
    found = newest_webex_certificate(facts.webex_documents, app["facts"].get("sp_entity_ids") or [])
    if found is None:
        raise UserError("Drop the new Webex SP metadata into this space first (Control Hub: the "
                        "idb-meta-<org>-SP.xml it offers for download; Site Administration: the SSO Configuration "
                        f"export), then `rotate webex-sp {app['display_name']}` again.")
    document, certificate = found
    app_facts = _fresh_app_facts(services, app)
    diagnosis = diagnose(TrustFacts(webex_documents=[document], entra_apps=[app_facts],
                                    warning_days=services.config.warning_days,
                                    critical_days=services.config.critical_days), now)
    thumbprint = sha1_of(certificate.der)
    uploaded = {t.upper() for t in app_facts.verification_certificate_thumbprints}
    needs_upload = app_facts.requires_signed_requests is True and thumbprint not in uploaded
    trust = webex_trust(services, app, room_id, trusts=recognise_trusts([document]))
    webex = _webex_certificate(certificate, thumbprint, marker)
    requests = _upload_requests(services, app, certificate.der, webex["display_name"], now) if needs_upload else []
    plan = {
        "app": _app(app), "webex": webex, "trust": trust, "requests": requests,
        "verdict": diagnosis.upload_verdict, "answer": diagnosis.upload_answer, "needs_upload": needs_upload,
        "encryption_note": _encryption_note(app_facts, trust),
        "changes": _webex_changes(needs_upload, UPLOAD_TOKEN_ENCRYPTION in diagnosis.upload_to, trust,
                                  app["display_name"]),
        "report_only": services.config.report_only,
    }
    state = "awaiting-upload-approval" if needs_upload else "awaiting-webex-activation"
    return NewRotation("webex-sp", app["sp_id"], app["display_name"], marker, state, plan)


def newest_webex_certificate(documents: list[Document],
                             app_entity_ids: list[str]) -> tuple[Document, FoundCertificate] | None:
    """Webex's SP certificate that expires last (whatever use the metadata gives it: Webex signs and decrypts
    with one certificate), preferring metadata of this app's Identifier."""
    candidates = [(document, found) for document in documents for found in document.certificates
                  if found.role in (None, "sp")]
    matching = [c for c in candidates if c[1].entity_id in app_entity_ids] or candidates
    return max(matching, key=lambda c: c[1].certificate.not_valid_after_utc, default=None)


def _webex_certificate(certificate: FoundCertificate, thumbprint: str, marker: str) -> dict:
    cert = certificate.certificate
    subject = cert.subject.rfc4514_string()
    return {"subject": subject, "thumbprint": thumbprint, "entity_id": certificate.entity_id or "",
            "not_before": cert.not_valid_before_utc.isoformat(), "not_after": cert.not_valid_after_utc.isoformat(),
            "der_b64": base64.b64encode(certificate.der).decode(),
            "display_name": f"Webex SP {subject[:50]} [{marker}]"}


def _upload_requests(services: Services, app: dict, der: bytes, display_name: str, now: datetime) -> list[str]:
    application_id = app["facts"].get("application_object_id")
    if not application_id:
        raise UserError(f"I cannot read the app registration behind {app['display_name']}, so I cannot add the "
                        "Webex certificate to it. The bot needs Application.Read.All on it.")
    preview = _operations(services).add_verification_certificate(
        application_id, der, display_name, now=now, require_signed_requests=False, dry_run=True)
    return [request.describe() for request in preview.requests]


def _refuse_other_apps(app: dict) -> None:
    facts = stored_app_facts(app)
    if facts.identity.known and facts.webex_kind is None:
        raise UserError(f"`rotate webex-sp` brings Webex's certificate to the Webex app, and {app['display_name']} "
                        f"is not one (its Identifier is {', '.join(facts.sp_entity_ids) or 'not Webex'}). "
                        f"`rotate {app['display_name']}` rotates its Entra signing certificate.")


def _webex_changes(needs_upload: bool, needs_encryption: bool, trust: dict, app_name: str) -> list[str]:
    activate = f"You: activate the new certificate in Webex ({trust['activation_place']})."
    # Token encryption is switched by hand (Microsoft Learn "Configure SAML token encryption": import the
    # certificate, then "Activate token encryption"), in the same window as Webex.
    encryption = [f"You, by hand: import Webex's new certificate in {token_encryption_place(app_name)} and, in the "
                  "same maintenance window as Webex, activate it there (Activate token encryption)."]
    if not needs_upload:
        if needs_encryption:
            return ["Entra: no verification certificate to add (I do not change token encryption)."] + encryption + [
                activate]
        return [f"Entra: nothing; {app_name} does not need Webex's certificate.", activate]
    return [f"Entra: add Webex's new certificate to {app_name} as a verification certificate, keeping every "
            "existing credential (the 'Require verification certificates' setting stays as it is).",
            "Verify: Graph lists it next to every earlier credential."] + (encryption if needs_encryption else []) + [
            activate + " Only after Entra has it: Entra rejects requests signed by a certificate it does not know."]


def _encryption_note(app_facts, trust: dict) -> str | None:
    if not app_facts.token_encryption_thumbprint:
        return None
    return (f"{app_facts.display_name} encrypts tokens with certificate {app_facts.token_encryption_thumbprint}. "
            f"I do not change token encryption: if it uses Webex's certificate, switch it by hand in "
            f"{token_encryption_place(app_facts.display_name)} in the same window as Webex "
            f"({trust['activation_place']}).")


def _fresh_app_facts(services: Services, app: dict):
    """The app as Graph shows it now (a cached inventory may be hours old)."""
    sp = services.entra.get_service_principal(app["sp_id"], with_keys=True)
    application_id = app["facts"].get("application_object_id")
    application = services.entra.get_application(application_id, with_keys=True) if application_id else None
    return to_trust_facts(build_inventory_entry(sp, application))


# --- entra-cleanup ----------------------------------------------------------------------------------

def plan_cleanup(services: Services, finished) -> NewRotation:
    """Remove the certificate a finished entra-signing rotation replaced, once it has expired."""
    replaced = finished.kind == "entra-signing" and finished.state == "done" and finished.plan.get("current")
    if not replaced or finished.data.get("simulated"):
        raise UserError(f"Rotation #{finished.id} did not replace a certificate, so there is nothing to clean up.")
    now, marker = services.clock(), new_marker()
    old = finished.plan["current"]
    sp = services.entra.get_service_principal(finished.app_key, with_keys=True)
    certificate = next((c for c in sp.signing_certificates if c.thumbprint == old["thumbprint"]), None)
    if certificate is None:
        raise UserError(f"The old certificate {old['thumbprint']} is no longer on {finished.app_name}: "
                        "nothing to clean up.")
    if certificate.active:
        raise UserError(f"{old['thumbprint']} is the active certificate of {finished.app_name} again; it is "
                        "never removed.")
    if certificate.not_after and certificate.not_after > now:
        raise UserError(f"The old certificate {old['thumbprint']} is valid until {certificate.not_after:%Y-%m-%d}; "
                        "it can be rolled back to until then, so clean-up is possible only after it expired.")
    preview = _operations(services).remove_expired_signing_certificate(finished.app_key, old["thumbprint"],
                                                                       now=now, dry_run=True)
    plan = {
        "app": finished.plan["app"], "old": old, "follows": finished.id,
        "active": {"thumbprint": sp.preferred_token_signing_key_thumbprint},
        "trust": finished.plan["trust"], "requests": [request.describe() for request in preview.requests],
        "changes": [f"Entra: remove the expired certificate {old['thumbprint']} (its Sign and Verify keys and its "
                    "password), keeping every other credential; the active certificate stays."],
        "report_only": services.config.report_only,
    }
    return NewRotation("entra-cleanup", finished.app_key, finished.app_name, marker, "awaiting-cleanup-approval",
                       plan)


# --- where the Webex side lives ------------------------------------------------------------------

def webex_trust(services: Services, app: dict, room_id: str, trusts: list[WebexTrust] | None = None) -> dict:
    """Control Hub or Site Administration: from the space's Webex metadata, else the app's Identifier; for
    another application's app, that application's own SAML settings (no Webex step at all)."""
    facts = stored_app_facts(app)
    if facts.identity.known and facts.webex_kind is None and not trusts:
        return _other_app_trust(app["display_name"])
    if trusts is None:
        known = recognise_trusts(room_trust_facts(services, room_id).webex_documents)
        trusts = [t for t in known if app_serves(facts.identity, t)] or ([] if facts.identity.known else known)
    if not trusts:   # no Webex metadata in the space: the app's own Identifier tells the trust (and its name)
        trusts = [t for e in facts.sp_entity_ids
                  if (t := classify_webex_entity(EntityInfo(entity_id=e, roles=["sp"], acs_urls=facts.reply_urls)))]
    kinds = sorted({t.kind for t in trusts} or ({facts.webex_kind} if facts.webex_kind else set())) or [
        CONTROL_HUB, SITE_ADMIN]
    names = [f"{TRUST_LABEL[t.kind]}{_TRUST_NAME[t.kind].format(t.name) if t.name else ''}" for t in trusts]
    label = ", ".join(names) or (TRUST_LABEL[kinds[0]] if len(kinds) == 1 else
                                 "not known: Control Hub or Site Administration")
    return {
        "kinds": kinds, "label": label, "relying_party": "Webex",
        "import_place": " or ".join(IDP_CERT_PLACE[k] for k in kinds),
        "activation_place": " or ".join(SP_CERT_PLACE[k] for k in kinds),
        "import_guidance": " ".join(_IMPORT_GUIDANCE[k] for k in kinds),
    }


def _other_app_trust(name: str) -> dict:
    place = other_app_import_place(name)
    return {"kinds": [], "label": f"{name} (not a Webex app)", "relying_party": name, "import_place": place,
            "activation_place": place,
            "import_guidance": (f"{name} trusts Entra's signing certificate: in the maintenance window, right after "
                                f"activation, update the IdP signing certificate in {place} (import the new "
                                "Federation Metadata XML I post then, or this certificate).")}


_IMPORT_GUIDANCE = {
    CONTROL_HUB: (f"Control Hub trusts Entra through its federation metadata: in the maintenance window, right "
                  f"after activation, import the new Federation Metadata XML (I post it then) into "
                  f"{IDP_CERT_PLACE[CONTROL_HUB]}."),
    SITE_ADMIN: (f"Site Administration trusts this certificate: in the maintenance window, right after "
                 f"activation, import it (or the federation metadata I post then) into {IDP_CERT_PLACE[SITE_ADMIN]}."),
}


def _app(app: dict) -> dict:
    return {"name": app["display_name"], "sp_id": app["sp_id"], "app_id": app["app_id"],
            "application_object_id": app["facts"].get("application_object_id")}


def _operations(services: Services) -> EntraOperations:
    return EntraOperations(services.entra)   # dry runs only: nothing to wait for


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
