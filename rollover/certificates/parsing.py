"""Read X.509 certificates and SAML metadata from untrusted bytes.

``parse_document`` sniffs what it was given (SAML metadata XML, PEM, DER, bare base64, base64 of
a PEM) and returns a ``Document``. Everything that is not a readable certificate or metadata is
refused with ``DocumentError``, whose message is one sentence for the user.

Safety rules: the size limit is checked before any parsing; XML goes through ``defusedxml`` with
DTDs, entities and external references forbidden; nothing is read from disk or the network.
Every scan of the input is linear in its size: no regular expression here can backtrack over
unbounded text, and lookups that grow with the document go through sets and dicts.
A certificate is only returned once every field the rest of the bot reads (dates, names, key,
serial) has been read successfully, so a malformed one is refused here with a plain reason.
"""

from __future__ import annotations

import base64
import binascii
import re
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Iterator, Optional, TypeVar
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree as SafeET
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import PublicKeyAlgorithmOID

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

# Fixed-length patterns only: each match attempt reads a bounded number of bytes, so a scan is
# linear however the input is crafted. (A lazy ``BEGIN(.*?)END`` pattern re-read the rest of the
# input from every BEGIN line that had no END: quadratic, an hour for 5 MB.)
PEM_BEGIN = re.compile(rb"-----BEGIN (?:X509 )?CERTIFICATE-----")
PEM_MARKER = re.compile(rb"-----(BEGIN|END) (?:X509 )?CERTIFICATE-----")
DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
EXTERNAL_ID = re.compile(rb"\b(?:SYSTEM|PUBLIC)\b")
ENTITY_PARTS = re.compile(rb"<!ENTITY\s+(?:%\s*)?([^\s>%]{1,64})\s+(\"[^\"]*\"|'[^']*')")
ENTITY_REFERENCE = re.compile(rb"[&%]([^;&%\s]{1,64});")
FRACTION_TOO_LONG = re.compile(r"(\.\d{6})\d+")
XML_ENCODING = re.compile(rb"""encoding\s*=\s*["']([^"']{0,40})["']""")
XML_DECLARATION_BYTES = 200  # the encoding is named in the declaration, at the very start
XML_FIRST_FEED_BYTES = 16 * 1024  # see _GrowingReads
MAX_XML_DEPTH = 100
MAX_DATETIME_LENGTH = 64  # an xs:dateTime is at most about 35 characters
SHOWN_CHARACTERS = 80  # how much of an input value an error message quotes
PRINTABLE_ASCII = bytes(range(32, 127)) + b"\t\r\n"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
UTF8_BOM = b"\xef\xbb\xbf"

T = TypeVar("T")


class DocumentError(UserError):
    """The input is not a readable certificate or SAML metadata document.

    ``code`` names the reason for programs and tests (``too-large``, ``empty``, ``dtd``,
    ``entities``, ``external-entity``, ``external-dtd``, ``not-well-formed``, ``bad-encoding``,
    ``wrong-root``, ``invalid-metadata``, ``bad-base64``, ``bad-certificate``, ``bad-pem``,
    ``not-a-certificate``); the message is one line for the user.
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
    for event, element in _xml_events(data, source):
        reader.handle(event, element)
    return reader.document()


def load_certificate_der(der: bytes, source: str = "", what: str = "it") -> x509.Certificate:
    """Load one DER certificate whose every field the bot reads is readable; ``DocumentError`` otherwise.

    cryptography decodes names, dates and keys only when they are first read, so a certificate
    that loads can still fail later (in a card, the CLI or a reminder sweep). Reading them all here
    turns those failures into one plain reason. The warning cryptography emits about serial
    numbers <= 0 is silenced: such certificates exist in the wild and are not the user's mistake.
    """
    try:
        certificate = quietly(lambda: x509.load_der_x509_certificate(der))
    except x509.InvalidVersion as exc:
        raise _refuse(source, f"{what} is not a valid X.509 certificate (its version field is {exc.parsed_version}; "
                      "only 0, 1 and 2, meaning v1 to v3, exist)", "bad-certificate") from exc
    except ValueError as exc:
        raise _refuse(source, f"{what} is not a valid X.509 certificate ({_one_line(exc)})", "bad-certificate") from exc
    _check_readable(certificate, source, what)
    return certificate


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


def _check_readable(certificate: x509.Certificate, source: str, what: str) -> None:
    """Read every lazily decoded field the bot uses; a failure is the input's fault, named plainly."""
    for reading, reason in (
        (lambda: (certificate.not_valid_before_utc, certificate.not_valid_after_utc),
         "its validity dates cannot be read"),
        (lambda: certificate.subject.rfc4514_string(), "its subject name cannot be read"),
        (lambda: certificate.issuer.rfc4514_string(), "its issuer name cannot be read"),
        (lambda: certificate_serial(certificate), "its serial number cannot be read"),
        (lambda: certificate.signature_algorithm_oid, "its signature algorithm cannot be read"),
    ):
        try:
            reading()
        except (ValueError, TypeError) as exc:
            raise _refuse(source, f"{what} is not a valid X.509 certificate: {reason} ({_field_problem(exc)})",
                          "bad-certificate") from exc
    _check_public_key(certificate, source, what)


