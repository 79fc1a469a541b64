"""Health of one certificate at a given moment: dates, status, thumbprints and weaknesses.

Conventions (chosen to match what admins see in the Entra portal and Windows):
- thumbprints are uppercase hex without separators (SHA-1 is Entra's "Thumbprint");
- ``serial`` is uppercase hex, zero-padded to whole bytes, with a leading "-" for the (invalid
  but existing) negative serials;
- ``days_left`` is ``floor((not_after - now) / 1 day)``: 0 on the last day, negative once expired.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Iterable, Optional

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from rollover.certificates.parsing import Document, FoundCertificate, certificate_serial

STATUS_ORDER = ("ok", "warning", "not-yet-valid", "critical", "expired")
"""From best to worst. A not-yet-valid certificate cannot sign anything today, so it ranks above warning."""

STATUS_EMOJI = {"expired": "🔴", "critical": "🟠", "warning": "🟡", "not-yet-valid": "🔵", "ok": "🟢"}
STATUS_COLOUR = {  # Adaptive Card TextBlock colours
    "expired": "attention", "critical": "attention", "warning": "warning", "not-yet-valid": "accent", "ok": "good",
}

FINDINGS = {
    "weak-key": "The key is too small (RSA or DSA under 2048 bits).",
    "sha1-signature": "The certificate is signed with SHA-1, which is no longer considered safe.",
    "md5-signature": "The certificate is signed with MD5, which is broken.",
    "metadata-expired": "The metadata document's validUntil date has passed; consumers may refuse it.",
}

WEAK_HASHES = {"sha1": "sha1-signature", "md5": "md5-signature"}
CURVE_NAMES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
SECONDS_PER_DAY = 86400


@dataclass(frozen=True)
class CertificateReport:
    """Everything a card, the CLI or the diagnosis shows about one certificate."""

    entity_id: Optional[str]
    role: Optional[str]
    use: Optional[str]
    subject: str
    issuer: str
    serial: str
    sha1: str
    sha256: str
    not_before: datetime
    not_after: datetime
    days_left: int
    status: str
    key: str
    signature_algorithm: str
    findings: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        """The JSON contract of ``bot.py check --json`` (times as ISO 8601 UTC with a Z)."""
        return {
            "entity_id": self.entity_id,
            "role": self.role,
            "use": self.use,
            "subject": self.subject,
            "issuer": self.issuer,
            "serial": self.serial,
            "sha1": self.sha1,
            "sha256": self.sha256,
            "not_before": iso_utc(self.not_before),
            "not_after": iso_utc(self.not_after),
            "days_left": self.days_left,
            "status": self.status,
            "key": self.key,
            "signature_algorithm": self.signature_algorithm,
            "findings": list(self.findings),
        }

    @property
    def emoji(self) -> str:
        return STATUS_EMOJI[self.status]


def assess(
    found: FoundCertificate,
    now: datetime,
    *,
    warning_days: int = 60,
    critical_days: int = 14,
    metadata_valid_until: Optional[datetime] = None,
) -> CertificateReport:
    """Assess one found certificate at ``now`` (an aware datetime)."""
    certificate = found.certificate
    not_before, not_after = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    days_left = days_until(not_after, now)
    return CertificateReport(
        entity_id=found.entity_id,
        role=found.role,
        use=found.use,
        subject=certificate.subject.rfc4514_string(),
        issuer=certificate.issuer.rfc4514_string(),
        serial=serial_hex(certificate_serial(certificate)),
        sha1=thumbprint(found.der, "sha1"),
        sha256=thumbprint(found.der, "sha256"),
        not_before=not_before,
        not_after=not_after,
        days_left=days_left,
        status=validity_status(not_before, not_after, now, warning_days=warning_days, critical_days=critical_days),
        key=describe_key(certificate),
        signature_algorithm=signature_algorithm_name(certificate),
        findings=_findings(certificate, now, metadata_valid_until),
    )


def assess_document(
    document: Document, now: datetime, *, warning_days: int = 60, critical_days: int = 14
) -> list[CertificateReport]:
    """Assess every certificate of a document, with its entity's effective validUntil."""
    # One index instead of a search of every entity per certificate (quadratic on big aggregates);
    # reversed so that, as with Document.entity, the first entity of a repeated entityID wins.
    valid_until = {entity.entity_id: entity.valid_until for entity in reversed(document.entities)}
    return [
        assess(
            found, now, warning_days=warning_days, critical_days=critical_days,
            metadata_valid_until=valid_until[found.entity_id] if found.entity_id in valid_until
            else document.valid_until,
        )
        for found in document.certificates
    ]


