"""Entra apps as plain data: Graph's JSON (from the SDK, ``az`` or a dropped file) to dataclasses, and
those to the diagnosis input. No SDK import, so ``bot.py explain --entra-app`` runs without one.

Thumbprints: SHA-1 of ``key`` (base64 DER) when Graph returned it (only on a single-object GET with
``$select=keyCredentials``), else a 20-byte ``customKeyIdentifier`` (the portal and
addTokenSigningCertificate default it to the SHA-1 thumbprint), else unknown.
"""
from __future__ import annotations

import binascii
import dataclasses
import datetime as dt
import gc
import hashlib
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Generic, Iterator, Optional, TypeVar

from rollover.certificates.trust_facts import (
    TE_OFF,
    TE_ON,
    TE_UNIDENTIFIED,
    TE_UNKNOWN,
    EntraAppFacts,
    EntraSigningCertificate,
)

UTC = dt.timezone.utc
V = TypeVar("V")


class computed_once(Generic[V]):
    """``functools.cached_property`` without Python 3.11's lock, taken on every first read: an inventory of
    5,000 apps reads 10,000 of these. The value lands in the instance's ``__dict__``, which later reads find
    first (this is a non-data descriptor); two threads racing compute the same value twice, harmlessly."""

    def __init__(self, compute: Callable[[Any], V]):
        self.compute = compute
        self.__doc__ = compute.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: Any, owner: type | None = None) -> V:
        if instance is None:
            return self  # type: ignore[return-value]
        value = instance.__dict__[self.name] = self.compute(instance)
        return value


# --------------------------------------------------------------------------- plain data


@dataclass(frozen=True)
class KeyCredentialInfo:
    """One keyCredentials entry. ``der`` is only set when Graph returned the key."""
    key_id: str
    type: Optional[str]
    usage: Optional[str]
    display_name: Optional[str]
    start: Optional[dt.datetime]
    end: Optional[dt.datetime]
    custom_key_identifier: Optional[bytes] = None
    der: Optional[bytes] = field(default=None, repr=False)

    @computed_once
    def thumbprint(self) -> Optional[str]:
        """SHA-1 of the DER (uppercase hex); else a 20-byte customKeyIdentifier (the portal default).
        Computed once: the inventory reads it several times per key."""
        if self.der:
            return hashlib.sha1(self.der).hexdigest().upper()
        if self.custom_key_identifier is not None and len(self.custom_key_identifier) == 20:
            return self.custom_key_identifier.hex().upper()
        return None

    @property
    def thumbprint_source(self) -> Optional[str]:
        if self.der:
            return "key"
        return "customKeyIdentifier" if self.thumbprint else None


@dataclass(frozen=True)
class PasswordCredentialInfo:
    """One passwordCredentials entry (client secret or a signing certificate's PFX password); never the secret."""
    key_id: str
    display_name: Optional[str]
    hint: Optional[str]
    start: Optional[dt.datetime]
    end: Optional[dt.datetime]
    custom_key_identifier: Optional[bytes] = None


@dataclass(frozen=True)
class SigningCertificate:
    """A SAML token-signing certificate of a service principal (Sign + Verify key pair)."""
    thumbprint: Optional[str]
    thumbprint_source: Optional[str]
    display_name: Optional[str]
    not_before: Optional[dt.datetime]
    not_after: Optional[dt.datetime]
    verify_key_id: str
    sign_key_id: Optional[str]
    custom_key_identifier: Optional[str]   # base64, as Graph shows it
    active: bool


