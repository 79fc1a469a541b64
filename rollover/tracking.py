"""Tracked certificates: read a source, judge its certificates, remember them for the space.

A *source* is what a space asked the bot to watch: a file dropped into the space, a
metadata URL, or an Entra enterprise app (read through Graph). Every read replaces
the source's certificates in storage (``present`` ones; the rest become history),
so re-reading updates instead of duplicating, and a certificate rotated away stops
being reminded about.

The trust diagnosis of a space is rebuilt from what is stored: the documents (kept
as read), the Graph facts of the apps the space watches and of the tenant's Webex apps,
and app JSON files dropped into the space (for spaces without Graph).
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from rollover.certificates.diagnosis import (
    Diagnosis,
    EntraAppFacts,
    EntraSigningCertificate,
    TrustFacts,
    app_serves,
    app_standing_answer,
    diagnose,
    is_webex_document,
    recognise_trusts,
)
from rollover.certificates.health import (
    STATUS_ORDER,
    CertificateReport,
    assess_document,
    days_until,
    normalise_thumbprint,
    validity_status,
)
from rollover.certificates.health import thumbprint as sha1_of
from rollover.certificates.parsing import Document, DocumentError, parse_document
from rollover.certificates.sources import fetch_url, redact
from rollover.certificates.trust_facts import TE_UNKNOWN
from rollover.errors import Retryable, UserError
from rollover.integrations.entra_files import KIND_WORDS, SERVICE_PRINCIPAL, AppFile, facts_of, read_app_file
from rollover.services import Services
from rollover.storage import CertificateRecord, Source, TrackedCertificate

ENTRA_ISSUER_PREFIX = "https://sts.windows.net/"
ENTRA_APP_FILE = "entra-app-file"   # an app's JSON (az ad app/sp show) dropped into a space without Graph

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reading:
    """The outcome of reading one source now."""

    source: Source
    document: Document | None
    reports: list[CertificateReport]


@dataclass(frozen=True)
class CertificateView:
    """A tracked certificate as of ``now``: stored facts plus today's status."""

    certificate: TrackedCertificate
    status: str
    days_left: int

    @property
    def sort_key(self) -> tuple:
        # Worst first, then soonest expiry.
        return (-STATUS_ORDER.index(self.status), self.certificate.not_after)


# --- reading documents ----------------------------------------------------------------------------------

def track_document(services: Services, *, room_id: str, kind: str, location: str, added_by: str, data: bytes,
                   label: str | None = None) -> Reading:
    """Parse and assess a document, and store it as a source of the space (replacing an earlier read)."""
    config, now = services.config, services.clock()
    _refuse_new_source_over_limit(services, room_id, kind, location)
    shown = redact(location) if kind == "url" else location   # query strings may hold SAS tokens
    document = parse_document(data, source=shown, max_bytes=config.max_document_bytes)
    reports = assess_document(document, now, warning_days=config.warning_days, critical_days=config.critical_days)
    source = services.storage.tracking.upsert_source(
        room_id=room_id, kind=kind, location=location, label=label or document_label(document, shown),
        added_by=added_by, content=data, now=now.timestamp())
    services.storage.tracking.replace_certificates(source.id, [_record(r) for r in reports], now.timestamp())
    return Reading(source, document, reports)


def _refuse_new_source_over_limit(services: Services, room_id: str, kind: str, location: str) -> None:
    sources = services.storage.tracking.sources(room_id=room_id)
    is_new = not any(s.kind == kind and s.location == location for s in sources)
    if is_new and len(sources) >= services.config.max_sources_per_space:
        raise UserError(f"This space already tracks {len(sources)} sources, the most it may "
                        "(ROLLOVER_MAX_SOURCES_PER_SPACE). `forget <n>` one you no longer need first.")


def track_url(services: Services, *, room_id: str, url: str, added_by: str, label: str | None = None) -> Reading:
    """Fetch a metadata/certificate URL (size-limited, public addresses only unless allowed) and track it."""
    data = fetch_url(url, max_bytes=services.config.max_document_bytes,
                     allow_private=services.config.allow_private_urls)
    return track_document(services, room_id=room_id, kind="url", location=url, added_by=added_by,
                          data=data, label=label)


