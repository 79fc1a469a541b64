"""Safe, idempotent, verified Graph write operations for SAML certificate rollover.

Every operation follows the same visible pattern:

1. read the current state (``before``) and check preconditions (refuse with ``OperationRefusedError``);
2. return early with ``changed=False`` when the goal is already reached (idempotent);
3. build the exact Graph request(s) as ``PlannedRequest`` objects (``client.plan_...``);
4. in dry-run mode return them without sending anything;
5. otherwise ``client.execute(planned)``, re-read Graph (polling for eventual consistency) and
   raise ``OperationVerificationError`` loudly if the result is not what was intended.

``OperationResult.before`` / ``after`` are ``CredentialSnapshot``s (thumbprints, keyIds) for the audit log.
This module never imports the SDK; all Graph traffic goes through ``entra_client.EntraClient``.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable, Optional, TypeVar

from cryptography import x509

from rollover.errors import UserError
from rollover.integrations.entra_client import (
    ApplicationInfo,
    EntraClient,
    GraphThrottledError,
    GraphUnavailableError,
    KeyCredentialInfo,
    NewSigningCertificate,
    PlannedRequest,
    ServicePrincipalInfo,
    SigningCertificate,
)

MAX_SIGNING_CERTIFICATE_YEARS = 3
MAX_DISPLAY_NAME_LENGTH = 90         # keyCredential displayName limit (beta doc)
MAX_NOTIFICATION_EMAILS = 5          # the portal's limit
EMAIL_PATTERN = re.compile(r"^[^@\s<>(),;:\"]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")

T = TypeVar("T")


class OperationRefusedError(UserError):
    """A precondition failed; nothing was sent to Graph."""


class OperationVerificationError(UserError):
    """Graph accepted a write but the re-read state is not what was intended. Needs a human NOW."""

    def __init__(self, message: str, before: "CredentialSnapshot", after: Optional["CredentialSnapshot"]):
        super().__init__(f"VERIFICATION FAILED: {message} Check the app in the Entra admin center now.")
        self.before, self.after = before, after


@dataclass(frozen=True)
class CredentialSnapshot:
    """Audit view of an object's credentials (no key material)."""
    object_id: str
    active_thumbprint: Optional[str] = None
    signing_thumbprints: tuple[str, ...] = ()
    key_ids: tuple[str, ...] = ()
    password_key_ids: tuple[str, ...] = ()
    verification_thumbprints: tuple[str, ...] = ()
    notification_emails: tuple[str, ...] = ()
    signed_requests_required: Optional[bool] = None


@dataclass(frozen=True)
class OperationResult:
    operation: str
    changed: bool
    dry_run: bool
    requests: list[PlannedRequest]
    before: CredentialSnapshot
    after: Optional[CredentialSnapshot]
    detail: str
    thumbprint: Optional[str] = None     # the certificate the operation was about
    extra: dict = field(default_factory=dict)


def sp_snapshot(sp: ServicePrincipalInfo) -> CredentialSnapshot:
    return CredentialSnapshot(
        object_id=sp.id, active_thumbprint=sp.preferred_token_signing_key_thumbprint,
        signing_thumbprints=tuple(cert.thumbprint or "?" for cert in sp.signing_certificates),
        key_ids=tuple(kc.key_id for kc in sp.key_credentials),
        password_key_ids=tuple(pc.key_id for pc in sp.password_credentials),
        notification_emails=sp.notification_email_addresses)


def application_snapshot(app: ApplicationInfo) -> CredentialSnapshot:
    return CredentialSnapshot(
        object_id=app.id, key_ids=tuple(kc.key_id for kc in app.key_credentials),
        password_key_ids=tuple(pc.key_id for pc in app.password_credentials),
        verification_thumbprints=tuple(kc.thumbprint or "?" for kc in app.verification_certificates),
        signed_requests_required=app.signed_requests_required)