@dataclass(frozen=True)
class ServicePrincipalInfo:
    id: str
    app_id: str
    display_name: str
    preferred_single_sign_on_mode: Optional[str]
    preferred_token_signing_key_thumbprint: Optional[str]
    notification_email_addresses: tuple[str, ...]
    token_encryption_key_id: Optional[str]
    key_credentials: tuple[KeyCredentialInfo, ...]
    password_credentials: tuple[PasswordCredentialInfo, ...] = ()
    service_principal_names: tuple[str, ...] = ()
    reply_urls: tuple[str, ...] = ()
    reads_token_encryption: bool = True    # tokenEncryptionKeyId was in the response (null or not)

    @computed_once
    def signing_certificates(self) -> tuple[SigningCertificate, ...]:
        """Computed once per object (the active certificate and the inventory entry both read it)."""
        return signing_certificates_of(self)

    @property
    def active_certificate(self) -> Optional[SigningCertificate]:
        for cert in self.signing_certificates:
            if cert.active:
                return cert
        return None

    @property
    def token_encryption_key(self) -> Optional[KeyCredentialInfo]:
        return next((kc for kc in self.key_credentials if kc.key_id == self.token_encryption_key_id), None)

    @computed_once
    def needs_key_fetch(self) -> bool:
        """True when thumbprints can't be derived from customKeyIdentifier alone (costs one $select GET): a
        Verify or Encrypt key without one, or a preferred thumbprint that none of them has."""
        preferred = (self.preferred_token_signing_key_thumbprint or "").upper()
        explained = not preferred
        for kc in self.key_credentials:
            if kc.usage == "Verify" or kc.usage == "Encrypt":
                thumbprint = kc.thumbprint
                if thumbprint is None:
                    return True
                explained = explained or thumbprint == preferred
        return not explained


@dataclass(frozen=True)
class ApplicationInfo:
    """The app registration behind a SAML app: signed-request setting, certificates, client secrets."""
    id: str
    app_id: str
    display_name: str
    signed_requests_required: Optional[bool]
    allowed_weak_algorithms: Optional[str]
    key_credentials: tuple[KeyCredentialInfo, ...]
    password_credentials: tuple[PasswordCredentialInfo, ...]
    identifier_uris: tuple[str, ...] = ()
    token_encryption_key_id: Optional[str] = None
    reads_token_encryption: bool = False
    redirect_uris: tuple[str, ...] = ()

    @property
    def verification_certificates(self) -> tuple[KeyCredentialInfo, ...]:
        """Verify certificates. Graph does not tell request-verification certs from client-auth certs."""
        return tuple(kc for kc in self.key_credentials if kc.usage == "Verify") if self.key_credentials else ()

    @property
    def needs_key_fetch(self) -> bool:
        for kc in self.key_credentials:
            if kc.usage == "Verify" and kc.thumbprint is None:
                return True
        return False


@dataclass(frozen=True)
class SamlAppInventory:
    """Everything the bot needs to know about one SAML enterprise app."""
    display_name: str
    sp_id: str
    app_id: str
    application_object_id: Optional[str]
    signing_certificates: tuple[SigningCertificate, ...]
    active_thumbprint: Optional[str]
    notification_emails: tuple[str, ...]
    token_encryption_key_id: Optional[str]
    token_encryption_thumbprint: Optional[str]
    requires_signed_requests: Optional[bool]
    verification_certificates: tuple[KeyCredentialInfo, ...]
    client_secrets: tuple[PasswordCredentialInfo, ...]
    certificate_credentials: tuple[KeyCredentialInfo, ...]
    identifier_uris: tuple[str, ...] = ()   # the SAML Identifier (Entity ID) values
    reply_urls: tuple[str, ...] = ()
    allowed_weak_algorithms: Optional[str] = None
    token_encryption_state: str = TE_UNKNOWN   # off | on | unidentified | unknown


# --------------------------------------------------------------------------- conversions

D = TypeVar("D")
_MAKERS: dict[type, Callable[..., Any]] = {}


def maker(cls: type[D]) -> Callable[..., D]:
    """A keyword-only constructor of the frozen dataclass ``cls`` that skips its ``__init__``: that sets each field
    through ``object.__setattr__``, and an inventory of 5,000 apps builds ~30,000 of these. The maker sets the
    instance's ``__dict__`` in one update (~0.5 us instead of ~1.4 us for 8 fields). The object is the same:
    defaults applied, a missing field or an unknown one refused, still frozen. Generated once per class, as
    ``dataclasses`` generates ``__init__``."""
    made = _MAKERS.get(cls)
    if made is None:
        made = _MAKERS[cls] = _generate_maker(cls)
    return made


