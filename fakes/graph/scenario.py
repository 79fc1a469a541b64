"""Seeding a local tenant from a scenario file (YAML/JSON, dates relative to now; see scenarios/demo-tenant.yaml)."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Optional

import yaml

from fakes.graph.certificates import (
    make_self_signed_certificate,
    pooled_rsa_key,
)
from fakes.graph.model import (
    DEFAULT_PAGE_SIZE,
    DEFAULT_PERMISSIONS,
    SSO_CERT_CN,
    UTC,
)
from fakes.graph.tenant import GraphTenant


def load_scenario(path: str | Path) -> dict:
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def tenant_settings(data: dict) -> dict:
    """The ``LocalGraph`` constructor arguments a scenario sets."""
    return {
        "tenant_id": data.get("tenant_id"),
        "permissions": data.get("permissions", DEFAULT_PERMISSIONS),
        "page_size": data.get("page_size", DEFAULT_PAGE_SIZE),
        "metadata_certificates": data.get("metadata_certificates", "all"),
        "credential_visibility_delay": data.get("credential_visibility_delay_seconds", 0.0),
    }


def seed(graph: GraphTenant, data: dict, now: Optional[dt.datetime] = None) -> None:
    """Create the scenario's apps, users and groups in ``graph``."""
    now = (now or dt.datetime.now(UTC)).replace(microsecond=0)
    for spec in data.get("apps", []):
        _seed_app(graph, spec, now)
    users_by_name = {}
    for spec in data.get("users", []):
        user = graph.add_user(spec["user_principal_name"], spec.get("mail"), spec.get("id"))
        users_by_name[user["userPrincipalName"].casefold()] = user["id"]
    for spec in data.get("groups", []):
        members = [users_by_name.get(str(member).casefold(), member) for member in spec.get("members", [])]
        graph.add_group(spec["display_name"], members, spec.get("id"))


def _relative(now: dt.datetime, days: float) -> dt.datetime:
    return now + dt.timedelta(days=days)


def _seed_app(graph: GraphTenant, spec: dict, now: dt.datetime) -> None:
    sp = graph.add_saml_app(
        spec["display_name"], app_id=spec.get("app_id"), sp_id=spec.get("sp_id"),
        application_id=spec.get("application_id"), bot_is_owner=spec.get("bot_is_owner", False),
        notification_emails=spec.get("notification_emails", []),
        requires_signed_requests=spec.get("requires_signed_requests"),
        identifier_uris=spec.get("identifier_uris", []))
    if spec.get("sso_mode", "saml") != "saml":
        sp["preferredSingleSignOnMode"] = spec["sso_mode"]
    for cert in spec.get("signing_certificates", []):
        graph.add_signing_certificate(
            sp["id"], not_before=_relative(now, -cert.get("issued_days_ago", 365)),
            not_after=_relative(now, cert["expires_in_days"]),
            display_name=cert.get("display_name", SSO_CERT_CN), active=cert.get("active", False),
            custom_key_identifier=(uuid.uuid4().bytes if cert.get("custom_key_identifier") == "random" else None))
    application = graph._lookup(graph.applications, f"appId='{sp['appId']}'")
    for cert in spec.get("verification_certificates", []):
        der, _key = make_self_signed_certificate(cert["subject"], _relative(now, -cert.get("issued_days_ago", 30)),
                                                 _relative(now, cert["expires_in_days"]), pooled_rsa_key(1))
        graph.add_verification_certificate(application["id"], der, cert.get("display_name", cert["subject"]))
    if encryption := spec.get("token_encryption_certificate"):
        der, _key = make_self_signed_certificate(encryption["subject"], _relative(now, -30),
                                                 _relative(now, encryption["expires_in_days"]), pooled_rsa_key(2))
        graph.add_encryption_certificate(sp["id"], der, encryption["subject"])
    for secret in spec.get("client_secrets", []):
        graph.add_client_secret(application["id"], secret["display_name"], _relative(now, secret["expires_in_days"]))

