"""Minimal malformed documents (issue 11, item 5), built with ``cryptography`` and DER byte surgery.

Each reproducer once escaped the parser as something other than ``DocumentError`` (LookupError,
OverflowError, InvalidVersion, UnsupportedAlgorithm, ValueError, TypeError). ``REPRODUCERS``
maps a corpus file name to (builder, expected ``DocumentError.code``, words of the expected
reason). The files in ``corpus/`` were written by ``python tests/unit/malformed.py``; the tests
check both the committed files and freshly built ones, so the corpus stays a regression set even
if cryptography's builder changes.
"""

from __future__ import annotations

import base64
import sys
from pathlib import Path
from typing import Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # when run as a script

from tests.support.certfactory import MD, b64_of, der_of, make_cert, rsa_key, utc  # noqa: E402

CORPUS = Path(__file__).resolve().parent / "corpus"

VERSION_V3 = bytes.fromhex("A003020102")            # [0] EXPLICIT INTEGER 2 (v3)
RSA_ENCRYPTION = bytes.fromhex("06092A864886F70D010101")


def _pem(der: bytes) -> bytes:
    """PEM by hand: cryptography would refuse to re-encode most of these."""
    return b"-----BEGIN CERTIFICATE-----\n" + _wrapped_base64(der) + b"-----END CERTIFICATE-----\n"


def _wrapped_base64(der: bytes) -> bytes:
    text = base64.b64encode(der)
    return b"".join(text[i:i + 64] + b"\n" for i in range(0, len(text), 64))


def _replace_once(der: bytes, old: bytes, new: bytes) -> bytes:
    assert len(old) == len(new), "same length keeps every DER length field valid"
    assert der.count(old) == 1, f"expected {old.hex()} exactly once"
    return der.replace(old, new)


def cert_der(cn: str = "malformed", **options) -> bytes:
    return der_of(make_cert(cn, utc(2024, 1, 1), utc(2030, 1, 1), **options)[0])


def version_6() -> bytes:
    """The version field says 6 (only 0, 1 and 2 exist): cryptography raises InvalidVersion."""
    return _pem(_replace_once(cert_der(), VERSION_V3, VERSION_V3[:-1] + b"\x06"))


def unknown_key_oid() -> bytes:
    """rsaEncryption's OID changed to 1.2.840.113549.1.1.99: public_key() raises UnsupportedAlgorithm."""
    return _pem(_replace_once(cert_der(), RSA_ENCRYPTION, RSA_ENCRYPTION[:-1] + b"\x63"))


def ec_point_off_curve() -> bytes:
    """An EC P-256 key whose point has its last byte flipped: public_key() raises ValueError."""
    certificate, _ = make_cert("ec", utc(2024, 1, 1), utc(2030, 1, 1), curve="secp256r1")
    point = certificate.public_key().public_bytes(serialization.Encoding.X962,
                                                  serialization.PublicFormat.UncompressedPoint)
    off_curve = point[:-1] + bytes([point[-1] ^ 1])
    return _pem(_replace_once(der_of(certificate), point, off_curve))


def _invalid_utf8_in(which: str) -> bytes:
    """Self-signed, so subject and issuer hold the same CN; only one of them is spoilt."""
    der = cert_der("utf8!")
    cn = b"\x0c\x05utf8!"  # UTF8String "utf8!"
    first = der.index(cn)  # the issuer comes first in the TBSCertificate
    at = first if which == "issuer" else der.index(cn, first + 1)
    return _pem(der[:at] + b"\x0c\x05\xff\xfe\xfd\xfc\xfb" + der[at + len(cn):])


def subject_invalid_utf8() -> bytes:
    return _invalid_utf8_in("subject")


def issuer_invalid_utf8() -> bytes:
    return _invalid_utf8_in("issuer")


def year_0() -> bytes:
    """notAfter as GeneralizedTime 00000101000000Z: reading the date raises ValueError (year 0)."""
    certificate, _ = make_cert("year0", utc(2024, 1, 1), utc(2500, 1, 1))  # 2050+ is GeneralizedTime
    return _pem(_replace_once(der_of(certificate), b"25000101000000Z", b"00000101000000Z"))


def bitstring_common_name() -> bytes:
    """A CN whose value is a BIT STRING: reading the subject raises TypeError."""
    der = cert_der("bitstr")
    cn = b"\x0c\x06bitstr"
    at = der.index(cn, der.index(cn) + 1)  # the subject's
    return _pem(der[:at] + b"\x03\x06\x00itstr" + der[at + len(cn):])