def _generate_maker(cls: type) -> Callable[..., Any]:
    fields = dataclasses.fields(cls)
    if any(f.default_factory is not dataclasses.MISSING for f in fields):
        raise TypeError(f"{cls.__name__}: maker() does not run default factories")
    if any(f.name in ("obj", "unknown") or f.name.startswith("_") for f in fields):
        raise TypeError(f"{cls.__name__}: a field's name would clash with the maker's own names")
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    parameters = []
    for f in fields:
        if f.default is dataclasses.MISSING:
            parameters.append(f.name)
        else:
            namespace[f"_default_{f.name}"] = f.default
            parameters.append(f"{f.name}=_default_{f.name}")
    assignments = ", ".join(f"{f.name}={f.name}" for f in fields)
    # The source holds only the field names of our own dataclasses (identifiers), nothing read from outside.
    exec(f"def make(*, {', '.join(parameters)}, **unknown):\n"
         f"    if unknown:\n"
         f"        raise TypeError(f'{cls.__name__} has no field {{sorted(unknown)[0]!r}}')\n"
         f"    obj = _new(_cls)\n"
         f"    obj.__dict__.update({assignments})\n"
         f"    return obj\n", namespace)
    make = namespace["make"]
    make.__qualname__ = make.__name__ = f"make_{cls.__name__}"
    return make


_new_key_credential = maker(KeyCredentialInfo)
_new_password_credential = maker(PasswordCredentialInfo)
_new_service_principal = maker(ServicePrincipalInfo)
_new_application = maker(ApplicationInfo)
_new_signing_certificate = maker(SigningCertificate)
_new_inventory_entry = maker(SamlAppInventory)


_pauses = {"count": 0, "was_enabled": True}
_pauses_lock = threading.Lock()


@contextmanager
def cycle_collection_paused() -> Iterator[None]:
    """CPython's cycle collector paused while a large inventory is read and converted.

    5,000 apps are ~100,000 containers (decoded pages, then dataclasses) that form no cycles and mostly stay;
    the collector, started by allocation counts, walks them again and again meanwhile: a quarter of the
    inventory's CPU time (bench/graph_inventory.py). Process-wide, so counted: concurrent inventories end
    the pause only together, and a collector that someone else turned off stays off."""
    with _pauses_lock:
        if _pauses["count"] == 0:
            _pauses["was_enabled"] = gc.isenabled()
            gc.disable()
        _pauses["count"] += 1
    try:
        yield
    finally:
        with _pauses_lock:
            _pauses["count"] -= 1
            if _pauses["count"] == 0 and _pauses["was_enabled"]:
                gc.enable()


def _utc(moment: Optional[dt.datetime]) -> Optional[dt.datetime]:
    if moment is None or moment.tzinfo is UTC:
        return moment
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@lru_cache(maxsize=4096)
def _parse_time(value: Optional[str]) -> Optional[dt.datetime]:
    """Remembered: a certificate's Sign and Verify entries (and many apps) share their dates."""
    return _utc(dt.datetime.fromisoformat(value)) if value else None


def _parse_binary(value: Optional[str]) -> Optional[bytes]:
    return binascii.a2b_base64(value) if value else None   # what base64.b64decode does, minus its wrapper


def _key_info(kc: dict) -> KeyCredentialInfo:
    key = kc.get("key")   # null on lists
    return _new_key_credential(
        key_id=kc["keyId"], type=kc.get("type"), usage=kc.get("usage"), display_name=kc.get("displayName"),
        start=_parse_time(kc.get("startDateTime")), end=_parse_time(kc.get("endDateTime")),
        custom_key_identifier=_parse_binary(kc.get("customKeyIdentifier")),
        der=binascii.a2b_base64(key) if key else None)