def normalise_thumbprint(value: str) -> str:
    """Uppercase hex without separators (the documented form; Graph's case sensitivity is UNCONFIRMED)."""
    cleaned = re.sub(r"[\s:]", "", value or "").upper()
    if not re.fullmatch(r"[0-9A-F]{40}", cleaned):
        raise OperationRefusedError(f"'{value}' is not a SHA-1 certificate thumbprint (40 hex digits).")
    return cleaned


def guard_key_credentials(before: tuple, planned: list, allowed_removals: frozenset[str] = frozenset(),
                          protected_key_ids: frozenset[str] = frozenset()) -> None:
    """Refuse (before sending) a keyCredentials or passwordCredentials PATCH that drops anything but the
    intended keyIds.

    PATCH replaces the whole collection, so an omitted entry is a deleted credential.
    """
    planned_ids = {kc.key_id for kc in planned}
    dropped = {kc.key_id for kc in before} - planned_ids
    if protected_key_ids & (dropped | allowed_removals):
        raise OperationRefusedError("Refusing to send a PATCH that would remove the ACTIVE signing certificate "
                                    f"(keyIds {', '.join(sorted(protected_key_ids & (dropped | allowed_removals)))}).")
    unexpected = dropped - allowed_removals
    if unexpected:
        raise OperationRefusedError("Refusing to send a PATCH that would drop existing credentials "
                                    f"(keyIds {', '.join(sorted(unexpected))}); PATCH replaces the whole list.")


def credential_ids(obj: ServicePrincipalInfo | ApplicationInfo) -> tuple[frozenset[str], frozenset[str]]:
    """The keyIds of an object's keyCredentials and of its passwordCredentials."""
    return (frozenset(kc.key_id for kc in obj.key_credentials),
            frozenset(pc.key_id for pc in obj.password_credentials))


