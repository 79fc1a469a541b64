"""The parser over every shared fixture file (see shared/fixtures/SOURCES.md).

Expectations were read off the files by hand: counts are (entities, certificate entries, distinct
certificates), where an entry is one (entity, role, use, certificate). Commented-out KeyDescriptors,
AttributeAuthorityDescriptor keys and the ds:Signature KeyInfo are not counted.
"""

import warnings
from datetime import datetime, timezone
from pathlib import Path

import pytest

from rollover.certificates.health import assess_document
from rollover.certificates.parsing import DocumentError, parse_document

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures"
NOW = datetime(2025, 6, 1, tzinfo=timezone.utc)

ENTRA_CERTS = {  # SHA-1 prefix -> not_after date, for the three 2016-2019 Entra/AAD signing certificates
    "6B740DD0": "2019-02-14", "CF4DFDCD": "2019-03-27", "D92E1209": "2018-11-16",
}

PARSED = {
    # file: (entities, entries, distinct, {sha1 prefix: not_after day})
    "adfs_v2_metadata_signed_wsfed_roledescriptors.xml":
        (1, 4, 2, {"28D1BE71": "2017-12-03", "7C72CBF5": "2017-12-03"}),
    "adfs_v3_metadata_signed_wsfed_roledescriptors.xml":
        (1, 4, 2, {"8C3B60F1": "2018-03-13", "03EA0A1F": "2018-03-13"}),
    "adfs_v4_metadata_signed_wsfed_roledescriptors.xml":
        (1, 4, 2, {"D5FE7391": "2018-01-23", "5CC6722B": "2018-01-23"}),
    "entitiesdescriptor_multiple_idps_2_rubysaml.xml": (3, 4, 2, {"F13C6B80": "2032-04-14", "08EB6E60": "2029-03-18"}),
    "entitiesdescriptor_two_sps_cert_serial_zero.xml": (2, 4, 1, {"EE174EFB": "2042-02-08"}),
    "entra_common_federationmetadata_signed_3signingcerts.xml": (1, 6, 3, ENTRA_CERTS),
    "entra_tenant_federationmetadata_signed_prettyprinted.xml": (1, 6, 3, ENTRA_CERTS),
    "entra_tenant_federationmetadata_whitespace_in_elements.xml": (1, 3, 3, ENTRA_CERTS),
    "idp_metadata_mdui_uiinfo_pysaml2.xml": (1, 1, 1, {"021C37E4": "2009-11-05"}),
    "metadata_without_idpssodescriptor_rubysaml.xml": (1, 2, 1, {"F13C6B80": "2032-04-14"}),
    "onelogin_idp_metadata_different_sign_and_encrypt_cert.xml":
        (1, 2, 2, {"2DA94088": "2018-06-05", "CD2B2BDA": "2021-08-05"}),
    "onelogin_idp_metadata_linewrapped_cert_expired_2018.xml": (1, 1, 1, {"EF69AE37": "2018-10-01"}),
    "onelogin_idp_metadata_multi_signing_certs_linewrapped.xml":
        (1, 2, 2, {"CD2B2BDA": "2021-08-05", "B3914C17": "2018-04-15"}),
    "samltest_id_shibboleth_idp_metadata_leading_comment.xml":
        (1, 3, 3, {"0FF5606F": "2038-08-24", "E76B5E8E": "2038-08-24", "1D65B89C": "2038-08-24"}),
    "secureworks_idp_metadata_realworld.xml": (1, 1, 1, {"62CB2032": "2018-05-11"}),
    "shibboleth_idp_metadata_msidlab_whitespace_cert.xml": (1, 1, 1, {"9E34F0EE": "2018-02-14"}),
    "sp_metadata_entity_category_re_pysaml2.xml": (1, 2, 1, {"090DF18C": "2010-10-26"}),
    "sp_metadata_enveloped_signature_rsa_sha1.xml": (1, 2, 1, {"AFE71C28": "2007-08-14"}),
    "sp_metadata_no_validuntil_no_cert.xml": (1, 0, 0, {}),
    "sp_metadata_validuntil_2014_cert_expired_2007.xml": (1, 2, 1, {"AFE71C28": "2007-08-14"}),
    "testshib_entitiesdescriptor_crewjam.xml": (2, 2, 2, {"953926B5": "2036-08-23", "A7FCF7BF": "2016-08-27"}),
    "testshib_providers_entitiesdescriptor_python3saml.xml":
        (2, 2, 2, {"953926B5": "2036-08-23", "A7FCF7BF": "2016-08-27"}),
    "webex_meetings_site_sp_metadata_shrm_expired_2022_cert.xml": (1, 1, 1, {"555C26A7": "2022-11-30"}),
    "pem_cert_with_extra_blank_lines.crt": (0, 1, 1, {"3B9A6605": "3018-08-13"}),
    "pem_chain_with_linebreaks.pem": (0, 2, 2, {"021C37E4": "2009-11-05", "3CE25AE0": "2028-05-15"}),
}