def _password_info(pc: dict) -> PasswordCredentialInfo:
    return _new_password_credential(
        key_id=pc["keyId"], display_name=pc.get("displayName"), hint=pc.get("hint"),
        start=_parse_time(pc.get("startDateTime")), end=_parse_time(pc.get("endDateTime")),
        custom_key_identifier=_parse_binary(pc.get("customKeyIdentifier")))


def _keys(values: Optional[list[dict]]) -> tuple[KeyCredentialInfo, ...]:
    return tuple([_key_info(kc) for kc in values]) if values else ()


def _passwords(values: Optional[list[dict]]) -> tuple[PasswordCredentialInfo, ...]:
    return tuple([_password_info(pc) for pc in values]) if values else ()


def _sp_info(sp: dict) -> ServicePrincipalInfo:
    return _new_service_principal(
        id=sp["id"], app_id=sp.get("appId") or "", display_name=sp.get("displayName") or "",
        preferred_single_sign_on_mode=sp.get("preferredSingleSignOnMode"),
        preferred_token_signing_key_thumbprint=sp.get("preferredTokenSigningKeyThumbprint"),
        notification_email_addresses=tuple(sp.get("notificationEmailAddresses") or ()),
        token_encryption_key_id=sp.get("tokenEncryptionKeyId"),
        key_credentials=_keys(sp.get("keyCredentials")),
        password_credentials=_passwords(sp.get("passwordCredentials")),
        service_principal_names=tuple(sp.get("servicePrincipalNames") or ()),
        reply_urls=tuple(sp.get("replyUrls") or ()),
        reads_token_encryption="tokenEncryptionKeyId" in sp)


def _application_info(app: dict) -> ApplicationInfo:
    verification = app.get("requestSignatureVerification") or {}
    if not isinstance(verification, dict):
        raise ValueError("requestSignatureVerification is not an object")
    flag = verification.get("isSignedRequestRequired")
    if flag is not None and not isinstance(flag, bool):      # a file's "false" (a string) must not read as on
        raise ValueError("isSignedRequestRequired is not true, false or null")
    # Read but null: "Require verification certificates" was never turned on, and Entra then checks
    # no request signature (notes 1c). Only an unread property (not in the response) is unknown.
    required = bool(flag) if "requestSignatureVerification" in app else None
    return _new_application(
        id=app["id"], app_id=app.get("appId") or "", display_name=app.get("displayName") or "",
        signed_requests_required=required,
        allowed_weak_algorithms=verification.get("allowedWeakAlgorithms"),
        key_credentials=_keys(app.get("keyCredentials")),
        password_credentials=_passwords(app.get("passwordCredentials")),
        identifier_uris=tuple(app.get("identifierUris") or ()),
        token_encryption_key_id=app.get("tokenEncryptionKeyId"),
        reads_token_encryption="tokenEncryptionKeyId" in app,
        redirect_uris=tuple((app.get("web") or {}).get("redirectUris") or ()))


def signing_certificates_of(sp: ServicePrincipalInfo) -> tuple[SigningCertificate, ...]:
    """Pair each Verify key with its Sign key (same customKeyIdentifier); the token encryption key is not one."""
    preferred = (sp.preferred_token_signing_key_thumbprint or "").upper()
    sign_keys = {kc.custom_key_identifier: kc for kc in sp.key_credentials
                 if kc.usage == "Sign" and kc.custom_key_identifier}
    certificates = []
    for verify in sp.key_credentials:
        if verify.usage != "Verify" or verify.key_id == sp.token_encryption_key_id:
            continue
        sign = sign_keys.get(verify.custom_key_identifier) if verify.custom_key_identifier else None
        is_active = bool(preferred) and verify.thumbprint == preferred
        if sign is None and not is_active:
            continue   # a lone public key on an SP cannot sign tokens
        certificates.append(_new_signing_certificate(
            thumbprint=verify.thumbprint, thumbprint_source=verify.thumbprint_source,
            display_name=verify.display_name, not_before=verify.start, not_after=verify.end,
            verify_key_id=verify.key_id, sign_key_id=sign.key_id if sign else None,
            custom_key_identifier=(binascii.b2a_base64(verify.custom_key_identifier, newline=False).decode()
                                   if verify.custom_key_identifier else None),
            active=is_active))
    return tuple(certificates)


