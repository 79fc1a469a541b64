"""Hostile documents cost linear time (issue 11, items 1-3).

Each test feeds a scanner the 5 MB input that made the old code quadratic and checks the
result; there is no timing assertion. With the old scanners these inputs take from minutes
(ENTITY declarations: about 20 min; 87,000 endpoints: about 2 min) to an hour (PEM BEGIN lines),
so a regression shows as a suite that does not finish. Where the cost can be counted instead of
felt, the test counts it (how often the entity list is walked), and the new PEM and ENTITY
scanners are checked against the old regular expressions on small generated inputs, so they
find exactly what the old ones found.
"""

import re
from datetime import datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollover.certificates.diagnosis import classify_webex_entity
from rollover.certificates.health import assess_document
from rollover.certificates.parsing import (
    Document,
    DocumentError,
    EntityInfo,
    FoundCertificate,
    _refuse_hostile_xml,
    parse_document,
    pem_bodies,
)
from tests.support.certfactory import MD, der_of, make_cert, make_idp_metadata, pem_of, utc

LIMIT = 5 * 1024 * 1024
NOW = datetime(2025, 6, 1, tzinfo=timezone.utc)
OLD_PEM_BLOCK = re.compile(rb"-----BEGIN (?:X509 )?CERTIFICATE-----(.*?)-----END (?:X509 )?CERTIFICATE-----",
                           re.DOTALL)
OLD_PEM_BEGIN = re.compile(rb"-----BEGIN (?:X509 )?CERTIFICATE-----")
OLD_ENTITY_DECLARATION = re.compile(rb"<!ENTITY\s[^>]*>", re.DOTALL)


def repeated(unit: bytes, head: bytes = b"", tail: bytes = b"", size: int = LIMIT) -> bytes:
    """``head`` + ``unit`` repeated to fill ``size`` bytes + ``tail``."""
    count = (size - len(head) - len(tail)) // len(unit)
    return head + unit * count + tail


def refusal(data: bytes) -> DocumentError:
    with pytest.raises(DocumentError) as caught:
        parse_document(data, source="hostile", max_bytes=LIMIT)
    assert len(str(caught.value)) < 300
    return caught.value


# ---------------------------------------------------------------------------------------------
# PEM


def test_begin_lines_without_end_are_refused_not_scanned_for_an_hour():
    """The issue's input: 1.1 MB took 202 s with the lazy BEGIN(.*?)END pattern."""
    assert refusal(repeated(b"-----BEGIN CERTIFICATE-----\n")).code == "bad-pem"


def test_one_begin_then_5_mb_without_an_end_is_refused():
    data = repeated(b"MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n", head=b"-----BEGIN CERTIFICATE-----\n")
    assert refusal(data).code == "bad-pem"


def test_5_mb_of_end_lines_and_near_misses_around_one_good_block():
    certificate = make_cert("inside", utc(2024, 1, 1), utc(2030, 1, 1))[0]
    noise = b"-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE----\n-----BEGIN PRIVATE KEY-----\n"
    data = repeated(noise, tail=pem_of(certificate), size=LIMIT)
    [found] = parse_document(data, source="noisy", max_bytes=LIMIT).certificates
    assert found.der == der_of(certificate)


PEM_TOKENS = [b"-----BEGIN CERTIFICATE-----", b"-----BEGIN X509 CERTIFICATE-----", b"-----END CERTIFICATE-----",
              b"-----END X509 CERTIFICATE-----", b"QUJD", b"\n", b"-----BEGIN PRIVATE KEY-----", b"-----", b"x"]


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(st.sampled_from(PEM_TOKENS), max_size=12))
def test_the_pem_scanner_finds_what_the_old_pattern_found(tokens):
    data = b"".join(tokens)
    old_blocks = OLD_PEM_BLOCK.findall(data)
    if len(old_blocks) == len(OLD_PEM_BEGIN.findall(data)):
        assert pem_bodies(data) == old_blocks
    else:
        with pytest.raises(DocumentError):
            pem_bodies(data)


# ---------------------------------------------------------------------------------------------
# DTD and entity declarations


def test_unclosed_entity_declarations_are_named_not_scanned_for_minutes():
    """The issue's input: 880 KB took 34 s with <!ENTITY\\s[^>]*>."""
    error = refusal(repeated(b"<!ENTITY a ", head=b"<!DOCTYPE x ["))
    assert error.code == "entities"


def test_many_closed_entity_declarations_and_an_external_one_at_the_end():
    data = repeated(b'<!ENTITY a "b">', head=b"<!DOCTYPE x [", tail=b'<!ENTITY e SYSTEM "file:///etc/passwd">]><x/>')
    assert refusal(data).code == "external-entity"


