"""Read X.509 certificates and SAML metadata from untrusted bytes.

``parse_document`` sniffs what it was given (SAML metadata XML, PEM, DER, bare base64, base64 of
a PEM) and returns a ``Document``. Everything that is not a readable certificate or metadata is
refused with ``DocumentError``, whose message is one sentence for the user.

Safety rules: the size limit is checked before any parsing; XML goes through ``defusedxml`` with
DTDs, entities and external references forbidden; nothing is read from disk or the network.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Optional, TypeVar
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as SafeET
from cryptography import x509
from cryptography.utils import CryptographyDeprecationWarning

from rollover.errors import UserError

DEFAULT_MAX_BYTES = 5 * 1024 * 1024

MD_NS = "urn:oasis:names:tc:SAML:2.0:metadata"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"

ENTITY_DESCRIPTOR = f"{{{MD_NS}}}EntityDescriptor"
ENTITIES_DESCRIPTOR = f"{{{MD_NS}}}EntitiesDescriptor"
IDP_SSO_DESCRIPTOR = f"{{{MD_NS}}}IDPSSODescriptor"
SP_SSO_DESCRIPTOR = f"{{{MD_NS}}}SPSSODescriptor"
ROLE_DESCRIPTOR = f"{{{MD_NS}}}RoleDescriptor"
KEY_DESCRIPTOR = f"{{{MD_NS}}}KeyDescriptor"
ASSERTION_CONSUMER_SERVICE = f"{{{MD_NS}}}AssertionConsumerService"
SINGLE_SIGN_ON_SERVICE = f"{{{MD_NS}}}SingleSignOnService"
X509_CERTIFICATE = f"{{{DS_NS}}}X509Certificate"
XSI_TYPE = f"{{{XSI_NS}}}type"

# WS-Federation RoleDescriptor types (Entra, ADFS). ElementTree drops prefix declarations, so the
# xsi:type QName is matched on its local part; these names are specific to the fed namespace.
WSFED_ROLE_BY_TYPE = {"SecurityTokenServiceType": "idp", "ApplicationServiceType": "sp"}

USES = ("signing", "encryption")

PEM_BLOCK = re.compile(
    rb"-----BEGIN (?:X509 )?CERTIFICATE-----(.*?)-----END (?:X509 )?CERTIFICATE-----", re.DOTALL
)
PEM_BEGIN = re.compile(rb"-----BEGIN (?:X509 )?CERTIFICATE-----")
DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
ENTITY_DECLARATION = re.compile(rb"<!ENTITY\s[^>]*>", re.DOTALL)
EXTERNAL_ID = re.compile(rb"\b(?:SYSTEM|PUBLIC)\b")
ENTITY_PARTS = re.compile(rb"<!ENTITY\s+(?:%\s*)?([^\s>%]{1,64})\s+(\"[^\"]*\"|'[^']*')")
ENTITY_REFERENCE = re.compile(rb"[&%]([^;&%\s]{1,64});")
FRACTION_TOO_LONG = re.compile(r"(\.\d{6})\d+")
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
UTF8_BOM = b"\xef\xbb\xbf"

T = TypeVar("T")


class DocumentError(UserError):
    """The input is not a readable certificate or SAML metadata document.

    ``code`` names the reason for programs and tests (``too-large``, ``empty``, ``dtd``,
    ``entities``, ``external-entity``, ``external-dtd``, ``not-well-formed``, ``wrong-root``,
    ``invalid-metadata``, ``bad-base64``, ``bad-certificate``, ``bad-pem``, ``not-a-certificate``);
    the message is one line for the user.
    """

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class FoundCertificate:
    """One certificate found in a document, in the context where it was found.

    ``role`` is "idp" or "sp" and ``use`` "signing" or "encryption" for metadata, or None when the
    KeyDescriptor gives no use (it then serves both); both are None for plain certificate files.
    ``der`` is the exact DER encoding (thumbprints are computed on it).
    """

    entity_id: Optional[str]
    role: Optional[str]
    use: Optional[str]
    certificate: x509.Certificate
    der: bytes


@dataclass
class EntityInfo:
    """What the diagnosis needs to know about one EntityDescriptor.

    ``valid_until`` is the effective expiry: the earliest of the entity's own ``validUntil`` and
    those of the aggregates around it. SP flags are None when the entity has no SPSSODescriptor
    (or the attribute is absent); ``want_authn_requests_signed`` comes from the IDPSSODescriptor.
    """

    entity_id: str
    roles: list[str] = field(default_factory=list)
    valid_until: Optional[datetime] = None
    authn_requests_signed: Optional[bool] = None
    want_assertions_signed: Optional[bool] = None
    want_authn_requests_signed: Optional[bool] = None
    acs_urls: list[str] = field(default_factory=list)
    sso_urls: list[str] = field(default_factory=list)


@dataclass
class Document:
    """The parsed input: either SAML metadata or a set of plain certificates.

    ``valid_until`` is the root element's own ``validUntil`` (None for certificate files).
    """

    kind: str  # "metadata" | "certificates"
    source: str = ""
    entities: list[EntityInfo] = field(default_factory=list)
    certificates: list[FoundCertificate] = field(default_factory=list)
    valid_until: Optional[datetime] = None

    def entity(self, entity_id: Optional[str]) -> Optional[EntityInfo]:
        """The entity with this entityID, or None."""
        return next((e for e in self.entities if e.entity_id == entity_id), None)

    def valid_until_for(self, entity_id: Optional[str]) -> Optional[datetime]:
        """Effective validUntil for a certificate's entity (document-level for plain files)."""
        entity = self.entity(entity_id)
        return entity.valid_until if entity else self.valid_until


