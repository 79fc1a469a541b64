"""The Entra panel's data: the local tenant's SAML apps as Graph would read them, and the last Graph writes.

Read from the local Graph's state (``snapshot``), not through its API: the panel polls, and its reads must
not show up in the request log the tests and the panel itself look at.
"""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from typing import Any

from fakes.graph import LocalGraph, sha1_thumbprint

RECENT_WRITES = 8


def entra_view(graph: LocalGraph) -> dict[str, Any]:
    service_principals, applications = graph.snapshot()
    by_app_id = {application["appId"]: application for application in applications}
    apps = [_app_view(sp, by_app_id.get(sp["appId"])) for sp in service_principals
            if sp.get("preferredSingleSignOnMode") == "saml"]
    writes = [{"method": entry.method, "path": entry.path.removeprefix("/v1.0"), "status": entry.status,
               "at": datetime.fromtimestamp(entry.at, timezone.utc).isoformat(timespec="seconds")}
              for entry in graph.write_requests()[-RECENT_WRITES:]]
    return {"tenantId": graph.tenant_id, "apps": sorted(apps, key=lambda app: app["name"].casefold()),
            "writes": list(reversed(writes))}


def _app_view(sp: dict[str, Any], application: dict[str, Any] | None) -> dict[str, Any]:
    active = (sp.get("preferredTokenSigningKeyThumbprint") or "").upper()
    encryption_id = sp.get("tokenEncryptionKeyId")
    signing = [_certificate(key, active) for key in sp["keyCredentials"]
               if key["usage"] == "Verify" and key["keyId"] != encryption_id]
    signing.sort(key=lambda cert: (not cert["active"], cert["expires"]))
    verification = [_certificate(key, "") for key in (application or {}).get("keyCredentials", [])
                    if key["usage"] == "Verify"]
    encryption = [_certificate(key, "") for key in sp["keyCredentials"] if key["keyId"] == encryption_id]
    signed_requests = ((application or {}).get("requestSignatureVerification") or {}).get("isSignedRequestRequired")
    return {"name": sp["displayName"], "appId": sp["appId"], "signing": signing, "verification": verification,
            "encryption": encryption, "signedRequestsRequired": bool(signed_requests)}


def _certificate(key: dict[str, Any], active_thumbprint: str) -> dict[str, Any]:
    thumbprint = sha1_thumbprint(base64.b64decode(key["key"])) if key.get("key") else ""
    return {"name": key.get("displayName") or "", "thumbprint": thumbprint, "expires": key["endDateTime"],
            "active": bool(thumbprint) and thumbprint == active_thumbprint}