ENTITY_TOKENS = [b"<!DOCTYPE x [", b"<!ENTITY a ", b"<!ENTITY", b"SYSTEM", b"PUBLIC", b'"v"', b" ", b">", b"]>",
                 b"<x/>", b"<!ENTITY\n"]


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(st.sampled_from(ENTITY_TOKENS), max_size=10))
def test_the_entity_scanner_agrees_with_the_old_pattern(tokens):
    """Same verdict wherever the old pattern could see the declarations (each closed by a '>')."""
    data = b"<!DOCTYPE x [" + b"".join(tokens)
    new = _refuse_hostile_xml(data, "t").code
    old = OLD_ENTITY_DECLARATION.findall(data)
    unclosed = [m for m in re.finditer(rb"<!ENTITY\s", data) if b">" not in data[m.end():]]
    if unclosed:  # the old pattern did not see these at all; they are entity declarations all the same
        assert new in ("entities", "external-entity")
    elif any(re.search(rb"\b(?:SYSTEM|PUBLIC)\b", d) for d in old):
        assert new == "external-entity"
    elif old:
        assert new == "entities"
    else:
        assert new in ("dtd", "external-dtd")


# ---------------------------------------------------------------------------------------------
# Metadata


def test_87_000_endpoints_in_one_entity_are_all_kept_in_order():
    """Each Location was looked up in a growing list: about 3.8 billion comparisons for this input."""
    head = f'<md:EntityDescriptor xmlns:md="{MD}" entityID="https://sp"><md:SPSSODescriptor>'.encode()
    tail = b"</md:SPSSODescriptor></md:EntityDescriptor>"
    unit = len(b'<md:AssertionConsumerService Location="https://sp/00000"/>')
    count = (LIMIT - len(head) - len(tail)) // unit
    endpoints = b"".join(b'<md:AssertionConsumerService Location="https://sp/%05d"/>' % i for i in range(count))
    document = parse_document(head + endpoints + tail, source="many", max_bytes=LIMIT)
    urls = document.entities[0].acs_urls
    assert len(urls) == count > 87_000 and urls[:2] == ["https://sp/00000", "https://sp/00001"]


def test_endpoints_repeated_across_descriptors_are_kept_once():
    sp = ('<md:SPSSODescriptor><md:AssertionConsumerService Location="https://a"/>'
          '<md:AssertionConsumerService Location="https://b"/></md:SPSSODescriptor>')
    idp = '<md:IDPSSODescriptor><md:SingleSignOnService Location="https://a"/></md:IDPSSODescriptor>'
    data = f'<md:EntityDescriptor xmlns:md="{MD}" entityID="e">{sp}{sp}{idp}{idp}</md:EntityDescriptor>'.encode()
    [entity] = parse_document(data).entities
    assert entity.acs_urls == ["https://a", "https://b"] and entity.sso_urls == ["https://a"]


class WalkCounter(list):
    """A list that counts how often it is walked from end to end."""

    walks = 0

    def __iter__(self):
        WalkCounter.walks += 1
        return super().__iter__()

    def __reversed__(self):
        WalkCounter.walks += 1
        return super().__reversed__()


def test_assessing_a_document_walks_its_entities_once_not_once_per_certificate():
    certificate = make_cert("shared", utc(2024, 1, 1), utc(2030, 1, 1))[0]
    entities = WalkCounter(EntityInfo(f"https://e{i}", valid_until=utc(2026, 1, 1)) for i in range(2000))
    found = [FoundCertificate(f"https://e{i}", "idp", "signing", certificate, der_of(certificate))
             for i in range(2000)]
    WalkCounter.walks = 0
    reports = assess_document(Document("metadata", "t", entities, found), utc(2027, 1, 1))
    assert WalkCounter.walks == 1
    assert len(reports) == 2000 and all(r.findings == ["metadata-expired"] for r in reports)


def test_an_aggregate_of_thousands_of_entities_is_parsed_and_assessed():
    certificate = make_cert("shared", utc(2024, 1, 1), utc(2030, 1, 1), curve="secp256r1")[0]
    one = make_idp_metadata("https://idp/0", [certificate]).split(b"?>", 1)[1]
    entity = one.replace(f' xmlns:md="{MD}"'.encode(), b"")
    count = (LIMIT - 500) // (len(entity) + 4)
    body = b"".join(entity.replace(b"https://idp/0", b"https://idp/%d" % i) for i in range(count))
    data = f'<md:EntitiesDescriptor xmlns:md="{MD}">'.encode() + body + b"</md:EntitiesDescriptor>"
    document = parse_document(data, source="aggregate", max_bytes=LIMIT)
    assert len(document.entities) == count and len(assess_document(document, NOW)) == count