def refresh_url_sources(services: Services) -> list[tuple[Source, str | None]]:
    """Re-read every URL source (the scheduler calls this); returns each source with its error, if any."""
    results = []
    for source in services.storage.tracking.sources(kind="url"):
        try:
            track_url(services, room_id=source.room_id, url=source.location, added_by=source.added_by,
                      label=source.label)
            results.append((source, None))
        except UserError as error:
            services.storage.tracking.record_source_error(source.id, str(error), services.clock().timestamp())
            results.append((source, str(error)))
        except Exception:
            # A bug on one source (a document our parser chokes on) must not keep the others from being read.
            incident = secrets.token_hex(4)
            log.exception("incident %s: re-reading URL source %s failed; going on with the next", incident, source.id)
            problem = f"Could not be re-read (incident {incident}); the bot's log has the details."
            services.storage.tracking.record_source_error(source.id, problem, services.clock().timestamp())
            results.append((source, problem))
    return results


def document_label(document: Document, location: str) -> str:
    """A name a person recognises: which trust or which IdP the document belongs to."""
    trusts = recognise_trusts([document])
    if trusts:
        trust = trusts[0]
        place = "Control Hub" if trust.kind == "control-hub" else "Site Administration"
        return f"Webex SP metadata ({place}{', ' + trust.name if trust.name else ''})"
    if any(e.entity_id.startswith(ENTRA_ISSUER_PREFIX) for e in document.entities):
        return "Entra federation metadata"
    if document.kind == "metadata":
        return f"SAML metadata ({document.entities[0].entity_id})" if document.entities else "SAML metadata"
    return f"certificate file {location.rsplit('/', 1)[-1]}"


def _record(report: CertificateReport) -> CertificateRecord:
    return CertificateRecord(
        sha1=report.sha1, sha256=report.sha256, entity_id=report.entity_id or "", role=report.role or "",
        use=report.use or "", subject=report.subject, not_before=report.not_before.timestamp(),
        not_after=report.not_after.timestamp(), active=None, details=report.to_json())


# --- Entra apps from JSON files (no Graph) --------------------------------------------------------------

def track_app_file(services: Services, *, room_id: str, name: str, data: bytes,
                   added_by: str) -> tuple[AppFile, EntraAppFacts]:
    """Read an app's JSON dropped into the space as that app's settings (Graph's shapes, see entra_files);
    a service principal's signing certificates are tracked like a watched app's."""
    app_file = read_app_file(data, name, services.config.max_document_bytes)
    location = f"{app_file.app_id}/{app_file.kind}"
    _refuse_new_source_over_limit(services, room_id, ENTRA_APP_FILE, location)
    stored = [read_app_file(s.content or b"", s.label, max(len(s.content or b""), 1))
              for s in services.storage.tracking.sources(room_id=room_id, kind=ENTRA_APP_FILE)
              if s.location.startswith(f"{app_file.app_id}/") and s.location != location]
    facts = facts_of(stored + [app_file])   # the same app, one application and one service principal
    now = services.clock()
    source = services.storage.tracking.upsert_source(
        room_id=room_id, kind=ENTRA_APP_FILE, location=location, added_by=added_by, now=now.timestamp(),
        label=f"Entra app {facts.display_name} ({KIND_WORDS[app_file.kind]}, {name})",
        content=json.dumps(app_file.body).encode())
    records = []
    if app_file.kind == SERVICE_PRINCIPAL:
        records = [_signing_record(cert, facts.app_id, app_file.body.get("id") or "") for cert in
                   facts.signing_certificates]
    services.storage.tracking.replace_certificates(source.id, records, now.timestamp())
    return app_file, facts


