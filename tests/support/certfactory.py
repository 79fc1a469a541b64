"""Build test certificates and SAML metadata with ``cryptography`` (no files, no network).

Reusable by any test: ``make_cert`` returns ``(certificate, private_key)``; the metadata builders
return bytes shaped like Webex SP metadata and Entra federation metadata.

cryptography refuses to *sign* with SHA-1/MD5 or serial 0, yet real certificates have them. For
those, ``make_cert`` signs with SHA-256 / serial 1 and then rewrites the DER bytes (OID or serial);
the signature is then invalid, which is fine because nothing here verifies signatures.
"""

from __future__ import annotations

import base64
import functools
from datetime import datetime, timezone
from typing import Iterable, Optional, Sequence
from xml.sax.saxutils import quoteattr

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from rollover.certificates.parsing import load_certificate_der

UTC = timezone.utc
SHA256_WITH_RSA_OID = bytes.fromhex("06092A864886F70D01010B")
REWRITTEN_OIDS = {"sha1": bytes.fromhex("06092A864886F70D010105"), "md5": bytes.fromhex("06092A864886F70D010104")}
VERSION_AND_SERIAL_ONE = bytes.fromhex("A003020102020101")


SHA256 = hashes.SHA256()   # one instance: a default argument is evaluated once anyway


def utc(year: int, month: int = 1, day: int = 1, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@functools.lru_cache(maxsize=None)
def rsa_key(key_size: int = 2048, index: int = 0) -> rsa.RSAPrivateKey:
    """Cached keys keep the suite fast; ``index`` gives distinct keys of one size."""
    return rsa.generate_private_key(public_exponent=65537, key_size=key_size)


@functools.lru_cache(maxsize=None)
def ec_key(curve_name: str = "secp256r1") -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1() if curve_name == "secp256r1" else ec.SECP384R1())


def make_cert(
    cn: str,
    not_before: datetime,
    not_after: datetime,
    key_size: int = 2048,
    hash: hashes.HashAlgorithm = SHA256,
    serial: Optional[int] = None,
    *,
    curve: Optional[str] = None,
    key_index: int = 0,
):
    """A self-signed certificate ``CN=<cn>``; returns ``(certificate, private_key)``.

    ``hash`` may be SHA1/MD5 and ``serial`` may be 0 (see the module docstring); ``curve``
    ("secp256r1"/"secp384r1") makes an EC certificate instead of RSA.
    """
    key = ec_key(curve) if curve else rsa_key(key_size, key_index)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    rewrite_hash = hash.name in REWRITTEN_OIDS
    rewrite_serial = serial == 0
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1 if rewrite_serial else (serial if serial is not None else x509.random_serial_number()))
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    certificate = builder.sign(key, hashes.SHA256() if rewrite_hash else hash)
    if rewrite_hash or rewrite_serial:
        certificate = _rewritten(certificate, hash.name if rewrite_hash else None, rewrite_serial)
    return certificate, key


def _rewritten(certificate: x509.Certificate, hash_name: Optional[str], zero_serial: bool) -> x509.Certificate:
    der = der_of(certificate)
    if hash_name:
        assert der.count(SHA256_WITH_RSA_OID) == 2, "expected the OID in TBS and outer signature"
        der = der.replace(SHA256_WITH_RSA_OID, REWRITTEN_OIDS[hash_name])
    if zero_serial:
        assert der.count(VERSION_AND_SERIAL_ONE) == 1
        der = der.replace(VERSION_AND_SERIAL_ONE, VERSION_AND_SERIAL_ONE[:-1] + b"\x00")
    return load_certificate_der(der)


