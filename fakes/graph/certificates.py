"""Certificates as Entra makes them: self-signed RSA certificates, SHA-1 thumbprints, federation metadata XML."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import uuid
from typing import Optional
from xml.sax.saxutils import escape as xml_escape

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

# --------------------------------------------------------------------------- certificates

_KEY_POOL: list[rsa.RSAPrivateKey] = []
_KEY_POOL_LOCK = threading.Lock()


def pooled_rsa_key(index: int) -> rsa.RSAPrivateKey:
    """A reusable RSA-2048 key; seeding thousands of apps must not generate thousands of keys."""
    with _KEY_POOL_LOCK:
        while len(_KEY_POOL) < 4:
            _KEY_POOL.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
        return _KEY_POOL[index % len(_KEY_POOL)]


def make_self_signed_certificate(subject_cn: str, not_before: dt.datetime, not_after: dt.datetime,
                                 private_key: Optional[rsa.RSAPrivateKey] = None
                                 ) -> tuple[bytes, rsa.RSAPrivateKey]:
    """Return (DER, private key) of a self-signed RSA certificate; a fresh 2048-bit key by default."""
    key = private_key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn.removeprefix("CN="))])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.DER), key


def sha1_thumbprint(der: bytes) -> str:
    """Graph's certificate thumbprint: SHA-1 of the DER, uppercase hex."""
    return hashlib.sha1(der).hexdigest().upper()


# --------------------------------------------------------------------------- metadata XML

_MD = "urn:oasis:names:tc:SAML:2.0:metadata"
_DS = "http://www.w3.org/2000/09/xmldsig#"


def _key_descriptors(certificates: list[str]) -> str:
    return "".join(
        f'<KeyDescriptor use="signing"><KeyInfo xmlns="{_DS}"><X509Data><X509Certificate>{cert}'
        "</X509Certificate></X509Data></KeyInfo></KeyDescriptor>" for cert in certificates)


def render_federation_metadata(tenant_id: str, certificates: list[str]) -> str:
    """Entra-shaped per-app metadata: WS-Fed RoleDescriptor + IDPSSODescriptor with the same certs."""
    tenant = xml_escape(tenant_id)
    login = f"https://login.microsoftonline.com/{tenant}"
    keys = _key_descriptors(certificates)
    return (
        f'<?xml version="1.0" encoding="utf-8"?>'
        f'<EntityDescriptor ID="_{uuid.uuid4()}" entityID="https://sts.windows.net/{tenant}/" xmlns="{_MD}">'
        f'<RoleDescriptor xsi:type="fed:SecurityTokenServiceType" '
        f'protocolSupportEnumeration="http://docs.oasis-open.org/wsfed/federation/200706" '
        f'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'xmlns:fed="http://docs.oasis-open.org/wsfed/federation/200706">{keys}'
        f'<fed:PassiveRequestorEndpoint><EndpointReference xmlns="http://www.w3.org/2005/08/addressing">'
        f'<Address>{login}/wsfed</Address></EndpointReference></fed:PassiveRequestorEndpoint></RoleDescriptor>'
        f'<IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">{keys}'
        f'<SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="{login}/saml2"/>'
        f'<SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="{login}/saml2"/>'
        f'<SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{login}/saml2"/>'
        f'</IDPSSODescriptor></EntityDescriptor>'
    )