def _signing_record(cert: EntraSigningCertificate, app_id: str, sp_id: str) -> CertificateRecord:
    details = {"subject": "Entra token-signing certificate", "sha1": cert.thumbprint, "app_id": app_id,
               "sp_id": sp_id, "not_before": _iso(cert.not_before), "not_after": _iso(cert.not_after),
               "active": cert.active}
    return CertificateRecord(sha1=cert.thumbprint, sha256="", entity_id=ENTRA_ISSUER_PREFIX, role="idp",
                             use="signing", subject=details["subject"], not_before=cert.not_before.timestamp(),
                             not_after=cert.not_after.timestamp(), active=cert.active, details=details)


# --- Entra apps (Graph) ---------------------------------------------------------------------------------

def require_graph(services: Services):
    if services.entra is None:
        raise UserError("Microsoft Graph is not configured, so I cannot see Entra apps. An operator sets "
                        "AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or a certificate, or managed "
                        "identity); the bot needs Application.Read.All to read.")
    return services.entra


def refresh_entra_inventory(services: Services) -> list[dict[str, Any]]:
    """Read every SAML app from Graph, store it, and update the certificates of watched apps."""
    from rollover.integrations.entra_client import to_trust_facts
    client = require_graph(services)
    now = services.clock()
    inventory = client.inventory()
    for app in inventory:
        services.storage.tracking.save_entra_app(sp_id=app.sp_id, app_id=app.app_id, display_name=app.display_name,
                                        facts=app_facts_json(app, to_trust_facts(app)), now=now.timestamp())
    services.storage.tracking.forget_entra_apps_except([app.sp_id for app in inventory])
    _update_watched_apps(services, now)
    return services.storage.tracking.entra_apps()


def refresh_entra_app(services: Services, sp_id: str) -> None:
    """Re-read one SAML app (two Graph reads, e.g. after a rotation changed it) and update its stored entry
    and the spaces that watch it, as ``refresh_entra_inventory`` does for every app."""
    from rollover.integrations.entra_client import GraphNotFoundError, build_inventory_entry, to_trust_facts
    client = require_graph(services)
    now = services.clock()
    sp = client.get_service_principal(sp_id)
    try:
        application = client.get_application_by_app_id(sp.app_id)
    except GraphNotFoundError:
        application = None        # no app registration to read: the inventory stores the app without it too
    app = build_inventory_entry(sp, application)
    services.storage.tracking.save_entra_app(sp_id=app.sp_id, app_id=app.app_id, display_name=app.display_name,
                                    facts=app_facts_json(app, to_trust_facts(app)), now=now.timestamp())
    _update_watched_apps(services, now, only_sp_id=sp_id)


def known_entra_apps(services: Services, *, refresh: bool = False) -> list[dict[str, Any]]:
    apps = services.storage.tracking.entra_apps()
    if refresh or not apps:
        apps = refresh_entra_inventory(services)
    return apps


def find_entra_app(services: Services, name_or_id: str) -> dict[str, Any]:
    """An app by appId, object id, or (unique, case-insensitive) name or name fragment."""
    wanted = name_or_id.strip().lower()
    if not wanted:
        raise UserError("Which app? Give its name or application (client) id, e.g. `app Cisco Webex`.")
    for refresh in (False, True):
        apps = known_entra_apps(services, refresh=refresh)
        exact = [a for a in apps if wanted in (a["app_id"].lower(), a["sp_id"].lower(), a["display_name"].lower())]
        if exact:
            return exact[0]
        partial = [a for a in apps if wanted in a["display_name"].lower()]
        if len(partial) == 1:
            return partial[0]
        if len(partial) > 1:
            names = ", ".join(a["display_name"] for a in partial)
            raise UserError(f"`{name_or_id}` matches several apps ({names}); be more specific.")
    raise UserError(f"I found no SAML app called `{name_or_id}` in Entra. `apps` lists them.")


def watch_entra_app(services: Services, *, room_id: str, app: dict[str, Any], added_by: str) -> Source:
    """Make the space track an Entra app's signing certificates (reminders, status, diagnosis)."""
    _refuse_new_source_over_limit(services, room_id, "entra-app", app["sp_id"])
    now = services.clock()
    source = services.storage.tracking.upsert_source(room_id=room_id, kind="entra-app", location=app["sp_id"],
                                            label=f"Entra app {app['display_name']}", added_by=added_by,
                                            content=None, now=now.timestamp())
    services.storage.tracking.replace_certificates(source.id, _app_records(app, now), now.timestamp())
    return source


