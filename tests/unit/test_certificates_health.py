"""Health assessment: statuses at boundaries, thumbprints, key and algorithm names, findings."""

import hashlib
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import hashes

from rollover.certificates.health import (
    STATUS_COLOUR,
    STATUS_EMOJI,
    STATUS_ORDER,
    assess,
    assess_document,
    days_until,
    serial_hex,
    worst,
)
from rollover.certificates.parsing import FoundCertificate, parse_document
from tests.support.certfactory import der_of, make_cert, make_sp_metadata, utc

NOT_BEFORE, NOT_AFTER = utc(2024, 1, 1), utc(2025, 1, 1, 12)


def found(cert, role=None, use=None, entity_id=None):
    return FoundCertificate(entity_id, role, use, cert, der_of(cert))


@pytest.fixture(scope="module")
def cert():
    return make_cert("sso.example.com", NOT_BEFORE, NOT_AFTER, serial=0x0ABC)[0]


@pytest.mark.parametrize("now, status, days", [
    (utc(2023, 12, 31), "not-yet-valid", 367),
    (utc(2024, 6, 1), "ok", 214),
    (NOT_AFTER - timedelta(days=61), "ok", 61),
    (NOT_AFTER - timedelta(days=60), "warning", 60),
    (NOT_AFTER - timedelta(days=15), "warning", 15),
    (NOT_AFTER - timedelta(days=14), "critical", 14),
    (NOT_AFTER - timedelta(hours=12), "critical", 0),
    (NOT_AFTER, "critical", 0),
    (NOT_AFTER + timedelta(seconds=1), "expired", -1),
    (NOT_AFTER + timedelta(days=3, hours=1), "expired", -4),
])
def test_status_and_days_left(cert, now, status, days):
    report = assess(found(cert), now)
    assert (report.status, report.days_left) == (status, days)


def test_thresholds_are_parameters(cert):
    report = assess(found(cert), NOT_AFTER - timedelta(days=20), warning_days=30, critical_days=21)
    assert report.status == "critical"


def test_report_fields_and_json_contract(cert):
    report = assess(found(cert, "sp", "signing", "https://idbroker.webex.com/org"), utc(2024, 6, 1))
    der = der_of(cert)
    assert report.sha1 == hashlib.sha1(der).hexdigest().upper()
    assert report.sha256 == hashlib.sha256(der).hexdigest().upper()
    assert report.serial == "0ABC"
    assert report.key == "RSA 2048"
    assert report.signature_algorithm == "sha256WithRSAEncryption"
    assert report.subject == report.issuer == "CN=sso.example.com"
    assert report.not_before.tzinfo is not None
    data = report.to_json()
    assert list(data) == ["entity_id", "role", "use", "subject", "issuer", "serial", "sha1", "sha256", "not_before",
                          "not_after", "days_left", "status", "key", "signature_algorithm", "findings"]
    assert data["not_after"] == "2025-01-01T12:00:00Z" and data["findings"] == []


def test_weak_key_and_weak_hashes():
    weak, _ = make_cert("weak", NOT_BEFORE, NOT_AFTER, key_size=1024, hash=hashes.SHA1())
    assert assess(found(weak), utc(2024, 6, 1)).findings == ["weak-key", "sha1-signature"]
    md5, _ = make_cert("md5", NOT_BEFORE, NOT_AFTER, hash=hashes.MD5())
    report = assess(found(md5), utc(2024, 6, 1))
    assert (report.findings, report.signature_algorithm) == (["md5-signature"], "md5WithRSAEncryption")


def test_ec_key_description():
    ec_cert, _ = make_cert("ec", NOT_BEFORE, NOT_AFTER, curve="secp256r1")
    report = assess(found(ec_cert), utc(2024, 6, 1))
    assert (report.key, report.signature_algorithm) == ("EC P-256", "ecdsa-with-SHA256")


def test_metadata_expired_finding_uses_entity_valid_until(cert):
    document = parse_document(make_sp_metadata("https://sp", [cert], valid_until=utc(2024, 3, 1)))
    before, after = assess_document(document, utc(2024, 2, 1)), assess_document(document, utc(2024, 3, 2))
    assert before[0].findings == [] and after[0].findings == ["metadata-expired"]


def test_serial_zero_and_hex_format():
    zero, _ = make_cert("zero", NOT_BEFORE, NOT_AFTER, serial=0)
    assert assess(found(zero), utc(2024, 6, 1)).serial == "00"
    assert serial_hex(0x13B5997228E) == "013B5997228E" and serial_hex(-255) == "-FF"


def test_worst_and_styles():
    assert worst([]) == "ok"
    assert worst(["ok", "warning", "not-yet-valid"]) == "not-yet-valid"
    assert worst(["critical", "expired", "ok"]) == "expired"
    assert set(STATUS_EMOJI) == set(STATUS_COLOUR) == set(STATUS_ORDER)
    assert STATUS_EMOJI["expired"] == "🔴" and STATUS_EMOJI["ok"] == "🟢"


def test_naive_now_is_a_bug(cert):
    with pytest.raises(ValueError):
        days_until(NOT_AFTER, NOT_AFTER.replace(tzinfo=None))
