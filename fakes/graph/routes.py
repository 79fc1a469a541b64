"""The Graph v1.0 requests the local Graph answers: servicePrincipals, applications, users, checkMemberGroups."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import time
import uuid
from typing import Any, Optional

from fakes.graph.certificates import (
    make_self_signed_certificate,
    sha1_thumbprint,
)
from fakes.graph.model import (
    MAX_TOKEN_SIGNING_YEARS,
    UTC,
    GraphHttpError,
    b64,
    bad_request,
    compile_filter,
    iso,
    not_found,
    parse_iso,
)
from fakes.graph.tenant import GraphTenant


class GraphRoutes(GraphTenant):
    """Routing and handlers of ``/v1.0/...``; each returns ``(status, JSON payload or None)``."""

    # ------------------------------------------------------------------ handlers

    def _list_service_principals(self, query: dict) -> tuple[int, Any]:
        self._require_read()
        predicate = compile_filter(query.get("$filter"))
        matching = (sp for sp in self.service_principals.values() if predicate(sp))
        return 200, self._page("servicePrincipals", matching, query)

    def _list_applications(self, query: dict) -> tuple[int, Any]:
        self._require_read()
        predicate = compile_filter(query.get("$filter"))
        matching = (app for app in self.applications.values() if predicate(app))
        return 200, self._page("applications", matching, query)

    def _get_object(self, obj: dict, collection: str, query: dict) -> tuple[int, Any]:
        self._require_read()
        body = self._render(obj, query, single=True)
        body["@odata.context"] = f"{self.base_url}/$metadata#{collection}/$entity"
        return 200, body

    def _patch_service_principal(self, sp: dict, body: dict, behaviour: Optional[str]) -> tuple[int, Any]:
        self._require_write(sp["id"])
        allowed = {"preferredTokenSigningKeyThumbprint", "notificationEmailAddresses", "keyCredentials",
                   "passwordCredentials", "tokenEncryptionKeyId", "samlSingleSignOnSettings"}
        self._apply_patch(sp, body, allowed, behaviour)
        return 204, None

    def _patch_application(self, application: dict, body: dict, behaviour: Optional[str]) -> tuple[int, Any]:
        self._require_write(application["id"])
        allowed = {"keyCredentials", "passwordCredentials", "requestSignatureVerification"}
        self._apply_patch(application, body, allowed, behaviour)
        return 204, None

    def _add_token_signing_certificate(self, sp: dict, body: dict, behaviour: Optional[str]) -> tuple[int, Any]:
        self._require_write(sp["id"])
        display_name = body.get("displayName") or ""
        if not display_name.startswith("CN="):
            raise bad_request("The displayName must start with 'CN='.")
        now = dt.datetime.now(UTC).replace(microsecond=0)
        latest_end = now.replace(year=now.year + MAX_TOKEN_SIGNING_YEARS)
        end = parse_iso(body["endDateTime"]) if body.get("endDateTime") else latest_end
        if end > latest_end + dt.timedelta(days=1) or end <= now:
            raise bad_request("The endDateTime must be in the future and at most 3 years from now.")
        der, key = make_self_signed_certificate(display_name, now, end)
        thumbprint = sha1_thumbprint(der)
        if behaviour != "ignore_write":
            self._store_signing_certificate(sp, der, key, display_name, now, end, None,
                                            visible_at=time.monotonic() + self.credential_visibility_delay)
        sign_entry = next((kc for kc in reversed(sp["keyCredentials"]) if kc["usage"] == "Sign"), None)
        return 200, {
            "@odata.context": f"{self.base_url}/$metadata#microsoft.graph.selfSignedCertificate",
            "customKeyIdentifier": b64(hashlib.sha1(der).digest()), "displayName": display_name,
            "endDateTime": iso(end), "key": b64(der),
            # Graph returns the Sign key's keyId here (TF works around it); so do we.
            "keyId": sign_entry["keyId"] if sign_entry else str(uuid.uuid4()),
            "startDateTime": iso(now), "thumbprint": thumbprint, "type": "AsymmetricX509Cert", "usage": "Verify",
        }

    def _find_user(self, key: str) -> dict:
        key_folded = key.casefold()
        for user in self.users.values():
            if user["id"] == key or user["userPrincipalName"].casefold() == key_folded:
                return user
        raise not_found(key)

    def _transitive_groups_of(self, object_id: str) -> set[str]:
        found: set[str] = set()
        frontier = {object_id}
        while frontier:
            parents = {gid for gid, group in self.groups.items() if frontier & set(group["members"])} - found
            found |= parents
            frontier = parents
        return found

    def _check_member_groups(self, user_key: str, body: dict) -> tuple[int, Any]:
        self._require_group_read()
        user = self._find_user(user_key)
        requested = body.get("groupIds") or []
        if len(requested) > 20:
            raise bad_request("The number of groupIds must not exceed 20.")
        member_of = self._transitive_groups_of(user["id"])
        return 200, {"@odata.context": f"{self.base_url}/$metadata#Collection(Edm.String)",
                     "value": [gid for gid in requested if gid in member_of]}

    def _list_users(self, query: dict) -> tuple[int, Any]:
        self._require_group_read()
        predicate = compile_filter(query.get("$filter"))
        matching = [user for user in self.users.values() if predicate(user)]
        return 200, self._page("users", matching, query)

    # ------------------------------------------------------------------ routing

    def _route(self, method: str, path: str, query: dict, body: Any, behaviour: Optional[str]) -> tuple[int, Any]:
        segments = path.removeprefix("/v1.0/").split("/")
        head, rest = segments[0], segments[1:]
        sp_match = re.fullmatch(r"servicePrincipals(?:\((appId='[^']*')\))?", head)
        app_match = re.fullmatch(r"applications(?:\((appId='[^']*')\))?", head)
        if sp_match:
            return self._route_service_principals(method, sp_match.group(1), rest, query, body, behaviour)
        if app_match:
            return self._route_applications(method, app_match.group(1), rest, query, body, behaviour)
        if head == "users" and method == "GET" and not rest:
            return self._list_users(query)
        if head == "users" and method == "POST" and len(rest) == 2 and rest[1] == "checkMemberGroups":
            return self._check_member_groups(rest[0], body or {})
        raise GraphHttpError(400, "BadRequest", f"Resource not found for the segment '{head}'.")

    def _route_service_principals(self, method, alternate_key, rest, query, body, behaviour):
        key = alternate_key or (rest.pop(0) if rest else None)
        if key is None:
            if method == "GET":
                return self._list_service_principals(query)
            raise GraphHttpError(405, "Request_BadRequest", "Method not allowed.")
        sp = self._sp(key)
        if not rest and method == "GET":
            return self._get_object(sp, "servicePrincipals", query)
        if not rest and method == "PATCH":
            return self._patch_service_principal(sp, body or {}, behaviour)
        if rest == ["addTokenSigningCertificate"] and method == "POST":
            return self._add_token_signing_certificate(sp, body or {}, behaviour)
        raise GraphHttpError(400, "BadRequest", "Unsupported servicePrincipal request.")

    def _route_applications(self, method, alternate_key, rest, query, body, behaviour):
        key = alternate_key or (rest.pop(0) if rest else None)
        if key is None:
            if method == "GET":
                return self._list_applications(query)
            raise GraphHttpError(405, "Request_BadRequest", "Method not allowed.")
        application = self._application(key)
        if not rest and method == "GET":
            return self._get_object(application, "applications", query)
        if not rest and method == "PATCH":
            return self._patch_application(application, body or {}, behaviour)
        raise GraphHttpError(400, "BadRequest", "Unsupported application request.")