def _update_watched_apps(services: Services, now: datetime, only_sp_id: str | None = None) -> None:
    apps = {a["sp_id"]: a for a in services.storage.tracking.entra_apps()}
    for source in services.storage.tracking.sources(kind="entra-app"):
        if only_sp_id is not None and source.location != only_sp_id:
            continue
        app = apps.get(source.location)
        if app is None:
            services.storage.tracking.record_source_error(source.id, "This app is no longer a SAML app in Entra.",
                                                 now.timestamp())
            services.storage.tracking.replace_certificates(source.id, [], now.timestamp())
            continue
        services.storage.tracking.upsert_source(room_id=source.room_id, kind="entra-app", location=source.location,
                                       label=f"Entra app {app['display_name']}", added_by=source.added_by,
                                       content=None, now=now.timestamp())
        services.storage.tracking.replace_certificates(source.id, _app_records(app, now), now.timestamp())


def _app_records(app: dict[str, Any], now: datetime) -> list[CertificateRecord]:
    records = []
    for cert in app["facts"]["signing_certificates"]:
        not_before, not_after = _from_iso(cert["not_before"]), _from_iso(cert["not_after"])
        details = {"subject": cert.get("display_name") or "Entra token-signing certificate",
                   "sha1": cert["thumbprint"], "not_before": cert["not_before"], "not_after": cert["not_after"],
                   "app_id": app["app_id"], "sp_id": app["sp_id"], "active": cert["active"]}
        records.append(CertificateRecord(
            sha1=cert["thumbprint"], sha256="", entity_id=f"{ENTRA_ISSUER_PREFIX}", role="idp", use="signing",
            subject=details["subject"], not_before=not_before.timestamp(), not_after=not_after.timestamp(),
            active=cert["active"], details=details))
    return records


def app_facts_json(app, facts: EntraAppFacts) -> dict[str, Any]:
    """What is stored per app: the diagnosis input plus what the app card shows."""
    display_names = {c.thumbprint: c.display_name for c in app.signing_certificates}
    return {
        "display_name": facts.display_name, "app_id": facts.app_id, "sp_id": app.sp_id,
        "application_object_id": app.application_object_id,
        "signing_certificates": [
            {"thumbprint": c.thumbprint, "not_before": _iso(c.not_before), "not_after": _iso(c.not_after),
             "active": c.active, "display_name": display_names.get(c.thumbprint)}
            for c in facts.signing_certificates],
        "requires_signed_requests": facts.requires_signed_requests,
        "verification_certificate_thumbprints": list(facts.verification_certificate_thumbprints),
        "token_encryption_thumbprint": facts.token_encryption_thumbprint,
        "notification_emails": list(facts.notification_emails),
        "sp_entity_ids": list(facts.sp_entity_ids),
        "reply_urls": list(facts.reply_urls),
        "allowed_weak_algorithms": facts.allowed_weak_algorithms,
        "token_encryption_state": facts.token_encryption_state,
        "client_secrets": [{"name": s.display_name or s.hint or "secret", "end": _iso(s.end)}
                           for s in app.client_secrets],
        "certificate_credentials": [{"name": k.display_name or "certificate", "end": _iso(k.end)}
                                    for k in app.certificate_credentials],
    }


