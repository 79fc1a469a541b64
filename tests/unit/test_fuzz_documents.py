"""Property-based fuzzing of the document parser (issue 11, item 6).

Seeds: the shared fixture files (real Entra, ADFS, Shibboleth, OneLogin metadata and certificate
files, when ../shared/fixtures is present), documents generated with cryptography, and the
malformed corpus. Hypothesis mutates them at the byte level, at the XML level (tokens spliced
in) and inside the certificates (DER bytes changed under their base64). Whatever comes out,
``parse_document`` must return a Document that can be assessed, or raise DocumentError; any
other exception fails the test. Bounded (a few hundred examples) so the suite stays fast.
"""

import base64
import binascii
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rollover.certificates.health import assess_document
from rollover.certificates.parsing import DocumentError, parse_document
from tests.support.certfactory import (
    der_of,
    make_cert,
    make_idp_metadata,
    make_sp_metadata,
    pem_of,
    utc,
)
from tests.unit.malformed import CORPUS

ROOT = Path(__file__).resolve().parents[2]
FIXTURE_DIRS = [ROOT.parent / "shared" / "fixtures"]
NOW = datetime(2025, 6, 1, tzinfo=timezone.utc)
BASE64_RUN = re.compile(rb"[A-Za-z0-9+/=\r\n]{200,8000}")  # bounded: runs of certificate base64

TOKENS = [
    b"<!DOCTYPE x [", b'<!ENTITY a "b">', b"&a;", b"]>",
    b"-----BEGIN CERTIFICATE-----\n", b"-----END CERTIFICATE-----\n",
    b'<?xml version="1.0" encoding="x"?>', b'encoding="utf-16"', b'validUntil="9999-12-31T23:59:59-01:00"',
    b'validUntil="0000-00-00"', b'use="both"', b"<md:KeyDescriptor>", b"</md:KeyDescriptor>", b"\x00", b"\xff\xfe",
    b"\xef\xbb\xbf", b"<![CDATA[", b"]]>", b"<!--", b"-->", b'xmlns:md="urn:x"', b"entityID=\"\"", b"=", b"<", b">",
    b"\"", b"'", b"/", b"MII", b"\r\n", b"&#0;", b"&#x110000;",
]


def fixture_seeds() -> list[bytes]:
    for folder in FIXTURE_DIRS:
        if folder.is_dir():
            files = sorted(p for sub in ("metadata", "certs") for p in (folder / sub).glob("*") if p.is_file())
            return [p.read_bytes() for p in files if p.stat().st_size <= 200_000]
    return []


def generated_seeds() -> list[bytes]:
    rsa, _ = make_cert("fuzz-rsa", utc(2024, 1, 1), utc(2030, 1, 1))
    ec, _ = make_cert("fuzz-ec", utc(2024, 1, 1), utc(2030, 1, 1), curve="secp256r1")
    webex = make_sp_metadata("https://idbroker.webex.com/org", [rsa], [ec],
                             ["https://idbroker.webex.com/idb/Consumer/metaAlias/org/sp"],
                             valid_until=utc(2026, 1, 1))
    entra = make_idp_metadata("https://sts.windows.net/tenant/", [rsa, ec], wsfed=True)
    return [webex, entra, pem_of(rsa) + pem_of(ec), der_of(ec), base64.b64encode(der_of(rsa)),
            entra.decode().encode("utf-16")]


SEEDS = fixture_seeds() + generated_seeds() + [p.read_bytes() for p in sorted(CORPUS.iterdir())]


def flip(data: bytes, at: int, value: int) -> bytes:
    if not data:
        return bytes([value])
    at %= len(data)
    return data[:at] + bytes([value]) + data[at + 1:]


def splice(data: bytes, at: int, token: bytes) -> bytes:
    at %= len(data) + 1
    return data[:at] + token + data[at:]


def cut(data: bytes, at: int, length: int) -> bytes:
    at %= len(data) + 1
    return data[:at] + data[at + length:]


def repeat(data: bytes, at: int, length: int) -> bytes:
    at %= len(data) + 1
    return data[:at] + data[at:at + length] * 3 + data[at:]


def mutate_der(data: bytes, at: int, value: int) -> bytes:
    """Change one byte of a certificate under its base64 (or of the DER itself), keeping the base64 valid."""
    runs = list(BASE64_RUN.finditer(data))
    if not runs:
        return flip(data, at, value)
    run = runs[at % len(runs)]
    try:
        der = base64.b64decode(b"".join(run.group().split()), validate=True)
    except (binascii.Error, ValueError):
        return flip(data, at, value)
    mutated = base64.b64encode(flip(der, at // 7, value))
    return data[:run.start()] + mutated + data[run.end():]


MUTATION = st.one_of(
    st.tuples(st.just(flip), st.integers(0, 10**6), st.integers(0, 255)),
    st.tuples(st.just(splice), st.integers(0, 10**6), st.sampled_from(TOKENS)),
    st.tuples(st.just(splice), st.integers(0, 10**6), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just(cut), st.integers(0, 10**6), st.integers(1, 400)),
    st.tuples(st.just(repeat), st.integers(0, 10**6), st.integers(1, 200)),
    st.tuples(st.just(mutate_der), st.integers(0, 10**6), st.integers(0, 255)),
)


def read_or_refuse(data: bytes) -> None:
    """The property: a Document that can be assessed, or DocumentError. Nothing else."""
    try:
        document = parse_document(data, source="fuzzed")
    except DocumentError as exc:
        assert str(exc).startswith("Cannot read fuzzed: ") and "\n" not in str(exc)
        return
    for report in assess_document(document, NOW):
        assert report.subject is not None and report.key


def test_there_are_seeds_of_every_kind():
    kinds = {seed.lstrip()[:1] for seed in SEEDS}
    assert {b"<", b"-", b"0", b"M"} <= kinds and len(SEEDS) >= 20


@pytest.mark.parametrize("index", range(len(SEEDS)))
def test_every_seed_is_read_or_refused(index):
    read_or_refuse(SEEDS[index])


@settings(max_examples=400, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(seed=st.integers(0, len(SEEDS) - 1), mutations=st.lists(MUTATION, min_size=1, max_size=4))
@example(seed=0, mutations=[(splice, 0, b'<?xml version="1.0" encoding="x"?>')])
def test_mutated_documents_are_read_or_refused(seed, mutations):
    data = SEEDS[seed]
    for mutation, at, argument in mutations:
        data = mutation(data, at, argument)
    read_or_refuse(data)