def _check_public_key(certificate: x509.Certificate, source: str, what: str) -> None:
    try:
        certificate.public_key()
    except UnsupportedAlgorithm as exc:
        oid = certificate.public_key_algorithm_oid.dotted_string
        raise _refuse(source, f"{what} has a public key of an algorithm I do not know (OID {oid})",
                      "bad-certificate") from exc
    except ValueError as exc:
        if certificate.public_key_algorithm_oid == PublicKeyAlgorithmOID.EC_PUBLIC_KEY:
            reason = "its elliptic-curve public key is not a valid point on its curve"
        else:
            reason = f"its public key is malformed ({_one_line(exc)})"
        raise _refuse(source, f"{what} is not a valid X.509 certificate: {reason}", "bad-certificate") from exc


def _field_problem(exc: Exception) -> str:
    """cryptography's messages are Rust debug output; say what they mean."""
    text = str(exc)
    if isinstance(exc, TypeError) and "BitString" in text:
        return "a name attribute holds a bit string where text is expected"
    if "InvalidValue" in text:
        return "a value is malformed, for example text that is not valid UTF-8"
    if "UnexpectedTag" in text:
        return "a value has the wrong ASN.1 type"
    return _one_line(exc)


def _certificates_from_bytes(data: bytes, source: str) -> list[FoundCertificate]:
    ders = _ders_from_bytes(data, source)
    return [
        FoundCertificate(None, None, None, load_certificate_der(der, source, _nth(n, len(ders))), der)
        for n, der in enumerate(ders, 1)
    ]


def _nth(n: int, count: int) -> str:
    return f"certificate {n}" if count > 1 else "it"


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
    return [_strict_base64(block.decode("ascii", "replace"), source, f"PEM block {n}") for n, block in
            enumerate(pem_bodies(data, source), 1)]


def pem_bodies(data: bytes, source: str = "") -> list[bytes]:
    """The text between each certificate BEGIN line and its END line.

    One pass over the BEGIN/END markers: a BEGIN must be followed by an END before the next BEGIN
    or the end of the input (``bad-pem`` otherwise); END lines outside a block are ignored, and so
    is everything between blocks (other PEM blocks, comments, ``openssl x509 -text`` output).
    """
    unmatched = _refuse(source, "a PEM certificate block has no matching END line", "bad-pem")
    bodies: list[bytes] = []
    opened_at: Optional[int] = None
    for marker in PEM_MARKER.finditer(data):
        if marker.group(1) == b"BEGIN":
            if opened_at is not None:
                raise unmatched
            opened_at = marker.end()
        elif opened_at is not None:
            bodies.append(data[opened_at:marker.start()])
            opened_at = None
    if opened_at is not None:
        raise unmatched
    return bodies


def _is_der_certificate(data: bytes) -> bool:
    try:
        quietly(lambda: x509.load_der_x509_certificate(data))
    except x509.InvalidVersion:
        return True  # a DER certificate with a bad version: load_certificate_der names the problem
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
    return not data.translate(None, PRINTABLE_ASCII)  # deletes the printable bytes, in C


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