def app_facts(stored: dict[str, Any]) -> EntraAppFacts:
    """The diagnosis input back from storage."""
    facts = stored["facts"]
    return EntraAppFacts(
        display_name=facts["display_name"], app_id=facts["app_id"],
        signing_certificates=[EntraSigningCertificate(c["thumbprint"], _from_iso(c["not_before"]),
                                                      _from_iso(c["not_after"]), c["active"])
                              for c in facts["signing_certificates"]],
        requires_signed_requests=facts["requires_signed_requests"],
        verification_certificate_thumbprints=list(facts["verification_certificate_thumbprints"]),
        token_encryption_thumbprint=facts["token_encryption_thumbprint"],
        notification_emails=list(facts["notification_emails"]),
        sp_entity_ids=list(facts.get("sp_entity_ids", [])), reply_urls=list(facts.get("reply_urls", [])),
        allowed_weak_algorithms=facts.get("allowed_weak_algorithms"),
        # Stored before the state was read: unknown (a confident "off" would give a wrong "activate only").
        token_encryption_state=facts.get("token_encryption_state", TE_UNKNOWN))


# --- what a space sees ----------------------------------------------------------------------------------

def room_certificates(services: Services, room_id: str) -> list[CertificateView]:
    """Every certificate the space tracks, worst first."""
    now = services.clock()
    return sorted((view_of(c, now, services.config) for c in services.storage.tracking.certificates(room_id=room_id)),
                  key=lambda v: v.sort_key)


def view_of(certificate: TrackedCertificate, now: datetime, config) -> CertificateView:
    not_before = datetime.fromtimestamp(certificate.not_before, timezone.utc)
    not_after = datetime.fromtimestamp(certificate.not_after, timezone.utc)
    status = validity_status(not_before, not_after, now, warning_days=config.warning_days,
                             critical_days=config.critical_days)
    return CertificateView(certificate, status, days_until(not_after, now))


def room_trust_facts(services: Services, room_id: str) -> TrustFacts:
    """Rebuild what the diagnosis needs from the space's stored documents and its Entra apps: the apps it
    watches, the Webex apps of the tenant (Graph), and app JSON files dropped into the space."""
    webex_documents, entra_documents, other_sp_documents = [], [], []
    app_files = []
    for source in services.storage.tracking.sources(room_id=room_id):
        if source.kind == ENTRA_APP_FILE:
            app_files.append(source)
            continue
        if source.kind == "entra-app" or not source.content:
            continue
        try:
            document = parse_document(source.content, source=source.label,
                                      max_bytes=max(len(source.content), services.config.max_document_bytes))
        except DocumentError:
            continue   # stored before a parser change; it is still listed by status
        side = (webex_documents if is_webex_document(document)
                else other_sp_documents if _is_other_sp_document(document) else entra_documents)
        side.append(document)
    apps, note = _space_apps(services, room_id, recognise_trusts(webex_documents), app_files)
    return TrustFacts(webex_documents=webex_documents, entra_documents=entra_documents, entra_apps=apps,
                      other_sp_documents=other_sp_documents, entra_note=note,
                      warning_days=services.config.warning_days, critical_days=services.config.critical_days)


def _space_apps(services: Services, room_id: str, trusts: list, app_files: list[Source], *,
                refresh: bool = False) -> tuple[list[EntraAppFacts], str]:
    """The apps a space's diagnosis covers: watched ones, the tenant's Webex apps and apps serving the
    space's Webex documents (Graph), then app JSON files of apps Graph does not know. With Graph set up
    but never read (or ``refresh``), the inventory is read now; a Graph failure becomes the note."""
    watched = {s.location for s in services.storage.tracking.sources(room_id=room_id, kind="entra-app")}
    stored, note = services.storage.tracking.entra_apps(), ""
    if services.entra is not None and (refresh or not stored):
        try:
            stored = refresh_entra_inventory(services)
        except (UserError, Retryable) as error:   # Graph refused or is down: answer without it, say why
            note = f"I could not read the Entra apps from Microsoft Graph: {error}"
    apps = []
    for app in stored:
        facts = app_facts(app)
        if app["sp_id"] in watched or facts.webex_kind or any(app_serves(facts.identity, t) for t in trusts):
            apps.append(facts)
    known = {app.app_id for app in apps}
    return apps + [app for app in _file_apps(services, app_files) if app.app_id not in known], note