REFUSED = {
    "billion_laughs_rubysaml_attackxee.xml": "entities",
    "defusedxml_cyclic.xml": "entities",
    "defusedxml_xmlbomb.xml": "entities",
    "defusedxml_xmlbomb2.xml": "entities",
    "defusedxml_external.xml": "external-entity",
    "defusedxml_external_file.xml": "external-entity",
    "defusedxml_dtd.xml": "external-dtd",
    "entra_metadata_malformed_x509certificate.xml": "bad-base64",
    "invalid_metadata_mismatched_end_tag.xml": "not-well-formed",
    "invalid_metadata_wrong_root_element.xml": "wrong-root",
    "pem_cert_malformed.crt": "bad-pem",
}


def fixture_files():
    if not FIXTURES.is_dir():
        return []
    return sorted(p for folder in ("metadata", "certs") for p in (FIXTURES / folder).iterdir() if p.is_file())


@pytest.fixture(autouse=True)
def require_fixtures():
    if not FIXTURES.is_dir():
        pytest.skip(f"shared fixtures not found at {FIXTURES}")


def read(name: str) -> bytes:
    folder = "certs" if name.endswith((".crt", ".pem")) else "metadata"
    return (FIXTURES / folder / name).read_bytes()


def test_every_fixture_file_has_an_expectation():
    names = {p.name for p in fixture_files()}
    assert names == set(PARSED) | set(REFUSED)


@pytest.mark.parametrize("name", sorted(PARSED))
def test_real_files_parse_with_expected_counts_and_dates(name):
    entities, entries, distinct, expiries = PARSED[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # serial-0 certificates must not warn
        document = parse_document(read(name), source=name)
        reports = assess_document(document, NOW)
    assert len(document.entities) == entities
    assert len(document.certificates) == entries
    assert len({c.der for c in document.certificates}) == distinct
    assert {r.sha1[:8]: r.not_after.date().isoformat() for r in reports} == expiries


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_hostile_and_broken_files_are_refused_with_the_right_reason(name):
    with pytest.raises(DocumentError) as caught:
        parse_document(read(name), source=name)
    assert caught.value.code == REFUSED[name]
    message = str(caught.value)
    assert "\n" not in message and name in message


def test_entra_metadata_roles_and_no_signature_certificate():
    document = parse_document(read("entra_common_federationmetadata_signed_3signingcerts.xml"))
    assert document.entities[0].entity_id == "https://sts.windows.net/{tenantid}/"
    assert {(c.role, c.use) for c in document.certificates} == {("idp", "signing"), ("sp", "signing")}
    assert len(document.entities[0].sso_urls) == 1


def test_webex_site_metadata_details():
    document = parse_document(read("webex_meetings_site_sp_metadata_shrm_expired_2022_cert.xml"))
    [entity] = document.entities
    assert entity.entity_id == "http://www.webex.com"
    assert entity.acs_urls == ["https://shrm.webex.com/dispatcher/SAML2AuthService?siteurl=shrm"]
    assert (entity.authn_requests_signed, entity.want_assertions_signed) == (False, True)
    [report] = assess_document(document, NOW)
    assert report.status == "expired" and report.findings == ["sha1-signature"]
    assert (report.role, report.use) == ("sp", "signing")


def test_valid_until_on_aggregate_and_entity():
    aggregate = parse_document(read("entitiesdescriptor_multiple_idps_2_rubysaml.xml"))
    assert aggregate.valid_until.isoformat() == "2014-04-17T18:02:33.910000+00:00"
    assert all(e.valid_until == aggregate.valid_until for e in aggregate.entities)
    expired = parse_document(read("sp_metadata_validuntil_2014_cert_expired_2007.xml"))
    assert all("metadata-expired" in r.findings for r in assess_document(expired, NOW))
    samltest = parse_document(read("samltest_id_shibboleth_idp_metadata_leading_comment.xml"))
    assert samltest.valid_until.year == 2100
    assert all("metadata-expired" not in r.findings for r in assess_document(samltest, NOW))


def test_base64_of_pem_certificate_in_metadata():
    document = parse_document(read("entitiesdescriptor_multiple_idps_2_rubysaml.xml"))
    foo = [c for c in document.certificates if c.entity_id == "https://foo.example.com/access/saml/idp.xml"]
    assert {c.use for c in foo} == {"signing", "encryption"} and len({c.der for c in foo}) == 1


def test_key_descriptor_without_use_is_one_entry_without_use():
    document = parse_document(read("shibboleth_idp_metadata_msidlab_whitespace_cert.xml"))
    assert [(c.role, c.use) for c in document.certificates] == [("idp", None)]


@pytest.mark.parametrize("name, words", [
    ("billion_laughs_rubysaml_attackxee.xml", ["nested XML entities (lol2 \u2192 lol,", "'billion laughs'"]),
    ("defusedxml_cyclic.xml", ["nested XML entities (a \u2192 b, b \u2192 a)"]),
    ("defusedxml_xmlbomb2.xml", ["the XML entity 'a' referenced once", "'quadratic blowup'"]),
])
def test_entity_refusal_names_what_was_found(name, words):
    with pytest.raises(DocumentError) as caught:
        parse_document(read(name), source=name)
    assert all(word in str(caught.value) for word in words), str(caught.value)


def test_pem_year_3018_generalized_time():
    [report] = assess_document(parse_document(read("pem_cert_with_extra_blank_lines.crt")), NOW)
    assert report.not_after.year == 3018 and report.status == "ok" and "weak-key" in report.findings