def build_inventory_entry(sp: Optional[ServicePrincipalInfo],
                          application: Optional[ApplicationInfo]) -> SamlAppInventory:
    """One app from its service principal and/or application object (either may be missing)."""
    state, encryption_key_id, encryption_thumbprint = token_encryption_of(sp, application)
    active = sp.active_certificate if sp else None
    anchor = sp or application
    return _new_inventory_entry(
        display_name=anchor.display_name, sp_id=sp.id if sp else "", app_id=anchor.app_id,
        application_object_id=application.id if application else None,
        signing_certificates=sp.signing_certificates if sp else (),
        active_thumbprint=active.thumbprint if active else (sp.preferred_token_signing_key_thumbprint if sp else None),
        notification_emails=sp.notification_email_addresses if sp else (),
        token_encryption_key_id=encryption_key_id,
        token_encryption_thumbprint=encryption_thumbprint,
        requires_signed_requests=application.signed_requests_required if application else None,
        verification_certificates=application.verification_certificates if application else (),
        client_secrets=application.password_credentials if application else (),
        certificate_credentials=application.key_credentials if application else (),
        identifier_uris=_identifiers(sp, application),
        reply_urls=_distinct(sp.reply_urls if sp else (), application.redirect_uris if application else ()),
        allowed_weak_algorithms=application.allowed_weak_algorithms if application else None,
        token_encryption_state=state)


def token_encryption_of(sp: Optional[ServicePrincipalInfo], application: Optional[ApplicationInfo]
                        ) -> tuple[str, Optional[str], Optional[str]]:
    """(state, keyId, thumbprint) of the certificate Entra encrypts tokens with.

    Microsoft Learn "Configure SAML token encryption": "Encryption certificates are stored on the
    application object ... the one that's active for encrypting tokens is identified by the
    tokenEncryptionKeyID attribute". The service principal carries tokenEncryptionKeyId too (Graph
    CSDL), so the application is read first, then the service principal; the key is looked up in both.
    """
    key_id = (application.token_encryption_key_id if application else None) or (
        sp.token_encryption_key_id if sp else None)
    if key_id:
        keys = [*(application.key_credentials if application else ()), *(sp.key_credentials if sp else ())]
        key = next((kc for kc in keys if kc.key_id == key_id), None)
        if key is None or key.thumbprint is None:
            return TE_UNIDENTIFIED, key_id, None
        return TE_ON, key_id, key.thumbprint
    # Unset on the application object means off; the service principal alone cannot say so (the setting
    # lives on the application object).
    read = application is not None and application.reads_token_encryption
    return (TE_OFF if read else TE_UNKNOWN), None, None


def _identifiers(sp: Optional[ServicePrincipalInfo], application: Optional[ApplicationInfo]) -> tuple[str, ...]:
    """identifierUris and servicePrincipalNames ("copied over from the associated application"), without
    the appId that servicePrincipalNames always holds."""
    values = _distinct(application.identifier_uris if application else (), sp.service_principal_names if sp else ())
    if not values:
        return ()
    app_id = (sp or application).app_id if (sp or application) else ""
    return tuple(v for v in values if v and v != app_id)


def _distinct(first: tuple[str, ...], second: tuple[str, ...]) -> tuple[str, ...]:
    """The values of both, each once, in order (most apps have none)."""
    if not first and not second:
        return ()
    return tuple(dict.fromkeys((*first, *second)))


