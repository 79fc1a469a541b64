"""Parser unit tests on generated certificates and metadata (fixed dates, no files, no network)."""

import base64
import time
import warnings

import pytest
from cryptography.hazmat.primitives import hashes

from rollover.certificates.parsing import DocumentError, parse_document
from tests.support.certfactory import (
    as_document,
    b64_of,
    der_of,
    idp_entity,
    make_aggregate,
    make_cert,
    make_idp_metadata,
    make_sp_metadata,
    pem_of,
    sp_entity,
    utc,
)

ORG = "8f5a2c4e-1111-2222-3333-444455556666"
CH_ENTITY = f"https://idbroker.webex.com/{ORG}"
CH_ACS = f"https://idbroker.webex.com/idb/Consumer/metaAlias/{ORG}/sp"


@pytest.fixture(scope="module")
def certs():
    old, _ = make_cert("old", utc(2023, 1, 1), utc(2025, 1, 1), key_index=0)
    new, _ = make_cert("new", utc(2024, 6, 1), utc(2029, 6, 1), key_index=1)
    enc, _ = make_cert("enc", utc(2024, 1, 1), utc(2027, 1, 1), key_index=2)
    return {"old": old, "new": new, "enc": enc}


# --- certificate files -------------------------------------------------------------------------


def test_pem_single_and_chain_with_blank_lines_and_crlf(certs):
    pem = b"\r\n\r\n" + pem_of(certs["old"]).replace(b"\n", b"\r\n") + b"\r\n\r\n\r\n" + pem_of(certs["new"])
    document = parse_document(pem, source="chain.pem")
    assert document.kind == "certificates"
    assert [c.certificate.subject.rfc4514_string() for c in document.certificates] == ["CN=old", "CN=new"]
    assert all(c.entity_id is None and c.role is None and c.use is None for c in document.certificates)


def test_pem_with_blank_lines_inside_the_block(certs):
    lines = pem_of(certs["old"]).split(b"\n")
    spaced = b"\n\n".join(lines)
    assert parse_document(spaced).certificates[0].der == der_of(certs["old"])


def test_der(certs):
    document = parse_document(der_of(certs["new"]))
    assert document.certificates[0].der == der_of(certs["new"])


@pytest.mark.parametrize("separator", ["\n", "\r\n", " ", "\t", "\n\t  "])
def test_bare_base64_with_any_whitespace(certs, separator):
    text = b64_of(certs["old"])
    wrapped = separator.join(text[i:i + 64] for i in range(0, len(text), 64))
    assert parse_document(wrapped.encode()).certificates[0].der == der_of(certs["old"])


def test_base64_of_pem(certs):
    document = parse_document(base64.b64encode(pem_of(certs["new"])))
    assert document.certificates[0].der == der_of(certs["new"])


def test_utf8_bom_is_ignored(certs):
    assert len(parse_document(b"\xef\xbb\xbf" + pem_of(certs["old"])).certificates) == 1


def test_strict_base64_refuses_percent_prefix(certs):
    with pytest.raises(DocumentError) as caught:
        parse_document(("%%" + b64_of(certs["old"])).encode(), source="x.cer")
    assert caught.value.code == "bad-base64"
    assert "x.cer" in str(caught.value) and "\n" not in str(caught.value)


def test_pem_without_end_line_is_refused(certs):
    truncated = pem_of(certs["old"]).replace(b"-----END CERTIFICATE-----", b"")
    with pytest.raises(DocumentError) as caught:
        parse_document(truncated)
    assert caught.value.code == "bad-pem"


def test_binary_noise_is_refused():
    with pytest.raises(DocumentError) as caught:
        parse_document(bytes(range(256)) * 4)
    assert caught.value.code == "not-a-certificate"


def test_truncated_der_is_refused(certs):
    with pytest.raises(DocumentError) as caught:
        parse_document(der_of(certs["old"])[:-40])
    assert caught.value.code == "not-a-certificate"


def test_empty_input_is_refused():
    with pytest.raises(DocumentError) as caught:
        parse_document(b"  \n ")
    assert caught.value.code == "empty"


def test_size_limit_checked_before_parsing():
    started = time.perf_counter()
    with pytest.raises(DocumentError) as caught:
        parse_document(b"<" + b"x" * 2_000_000, max_bytes=1_000_000)
    assert caught.value.code == "too-large"
    assert "limit" in str(caught.value)
    assert time.perf_counter() - started < 0.5