# ---------------------------------------------------------------------------------------------
# Entry point


def parse_document(data: bytes, *, source: str = "", max_bytes: int = DEFAULT_MAX_BYTES) -> Document:
    """Parse certificate text, DER or SAML metadata; raise ``DocumentError`` for anything else."""
    _check_size(data, source, max_bytes)
    body = _without_utf8_bom(data)
    if body.startswith(UTF16_BOMS):
        return _parse_utf16(body, source)
    stripped = body.lstrip()
    if not stripped:
        raise _refuse(source, "it is empty", "empty")
    if stripped.startswith(b"<"):
        return parse_metadata(stripped, source=source)
    return Document(kind="certificates", source=source, certificates=_certificates_from_bytes(stripped, source))


def parse_metadata(data: bytes, *, source: str = "") -> Document:
    """Parse SAML metadata XML (EntityDescriptor or EntitiesDescriptor root). No size check here."""
    reader = _MetadataReader(source)
    try:
        for event, element in SafeET.iterparse(
            io.BytesIO(data), events=("start", "end"),
            forbid_dtd=True, forbid_entities=True, forbid_external=True,
        ):
            reader.handle(event, element)
    except defusedxml.DefusedXmlException as exc:
        raise _refuse_hostile_xml(data, source) from exc
    except ParseError as exc:
        raise _refuse(source, f"it is not well-formed XML ({_one_line(exc)})", "not-well-formed") from exc
    return reader.document()


def load_certificate_der(der: bytes, source: str = "", what: str = "it") -> x509.Certificate:
    """Load one DER certificate, silencing cryptography's warning about serial numbers <= 0.

    Such certificates exist in the wild (serial 0) and are not the user's mistake; the warning
    would only add noise to their output.
    """
    try:
        return quietly(lambda: x509.load_der_x509_certificate(der))
    except ValueError as exc:
        raise _refuse(source, f"{what} is not a valid X.509 certificate ({_one_line(exc)})", "bad-certificate") from exc


def certificate_serial(certificate: x509.Certificate) -> int:
    """The serial number, without the deprecation warning cryptography emits for zero/negative ones."""
    return quietly(lambda: certificate.serial_number)