def der_of(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


def pem_of(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def b64_of(certificate: x509.Certificate) -> str:
    return base64.b64encode(der_of(certificate)).decode("ascii")


# ---------------------------------------------------------------------------------------------
# Metadata

MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"
POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"


def key_descriptor(certificate: x509.Certificate, use: Optional[str]) -> str:
    use_attr = f' use="{use}"' if use else ""
    return (
        f"<md:KeyDescriptor{use_attr}><ds:KeyInfo xmlns:ds=\"{DS}\"><ds:X509Data>"
        f"<ds:X509Certificate>{b64_of(certificate)}</ds:X509Certificate>"
        "</ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
    )


def _valid_until_attr(valid_until: Optional[datetime]) -> str:
    return f' validUntil="{valid_until.strftime("%Y-%m-%dT%H:%M:%SZ")}"' if valid_until else ""


def sp_entity(
    entity_id: str,
    signing_certs: Iterable[x509.Certificate] = (),
    encryption_certs: Iterable[x509.Certificate] = (),
    acs: Sequence[str] = (),
    *,
    both_use_certs: Iterable[x509.Certificate] = (),
    authn_requests_signed: bool = True,
    want_assertions_signed: bool = True,
    valid_until: Optional[datetime] = None,
) -> str:
    """One SP ``md:EntityDescriptor`` element (no XML declaration, md prefix assumed declared)."""
    keys = "".join(
        [key_descriptor(c, "signing") for c in signing_certs]
        + [key_descriptor(c, "encryption") for c in encryption_certs]
        + [key_descriptor(c, None) for c in both_use_certs]
    )
    endpoints = "".join(
        f'<md:AssertionConsumerService Binding="{POST}" Location={quoteattr(url)} index="{i}"/>'
        for i, url in enumerate(acs)
    )
    return (
        f"<md:EntityDescriptor entityID={quoteattr(entity_id)}{_valid_until_attr(valid_until)}>"
        f'<md:SPSSODescriptor AuthnRequestsSigned="{str(authn_requests_signed).lower()}" '
        f'WantAssertionsSigned="{str(want_assertions_signed).lower()}" '
        'protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
        f"{keys}<md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress</md:NameIDFormat>"
        f"{endpoints}</md:SPSSODescriptor></md:EntityDescriptor>"
    )


def idp_entity(
    entity_id: str,
    signing_certs: Iterable[x509.Certificate] = (),
    sso_url: str = "https://login.microsoftonline.com/tenant/saml2",
    *,
    encryption_certs: Iterable[x509.Certificate] = (),
    wsfed: bool = False,
    valid_until: Optional[datetime] = None,
) -> str:
    """One IdP ``md:EntityDescriptor``; ``wsfed`` adds Entra's WS-Fed STS RoleDescriptor too."""
    signing_certs, encryption_certs = list(signing_certs), list(encryption_certs)
    keys = "".join([key_descriptor(c, "signing") for c in signing_certs]
                   + [key_descriptor(c, "encryption") for c in encryption_certs])
    sts = ""
    if wsfed:
        sts = (
            '<md:RoleDescriptor xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            'xmlns:fed="http://docs.oasis-open.org/wsfed/federation/200706" xsi:type="fed:SecurityTokenServiceType" '
            'protocolSupportEnumeration="http://docs.oasis-open.org/wsfed/federation/200706">'
            f"{''.join(key_descriptor(c, 'signing') for c in signing_certs)}</md:RoleDescriptor>"
        )
    return (
        f"<md:EntityDescriptor entityID={quoteattr(entity_id)}{_valid_until_attr(valid_until)}>{sts}"
        '<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
        f"{keys}"
        f'<md:SingleSignOnService Binding="{REDIRECT}" Location={quoteattr(sso_url)}/>'
        f'<md:SingleSignOnService Binding="{POST}" Location={quoteattr(sso_url)}/>'
        "</md:IDPSSODescriptor></md:EntityDescriptor>"
    )


def as_document(entity_xml: str) -> bytes:
    """Wrap one entity as a standalone metadata document."""
    return ('<?xml version="1.0" encoding="UTF-8"?>' + entity_xml.replace(
        "<md:EntityDescriptor ", f'<md:EntityDescriptor xmlns:md="{MD}" ', 1)).encode("utf-8")


def make_aggregate(entity_xml: Iterable[str], valid_until: Optional[datetime] = None, name: str = "test") -> bytes:
    """An ``md:EntitiesDescriptor`` holding the given entities."""
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><md:EntitiesDescriptor xmlns:md="{MD}" Name={quoteattr(name)}'
        f"{_valid_until_attr(valid_until)}>{''.join(entity_xml)}</md:EntitiesDescriptor>"
    ).encode("utf-8")


def make_sp_metadata(entity_id, signing_certs=(), encryption_certs=(), acs=(), **options) -> bytes:
    """Standalone SP metadata (Webex-shaped when given a Webex entityID and ACS)."""
    return as_document(sp_entity(entity_id, signing_certs, encryption_certs, acs, **options))


def make_idp_metadata(entity_id, signing_certs=(), sso_url="https://login.microsoftonline.com/tenant/saml2",
                      **options) -> bytes:
    """Standalone IdP metadata (Entra-shaped with ``wsfed=True``)."""
    return as_document(idp_entity(entity_id, signing_certs, sso_url, **options))