def test_serial_zero_parses_without_warnings():
    cert, _ = make_cert("zero", utc(2024, 1, 1), utc(2030, 1, 1), serial=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        document = parse_document(pem_of(cert))
    assert len(document.certificates) == 1


# --- SAML metadata -----------------------------------------------------------------------------


def test_sp_metadata_entity_flags_and_uses(certs):
    data = make_sp_metadata(CH_ENTITY, [certs["new"]], [certs["enc"]], [CH_ACS],
                            authn_requests_signed=True, want_assertions_signed=False)
    document = parse_document(data)
    assert document.kind == "metadata"
    [entity] = document.entities
    assert (entity.entity_id, entity.roles, entity.acs_urls) == (CH_ENTITY, ["sp"], [CH_ACS])
    assert entity.authn_requests_signed is True and entity.want_assertions_signed is False
    assert [(c.role, c.use, c.certificate.subject.rfc4514_string()) for c in document.certificates] == [
        ("sp", "signing", "CN=new"), ("sp", "encryption", "CN=enc")]


def test_key_descriptor_without_use_is_one_entry_without_use(certs):
    # The metadata spec: no use means both; kept as use None so reports can say "no use given".
    document = parse_document(make_sp_metadata("https://sp", both_use_certs=[certs["old"]]))
    assert [(c.role, c.use) for c in document.certificates] == [("sp", None)]


def test_same_certificate_reported_once_per_entity_role_and_use(certs):
    data = make_idp_metadata("https://sts.windows.net/t/", [certs["old"], certs["old"], certs["new"]], wsfed=True)
    document = parse_document(data)
    assert [(c.role, c.use, c.certificate.subject.rfc4514_string()) for c in document.certificates] == [
        ("idp", "signing", "CN=old"), ("idp", "signing", "CN=new")]
    assert document.entities[0].sso_urls == ["https://login.microsoftonline.com/tenant/saml2"]


def test_certificate_in_idp_and_sp_descriptors_keeps_one_entry_per_role(certs):
    entity = idp_entity("https://adfs/trust", [certs["old"]]).replace(
        "</md:EntityDescriptor>",
        '<md:RoleDescriptor xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xmlns:fed="http://docs.oasis-open.org/wsfed/federation/200706" xsi:type="fed:ApplicationServiceType" '
        'protocolSupportEnumeration="x">'
        f'<md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data>'
        f"<ds:X509Certificate>{b64_of(certs['old'])}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>"
        "</md:KeyDescriptor></md:RoleDescriptor></md:EntityDescriptor>")
    document = parse_document(as_document(entity))
    assert sorted((c.role, c.use) for c in document.certificates) == [("idp", "signing"), ("sp", "signing")]
    assert document.entities[0].roles == ["idp", "sp"]


def test_document_signature_key_info_is_ignored(certs):
    signature = ('<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:KeyInfo><ds:X509Data>'
                 f"<ds:X509Certificate>{b64_of(certs['enc'])}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>"
                 "</ds:Signature>")
    entity = idp_entity("https://idp", [certs["old"]]).replace('">', '">' + signature, 1)
    document = parse_document(as_document(entity))
    assert [c.certificate.subject.rfc4514_string() for c in document.certificates] == ["CN=old"]


def test_nested_aggregate_valid_until_is_the_earliest(certs):
    inner = make_aggregate([sp_entity("https://a", [certs["old"]], valid_until=utc(2031, 1, 1))],
                           valid_until=utc(2030, 1, 1)).decode()
    namespace = ' xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"'
    inner_element = inner[inner.index("<md:EntitiesDescriptor"):].replace(namespace, "")
    outer = make_aggregate([inner_element, sp_entity("https://b", valid_until=utc(2026, 1, 1))],
                           valid_until=utc(2032, 1, 1))
    document = parse_document(outer)
    assert document.valid_until == utc(2032, 1, 1)
    assert {e.entity_id: e.valid_until for e in document.entities} == {
        "https://a": utc(2030, 1, 1), "https://b": utc(2026, 1, 1)}
    assert document.valid_until_for("https://a") == utc(2030, 1, 1)


def test_metadata_certificate_with_bad_base64_refuses_the_document(certs):
    data = make_sp_metadata("https://sp", [certs["old"]]).replace(b"<ds:X509Certificate>", b"<ds:X509Certificate>%%")
    with pytest.raises(DocumentError) as caught:
        parse_document(data)
    assert caught.value.code == "bad-base64" and "https://sp" in str(caught.value)


@pytest.mark.parametrize("payload, code", [
    (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><r>&b;</r>', "entities"),
    (b'<!DOCTYPE r [<!ENTITY e SYSTEM "file:///etc/passwd">]><r>&e;</r>', "external-entity"),
    (b'<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0//EN" "http://example.com/x.dtd"><html/>', "external-dtd"),
    (b"<!DOCTYPE r><r/>", "dtd"),
    (b'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x"><md:SPSSO', "not-well-formed"),
    (b"<html><body/></html>", "wrong-root"),
    (b'<EntityDescriptor entityID="x"/>', "wrong-root"),
    (b'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"/>', "invalid-metadata"),
    (b'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x" validUntil="soon"/>',
     "invalid-metadata"),
])
def test_hostile_or_broken_xml_is_refused_with_one_line(payload, code):
    with pytest.raises(DocumentError) as caught:
        parse_document(payload, source="in.xml")
    assert caught.value.code == code
    assert "\n" not in str(caught.value) and str(caught.value).startswith("Cannot read in.xml:")


def test_billion_laughs_is_refused_quickly():
    bomb = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            + b"".join(b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
                       for i in range(1, 10))
            + b"]><lolz>&lol9;</lolz>")
    started = time.perf_counter()
    with pytest.raises(DocumentError):
        parse_document(bomb)
    assert time.perf_counter() - started < 0.5


def test_xml_with_leading_comment_and_utf16(certs):
    data = b"\n  " + make_sp_metadata("https://sp", [certs["old"]]).replace(b"?>", b"?><!-- exported -->\n", 1)
    assert len(parse_document(data).certificates) == 1
    utf16 = make_sp_metadata("https://sp", [certs["old"]]).decode().replace('encoding="UTF-8"', 'encoding="UTF-16"')
    assert len(parse_document(utf16.encode("utf-16")).certificates) == 1


def test_weak_sha1_cert_loads(certs):
    cert, _ = make_cert("legacy", utc(2012, 1, 1), utc(2022, 11, 30), hash=hashes.SHA1())
    document = parse_document(make_sp_metadata("http://www.webex.com", [cert]))
    assert document.certificates[0].certificate.signature_algorithm_oid._name == "sha1WithRSAEncryption"