def _file_apps(services: Services, sources: list[Source]) -> list[EntraAppFacts]:
    """The apps described by JSON files dropped into the space, one per appId (application + service principal)."""
    by_app: dict[str, list] = {}
    for source in sources:
        try:
            app_file = read_app_file(source.content or b"", source.label, max(len(source.content or b""), 1))
        except UserError as error:   # checked when dropped; a later, stricter reader may refuse it
            log.warning("stored app file %s (source %s) is left out of the diagnosis: %s", source.label, source.id,
                        error)
            continue
        by_app.setdefault(app_file.app_id, []).append(app_file)
    apps = []
    for files in by_app.values():
        try:
            apps.append(facts_of(files))
        except UserError as error:
            log.warning("stored app files %s are left out of the diagnosis: %s",
                        ", ".join(f.name for f in files), error)
    return apps


def _is_other_sp_document(document: Document) -> bool:
    """SP metadata of a service provider that is not Webex (Microsoft Online, Salesforce, ...)."""
    return (any("sp" in e.roles for e in document.entities)
            and not any("idp" in e.roles for e in document.entities))


def app_answer(services, room_id: str, app: dict[str, Any]) -> tuple[str, str]:
    """One app's upload-or-activate answer: against the space's Webex metadata it serves, else what its
    settings mean for Webex's next certificate; for another application's app, that app's own guidance."""
    facts = app_facts(app)
    verdict, sentence = app_standing_answer(facts)
    if verdict == "other-app":
        return verdict, sentence
    room = room_trust_facts(services, room_id)
    served = [d for d in room.webex_documents
              if not facts.identity.known or any(app_serves(facts.identity, t) for t in recognise_trusts([d]))]
    if served:
        diagnosis = diagnose(TrustFacts(webex_documents=served, entra_apps=[facts], warning_days=room.warning_days,
                                        critical_days=room.critical_days), services.clock())
        return diagnosis.upload_verdict, diagnosis.upload_answer
    return verdict, sentence


def room_diagnosis(services: Services, room_id: str) -> Diagnosis:
    return diagnose(room_trust_facts(services, room_id), services.clock())


def document_diagnosis(services: Services, room_id: str, document: Document) -> Diagnosis:
    """The diagnosis of one document just read: a Webex document with the Entra app serving its trust (read
    from Graph at once when the stored inventory has none); Entra's metadata with the apps it signs for; any
    other service provider's metadata on its own. The Webex question is only asked about a Webex document."""
    facts = room_trust_facts(services, room_id)
    apps, now = facts.entra_apps, services.clock()
    base = dict(warning_days=facts.warning_days, critical_days=facts.critical_days)
    trusts = recognise_trusts([document])
    if trusts:
        serving = _serving(apps, trusts)
        note = facts.entra_note
        if not serving and services.entra is not None and not note:
            apps, note = _space_apps(services, room_id, trusts, _app_file_sources(services, room_id), refresh=True)
            serving = _serving(apps, trusts)
        if not serving and apps and not note:
            note = f"I found no Entra SAML app whose Identifier or reply URL is {trusts[0].entity_id}."
        chosen = serving or [a for a in apps if not a.identity.known] or (apps if len(apps) == 1 else [])
        return diagnose(TrustFacts(webex_documents=[document], entra_apps=chosen, entra_note=note,
                                   entra_documents=facts.entra_documents, **base), now)
    if _is_other_sp_document(document):
        return diagnose(TrustFacts(other_sp_documents=[document], **base), now)
    thumbprints = {sha1_of(c.der) for c in document.certificates}
    signing_for = [app for app in apps
                   if thumbprints & {normalise_thumbprint(c.thumbprint) for c in app.signing_certificates}]
    return diagnose(TrustFacts(entra_documents=[document], entra_apps=signing_for, **base), now)


def _serving(apps: list[EntraAppFacts], trusts: list) -> list[EntraAppFacts]:
    return [app for app in apps if any(app_serves(app.identity, t) for t in trusts)]


def _app_file_sources(services: Services, room_id: str) -> list[Source]:
    return services.storage.tracking.sources(room_id=room_id, kind=ENTRA_APP_FILE)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(timezone.utc).isoformat()


def _from_iso(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)