def to_trust_facts(app: SamlAppInventory) -> EntraAppFacts:
    """The diagnosis input (certificates.diagnosis) for one inventoried SAML app."""
    return EntraAppFacts(
        display_name=app.display_name, app_id=app.app_id,
        signing_certificates=[
            EntraSigningCertificate(thumbprint=cert.thumbprint, not_before=cert.not_before,
                                    not_after=cert.not_after, active=cert.active)
            for cert in app.signing_certificates if cert.thumbprint and cert.not_before and cert.not_after],
        requires_signed_requests=app.requires_signed_requests,
        verification_certificate_thumbprints=[kc.thumbprint for kc in app.verification_certificates if kc.thumbprint],
        token_encryption_thumbprint=app.token_encryption_thumbprint,
        notification_emails=list(app.notification_emails),
        sp_entity_ids=list(app.identifier_uris),
        reply_urls=list(app.reply_urls),
        allowed_weak_algorithms=app.allowed_weak_algorithms,
        token_encryption_state=app.token_encryption_state)


class InventoryAssembly:
    """Inventory entries built while pages still travel, so that after the last page only its own are left.

    Service principals arrive page by page, and app registrations too (two page chains on the Graph client's
    loop), in any order. An entry is built once its SP and its registration are both known, or once every
    registration has arrived without one for it. An object whose thumbprints need a single-object read is
    left for ``entries``, which reads it first. Not thread-safe: one loop feeds it, then ``entries`` runs."""

    def __init__(self) -> None:
        self._sps: list[ServicePrincipalInfo] = []
        self._entries: list[SamlAppInventory | None] = []
        self._waiting: dict[str, list[int]] = {}         # appId -> positions of SPs waiting for it
        self._registrations: dict[str, ApplicationInfo] = {}
        self._complete = False

    @property
    def count(self) -> int:
        """Service principals so far."""
        return len(self._sps)

    def app_ids(self) -> set[str]:
        return {sp.app_id for sp in self._sps}

    def add_service_principals(self, sps: list[ServicePrincipalInfo]) -> None:
        for sp in sps:
            position = len(self._sps)
            self._sps.append(sp)
            self._entries.append(None)
            registration = self._registrations.get(sp.app_id)
            if registration is not None or self._complete:
                self._build(position, registration)
            else:
                self._waiting.setdefault(sp.app_id, []).append(position)

    def add_registrations(self, registrations: list[ApplicationInfo]) -> None:
        for registration in registrations:
            self._registrations[registration.app_id] = registration
            for position in self._waiting.pop(registration.app_id, ()):
                self._build(position, registration)

    def registrations_complete(self) -> None:
        """Every registration has arrived: the SPs still waiting have none."""
        self._complete = True
        for positions in self._waiting.values():
            for position in positions:
                self._build(position, None)
        self._waiting.clear()

    def entries(self, read_sp: Callable[[str], ServicePrincipalInfo],
                read_registration: Callable[[str], ApplicationInfo]) -> list[SamlAppInventory]:
        """Every entry, in the SPs' order; objects whose thumbprints need a single-object read are read first
        (``read_sp(sp.id)``, ``read_registration(registration.id)``, each object once)."""
        if not self._complete:
            raise RuntimeError("entries() before registrations_complete()")
        read_registrations: dict[str, ApplicationInfo] = {}
        for position, entry in enumerate(self._entries):
            if entry is not None:
                continue
            sp = self._sps[position]
            if sp.needs_key_fetch:
                sp = read_sp(sp.id)
            registration = self._registrations.get(sp.app_id)
            if registration is not None and registration.needs_key_fetch:
                if registration.id not in read_registrations:
                    read_registrations[registration.id] = read_registration(registration.id)
                registration = read_registrations[registration.id]
            self._entries[position] = build_inventory_entry(sp, registration)
        return list(self._entries)

    def _build(self, position: int, registration: ApplicationInfo | None) -> None:
        sp = self._sps[position]
        if sp.needs_key_fetch or (registration is not None and registration.needs_key_fetch):
            return   # entries() reads it again first
        self._entries[position] = build_inventory_entry(sp, registration)