def test_5_mb_of_nested_elements_is_refused_at_the_101st_level():
    """Before the limit, 750,000 levels were built into a tree (7 s) before anything was read."""
    head = f'<md:EntityDescriptor xmlns:md="{MD}" entityID="deep"><md:Extensions>'.encode()
    depth = (LIMIT - 200) // 7
    error = refusal(head + b"<a>" * depth + b"</a>" * depth + b"</md:Extensions></md:EntityDescriptor>")
    assert error.code == "invalid-metadata" and "nested more than 100 levels deep" in str(error)


def test_metadata_nested_100_levels_deep_is_still_read():
    head = f'<md:EntitiesDescriptor xmlns:md="{MD}"><md:EntityDescriptor entityID="deep"><md:Extensions>'.encode()
    tail = b"</md:Extensions></md:EntityDescriptor></md:EntitiesDescriptor>"
    [entity] = parse_document(head + b"<a>" * 97 + b"</a>" * 97 + tail, source="deep").entities
    assert entity.entity_id == "deep"
    assert refusal(head + b"<a>" * 98 + b"</a>" * 98 + tail).code == "invalid-metadata"


@pytest.mark.parametrize("token", [b"<!--%s-->", b"<?pi %s?>", b"<x a='%s'/>", b"<%s/>", b"<![CDATA[%s]]>"])
def test_a_5_mb_token_reaches_expat_in_feeds_that_double(token, monkeypatch):
    """expat 2.5 re-scans an unfinished token on every feed: 16 KB feeds made a 5 MB token quadratic."""
    from rollover.certificates import parsing
    reads = []
    real_read = parsing._GrowingReads.read
    monkeypatch.setattr(parsing._GrowingReads, "read",
                        lambda self, size=-1: reads.append(len(chunk := real_read(self, size))) and chunk or chunk)
    head = f'<md:EntityDescriptor xmlns:md="{MD}" entityID="e"><md:Extensions>'.encode()
    tail = b"</md:Extensions></md:EntityDescriptor>"
    filler = b"a" * (LIMIT - len(head) - len(tail) - len(token))
    [entity] = parse_document(head + token % filler + tail, source="token", max_bytes=LIMIT).entities
    assert entity.entity_id == "e"
    feeds = [n for n in reads if n]
    rescannable = [sum(feeds[:i]) for i in range(len(feeds))]  # at most what came before each feed
    assert sum(rescannable) <= 2 * LIMIT and len(feeds) <= 12


def test_a_5_mb_validuntil_is_refused_without_being_parsed_or_quoted_whole():
    data = repeated(b"9", head=f'<md:EntityDescriptor xmlns:md="{MD}" entityID="e" validUntil="'.encode(),
                    tail=b'"/>')
    error = refusal(data)
    assert error.code == "invalid-metadata" and "too long" in str(error)


# ---------------------------------------------------------------------------------------------
# Text and binary


@pytest.mark.parametrize("unit, code", [
    (bytes(range(256)), "not-a-certificate"),               # binary: the printable check
    (b"QUJD" * 16 + b"\n", "not-a-certificate"),           # base64 of text that is neither PEM nor DER
    (b"not base64 at all! ", "bad-base64"),                  # printable, not base64
])
def test_5_mb_of_text_or_binary_that_is_no_certificate(unit, code):
    assert refusal(repeated(unit)).code == code


def test_5_mb_of_utf16_text_without_a_certificate():
    data = "\ufeff".encode("utf-16-le") + ("-----BEGIN CERTIFICATE-----\n" * 90_000).encode("utf-16-le")
    assert refusal(data[:LIMIT]).code == "bad-pem"


# ---------------------------------------------------------------------------------------------
# Diagnosis


@pytest.mark.parametrize("entity_id, kind", [
    ("https://idbroker" + "a." * 2_500_000 + "webex.com/org", "control-hub"),
    ("https://idbroker" + "a." * 2_500_000 + "webex.co/org", None),
    ("https://" + "a-" * 2_500_000 + ".webex.com/", "site-admin"),
])
def test_huge_entity_ids_are_classified_in_one_pass(entity_id, kind):
    trust = classify_webex_entity(EntityInfo(entity_id, roles=["sp"]))
    assert (trust.kind if trust else None) == kind