def bitstring_unique_identifier() -> bytes:
    """A legitimate BitString attribute (x500UniqueIdentifier) beside the CN: must still be readable."""
    key = rsa_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "unique"),
                      x509.NameAttribute(NameOID.X500_UNIQUE_IDENTIFIER, b"\x01\x02",
                                         x509.name._ASN1Type.BitString)])
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(7).not_valid_before(utc(2024, 1, 1)).not_valid_after(utc(2030, 1, 1))
                   .sign(key, hashes.SHA256()))
    return _pem(der_of(certificate))


def _metadata(attributes: str = "", declaration: str = '<?xml version="1.0" encoding="UTF-8"?>',
              body: str = "") -> bytes:
    return (f'{declaration}<md:EntityDescriptor xmlns:md="{MD}" entityID="https://idp.example.com"{attributes}>'
            f"{body}</md:EntityDescriptor>").encode("utf-8")


def encoding(name: str) -> Callable[[], bytes]:
    return lambda: _metadata(declaration=f'<?xml version="1.0" encoding="{name}"?>')


def valid_until(value: str) -> Callable[[], bytes]:
    return lambda: _metadata(f' validUntil="{value}"')


def metadata_with_version_6() -> bytes:
    """The version-6 certificate inside metadata: the metadata reader's path to the same check."""
    der = _replace_once(cert_der(), VERSION_V3, VERSION_V3[:-1] + b"\x06")
    key = (f'<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
           f'<md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#">'
           f"<ds:X509Data><ds:X509Certificate>{base64.b64encode(der).decode()}</ds:X509Certificate>"
           "</ds:X509Data></ds:KeyInfo></md:KeyDescriptor></md:IDPSSODescriptor>")
    return _metadata(body=key)


def good_certificate() -> bytes:
    return _pem(cert_der("good"))


def good_metadata() -> bytes:
    certificate, _ = make_cert("good-idp", utc(2024, 1, 1), utc(2030, 1, 1))
    return _metadata(body=(
        '<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
        '<md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data>'
        f"<ds:X509Certificate>{b64_of(certificate)}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>"
        "</md:KeyDescriptor></md:IDPSSODescriptor>"))


# file name -> (builder, DocumentError.code, words of the reason)
REPRODUCERS: dict[str, tuple[Callable[[], bytes], str, str]] = {
    "xml_encoding_unknown.xml": (encoding("x"), "bad-encoding", "names the text encoding 'x'"),
    "xml_encoding_multibyte.xml": (encoding("utf-7"), "bad-encoding", "names the text encoding 'utf-7'"),
    "xml_encoding_not_text.xml": (encoding("rot13"), "bad-encoding", "names the text encoding 'rot13'"),
    "xml_encoding_idna.xml": (encoding("idna"), "bad-encoding", "names the text encoding 'idna'"),
    "valid_until_overflow.xml": (valid_until("9999-12-31T23:59:59-01:00"), "invalid-metadata",
                                 "outside the years 1 to 9999"),
    "valid_until_underflow.xml": (valid_until("0001-01-01T00:00:00+01:00"), "invalid-metadata",
                                  "outside the years 1 to 9999"),
    "cert_version_6.pem": (version_6, "bad-certificate", "its version field is 6"),
    "cert_unknown_key_oid.pem": (unknown_key_oid, "bad-certificate",
                                 "public key of an algorithm I do not know (OID 1.2.840.113549.1.1.99)"),
    "cert_ec_point_off_curve.pem": (ec_point_off_curve, "bad-certificate", "not a valid point on its curve"),
    "cert_subject_invalid_utf8.pem": (subject_invalid_utf8, "bad-certificate",
                                      "its subject name cannot be read (a value is malformed, for example text "
                                      "that is not valid UTF-8)"),
    "cert_issuer_invalid_utf8.pem": (issuer_invalid_utf8, "bad-certificate", "its issuer name cannot be read"),
    "cert_year_0.pem": (year_0, "bad-certificate", "its validity dates cannot be read (year 0 is out of range)"),
    "cert_bitstring_common_name.pem": (bitstring_common_name, "bad-certificate",
                                       "a name attribute holds a bit string where text is expected"),
    "metadata_cert_version_6.xml": (metadata_with_version_6, "bad-certificate",
                                    "a certificate of entity https://idp.example.com is not a valid X.509"),
}

READABLE = {  # look odd, are valid: must keep working
    "good_certificate.pem": good_certificate,
    "good_metadata.xml": good_metadata,
    "cert_bitstring_unique_identifier.pem": bitstring_unique_identifier,
}


def write_corpus() -> None:
    CORPUS.mkdir(exist_ok=True)
    for name, (build, _, _) in REPRODUCERS.items():
        (CORPUS / name).write_bytes(build())
    for name, build in READABLE.items():
        (CORPUS / name).write_bytes(build())


if __name__ == "__main__":
    write_corpus()
    print(f"wrote {len(REPRODUCERS) + len(READABLE)} files to {CORPUS}")
