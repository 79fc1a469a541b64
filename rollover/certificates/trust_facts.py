"""The input and the findings of the trust diagnosis (plain data; ``diagnosis.py`` decides)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Optional

from rollover.certificates.parsing import Document
from rollover.certificates.webex_trust import AppIdentity, app_webex_kind

SEVERITY_ORDER = ("ok", "info", "warning", "critical", "expired")

TE_OFF, TE_ON, TE_UNIDENTIFIED, TE_UNKNOWN = "off", "on", "unidentified", "unknown"


@dataclass(frozen=True)
class EntraSigningCertificate:
    """One token-signing certificate of an Entra SAML app (a ``Verify`` keyCredential)."""

    thumbprint: str
    not_before: datetime
    not_after: datetime
    active: bool  # thumbprint == preferredTokenSigningKeyThumbprint


@dataclass(frozen=True)
class EntraAppFacts:
    """What Graph (or the app's JSON) says about one Entra enterprise app.

    ``requires_signed_requests`` is None when it could not be read. ``sp_entity_ids`` (the app's
    Identifier values: identifierUris and servicePrincipalNames) and ``reply_urls`` pair the app with
    a Webex trust; an app with neither is taken to serve every trust given.

    Token encryption: ``token_encryption_thumbprint`` is the certificate Entra encrypts tokens with;
    ``token_encryption_state`` says "unidentified" (a key is named but has no thumbprint) or
    "unknown" (the setting was not read). None = derived: on with a thumbprint, else off.
    """

    display_name: str
    app_id: str
    signing_certificates: list[EntraSigningCertificate] = field(default_factory=list)
    requires_signed_requests: Optional[bool] = None
    verification_certificate_thumbprints: list[str] = field(default_factory=list)
    token_encryption_thumbprint: Optional[str] = None
    notification_emails: list[str] = field(default_factory=list)
    sp_entity_ids: list[str] = field(default_factory=list)
    reply_urls: list[str] = field(default_factory=list)
    allowed_weak_algorithms: Optional[str] = None
    token_encryption_state: Optional[str] = None

    @property
    def token_encryption(self) -> str:
        if self.token_encryption_thumbprint:
            return TE_ON
        return self.token_encryption_state or TE_OFF

    @property
    def identity(self) -> AppIdentity:
        return AppIdentity(tuple(self.sp_entity_ids), tuple(self.reply_urls))

    @property
    def webex_kind(self) -> Optional[str]:
        return app_webex_kind(self.identity)


@dataclass
class TrustFacts:
    """Everything known about one Webex/Entra SSO setup.

    - ``webex_documents``: Webex SP metadata (Control Hub ``idb-meta-<org>-SP.xml``, Site
      Administration export); may hold the current and the new certificate.
    - ``entra_documents``: what Entra publishes (Federation Metadata XML, the downloaded .cer).
    - ``other_sp_documents``: metadata of service providers that are not Webex.
    - ``webex_trusted_idp_documents``: the IdP metadata/certificate Webex is configured with today.
    - ``entra_apps``: Graph facts (or app JSON files); empty when Entra's side was not read.
    - ``entra_note``: why Entra's side is not known (e.g. Graph's error sentence), or "".
    A document is judged by what it holds, whichever list it is in: only Webex entities are Webex's.
    """

    webex_documents: list[Document] = field(default_factory=list)
    entra_documents: list[Document] = field(default_factory=list)
    entra_apps: list[EntraAppFacts] = field(default_factory=list)
    webex_trusted_idp_documents: list[Document] = field(default_factory=list)
    other_sp_documents: list[Document] = field(default_factory=list)
    warning_days: int = 60
    critical_days: int = 14
    entra_note: str = ""


@dataclass(frozen=True)
class Finding:
    """One thing the diagnosis says. ``lead`` is the sentence the summary opens with when this is the
    most urgent finding (default: the text's first sentence); ``answer`` marks the findings the
    upload-or-activate answer is built from (they never lead the summary: the answer says it)."""

    severity: str  # "expired" | "critical" | "warning" | "info" | "ok"
    title: str
    text: str
    inferred: bool = False
    trust: Optional[str] = None  # "control-hub" | "site-admin" | None
    certificate_sha1: Optional[str] = None
    lead: Optional[str] = None
    answer: bool = False

    @property
    def headline(self) -> str:
        if self.lead:
            return self.lead
        first, dot, _ = self.text.partition(". ")
        return first + ("." if dot or not first.endswith(".") else "")

    def to_json(self) -> dict:
        return {"severity": self.severity, "title": self.title, "text": self.text}