class _GrowingReads:
    """The input for iterparse in reads that double in size (16 KB, 16 KB, 32 KB, 64 KB...), whatever it asks for.

    expat before 2.6 (CVE-2023-52425; Python 3.11 bundles 2.5) scans an unfinished token again
    from its start on every feed: a 5 MB attribute value or comment fed 16 KB at a time was
    scanned 320 times (1.8 s, growing with the square of its size). When each feed is as large as
    everything fed before it, the re-scans add up to at most twice the input: linear. Small first
    feeds keep early refusals (wrong root, nesting) early; entities are still read and cleared
    between feeds, so memory stays below the tree of half the document.
    """

    def __init__(self, data: bytes):
        self._data = memoryview(data)
        self._offset = 0

    def read(self, size: int = -1) -> bytes:
        length = max(XML_FIRST_FEED_BYTES, self._offset)
        chunk = self._data[self._offset:self._offset + length]
        self._offset += len(chunk)
        return bytes(chunk)


def _xml_events(data: bytes, source: str) -> Iterator[tuple[str, Element]]:
    """iterparse's events; a parser failure becomes ``DocumentError`` (the reader's own errors pass as they are)."""
    events = SafeET.iterparse(
        _GrowingReads(data), events=("start", "end"), forbid_dtd=True, forbid_entities=True, forbid_external=True,
    )
    while True:
        try:
            item = next(events)
        except StopIteration:
            return
        except defusedxml.DefusedXmlException as exc:
            raise _refuse_hostile_xml(data, source) from exc
        except ParseError as exc:
            raise _refuse(source, f"it is not well-formed XML ({_one_line(exc)})", "not-well-formed") from exc
        except (LookupError, ValueError, UnicodeError) as exc:  # expat asked Python for an unusable codec
            raise _refuse_encoding(data, source) from exc
        yield item


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
        self.depth = 0

    def handle(self, event: str, element: Element) -> None:
        if event == "start":
            self.depth += 1
            if self.depth > MAX_XML_DEPTH:  # a nesting attack, not metadata: stop before building it all
                raise _refuse(self.source, f"its elements are nested more than {MAX_XML_DEPTH} levels deep (SAML "
                              "metadata needs about 10)", "invalid-metadata")
            self._start(element)
            return
        self.depth -= 1
        if element.tag == ENTITY_DESCRIPTOR:
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
            inherited = self.valid_until_stack[-1] if self.valid_until_stack else None
            self.valid_until_stack.append(_earliest(own, inherited))
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
        known_locations: set[tuple[str, str]] = set()  # (endpoint tag, URL): a list lookup was quadratic
        for descriptor in element:
            role = _role_of(descriptor)
            if role is None:
                continue
            if role not in entity.roles:
                entity.roles.append(role)
            _read_descriptor_settings(descriptor, entity, known_locations)
            self._read_key_descriptors(descriptor, entity_id, role)
        self.entities.append(entity)

    def _read_key_descriptors(self, descriptor: Element, entity_id: str, role: str) -> None:
        for key_descriptor in descriptor.iterfind(KEY_DESCRIPTOR):
            uses = _uses_of(key_descriptor, entity_id, self.source)
            for cert_element in key_descriptor.iter(X509_CERTIFICATE):
                where = f"a certificate of entity {_shown(entity_id)}"
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


def _read_descriptor_settings(descriptor: Element, entity: EntityInfo, known: set[tuple[str, str]]) -> None:
    if descriptor.tag == SP_SSO_DESCRIPTOR:
        entity.authn_requests_signed = _parse_bool(descriptor.get("AuthnRequestsSigned"), entity.authn_requests_signed)
        entity.want_assertions_signed = _parse_bool(descriptor.get("WantAssertionsSigned"),
                                                    entity.want_assertions_signed)
        _add_locations(descriptor, ASSERTION_CONSUMER_SERVICE, entity.acs_urls, known)
    elif descriptor.tag == IDP_SSO_DESCRIPTOR:
        entity.want_authn_requests_signed = _parse_bool(
            descriptor.get("WantAuthnRequestsSigned"), entity.want_authn_requests_signed
        )
        _add_locations(descriptor, SINGLE_SIGN_ON_SERVICE, entity.sso_urls, known)


def _add_locations(descriptor: Element, tag: str, urls: list[str], known: set[tuple[str, str]]) -> None:
    """Append each new endpoint Location once, in document order."""
    for endpoint in descriptor.iterfind(tag):
        location = endpoint.get("Location")
        if location and (tag, location) not in known:
            known.add((tag, location))
            urls.append(location)