class EntraOperations:
    """The rollover write operations. ``poll_timeout``/``poll_interval`` bound the wait for Graph's
    eventual consistency (new keys can take minutes to show)."""

    def __init__(self, client: EntraClient, poll_timeout: float = 300.0, poll_interval: float = 5.0,
                 sleep: Callable[[float], None] = time.sleep, monotonic: Callable[[], float] = time.monotonic):
        self.client = client
        self.poll_timeout = poll_timeout
        self.poll_interval = poll_interval
        self._sleep = sleep
        self._monotonic = monotonic

    # ------------------------------------------------------------------ helpers

    def _poll(self, read: Callable[[], T], done: Callable[[T], bool]) -> tuple[T, bool]:
        """Re-read until ``done`` or the timeout; returns the last state and whether it converged."""
        deadline = self._monotonic() + self.poll_timeout
        state = read()
        while not done(state) and self._monotonic() < deadline:
            self._sleep(self.poll_interval)
            state = read()
        return state, done(state)

    def _read_sp(self, sp_id: str) -> ServicePrincipalInfo:
        # Always with keys: thumbprints of writes are verified against the certificate DER.
        return self.client.get_service_principal(sp_id, with_keys=True)

    @staticmethod
    def _refuse_if_changed(planned_from: T, read: Callable[[], T]) -> None:
        """PATCH replaces whole credential collections: one added since ``planned_from`` was read would be
        dropped. Re-read right before sending and refuse when the collections changed (the window left is
        the one round trip between this read and the PATCH)."""
        now = read()
        if credential_ids(now) != credential_ids(planned_from):
            raise OperationRefusedError(f"The credentials of {now.display_name} changed while I prepared this "
                                        "change (someone else edited them); nothing was sent. Try again.")

    @staticmethod
    def _find_certificate(sp: ServicePrincipalInfo, thumbprint: str) -> Optional[SigningCertificate]:
        return next((cert for cert in sp.signing_certificates if cert.thumbprint == thumbprint), None)

    # ------------------------------------------------------------------ create

    def create_token_signing_certificate(self, sp_id: str, display_name: str, end: dt.datetime, *,
                                         now: dt.datetime, idempotency_marker: Optional[str] = None,
                                         wait_for_previous_attempt: bool = False,
                                         dry_run: bool = False) -> OperationResult:
        """POST addTokenSigningCertificate once; the new certificate stays INACTIVE.

        Idempotency key: the effective display name ("CN=... [marker]" with a marker, else the CN)
        plus, without a marker, the end date (day). A cert matching it means "already done".
        A caller resuming after a crash between POST and response passes
        ``wait_for_previous_attempt=True``: we then poll for that cert (eventual consistency)
        before deciding to POST, so a retry doesn't mint a second certificate.
        """
        name = self._effective_display_name(display_name, idempotency_marker)
        end = end.astimezone(dt.timezone.utc).replace(microsecond=0)
        self._check_signing_certificate_end(end, now)

        def existing(sp: ServicePrincipalInfo) -> Optional[SigningCertificate]:
            return next((cert for cert in sp.signing_certificates if cert.display_name == name and
                         (idempotency_marker or (cert.not_after and cert.not_after.date() == end.date()))), None)

        before = self._read_sp(sp_id)
        if existing(before) is None and wait_for_previous_attempt and not dry_run:
            before, _found = self._poll(lambda: self._read_sp(sp_id), lambda sp: existing(sp) is not None)
        if (found := existing(before)) is not None:
            return OperationResult("create_token_signing_certificate", False, dry_run, [], sp_snapshot(before),
                                   sp_snapshot(before), f"A certificate named {name} already exists "
                                   f"({found.thumbprint}); nothing sent.", thumbprint=found.thumbprint)

        request = self.client.plan_add_token_signing_certificate(sp_id, name, end)
        if dry_run:
            return OperationResult("create_token_signing_certificate", False, True, [request], sp_snapshot(before),
                                   None, f"Would create the signing certificate {name}.")
        created = self._send_add_token_signing_certificate(request, sp_id, existing)
        after, visible = self._poll(lambda: self._read_sp(sp_id),
                                    lambda sp: self._find_certificate(sp, created.thumbprint) is not None)
        self._verify_created(before, after, visible, created)
        return OperationResult("create_token_signing_certificate", True, False, [request], sp_snapshot(before),
                               sp_snapshot(after), f"Created the inactive signing certificate {name} "
                               f"({created.thumbprint}).", thumbprint=created.thumbprint)

    @staticmethod
    def _effective_display_name(display_name: str, marker: Optional[str]) -> str:
        if not display_name.startswith("CN="):
            raise OperationRefusedError("The certificate name must start with 'CN=' (Graph requires it).")
        if marker is not None and not re.fullmatch(r"[A-Za-z0-9._-]{1,40}", marker):
            raise OperationRefusedError("The idempotency marker may only hold letters, digits, '.', '_' and '-'.")
        name = f"{display_name} [{marker}]" if marker else display_name
        if len(name) > MAX_DISPLAY_NAME_LENGTH:
            raise OperationRefusedError(f"The certificate name is longer than {MAX_DISPLAY_NAME_LENGTH} characters.")
        return name

    @staticmethod
    def _check_signing_certificate_end(end: dt.datetime, now: dt.datetime) -> None:
        try:
            latest = now.replace(year=now.year + MAX_SIGNING_CERTIFICATE_YEARS)
        except ValueError:   # 29 February, in a year that has none
            latest = now.replace(year=now.year + MAX_SIGNING_CERTIFICATE_YEARS, month=2, day=28)
        if end <= now or end > latest:
            raise OperationRefusedError("The new certificate must end in the future and at most "
                                        f"{MAX_SIGNING_CERTIFICATE_YEARS} years from now.")

    def _send_add_token_signing_certificate(self, request: PlannedRequest, sp_id: str,
                                            existing: Callable[[ServicePrincipalInfo], Optional[SigningCertificate]]
                                            ) -> NewSigningCertificate:
        """The POST is not retried by the SDK; on 429/5xx we look whether it took effect anyway."""
        try:
            created = self.client.execute(request)
        except (GraphThrottledError, GraphUnavailableError):
            found = existing(self._read_sp(sp_id))
            if found is None or found.thumbprint is None:
                raise
            return NewSigningCertificate(thumbprint=found.thumbprint, key_id=found.sign_key_id,
                                         custom_key_identifier=None, display_name=found.display_name,
                                         start=found.not_before, end=found.not_after)
        assert created is not None, "addTokenSigningCertificate returns a selfSignedCertificate"
        return created

    def _verify_created(self, before: ServicePrincipalInfo, after: ServicePrincipalInfo, visible: bool,
                        created: NewSigningCertificate) -> None:
        if not visible:
            raise OperationVerificationError(
                f"the new certificate {created.thumbprint} did not appear on the app within "
                f"{self.poll_timeout:.0f} s.", sp_snapshot(before), sp_snapshot(after))
        lost = {kc.key_id for kc in before.key_credentials} - {kc.key_id for kc in after.key_credentials}
        if lost or after.preferred_token_signing_key_thumbprint != before.preferred_token_signing_key_thumbprint:
            raise OperationVerificationError(
                "creating the certificate changed existing credentials or the active certificate.",
                sp_snapshot(before), sp_snapshot(after))

    # ------------------------------------------------------------------ activate

    def activate_certificate(self, sp_id: str, thumbprint: str, *, now: dt.datetime,
                             dry_run: bool = False) -> OperationResult:
        """PATCH preferredTokenSigningKeyThumbprint. Rollback = activate the previous thumbprint
        (``result.before.active_thumbprint``), which must itself still be valid."""
        thumbprint = normalise_thumbprint(thumbprint)
        before = self._read_sp(sp_id)
        certificate = self._find_certificate(before, thumbprint)
        self._check_activatable(before, certificate, thumbprint, now)
        if (before.preferred_token_signing_key_thumbprint or "").upper() == thumbprint:
            return OperationResult("activate_certificate", False, dry_run, [], sp_snapshot(before),
                                   sp_snapshot(before), f"{thumbprint} is already the active certificate.",
                                   thumbprint=thumbprint)
        request = self.client.plan_set_preferred_thumbprint(sp_id, thumbprint)
        if dry_run:
            return OperationResult("activate_certificate", False, True, [request], sp_snapshot(before), None,
                                   f"Would activate {thumbprint}.", thumbprint=thumbprint)
        self.client.execute(request)
        after, converged = self._poll(
            lambda: self._read_sp(sp_id),
            lambda sp: (sp.preferred_token_signing_key_thumbprint or "").upper() == thumbprint)
        if not converged:
            raise OperationVerificationError(
                f"Graph still reports {after.preferred_token_signing_key_thumbprint} as active, not {thumbprint}.",
                sp_snapshot(before), sp_snapshot(after))
        return OperationResult("activate_certificate", True, False, [request], sp_snapshot(before),
                               sp_snapshot(after), f"Activated {thumbprint} (previously "
                               f"{before.preferred_token_signing_key_thumbprint}).", thumbprint=thumbprint,
                               extra={"rollback_thumbprint": before.preferred_token_signing_key_thumbprint})

    @staticmethod
    def _check_activatable(sp: ServicePrincipalInfo, certificate: Optional[SigningCertificate], thumbprint: str,
                           now: dt.datetime) -> None:
        if certificate is None:
            raise OperationRefusedError(f"{sp.display_name} has no signing certificate with thumbprint {thumbprint}.")
        if certificate.not_after is not None and certificate.not_after <= now:
            raise OperationRefusedError(f"Certificate {thumbprint} expired on {certificate.not_after:%Y-%m-%d}; "
                                        "activating it would break sign-in.")
        if certificate.not_before is not None and certificate.not_before > now:
            raise OperationRefusedError(f"Certificate {thumbprint} is not valid before "
                                        f"{certificate.not_before:%Y-%m-%d %H:%M} UTC.")

    # ------------------------------------------------------------------ verification certificate

    def add_verification_certificate(self, application_object_id: str, cert_der: bytes, display_name: str, *,
                                     now: dt.datetime, require_signed_requests: bool = True,
                                     wait_for_previous_attempt: bool = False,
                                     dry_run: bool = False) -> OperationResult:
        """Append a Verify certificate (e.g. Webex's SP cert) to the app registration's keyCredentials.

        ``require_signed_requests=True`` also sets requestSignatureVerification.isSignedRequestRequired;
        False leaves that setting as it is. PATCH replaces the whole list, so every existing entry is
        echoed (keyId, no key) and checked before sending and after re-reading. Idempotent by
        thumbprint; a caller resuming after a crash passes ``wait_for_previous_attempt=True`` so a PATCH
        that went out but is not visible yet (eventual consistency) is waited for, not sent again.
        """
        certificate = x509.load_der_x509_certificate(cert_der)
        thumbprint = hashlib.sha1(cert_der).hexdigest().upper()
        if certificate.not_valid_after_utc <= now:
            raise OperationRefusedError(f"The certificate {thumbprint} expired on "
                                        f"{certificate.not_valid_after_utc:%Y-%m-%d}.")

        def has_it(app: ApplicationInfo) -> bool:
            return any(kc.thumbprint == thumbprint for kc in app.verification_certificates)

        before = self.client.get_application(application_object_id, with_keys=True)
        if not has_it(before) and wait_for_previous_attempt and not dry_run:
            before, _found = self._poll(lambda: self.client.get_application(application_object_id, with_keys=True),
                                        has_it)
        sp_before = self.client.get_service_principal_by_app_id(before.app_id, with_keys=False)
        present = has_it(before)
        flag_ok = not require_signed_requests or before.signed_requests_required is True
        if present and flag_ok:
            return OperationResult("add_verification_certificate", False, dry_run, [],
                                   application_snapshot(before), application_snapshot(before),
                                   f"{thumbprint} is already a verification certificate.", thumbprint=thumbprint)
        planned_keys = list(before.key_credentials)
        if not present:
            planned_keys.append(KeyCredentialInfo(
                key_id=str(uuid.uuid4()), type="AsymmetricX509Cert", usage="Verify", display_name=display_name,
                start=certificate.not_valid_before_utc, end=certificate.not_valid_after_utc,
                # customKeyIdentifier = thumbprint, so inventories need no $select=keyCredentials for it.
                custom_key_identifier=bytes.fromhex(thumbprint), der=cert_der))
        echoed = [_without_key(kc) if kc in before.key_credentials else kc for kc in planned_keys]
        guard_key_credentials(before.key_credentials, echoed)
        request = self.client.plan_replace_application_keys(
            application_object_id, echoed, True if require_signed_requests else None)
        if dry_run:
            return OperationResult("add_verification_certificate", False, True, [request],
                                   application_snapshot(before), None,
                                   f"Would add the verification certificate {thumbprint}.", thumbprint=thumbprint)
        self._refuse_if_changed(before, lambda: self.client.get_application(application_object_id, with_keys=True))
        self.client.execute(request)
        after, converged = self._poll(
            lambda: self.client.get_application(application_object_id, with_keys=True), has_it)
        self._verify_application_write(before, after, converged, thumbprint, require_signed_requests, sp_before)
        return OperationResult("add_verification_certificate", True, False, [request], application_snapshot(before),
                               application_snapshot(after), f"Added the verification certificate {thumbprint}.",
                               thumbprint=thumbprint)

    def _verify_application_write(self, before: ApplicationInfo, after: ApplicationInfo, converged: bool,
                                  thumbprint: str, require_signed_requests: bool,
                                  sp_before: ServicePrincipalInfo) -> None:
        problems = []
        if not converged:
            problems.append(f"the certificate {thumbprint} is not on the app registration")
        lost = {kc.key_id for kc in before.key_credentials} - {kc.key_id for kc in after.key_credentials}
        if lost:
            problems.append(f"existing credentials disappeared (keyIds {', '.join(sorted(lost))})")
        if require_signed_requests and after.signed_requests_required is not True:
            problems.append("requestSignatureVerification.isSignedRequestRequired is not true")
        sp_after = self.client.get_service_principal_by_app_id(before.app_id, with_keys=False)
        if sp_after.preferred_token_signing_key_thumbprint != sp_before.preferred_token_signing_key_thumbprint:
            problems.append("the enterprise app's active signing certificate changed")
        lost_sp = {kc.key_id for kc in sp_before.key_credentials} - {kc.key_id for kc in sp_after.key_credentials}
        if lost_sp:
            problems.append(f"signing keys disappeared from the enterprise app ({', '.join(sorted(lost_sp))})")
        if problems:
            raise OperationVerificationError("; ".join(problems) + ".", application_snapshot(before),
                                             application_snapshot(after))

    # ------------------------------------------------------------------ remove expired

    def remove_expired_signing_certificate(self, sp_id: str, thumbprint: str, *, now: dt.datetime,
                                           dry_run: bool = False) -> OperationResult:
        """Remove an INACTIVE, EXPIRED signing cert: its Sign + Verify keys and its passwordCredential,
        by PATCHing the filtered keyCredentials and passwordCredentials (as Terraform's azuread does)."""
        thumbprint = normalise_thumbprint(thumbprint)
        before = self._read_sp(sp_id)
        certificate = self._find_certificate(before, thumbprint)
        if certificate is None:
            return OperationResult("remove_expired_signing_certificate", False, dry_run, [], sp_snapshot(before),
                                   sp_snapshot(before), f"{thumbprint} is not on the app (already removed).",
                                   thumbprint=thumbprint)
        active = before.active_certificate
        if certificate.active or (before.preferred_token_signing_key_thumbprint or "").upper() == thumbprint:
            raise OperationRefusedError(f"{thumbprint} is the ACTIVE signing certificate; it is never removed.")
        if certificate.not_after is None or certificate.not_after > now:
            raise OperationRefusedError(f"{thumbprint} has not expired yet; only expired certificates are removed.")
        removed = self._key_ids_of(before, certificate)
        removed_passwords = self._password_ids_of(before, certificate, removed)
        keys = [_without_key(kc) for kc in before.key_credentials if kc.key_id not in removed]
        passwords = [pc for pc in before.password_credentials if pc.key_id not in removed_passwords]
        protected = frozenset({active.verify_key_id, active.sign_key_id} - {None}) if active else frozenset()
        guard_key_credentials(before.key_credentials, keys, frozenset(removed), protected)
        guard_key_credentials(before.password_credentials, passwords, removed_passwords)
        request = self.client.plan_replace_sp_credentials(sp_id, keys, passwords)
        if dry_run:
            return OperationResult("remove_expired_signing_certificate", False, True, [request],
                                   sp_snapshot(before), None, f"Would remove the expired certificate {thumbprint}.",
                                   thumbprint=thumbprint)
        self._refuse_if_changed(before, lambda: self._read_sp(sp_id))
        self.client.execute(request)
        after, converged = self._poll(lambda: self._read_sp(sp_id),
                                      lambda sp: self._find_certificate(sp, thumbprint) is None)
        self._verify_removal(before, after, converged, removed | removed_passwords, thumbprint)
        return OperationResult("remove_expired_signing_certificate", True, False, [request], sp_snapshot(before),
                               sp_snapshot(after), f"Removed the expired certificate {thumbprint}.",
                               thumbprint=thumbprint)

    @staticmethod
    def _key_ids_of(sp: ServicePrincipalInfo, certificate: SigningCertificate) -> set[str]:
        """The Verify key, the Sign key and the password sharing the Sign key's keyId."""
        ids = {certificate.verify_key_id}
        if certificate.sign_key_id:
            ids.add(certificate.sign_key_id)
        return ids

    @staticmethod
    def _password_ids_of(sp: ServicePrincipalInfo, certificate: SigningCertificate,
                         key_ids: set[str]) -> frozenset[str]:
        """The certificate's passwordCredential: it shares the Sign key's keyId or the customKeyIdentifier."""
        cki = _cki_bytes(certificate)
        return frozenset(pc.key_id for pc in sp.password_credentials
                         if pc.key_id in key_ids or (cki and pc.custom_key_identifier == cki))

    def _verify_removal(self, before: ServicePrincipalInfo, after: ServicePrincipalInfo, converged: bool,
                        removed: set[str], thumbprint: str) -> None:
        problems = []
        if not converged:
            problems.append(f"{thumbprint} is still on the app")
        kept = {kc.key_id for kc in before.key_credentials} - removed
        lost = kept - {kc.key_id for kc in after.key_credentials}
        if lost:
            problems.append(f"other credentials disappeared (keyIds {', '.join(sorted(lost))})")
        kept_passwords = {pc.key_id for pc in before.password_credentials} - removed
        lost_passwords = kept_passwords - {pc.key_id for pc in after.password_credentials}
        if lost_passwords:
            problems.append(f"other password credentials disappeared (keyIds {', '.join(sorted(lost_passwords))})")
        if after.preferred_token_signing_key_thumbprint != before.preferred_token_signing_key_thumbprint:
            problems.append("the active signing certificate changed")
        if problems:
            raise OperationVerificationError("; ".join(problems) + ".", sp_snapshot(before), sp_snapshot(after))

    # ------------------------------------------------------------------ notification e-mails

    def set_notification_emails(self, sp_id: str, emails: list[str], *, dry_run: bool = False) -> OperationResult:
        """Replace notificationEmailAddresses (Entra's expiry mails, at most 5 addresses)."""
        wanted = _validated_emails(emails)
        before = self.client.get_service_principal(sp_id, with_keys=False)
        if [e.casefold() for e in before.notification_email_addresses] == [e.casefold() for e in wanted]:
            return OperationResult("set_notification_emails", False, dry_run, [], sp_snapshot(before),
                                   sp_snapshot(before), "The notification addresses are already set.")
        request = self.client.plan_set_notification_emails(sp_id, wanted)
        if dry_run:
            return OperationResult("set_notification_emails", False, True, [request], sp_snapshot(before), None,
                                   "Would set the notification addresses.")
        self.client.execute(request)
        after, converged = self._poll(
            lambda: self.client.get_service_principal(sp_id, with_keys=False),
            lambda sp: [e.casefold() for e in sp.notification_email_addresses] == [e.casefold() for e in wanted])
        if not converged:
            raise OperationVerificationError("Graph does not show the new notification addresses.",
                                             sp_snapshot(before), sp_snapshot(after))
        return OperationResult("set_notification_emails", True, False, [request], sp_snapshot(before),
                               sp_snapshot(after), f"Notification addresses set to {', '.join(wanted)}.")


def _validated_emails(emails: list[str]) -> list[str]:
    unique: list[str] = []
    for email in (e.strip() for e in emails):
        if not EMAIL_PATTERN.match(email):
            raise OperationRefusedError(f"'{email}' is not a valid e-mail address.")
        if email.casefold() not in {u.casefold() for u in unique}:
            unique.append(email)
    if not unique or len(unique) > MAX_NOTIFICATION_EMAILS:
        raise OperationRefusedError(f"Give between 1 and {MAX_NOTIFICATION_EMAILS} notification addresses.")
    return unique


def _without_key(kc: KeyCredentialInfo) -> KeyCredentialInfo:
    """Echo an existing entry by keyId with key = null: Graph keeps the stored key (as Terraform does)."""
    return KeyCredentialInfo(kc.key_id, kc.type, kc.usage, kc.display_name, kc.start, kc.end,
                             kc.custom_key_identifier, None)


def _cki_bytes(certificate: SigningCertificate) -> Optional[bytes]:
    return base64.b64decode(certificate.custom_key_identifier) if certificate.custom_key_identifier else None
