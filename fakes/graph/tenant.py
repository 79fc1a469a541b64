"""The local Entra tenant's state: service principals, applications, users and groups, how Graph serialises
them, and how writes apply (PATCH semantics, eventual consistency, injected misbehaviour).
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import itertools
import re
import threading
import time
import uuid
from typing import Callable, Iterable, Optional
from urllib.parse import urlencode

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from fakes.graph.certificates import (
    make_self_signed_certificate,
    pooled_rsa_key,
    render_federation_metadata,
    sha1_thumbprint,
)
from fakes.graph.model import (
    MAX_PAGE_SIZE,
    READ_APP_PERMISSIONS,
    READ_GROUP_PERMISSIONS,
    SSO_CERT_CN,
    UTC,
    WRITE_ANY_APP_PERMISSIONS,
    WRITE_OWNED_APP_PERMISSION,
    b64,
    bad_request,
    iso,
    not_found,
    parse_iso,
    permission_denied,
    project,
    selected,
)
from fakes.server import LoggedRequest


def selects_key_credentials(entry: LoggedRequest) -> bool:
    """Whether a logged request asked for keyCredentials (``$select``)."""
    return "keyCredentials" in entry.query.get("$select", "")


CREDENTIALS = ("keyCredentials", "passwordCredentials")   # rendered without their secrets

class GraphTenant:
    """An in-memory Entra tenant; ``LocalGraph`` serves it. All state sits behind the server's one lock."""

    _lock: threading.RLock
    base_url: str
    root_url: str
    requests_matching: Callable[..., list[LoggedRequest]]

    def _init_tenant(self, tenant_id: Optional[str], permissions: Iterable[str], page_size: int,
                     metadata_certificates: str, credential_visibility_delay: float, latency: float) -> None:
        if metadata_certificates not in ("all", "active_only"):
            raise ValueError("metadata_certificates must be 'all' or 'active_only'")
        self.tenant_id = tenant_id or str(uuid.uuid4())
        self.permissions = set(permissions)
        self.page_size = page_size
        self.metadata_certificates = metadata_certificates
        self.credential_visibility_delay = credential_visibility_delay
        self.latency = latency
        self.service_principals: dict[str, dict] = {}
        self.applications: dict[str, dict] = {}
        self.owned_object_ids: set[str] = set()
        self.users: dict[str, dict] = {}
        self.groups: dict[str, dict] = {}
        self._private_keys: dict[str, rsa.RSAPrivateKey] = {}

    def metadata_url(self, app_id: str) -> str:
        return f"{self.root_url}/{self.tenant_id}/federationmetadata/2007-06/federationmetadata.xml?appid={app_id}"

    # ------------------------------------------------------------------ seeding

    def add_saml_app(self, display_name: str, *, app_id: Optional[str] = None, sp_id: Optional[str] = None,
                     application_id: Optional[str] = None, bot_is_owner: bool = False,
                     notification_emails: Iterable[str] = (), with_application: bool = True,
                     requires_signed_requests: Optional[bool] = None,
                     identifier_uris: Iterable[str] = ()) -> dict:
        """Create a SAML enterprise app (servicePrincipal + application object); returns the SP JSON."""
        with self._lock:
            app_id = app_id or str(uuid.uuid4())
            sp = {
                "id": sp_id or str(uuid.uuid4()), "appId": app_id, "displayName": display_name,
                "accountEnabled": True, "servicePrincipalType": "Application",
                "preferredSingleSignOnMode": "saml", "preferredTokenSigningKeyThumbprint": None,
                "notificationEmailAddresses": list(notification_emails), "tokenEncryptionKeyId": None,
                "samlSingleSignOnSettings": {"relayState": None},
                "keyCredentials": [], "passwordCredentials": [],
            }
            self.service_principals[sp["id"]] = sp
            if bot_is_owner:
                self.owned_object_ids.add(sp["id"])
            if with_application:
                application = {
                    "id": application_id or str(uuid.uuid4()), "appId": app_id, "displayName": display_name,
                    "identifierUris": list(identifier_uris), "keyCredentials": [], "passwordCredentials": [],
                    "requestSignatureVerification": (
                        None if requires_signed_requests is None else
                        {"isSignedRequestRequired": requires_signed_requests, "allowedWeakAlgorithms": None}),
                }
                self.applications[application["id"]] = application
                if bot_is_owner:
                    self.owned_object_ids.add(application["id"])
            return sp

    def add_non_saml_app(self, display_name: str, sso_mode: Optional[str] = None) -> dict:
        sp = self.add_saml_app(display_name)
        sp["preferredSingleSignOnMode"] = sso_mode
        return sp

    def add_signing_certificate(self, sp_id: str, *, not_before: dt.datetime, not_after: dt.datetime,
                                display_name: str = SSO_CERT_CN, active: bool = False,
                                custom_key_identifier: Optional[bytes] = None,
                                private_key: Optional[rsa.RSAPrivateKey] = None) -> str:
        """Seed a portal-style signing certificate (Sign + Verify + password); returns its thumbprint.

        Seeding reuses pooled RSA keys (thousands of apps in benches); addTokenSigningCertificate
        always generates a fresh key.
        """
        key = private_key or pooled_rsa_key(len(self._private_keys))
        der, key = make_self_signed_certificate(display_name, not_before, not_after, key)
        with self._lock:
            sp = self._sp(sp_id)
            thumbprint = self._store_signing_certificate(sp, der, key, display_name, not_before, not_after,
                                                         custom_key_identifier, visible_at=0.0)
            if active:
                sp["preferredTokenSigningKeyThumbprint"] = thumbprint
            return thumbprint

    def add_verification_certificate(self, application_id: str, der: bytes, display_name: str) -> dict:
        """Seed an application Verify certificate (like the portal's verification certificate upload)."""
        certificate = x509.load_der_x509_certificate(der)
        entry = {
            "keyId": str(uuid.uuid4()), "type": "AsymmetricX509Cert", "usage": "Verify",
            "displayName": display_name, "customKeyIdentifier": b64(hashlib.sha1(der).digest()),
            "startDateTime": iso(certificate.not_valid_before_utc), "endDateTime": iso(certificate.not_valid_after_utc),
            "key": b64(der), "_visibleAt": 0.0,
        }
        with self._lock:
            self._application(application_id)["keyCredentials"].append(entry)
        return entry

    def add_encryption_certificate(self, sp_id: str, der: bytes, display_name: str) -> str:
        """Seed a token encryption key on the SP and point tokenEncryptionKeyId at it; returns the keyId."""
        certificate = x509.load_der_x509_certificate(der)
        key_id = str(uuid.uuid4())
        with self._lock:
            sp = self._sp(sp_id)
            sp["keyCredentials"].append({
                "keyId": key_id, "type": "AsymmetricX509Cert", "usage": "Encrypt", "displayName": display_name,
                "customKeyIdentifier": b64(hashlib.sha1(der).digest()),
                "startDateTime": iso(certificate.not_valid_before_utc),
                "endDateTime": iso(certificate.not_valid_after_utc), "key": b64(der), "_visibleAt": 0.0})
            sp["tokenEncryptionKeyId"] = key_id
        return key_id

    def add_client_secret(self, application_id: str, display_name: str, end: dt.datetime,
                          start: Optional[dt.datetime] = None) -> dict:
        entry = {"keyId": str(uuid.uuid4()), "displayName": display_name, "hint": "abc",
                 "customKeyIdentifier": None, "secretText": None,
                 "startDateTime": iso(start or dt.datetime.now(UTC)), "endDateTime": iso(end)}
        with self._lock:
            self._application(application_id)["passwordCredentials"].append(entry)
        return entry

    def add_user(self, user_principal_name: str, mail: Optional[str] = None, user_id: Optional[str] = None) -> dict:
        user = {"id": user_id or str(uuid.uuid4()), "userPrincipalName": user_principal_name,
                "mail": mail or user_principal_name, "displayName": user_principal_name.split("@")[0]}
        with self._lock:
            self.users[user["id"]] = user
        return user

    def add_group(self, display_name: str, member_ids: Iterable[str] = (), group_id: Optional[str] = None) -> dict:
        group = {"id": group_id or str(uuid.uuid4()), "displayName": display_name, "members": list(member_ids)}
        with self._lock:
            self.groups[group["id"]] = group
        return group


    # ------------------------------------------------------------------ test helpers

    def write_requests(self) -> list[LoggedRequest]:
        """Logged Graph writes (checkMemberGroups is a POST that only reads)."""
        return [entry for entry in self.requests_matching() if entry.method in ("POST", "PATCH", "PUT", "DELETE")
                and entry.path.startswith("/v1.0/") and not entry.path.endswith("/checkMemberGroups")]

    def key_selects(self) -> list[LoggedRequest]:
        """GETs with ``$select=...keyCredentials...`` (Graph limits these to 150/min/tenant on SPs)."""
        return [entry for entry in self.requests_matching("GET") if selects_key_credentials(entry)]

    @property
    def select_key_credentials_count(self) -> int:
        return len(self.key_selects())

    @property
    def single_object_key_selects(self) -> int:
        """The $select=keyCredentials GETs on ONE object: the only ones that return key material."""
        return sum(1 for entry in self.key_selects()
                   if not re.search(r"/(servicePrincipals|applications)$", entry.path))

    def snapshot(self) -> tuple[list[dict], list[dict]]:
        """Deep copies of the service principals and applications, for views that must not call Graph."""
        with self._lock:
            return (copy.deepcopy(list(self.service_principals.values())),
                    copy.deepcopy(list(self.applications.values())))

    def verify_thumbprints(self, sp_id: str) -> list[str]:
        """Thumbprints of the SP's Verify keys computed from their DER (ground truth for tests)."""
        with self._lock:
            return [sha1_thumbprint(base64.b64decode(kc["key"])) for kc in self._sp(sp_id)["keyCredentials"]
                    if kc["usage"] == "Verify" and kc.get("key")]

    # ------------------------------------------------------------------ internals: lookups

    def _sp(self, key: str) -> dict:
        found = self._lookup(self.service_principals, key)
        if found is None:
            raise not_found(key)
        return found

    def _application(self, key: str) -> dict:
        found = self._lookup(self.applications, key)
        if found is None:
            raise not_found(key)
        return found

    @staticmethod
    def _lookup(collection: dict, key: str) -> Optional[dict]:
        """``key`` is an object id or ``appId='...'`` (alternate key)."""
        if match := re.fullmatch(r"appId='([^']*)'", key):
            return next((obj for obj in collection.values() if obj["appId"] == match.group(1)), None)
        return collection.get(key)

    def _store_signing_certificate(self, sp: dict, der: bytes, key: rsa.RSAPrivateKey, display_name: str,
                                   not_before: dt.datetime, not_after: dt.datetime,
                                   custom_key_identifier: Optional[bytes], visible_at: float) -> str:
        thumbprint = sha1_thumbprint(der)
        cki = b64(custom_key_identifier if custom_key_identifier is not None else hashlib.sha1(der).digest())
        sign_key_id, verify_key_id = str(uuid.uuid4()), str(uuid.uuid4())
        common = {"displayName": display_name, "customKeyIdentifier": cki,
                  "startDateTime": iso(not_before), "endDateTime": iso(not_after), "_visibleAt": visible_at}
        # The Sign entry stands for the private key; its stored "key" is never served.
        sp["keyCredentials"].append({"keyId": sign_key_id, "type": "X509CertAndPassword", "usage": "Sign",
                                     "key": b64(der), **common})
        sp["keyCredentials"].append({"keyId": verify_key_id, "type": "AsymmetricX509Cert", "usage": "Verify",
                                     "key": b64(der), **common})
        sp["passwordCredentials"].append({"keyId": sign_key_id, "hint": None, "secretText": None, **common})
        self._private_keys[thumbprint] = key
        return thumbprint

    # ------------------------------------------------------------------ internals: permissions

    def _require_read(self) -> None:
        if not self.permissions & READ_APP_PERMISSIONS:
            raise permission_denied()

    def _require_write(self, *object_ids: str) -> None:
        if self.permissions & WRITE_ANY_APP_PERMISSIONS:
            return
        owns_all = all(object_id in self.owned_object_ids for object_id in object_ids)
        if WRITE_OWNED_APP_PERMISSION in self.permissions and owns_all:
            return
        raise permission_denied()

    def _require_group_read(self) -> None:
        if not self.permissions & READ_GROUP_PERMISSIONS:
            raise permission_denied()

    # ------------------------------------------------------------------ internals: serialisation

    def _visible(self, entries: list[dict], now: float | None = None) -> list[dict]:
        now = time.monotonic() if now is None else now
        return [entry for entry in entries if entry.get("_visibleAt", 0.0) <= now]

    def _public_credentials(self, entries: list[dict], with_keys: bool, now: float | None = None) -> list[dict]:
        public = []
        for entry in self._visible(entries, now):
            item = {name: value for name, value in entry.items() if name[0] != "_"}
            if "key" in item and not (with_keys and item.get("usage") != "Sign"):
                item["key"] = None
            if "secretText" in item:
                item["secretText"] = None
            public.append(item)
        return public

    def _render(self, obj: dict, query: dict, single: bool) -> dict:
        return self._renderer(query, single)(obj)

    def _renderer(self, query: dict, single: bool) -> Callable[[dict], dict]:
        """How objects look in the answer to ``query``: $select applied, secrets and hidden entries left out.

        No copy: the payload is encoded under the tenant lock (local.py). Copying, and parsing $select once per
        object, cost the local Graph ~15 ms of its one interpreter per 999-app page, time real Graph does not
        spend (the client's benchmark measures the client)."""
        select = selected(query)
        with_keys = single and select is not None and "keyCredentials" in select
        now = time.monotonic()

        def render(obj: dict) -> dict:
            shown = project(obj, select)
            rendered = {name: value for name, value in shown.items() if name not in CREDENTIALS}
            if "keyCredentials" in obj:
                for name, with_key in (("keyCredentials", with_keys), ("passwordCredentials", False)):
                    if name in shown:
                        rendered[name] = self._public_credentials(obj[name], with_key, now)
            return rendered
        return render

    def _page(self, collection_name: str, objects: Iterable[dict], query: dict) -> dict:
        """One page of the matching ``objects`` (an iterable: only the page and one more are looked at)."""
        top = min(int(query.get("$top", self.page_size)), MAX_PAGE_SIZE)
        offset = int(base64.urlsafe_b64decode(query["$skiptoken"]).decode()) if "$skiptoken" in query else 0
        page = list(itertools.islice(objects, offset, offset + top + 1))
        render = self._renderer(query, single=False)
        body = {"@odata.context": f"{self.base_url}/$metadata#{collection_name}",
                "value": [render(obj) for obj in page[:top]]}
        if len(page) > top:
            next_query = {name: value for name, value in query.items() if name != "$skiptoken"}
            next_query["$skiptoken"] = base64.urlsafe_b64encode(str(offset + top).encode()).decode()
            body["@odata.nextLink"] = f"{self.base_url}/{collection_name}?{urlencode(next_query)}"
        return body

    # ------------------------------------------------------------------ internals: writes

    def _apply_key_credentials(self, obj: dict, submitted: list[dict]) -> None:
        """PATCH replaces the collection; echoed entries with a null key keep their stored key."""
        stored = {entry["keyId"]: entry for entry in obj["keyCredentials"]}
        replacement = []
        for item in submitted:
            previous = stored.get(item.get("keyId") or "")
            if previous is not None:
                merged = {**previous, **{k: v for k, v in item.items() if v is not None}}
                if not item.get("key"):
                    merged["key"] = previous.get("key")
                replacement.append(merged)
            else:
                replacement.append(self._new_public_key(item))
        # Keys the client cannot see yet (eventual consistency) are not lost by its PATCH.
        now = time.monotonic()
        hidden = [entry for entry in obj["keyCredentials"] if entry.get("_visibleAt", 0.0) > now]
        obj["keyCredentials"] = replacement + [entry for entry in hidden if entry not in replacement]

    def _new_public_key(self, item: dict) -> dict:
        if item.get("usage") not in ("Verify", "Encrypt") or item.get("type") != "AsymmetricX509Cert":
            raise bad_request('The value for the property "usage" in one of your credentials is invalid. '
                               "Acceptable values are Sign, Verify.")
        if not item.get("key"):
            raise bad_request("Key credential's key must not be empty.")
        try:
            certificate = x509.load_der_x509_certificate(base64.b64decode(item["key"]))
        except ValueError as error:
            raise bad_request("Key credential's key is not a valid certificate.") from error
        return {
            "keyId": item.get("keyId") or str(uuid.uuid4()), "type": item["type"], "usage": item["usage"],
            "displayName": item.get("displayName"), "customKeyIdentifier": item.get("customKeyIdentifier"),
            "startDateTime": item.get("startDateTime") or iso(certificate.not_valid_before_utc),
            "endDateTime": item.get("endDateTime") or iso(certificate.not_valid_after_utc),
            "key": item["key"], "_visibleAt": time.monotonic() + self.credential_visibility_delay,
        }

    @staticmethod
    def _apply_password_credentials(obj: dict, submitted: list[dict]) -> None:
        stored = {entry["keyId"]: entry for entry in obj["passwordCredentials"]}
        if any((item.get("keyId") or "") not in stored for item in submitted):
            raise bad_request("New password credentials must be generated using service actions.")
        obj["passwordCredentials"] = [stored[item["keyId"]] for item in submitted]

    def _apply_patch(self, obj: dict, body: dict, allowed: set[str], behaviour: Optional[str]) -> None:
        if behaviour == "ignore_write":
            return
        lost_key = obj["keyCredentials"][0] if behaviour == "drop_existing_key" and obj["keyCredentials"] else None
        for name, value in body.items():
            if name == "@odata.type":
                continue
            if name not in allowed:
                raise bad_request(f"Property '{name}' is read-only or not supported by this fake.")
            if name == "keyCredentials":
                self._apply_key_credentials(obj, value or [])
            elif name == "passwordCredentials":
                self._apply_password_credentials(obj, value or [])
            elif name == "requestSignatureVerification":
                obj[name] = {**(obj.get(name) or {}), **(value or {})}
            else:
                obj[name] = value
        if lost_key is not None:
            obj["keyCredentials"] = [entry for entry in obj["keyCredentials"] if entry["keyId"] != lost_key["keyId"]]
        if behaviour == "drop_existing_password":
            obj["passwordCredentials"] = obj["passwordCredentials"][1:]


    # ------------------------------------------------------------------ federation metadata

    def federation_metadata(self, app_id: str) -> Optional[str]:
        """The per-app SAML metadata built from the current state (None for an unknown app)."""
        with self._lock:
            sp = self._lookup(self.service_principals, f"appId='{app_id}'")
            if sp is None:
                return None
            certificates = self._metadata_certificates(sp)
        return render_federation_metadata(self.tenant_id, certificates)

    def _metadata_certificates(self, sp: dict) -> list[str]:
        """Base64 DER of the published signing certs, the active (preferred) one first."""
        now = dt.datetime.now(UTC)
        active = (sp.get("preferredTokenSigningKeyThumbprint") or "").upper()
        verify_keys = [kc for kc in self._visible(sp["keyCredentials"])
                       if kc["usage"] == "Verify" and kc.get("key") and kc["keyId"] != sp.get("tokenEncryptionKeyId")
                       and parse_iso(kc["endDateTime"]) > now]
        by_thumbprint = {sha1_thumbprint(base64.b64decode(kc["key"])): kc["key"] for kc in verify_keys}
        ordered = sorted(by_thumbprint.items(), key=lambda item: item[0] != active)
        if self.metadata_certificates == "active_only":
            ordered = [item for item in ordered if item[0] == active]
        return [key for _thumbprint, key in ordered]