def _uses_of(key_descriptor: Element, entity_id: str, source: str) -> tuple[Optional[str], ...]:
    use = key_descriptor.get("use")
    if use is None:
        # SAML metadata spec: no use attribute means the key serves both. Kept as one entry with
        # use None, so that a report can say "no use given" rather than invent two explicit rows.
        return (None,)
    if use not in USES:
        raise _refuse(
            source, f"entity {_shown(entity_id)} has a KeyDescriptor with use={_shown(use, quoted=True)} "
            "(expected signing or encryption)", "invalid-metadata",
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
    shown = _shown(value, quoted=True)
    if len(value) > MAX_DATETIME_LENGTH:
        raise _refuse(source, f"its validUntil {shown} is not a date and time (too long)", "invalid-metadata")
    text = FRACTION_TOO_LONG.sub(r"\1", value.strip())
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise _refuse(source, f"its validUntil {shown} is not a date and time", "invalid-metadata") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    try:
        return parsed.astimezone(timezone.utc)
    except OverflowError as exc:  # 9999-12-31T23:59:59-01:00 is in the year 10000 in UTC
        raise _refuse(source, f"its validUntil {shown} is outside the years 1 to 9999 once converted to UTC",
                      "invalid-metadata") from exc


def _earliest(*moments: Optional[datetime]) -> Optional[datetime]:
    known = [m for m in moments if m is not None]
    return min(known) if known else None


def _describe_tag(tag: str) -> str:
    namespace, _, local = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
    local, namespace = _shown(local), _shown(namespace)
    return f"<{local}> in namespace {namespace}" if namespace else f"<{local}> (no namespace)"


# ---------------------------------------------------------------------------------------------
# Errors


def _refuse_hostile_xml(data: bytes, source: str) -> DocumentError:
    """Name the specific danger so the user sees why a DTD is refused."""
    entities = list(_entity_declarations(data))
    if any(EXTERNAL_ID.search(declaration) for declaration in entities):
        return _refuse(source, "it declares an external entity (XXE); documents with a DTD are refused",
                       "external-entity")
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


def _entity_declarations(data: bytes) -> Iterator[bytes]:
    """Each ``<!ENTITY`` declaration up to its ``>`` (an unclosed one runs to the end of the input).

    Linear: every search starts where the previous declaration ended. The pattern it replaces,
    ``<!ENTITY\\s[^>]*>``, re-read the rest of the input from every unclosed declaration.
    """
    start = data.find(b"<!ENTITY")
    while start != -1:
        if data[start + 8:start + 9].isspace():
            end = data.find(b">", start)
            if end == -1:
                yield data[start:]
                return
            yield data[start:end + 1]
            start = end
        start = data.find(b"<!ENTITY", start + 1)


def _refuse_encoding(data: bytes, source: str) -> DocumentError:
    declared = XML_ENCODING.search(data[:XML_DECLARATION_BYTES])
    name = _shown(declared.group(1).decode("ascii", "replace"), quoted=True) if declared else "its declared encoding"
    return _refuse(source, f"its XML declaration names the text encoding {name}, which I cannot read; "
                   "save the file as UTF-8", "bad-encoding")


def _check_size(data: bytes, source: str, max_bytes: int) -> None:
    if len(data) > max_bytes:
        raise _refuse(
            source, f"it is {_megabytes(len(data))}, more than the {_megabytes(max_bytes)} limit", "too-large"
        )


def _refuse(source: str, reason: str, code: str) -> DocumentError:
    return DocumentError(f"Cannot read {_label(source)}: {reason}.", code)


def _label(source: str) -> str:
    return source or "the input"


def _shown(value: str, *, quoted: bool = False) -> str:
    """An input value quoted in a message, cut so that a hostile 5 MB attribute stays one line."""
    cut = value if len(value) <= SHOWN_CHARACTERS else value[:SHOWN_CHARACTERS - 3] + "..."
    cut = " ".join(cut.split()) if not quoted else cut
    return repr(cut) if quoted else cut


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 160 else text[:157] + "..."


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def _without_utf8_bom(data: bytes) -> bytes:
    return data[len(UTF8_BOM):] if data.startswith(UTF8_BOM) else data