def validity_status(
    not_before: datetime, not_after: datetime, now: datetime, *, warning_days: int = 60, critical_days: int = 14
) -> str:
    """expired / not-yet-valid / critical / warning / ok, in that order of precedence."""
    _require_aware(now)
    if now > not_after:
        return "expired"
    if now < not_before:
        return "not-yet-valid"
    days_left = days_until(not_after, now)
    if days_left <= critical_days:
        return "critical"
    if days_left <= warning_days:
        return "warning"
    return "ok"


def days_until(moment: datetime, now: datetime) -> int:
    """Whole days from ``now`` to ``moment``, rounded down (negative in the past)."""
    _require_aware(now)
    return math.floor((moment - now).total_seconds() / SECONDS_PER_DAY)


def worst(statuses: Iterable[str]) -> str:
    """The worst status in ``statuses`` by ``STATUS_ORDER``; "ok" for none."""
    return max(statuses, key=STATUS_ORDER.index, default="ok")


def thumbprint(der: bytes, algorithm: str = "sha1") -> str:
    """Uppercase hex digest of the DER, as the Entra portal shows thumbprints."""
    return hashlib.new(algorithm, der).hexdigest().upper()


def normalise_thumbprint(value: str) -> str:
    """Accept thumbprints pasted with spaces, colons or lower case."""
    return "".join(ch for ch in value if ch.isalnum()).upper()


def serial_hex(serial: int) -> str:
    digits = f"{abs(serial):X}"
    digits = digits.zfill(len(digits) + len(digits) % 2)
    return f"-{digits}" if serial < 0 else digits


def describe_key(certificate: x509.Certificate) -> str:
    """"RSA 2048", "EC P-256", "Ed25519", ..."""
    key = certificate.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {CURVE_NAMES.get(key.curve.name, key.curve.name)}"
    if isinstance(key, dsa.DSAPublicKey):
        return f"DSA {key.key_size}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448"
    return type(key).__name__


def signature_algorithm_name(certificate: x509.Certificate) -> str:
    """OpenSSL-style name (sha256WithRSAEncryption); the dotted OID when cryptography has no name."""
    oid = certificate.signature_algorithm_oid
    name = getattr(oid, "_name", "")
    return name if name and name != "Unknown OID" else oid.dotted_string


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _findings(certificate: x509.Certificate, now: datetime, metadata_valid_until: Optional[datetime]) -> list[str]:
    findings = []
    key = certificate.public_key()
    if isinstance(key, (rsa.RSAPublicKey, dsa.DSAPublicKey)) and key.key_size < 2048:
        findings.append("weak-key")
    weak_hash = WEAK_HASHES.get(_signature_hash_name(certificate))
    if weak_hash:
        findings.append(weak_hash)
    if metadata_valid_until is not None and now > metadata_valid_until:
        findings.append("metadata-expired")
    return findings


def _signature_hash_name(certificate: x509.Certificate) -> str:
    """Name of the signature's hash ("sha1", "sha256"...); "" for Ed25519 or algorithms cryptography lacks."""
    try:
        algorithm = certificate.signature_hash_algorithm
    except UnsupportedAlgorithm:
        return ""  # e.g. RSASSA-PSS variants or GOST: not one of the weak hashes we flag
    return algorithm.name if algorithm else ""


def _require_aware(now: datetime) -> None:
    if now.tzinfo is None:
        raise ValueError("now must be a timezone-aware datetime")