def quietly(action: Callable[[], T]) -> T:
    """Run ``action`` with CryptographyDeprecationWarning suppressed (process-wide while it runs)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        return action()


# ---------------------------------------------------------------------------------------------
# Certificate files


def _certificates_from_bytes(data: bytes, source: str) -> list[FoundCertificate]:
    ders = _ders_from_bytes(data, source)
    return [
        FoundCertificate(None, None, None, load_certificate_der(der, source), der) for der in ders
    ]


def _ders_from_bytes(data: bytes, source: str, allow_base64: bool = True) -> list[bytes]:
    """DER encodings in PEM, DER or (bare, or PEM-wrapping) base64 input."""
    if PEM_BEGIN.search(data):
        return _ders_from_pem(data, source)
    if data[:1] == b"\x30" and _is_der_certificate(data):
        return [data]
    if not allow_base64:
        raise _refuse(source, "it decodes to neither a PEM text nor a DER certificate", "not-a-certificate")
    if not _is_printable_ascii(data):
        raise _refuse(
            source, "it is binary data that is neither a DER certificate nor text (PEM, base64 or XML)",
            "not-a-certificate",
        )
    decoded = _strict_base64(data.decode("ascii"), source, "its text")
    return _ders_from_bytes(decoded.lstrip(), source, allow_base64=False)


def _ders_from_pem(data: bytes, source: str) -> list[bytes]:
    blocks = PEM_BLOCK.findall(data)
    if len(blocks) != len(PEM_BEGIN.findall(data)):
        raise _refuse(source, "a PEM certificate block has no matching END line", "bad-pem")
    return [_strict_base64(block.decode("ascii", "replace"), source, f"PEM block {n}") for n, block in
            enumerate(blocks, 1)]


def _is_der_certificate(data: bytes) -> bool:
    try:
        quietly(lambda: x509.load_der_x509_certificate(data))
    except ValueError:
        return False
    return True


def _strict_base64(text: str, source: str, what: str) -> bytes:
    """Decode base64 after removing whitespace; any other stray character is an error."""
    compact = "".join(text.split())
    if not compact:
        raise _refuse(source, f"{what} is empty where a base64 certificate was expected", "bad-base64")
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _refuse(source, f"{what} is not valid base64 ({_one_line(exc)})", "bad-base64") from exc


def _is_printable_ascii(data: bytes) -> bool:
    return all(32 <= byte < 127 or byte in b"\t\r\n" for byte in data)


def _parse_utf16(data: bytes, source: str) -> Document:
    try:
        text = data.decode("utf-16")
    except UnicodeDecodeError as exc:
        raise _refuse(source, "it starts with a UTF-16 marker but is not UTF-16 text", "not-a-certificate") from exc
    if text.lstrip("\ufeff \t\r\n").startswith("<"):
        return parse_metadata(data, source=source)  # expat reads the BOM itself
    ascii_text = text.lstrip("\ufeff").encode("ascii", "replace").lstrip()
    return Document(kind="certificates", source=source, certificates=_certificates_from_bytes(ascii_text, source))


# ---------------------------------------------------------------------------------------------
# SAML metadata


class _MetadataReader:
    """Consumes iterparse events; keeps memory flat by clearing each EntityDescriptor once read."""

    def __init__(self, source: str):
        self.source = source
        self.valid_until_stack: list[Optional[datetime]] = []
        self.root_valid_until: Optional[datetime] = None
        self.seen_root = False
        self.entities: list[EntityInfo] = []
        self.certificates: list[FoundCertificate] = []
        self.seen: set[tuple] = set()
        self.loaded: dict[bytes, x509.Certificate] = {}

    def handle(self, event: str, element: Element) -> None:
        if event == "start":
            self._start(element)
        elif element.tag == ENTITY_DESCRIPTOR:
            self._read_entity(element)
            self.valid_until_stack.pop()
            element.clear()
        elif element.tag == ENTITIES_DESCRIPTOR:
            self.valid_until_stack.pop()

    def document(self) -> Document:
        return Document("metadata", self.source, self.entities, self.certificates, self.root_valid_until)

    def _start(self, element: Element) -> None:
        if not self.seen_root:
            self._check_root(element)
        if element.tag in (ENTITY_DESCRIPTOR, ENTITIES_DESCRIPTOR):
            own = _parse_valid_until(element.get("validUntil"), self.source)
            if not self.seen_root:
                self.root_valid_until = own
            self.valid_until_stack.append(_earliest(own, self.valid_until_stack[-1] if self.valid_until_stack else None))
        self.seen_root = True

    def _check_root(self, element: Element) -> None:
        if element.tag not in (ENTITY_DESCRIPTOR, ENTITIES_DESCRIPTOR):
            raise _refuse(
                self.source,
                f"its root element is {_describe_tag(element.tag)}, not a SAML metadata "
                "EntityDescriptor or EntitiesDescriptor",
                "wrong-root",
            )

    def _read_entity(self, element: Element) -> None:
        entity_id = element.get("entityID")
        if not entity_id:
            raise _refuse(self.source, "an EntityDescriptor has no entityID attribute", "invalid-metadata")
        entity = EntityInfo(entity_id=entity_id, valid_until=self.valid_until_stack[-1])
        for descriptor in element:
            role = _role_of(descriptor)
            if role is None:
                continue
            if role not in entity.roles:
                entity.roles.append(role)
            _read_descriptor_settings(descriptor, entity)
            self._read_key_descriptors(descriptor, entity_id, role)
        self.entities.append(entity)

    def _read_key_descriptors(self, descriptor: Element, entity_id: str, role: str) -> None:
        for key_descriptor in descriptor.iterfind(KEY_DESCRIPTOR):
            uses = _uses_of(key_descriptor, entity_id, self.source)
            for cert_element in key_descriptor.iter(X509_CERTIFICATE):
                where = f"a certificate of entity {entity_id}"
                for der in self._ders_in_element(cert_element, where):
                    self._add(entity_id, role, uses, der, where)

    def _ders_in_element(self, cert_element: Element, where: str) -> list[bytes]:
        decoded = _strict_base64(cert_element.text or "", self.source, where)
        if PEM_BEGIN.search(decoded):  # seen in the wild: base64 of a whole PEM text
            return _ders_from_pem(decoded, self.source)
        return [decoded]

    def _add(self, entity_id: str, role: str, uses: tuple[Optional[str], ...], der: bytes, where: str) -> None:
        for use in uses:
            key = (entity_id, role, use, der)
            if key in self.seen:
                continue
            self.seen.add(key)
            certificate = self.loaded.get(der)
            if certificate is None:
                certificate = self.loaded[der] = load_certificate_der(der, self.source, where)
            self.certificates.append(FoundCertificate(entity_id, role, use, certificate, der))


def _role_of(descriptor: Element) -> Optional[str]:
    """"idp"/"sp" for SSO and WS-Fed role descriptors; None for others (attribute authorities...)."""
    if descriptor.tag == IDP_SSO_DESCRIPTOR:
        return "idp"
    if descriptor.tag == SP_SSO_DESCRIPTOR:
        return "sp"
    if descriptor.tag == ROLE_DESCRIPTOR:
        local_type = (descriptor.get(XSI_TYPE) or "").rpartition(":")[2]
        return WSFED_ROLE_BY_TYPE.get(local_type)
    return None


def _read_descriptor_settings(descriptor: Element, entity: EntityInfo) -> None:
    if descriptor.tag == SP_SSO_DESCRIPTOR:
        entity.authn_requests_signed = _parse_bool(descriptor.get("AuthnRequestsSigned"), entity.authn_requests_signed)
        entity.want_assertions_signed = _parse_bool(descriptor.get("WantAssertionsSigned"), entity.want_assertions_signed)
        entity.acs_urls += _locations(descriptor, ASSERTION_CONSUMER_SERVICE, entity.acs_urls)
    elif descriptor.tag == IDP_SSO_DESCRIPTOR:
        entity.want_authn_requests_signed = _parse_bool(
            descriptor.get("WantAuthnRequestsSigned"), entity.want_authn_requests_signed
        )
        entity.sso_urls += _locations(descriptor, SINGLE_SIGN_ON_SERVICE, entity.sso_urls)


def _locations(descriptor: Element, tag: str, known: list[str]) -> list[str]:
    found: list[str] = []
    for endpoint in descriptor.iterfind(tag):
        location = endpoint.get("Location")
        if location and location not in known and location not in found:
            found.append(location)
    return found


def _uses_of(key_descriptor: Element, entity_id: str, source: str) -> tuple[Optional[str], ...]:
    use = key_descriptor.get("use")
    if use is None:
        # SAML metadata spec: no use attribute means the key serves both. Kept as one entry with
        # use None, so that a report can say "no use given" rather than invent two explicit rows.
        return (None,)
    if use not in USES:
        raise _refuse(
            source, f"entity {entity_id} has a KeyDescriptor with use={use!r} (expected signing or encryption)",
            "invalid-metadata",
        )
    return (use,)


def _parse_bool(value: Optional[str], current: Optional[bool]) -> Optional[bool]:
    if value is None:
        return current
    return value.strip() in ("true", "1")


def _parse_valid_until(value: Optional[str], source: str) -> Optional[datetime]:
    """xs:dateTime -> aware UTC datetime; a value without offset is taken as UTC."""
    if value is None:
        return None
    text = FRACTION_TOO_LONG.sub(r"\1", value.strip())
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise _refuse(source, f"its validUntil {value!r} is not a date and time", "invalid-metadata") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def _earliest(*moments: Optional[datetime]) -> Optional[datetime]:
    known = [m for m in moments if m is not None]
    return min(known) if known else None


def _describe_tag(tag: str) -> str:
    namespace, _, local = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
    return f"<{local}> in namespace {namespace}" if namespace else f"<{local}> (no namespace)"


# ---------------------------------------------------------------------------------------------
# Errors


def _refuse_hostile_xml(data: bytes, source: str) -> DocumentError:
    """Name the specific danger so the user sees why a DTD is refused."""
    entities = ENTITY_DECLARATION.findall(data)
    if any(EXTERNAL_ID.search(declaration) for declaration in entities):
        return _refuse(source, "it declares an external entity (XXE); documents with a DTD are refused", "external-entity")
    if entities:
        return _refuse(source, _entity_danger(entities, data) + "; documents with a DTD are refused", "entities")
    doctype = DOCTYPE.search(data)
    if doctype and EXTERNAL_ID.search(data, doctype.end(), doctype.end() + 2048):
        return _refuse(source, "it references an external DTD; documents with a DTD are refused", "external-dtd")
    return _refuse(source, "it contains a DTD (<!DOCTYPE>); documents with a DTD are refused", "dtd")


def _entity_danger(declarations: list[bytes], data: bytes) -> str:
    """What the entity declarations would do: nested ones expand exponentially ("billion laughs"),
    a single one repeated inflates the document ("quadratic blowup"). Each declaration is matched
    once, and each named reference counted once over the input: linear in the input."""
    values: dict[bytes, bytes] = {}
    for declaration in declarations:
        match = ENTITY_PARTS.match(declaration)
        if match and match.group(1) not in values:
            values[match.group(1)] = match.group(2)
    nested = [(name, used) for name, value in values.items()
              for used in dict.fromkeys(ENTITY_REFERENCE.findall(value)) if used in values]
    if nested:
        shown = ", ".join(f"{_entity_name(a)} \u2192 {_entity_name(b)}" for a, b in nested[:3])
        more = ", ..." if len(nested) > 3 else ""
        return (f"it declares nested XML entities ({shown}{more}), the exponential 'billion laughs' "
                "expansion attack")
    names = list(values)[:3] or [b"?"]
    counts = ", ".join(f"'{_entity_name(name)}' referenced {_times(data.count(b'&' + name + b';'))}" for name in names)
    return (f"it declares the XML entit{'y' if len(values) <= 1 else 'ies'} {counts}; repeating an entity "
            "inflates the document (a 'quadratic blowup' attack)")


def _times(count: int) -> str:
    return "once" if count == 1 else f"{count} times"


def _entity_name(name: bytes) -> str:
    text = "".join(ch if ch.isprintable() else "?" for ch in name.decode("utf-8", "replace"))
    return text if len(text) <= 40 else text[:37] + "..."


def _check_size(data: bytes, source: str, max_bytes: int) -> None:
    if len(data) > max_bytes:
        raise _refuse(
            source, f"it is {_megabytes(len(data))}, more than the {_megabytes(max_bytes)} limit", "too-large"
        )


def _refuse(source: str, reason: str, code: str) -> DocumentError:
    return DocumentError(f"Cannot read {_label(source)}: {reason}.", code)


def _label(source: str) -> str:
    return source or "the input"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 160 else text[:157] + "..."


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def _without_utf8_bom(data: bytes) -> bytes:
    return data[len(UTF8_BOM):] if data.startswith(UTF8_BOM) else data

