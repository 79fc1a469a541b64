"""Loopback Microsoft Graph v1.0 for tests and demos.

A real HTTP server on 127.0.0.1 that the real msgraph-sdk talks to (``base_url`` like
``http://127.0.0.1:PORT/v1.0``). It implements the slice of Graph the bot uses, with the
semantics documented in the Graph reference (see docs in ``/work/shared/reference``):

* ``keyCredentials[].key`` is only returned on a SINGLE object GET whose ``$select``
  names ``keyCredentials``; lists and unselected GETs return ``"key": null``. The key of
  ``Sign`` entries is never returned (UNCONFIRMED in the notes; we chose the safe side).
* ``$select``, ``$filter`` (``eq``, ``in``, ``startswith`` joined by ``and``), ``$top`` and
  ``@odata.nextLink`` paging (default page 100, ``$top`` capped at 999 like Graph).
* Alternate keys ``/servicePrincipals(appId='..')`` and ``/applications(appId='..')``.
* PATCH of ``keyCredentials`` replaces the collection; echoed entries whose ``key`` is
  null keep their stored key; ``passwordCredentials`` may only shrink (new ones give
  ``Request_BadRequest``, as Graph does).
* ``addTokenSigningCertificate`` creates a Sign + Verify key pair and a passwordCredential
  sharing one customKeyIdentifier (= SHA-1 thumbprint) from a real RSA-2048 certificate.
* ``403 Authorization_RequestDenied`` (the body shape of the recorded Azure CLI cassette)
  when the scenario's permissions don't cover a call.
* Injectable faults (status + Retry-After, silently ignored or lossy writes), a delay
  before new credentials become visible, a request log and per-request latency.
* Per-app federation metadata at ``/{tenant}/federationmetadata/2007-06/federationmetadata.xml?appid=``.
  Which certificates it publishes is a scenario option (``metadata_certificates``):
  ``all`` (default: every unexpired signing cert, the active one first, matching the public
  rollover capture cited in the notes) or ``active_only``. Real behaviour is UNCONFIRMED.
  The fake metadata is not signed (no ds:Signature).

Run it by hand: ``python local_graph.py --scenario scenarios/demo-tenant.yaml --port 8089``.
"""
from __future__ import annotations

import argparse
import base64
import copy
import datetime as dt
import hashlib
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Optional
from urllib.parse import urlencode
from xml.sax.saxutils import escape as xml_escape

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from flask import Flask, Response, request
from werkzeug.serving import WSGIRequestHandler, make_server

UTC = dt.timezone.utc
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 999
MAX_TOKEN_SIGNING_YEARS = 3

READ_APP_PERMISSIONS = frozenset({
    "Application.Read.All", "Application.ReadWrite.OwnedBy", "Application.ReadWrite.All",
    "Directory.Read.All", "Directory.ReadWrite.All",
})
WRITE_ANY_APP_PERMISSIONS = frozenset({"Application.ReadWrite.All", "Directory.ReadWrite.All"})
WRITE_OWNED_APP_PERMISSION = "Application.ReadWrite.OwnedBy"
READ_GROUP_PERMISSIONS = frozenset({
    "GroupMember.Read.All", "Group.Read.All", "Directory.Read.All", "Directory.ReadWrite.All",
})
DEFAULT_PERMISSIONS = ("Application.ReadWrite.All", "GroupMember.Read.All")

SSO_CERT_CN = "CN=Microsoft Azure Federated SSO Certificate"


# --------------------------------------------------------------------------- certificates

_KEY_POOL: list[rsa.RSAPrivateKey] = []
_KEY_POOL_LOCK = threading.Lock()


def pooled_rsa_key(index: int) -> rsa.RSAPrivateKey:
    """A reusable RSA-2048 key; seeding thousands of apps must not generate thousands of keys."""
    with _KEY_POOL_LOCK:
        while len(_KEY_POOL) < 4:
            _KEY_POOL.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
        return _KEY_POOL[index % len(_KEY_POOL)]


def make_self_signed_certificate(subject_cn: str, not_before: dt.datetime, not_after: dt.datetime,
                                 private_key: Optional[rsa.RSAPrivateKey] = None
                                 ) -> tuple[bytes, rsa.RSAPrivateKey]:
    """Return (DER, private key) of a self-signed RSA certificate; a fresh 2048-bit key by default."""
    key = private_key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn.removeprefix("CN="))])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.DER), key


def sha1_thumbprint(der: bytes) -> str:
    """Graph's certificate thumbprint: SHA-1 of the DER, uppercase hex."""
    return hashlib.sha1(der).hexdigest().upper()


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_iso(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --------------------------------------------------------------------------- errors


class GraphHttpError(Exception):
    """Raised inside a handler; becomes a Graph-shaped JSON error response."""

    def __init__(self, status: int, code: str, message: str, headers: Optional[dict] = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


def _error_body(code: str, message: str) -> dict:
    """The exact shape of the recorded Graph error (azure-cli cassette)."""
    request_id = str(uuid.uuid4())
    return {"error": {"code": code, "message": message, "innerError": {
        "date": dt.datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": request_id, "client-request-id": request_id}}}


def _permission_denied() -> GraphHttpError:
    return GraphHttpError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")


def _not_found(resource: str) -> GraphHttpError:
    return GraphHttpError(404, "Request_ResourceNotFound",
                          f"Resource '{resource}' does not exist or one of its queried reference-property "
                          "objects are not present.")


def _bad_request(message: str) -> GraphHttpError:
    return GraphHttpError(400, "Request_BadRequest", message)


class _QuietRequestHandler(WSGIRequestHandler):
    """No access log on stderr (tests); the request log in LocalGraph records everything."""

    def log_request(self, *args, **kwargs) -> None:
        return None


# --------------------------------------------------------------------------- faults and log


@dataclass
class Fault:
    """A scripted misbehaviour for ``count`` matching requests.

    ``status`` answers with that error (``retry_after`` adds the header); ``behaviour`` instead
    lets the request "succeed" while ``"ignore_write"`` skips the change,
    ``"drop_existing_key"`` loses the first previously stored keyCredential and
    ``"drop_existing_password"`` loses the first passwordCredential the write kept.
    """
    method: str
    path_pattern: str
    count: int = 1
    status: Optional[int] = None
    retry_after: Optional[str] = None
    behaviour: Optional[str] = None

    def matches(self, method: str, path: str) -> bool:
        return self.count > 0 and self.method.upper() == method and re.search(self.path_pattern, path) is not None


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    query: dict
    body: Any
    status: int

    @property
    def selects_key_credentials(self) -> bool:
        return "keyCredentials" in self.query.get("$select", "")


# --------------------------------------------------------------------------- query helpers

_FILTER_EQ = re.compile(r"^(\w+)\s+eq\s+'((?:[^']|'')*)'$", re.IGNORECASE)
_FILTER_IN = re.compile(r"^(\w+)\s+in\s+\((.*)\)$", re.IGNORECASE)
_FILTER_STARTSWITH = re.compile(r"^startswith\(\s*(\w+)\s*,\s*'((?:[^']|'')*)'\s*\)$", re.IGNORECASE)
_QUOTED = re.compile(r"'((?:[^']|'')*)'")


def _unescape(value: str) -> str:
    return value.replace("''", "'")


def compile_filter(expression: Optional[str]) -> Callable[[dict], bool]:
    """A predicate for the small OData subset the bot uses; anything else is a 400 like Graph's."""
    if not expression:
        return lambda _obj: True
    predicates = [_compile_clause(clause.strip()) for clause in re.split(r"\s+and\s+", expression)]
    return lambda obj: all(predicate(obj) for predicate in predicates)


def _compile_clause(clause: str) -> Callable[[dict], bool]:
    # Directory string comparisons are case-insensitive.
    if match := _FILTER_EQ.match(clause):
        prop, value = match.group(1), _unescape(match.group(2)).casefold()
        return lambda obj: str(obj.get(prop) or "").casefold() == value
    if match := _FILTER_IN.match(clause):
        prop = match.group(1)
        values = {_unescape(v).casefold() for v in _QUOTED.findall(match.group(2))}
        return lambda obj: str(obj.get(prop) or "").casefold() in values
    if match := _FILTER_STARTSWITH.match(clause):
        prop, prefix = match.group(1), _unescape(match.group(2)).casefold()
        return lambda obj: str(obj.get(prop) or "").casefold().startswith(prefix)
    raise GraphHttpError(400, "Request_UnsupportedQuery", f"Unsupported or invalid query filter clause: {clause}")


def _selected(query: dict) -> Optional[list[str]]:
    raw = query.get("$select")
    return [name.strip() for name in raw.split(",") if name.strip()] if raw else None


def _project(obj: dict, select: Optional[list[str]]) -> dict:
    if select is None:
        return dict(obj)
    return {"id": obj["id"], **{name: obj.get(name) for name in select if name != "id"}}


# --------------------------------------------------------------------------- the tenant state


class LocalGraph:
    """In-memory tenant + HTTP server. Use as a context manager or call ``start``/``stop``."""

    def __init__(self, tenant_id: Optional[str] = None, permissions: Iterable[str] = DEFAULT_PERMISSIONS,
                 page_size: int = DEFAULT_PAGE_SIZE, metadata_certificates: str = "all",
                 credential_visibility_delay: float = 0.0, latency: float = 0.0):
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
        self.faults: list[Fault] = []
        self.request_log: list[LoggedRequest] = []
        self._private_keys: dict[str, rsa.RSAPrivateKey] = {}
        self._lock = threading.RLock()
        self._server = None
        self._thread: Optional[threading.Thread] = None
        self.app = self._build_flask_app()

    # ------------------------------------------------------------------ lifecycle

    def start(self, port: int = 0, quiet: bool = True) -> "LocalGraph":
        handler = _QuietRequestHandler if quiet else WSGIRequestHandler
        self._server = make_server("127.0.0.1", port, self.app, threaded=True, request_handler=handler)
        # A short poll interval makes stop() quick (shutdown waits for the serve loop to notice).
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="local-graph", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self) -> "LocalGraph":
        return self.start() if self._server is None else self

    def __exit__(self, *_exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._server.server_port

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1.0"

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
            "displayName": display_name, "customKeyIdentifier": _b64(hashlib.sha1(der).digest()),
            "startDateTime": _iso(certificate.not_valid_before_utc), "endDateTime": _iso(certificate.not_valid_after_utc),
            "key": _b64(der), "_visibleAt": 0.0,
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
                "customKeyIdentifier": _b64(hashlib.sha1(der).digest()),
                "startDateTime": _iso(certificate.not_valid_before_utc),
                "endDateTime": _iso(certificate.not_valid_after_utc), "key": _b64(der), "_visibleAt": 0.0})
            sp["tokenEncryptionKeyId"] = key_id
        return key_id

    def add_client_secret(self, application_id: str, display_name: str, end: dt.datetime,
                          start: Optional[dt.datetime] = None) -> dict:
        entry = {"keyId": str(uuid.uuid4()), "displayName": display_name, "hint": "abc",
                 "customKeyIdentifier": None, "secretText": None,
                 "startDateTime": _iso(start or dt.datetime.now(UTC)), "endDateTime": _iso(end)}
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

    def add_fault(self, method: str, path_pattern: str, *, count: int = 1, status: Optional[int] = None,
                  retry_after: Optional[str] = None, behaviour: Optional[str] = None) -> Fault:
        fault = Fault(method, path_pattern, count, status, retry_after, behaviour)
        with self._lock:
            self.faults.append(fault)
        return fault

    # ------------------------------------------------------------------ test helpers

    def requests_matching(self, method: Optional[str] = None, path_pattern: Optional[str] = None) -> list[LoggedRequest]:
        with self._lock:
            log = list(self.request_log)
        return [entry for entry in log
                if (method is None or entry.method == method)
                and (path_pattern is None or re.search(path_pattern, entry.path))]

    def write_requests(self) -> list[LoggedRequest]:
        return [entry for entry in self.requests_matching() if entry.method in ("POST", "PATCH", "PUT", "DELETE")
                and not entry.path.endswith("/checkMemberGroups")]

    @property
    def select_key_credentials_count(self) -> int:
        """GETs with ``$select=...keyCredentials...`` (Graph limits these to 150/min/tenant on SPs)."""
        return sum(1 for entry in self.requests_matching("GET") if entry.selects_key_credentials)

    @property
    def single_object_key_selects(self) -> int:
        """The $select=keyCredentials GETs on ONE object: the only ones that return key material."""
        return sum(1 for entry in self.requests_matching("GET") if entry.selects_key_credentials
                   and not re.search(r"/(servicePrincipals|applications)$", entry.path))

    def clear_log(self) -> None:
        with self._lock:
            self.request_log.clear()

    def verify_thumbprints(self, sp_id: str) -> list[str]:
        """Thumbprints of the SP's Verify keys computed from their DER (ground truth for tests)."""
        with self._lock:
            return [sha1_thumbprint(base64.b64decode(kc["key"])) for kc in self._sp(sp_id)["keyCredentials"]
                    if kc["usage"] == "Verify" and kc.get("key")]

    # ------------------------------------------------------------------ internals: lookups

    def _sp(self, key: str) -> dict:
        found = self._lookup(self.service_principals, key)
        if found is None:
            raise _not_found(key)
        return found

    def _application(self, key: str) -> dict:
        found = self._lookup(self.applications, key)
        if found is None:
            raise _not_found(key)
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
        cki = _b64(custom_key_identifier if custom_key_identifier is not None else hashlib.sha1(der).digest())
        sign_key_id, verify_key_id = str(uuid.uuid4()), str(uuid.uuid4())
        common = {"displayName": display_name, "customKeyIdentifier": cki,
                  "startDateTime": _iso(not_before), "endDateTime": _iso(not_after), "_visibleAt": visible_at}
        # The Sign entry stands for the private key; its stored "key" is never served.
        sp["keyCredentials"].append({"keyId": sign_key_id, "type": "X509CertAndPassword", "usage": "Sign",
                                     "key": _b64(der), **common})
        sp["keyCredentials"].append({"keyId": verify_key_id, "type": "AsymmetricX509Cert", "usage": "Verify",
                                     "key": _b64(der), **common})
        sp["passwordCredentials"].append({"keyId": sign_key_id, "hint": None, "secretText": None, **common})
        self._private_keys[thumbprint] = key
        return thumbprint

    # ------------------------------------------------------------------ internals: permissions

    def _require_read(self) -> None:
        if not self.permissions & READ_APP_PERMISSIONS:
            raise _permission_denied()

    def _require_write(self, *object_ids: str) -> None:
        if self.permissions & WRITE_ANY_APP_PERMISSIONS:
            return
        owns_all = all(object_id in self.owned_object_ids for object_id in object_ids)
        if WRITE_OWNED_APP_PERMISSION in self.permissions and owns_all:
            return
        raise _permission_denied()

    def _require_group_read(self) -> None:
        if not self.permissions & READ_GROUP_PERMISSIONS:
            raise _permission_denied()

    # ------------------------------------------------------------------ internals: serialisation

    def _visible(self, entries: list[dict]) -> list[dict]:
        now = time.monotonic()
        return [entry for entry in entries if entry.get("_visibleAt", 0.0) <= now]

    def _public_credentials(self, entries: list[dict], with_keys: bool) -> list[dict]:
        public = []
        for entry in self._visible(entries):
            item = {name: value for name, value in entry.items() if not name.startswith("_")}
            if "key" in item and not (with_keys and item.get("usage") != "Sign"):
                item["key"] = None
            if "secretText" in item:
                item["secretText"] = None
            public.append(item)
        return public

    def _render(self, obj: dict, query: dict, single: bool) -> dict:
        select = _selected(query)
        with_keys = single and select is not None and "keyCredentials" in select
        rendered = copy.deepcopy(obj)
        if "keyCredentials" in obj:
            rendered["keyCredentials"] = self._public_credentials(obj["keyCredentials"], with_keys)
            rendered["passwordCredentials"] = self._public_credentials(obj["passwordCredentials"], False)
        return _project(rendered, select)

    def _page(self, collection_name: str, objects: list[dict], query: dict) -> dict:
        top = min(int(query.get("$top", self.page_size)), MAX_PAGE_SIZE)
        offset = int(base64.urlsafe_b64decode(query["$skiptoken"]).decode()) if "$skiptoken" in query else 0
        page = objects[offset:offset + top]
        body = {"@odata.context": f"{self.base_url}/$metadata#{collection_name}",
                "value": [self._render(obj, query, single=False) for obj in page]}
        if offset + top < len(objects):
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
            raise _bad_request('The value for the property "usage" in one of your credentials is invalid. '
                               "Acceptable values are Sign, Verify.")
        if not item.get("key"):
            raise _bad_request("Key credential's key must not be empty.")
        try:
            certificate = x509.load_der_x509_certificate(base64.b64decode(item["key"]))
        except ValueError as error:
            raise _bad_request("Key credential's key is not a valid certificate.") from error
        return {
            "keyId": item.get("keyId") or str(uuid.uuid4()), "type": item["type"], "usage": item["usage"],
            "displayName": item.get("displayName"), "customKeyIdentifier": item.get("customKeyIdentifier"),
            "startDateTime": item.get("startDateTime") or _iso(certificate.not_valid_before_utc),
            "endDateTime": item.get("endDateTime") or _iso(certificate.not_valid_after_utc),
            "key": item["key"], "_visibleAt": time.monotonic() + self.credential_visibility_delay,
        }

    @staticmethod
    def _apply_password_credentials(obj: dict, submitted: list[dict]) -> None:
        stored = {entry["keyId"]: entry for entry in obj["passwordCredentials"]}
        if any((item.get("keyId") or "") not in stored for item in submitted):
            raise _bad_request("New password credentials must be generated using service actions.")
        obj["passwordCredentials"] = [stored[item["keyId"]] for item in submitted]

    def _apply_patch(self, obj: dict, body: dict, allowed: set[str], behaviour: Optional[str]) -> None:
        if behaviour == "ignore_write":
            return
        lost_key = obj["keyCredentials"][0] if behaviour == "drop_existing_key" and obj["keyCredentials"] else None
        for name, value in body.items():
            if name == "@odata.type":
                continue
            if name not in allowed:
                raise _bad_request(f"Property '{name}' is read-only or not supported by this fake.")
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

    # ------------------------------------------------------------------ handlers

    def _list_service_principals(self, query: dict) -> tuple[int, Any]:
        self._require_read()
        predicate = compile_filter(query.get("$filter"))
        matching = [sp for sp in self.service_principals.values() if predicate(sp)]
        return 200, self._page("servicePrincipals", matching, query)

    def _list_applications(self, query: dict) -> tuple[int, Any]:
        self._require_read()
        predicate = compile_filter(query.get("$filter"))
        matching = [app for app in self.applications.values() if predicate(app)]
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
            raise _bad_request("The displayName must start with 'CN='.")
        now = dt.datetime.now(UTC).replace(microsecond=0)
        latest_end = now.replace(year=now.year + MAX_TOKEN_SIGNING_YEARS)
        end = _parse_iso(body["endDateTime"]) if body.get("endDateTime") else latest_end
        if end > latest_end + dt.timedelta(days=1) or end <= now:
            raise _bad_request("The endDateTime must be in the future and at most 3 years from now.")
        der, key = make_self_signed_certificate(display_name, now, end)
        thumbprint = sha1_thumbprint(der)
        if behaviour != "ignore_write":
            self._store_signing_certificate(sp, der, key, display_name, now, end, None,
                                            visible_at=time.monotonic() + self.credential_visibility_delay)
        sign_entry = next((kc for kc in reversed(sp["keyCredentials"]) if kc["usage"] == "Sign"), None)
        return 200, {
            "@odata.context": f"{self.base_url}/$metadata#microsoft.graph.selfSignedCertificate",
            "customKeyIdentifier": _b64(hashlib.sha1(der).digest()), "displayName": display_name,
            "endDateTime": _iso(end), "key": _b64(der),
            # Graph returns the Sign key's keyId here (TF works around it); so do we.
            "keyId": sign_entry["keyId"] if sign_entry else str(uuid.uuid4()),
            "startDateTime": _iso(now), "thumbprint": thumbprint, "type": "AsymmetricX509Cert", "usage": "Verify",
        }

    def _find_user(self, key: str) -> dict:
        key_folded = key.casefold()
        for user in self.users.values():
            if user["id"] == key or user["userPrincipalName"].casefold() == key_folded:
                return user
        raise _not_found(key)

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
            raise _bad_request("The number of groupIds must not exceed 20.")
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

    def _take_fault(self, method: str, path: str) -> Optional[Fault]:
        for fault in self.faults:
            if fault.matches(method, path):
                fault.count -= 1
                return fault
        return None

    def _handle_graph(self, path: str) -> Response:
        method = request.method
        query = {name: value for name, value in request.args.items()}
        body = request.get_json(silent=True) if request.data else None
        if self.latency:
            time.sleep(self.latency)
        with self._lock:
            status, payload, headers = self._dispatch(method, path, query, body)
            self.request_log.append(LoggedRequest(method, path, query, body, status))
        if payload is None:
            return Response(status=status, headers=headers)
        return Response(json.dumps(payload), status=status, headers=headers,
                        content_type="application/json;odata.metadata=minimal;charset=utf-8")

    def _dispatch(self, method: str, path: str, query: dict, body: Any) -> tuple[int, Any, dict]:
        headers = {"request-id": str(uuid.uuid4())}
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            return 401, _error_body("InvalidAuthenticationToken", "Access token is empty."), headers
        fault = self._take_fault(method, path)
        if fault is not None and fault.status is not None:
            if fault.retry_after is not None:
                headers["Retry-After"] = fault.retry_after
            code = "TooManyRequests" if fault.status == 429 else "ServiceUnavailable"
            return fault.status, _error_body(code, "Please retry again later."), headers
        try:
            status, payload = self._route(method, path, query, body, fault.behaviour if fault else None)
        except GraphHttpError as error:
            headers.update(error.headers)
            return error.status, _error_body(error.code, error.message), headers
        return status, payload, headers

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
                       and _parse_iso(kc["endDateTime"]) > now]
        by_thumbprint = {sha1_thumbprint(base64.b64decode(kc["key"])): kc["key"] for kc in verify_keys}
        ordered = sorted(by_thumbprint.items(), key=lambda item: item[0] != active)
        if self.metadata_certificates == "active_only":
            ordered = [item for item in ordered if item[0] == active]
        return [key for _thumbprint, key in ordered]

    # ------------------------------------------------------------------ flask

    def _build_flask_app(self) -> Flask:
        app = Flask("local_graph")

        @app.route("/v1.0/<path:rest>", methods=["GET", "POST", "PATCH", "PUT", "DELETE"])
        def graph(rest: str):
            return self._handle_graph("/v1.0/" + rest)

        @app.route("/<tenant>/federationmetadata/2007-06/federationmetadata.xml")
        def metadata(tenant: str):
            xml = self.federation_metadata(request.args.get("appid", "")) if tenant == self.tenant_id else None
            if xml is None:
                return Response("Unknown tenant or application.", status=404, content_type="text/plain")
            return Response(xml, content_type="application/samlmetadata+xml")

        return app

    # ------------------------------------------------------------------ scenarios

    @classmethod
    def from_scenario(cls, path: str | Path, now: Optional[dt.datetime] = None, **overrides) -> "LocalGraph":
        """Build a tenant from a YAML/JSON scenario with relative dates (see scenarios/demo-tenant.yaml)."""
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        return cls.from_scenario_data(data, now=now, **overrides)

    @classmethod
    def from_scenario_data(cls, data: dict, now: Optional[dt.datetime] = None, **overrides) -> "LocalGraph":
        now = (now or dt.datetime.now(UTC)).replace(microsecond=0)
        settings = {
            "tenant_id": data.get("tenant_id"),
            "permissions": data.get("permissions", DEFAULT_PERMISSIONS),
            "page_size": data.get("page_size", DEFAULT_PAGE_SIZE),
            "metadata_certificates": data.get("metadata_certificates", "all"),
            "credential_visibility_delay": data.get("credential_visibility_delay_seconds", 0.0),
        }
        graph = cls(**{**settings, **overrides})
        for spec in data.get("apps", []):
            _seed_app(graph, spec, now)
        users_by_name = {}
        for spec in data.get("users", []):
            user = graph.add_user(spec["user_principal_name"], spec.get("mail"), spec.get("id"))
            users_by_name[user["userPrincipalName"].casefold()] = user["id"]
        for spec in data.get("groups", []):
            members = [users_by_name.get(str(member).casefold(), member) for member in spec.get("members", [])]
            graph.add_group(spec["display_name"], members, spec.get("id"))
        return graph


def _relative(now: dt.datetime, days: float) -> dt.datetime:
    return now + dt.timedelta(days=days)


def _seed_app(graph: LocalGraph, spec: dict, now: dt.datetime) -> None:
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


# --------------------------------------------------------------------------- metadata XML

_MD = "urn:oasis:names:tc:SAML:2.0:metadata"
_DS = "http://www.w3.org/2000/09/xmldsig#"


def _key_descriptors(certificates: list[str]) -> str:
    return "".join(
        f'<KeyDescriptor use="signing"><KeyInfo xmlns="{_DS}"><X509Data><X509Certificate>{cert}'
        "</X509Certificate></X509Data></KeyInfo></KeyDescriptor>" for cert in certificates)


def render_federation_metadata(tenant_id: str, certificates: list[str]) -> str:
    """Entra-shaped per-app metadata: WS-Fed RoleDescriptor + IDPSSODescriptor with the same certs."""
    tenant = xml_escape(tenant_id)
    login = f"https://login.microsoftonline.com/{tenant}"
    keys = _key_descriptors(certificates)
    return (
        f'<?xml version="1.0" encoding="utf-8"?>'
        f'<EntityDescriptor ID="_{uuid.uuid4()}" entityID="https://sts.windows.net/{tenant}/" xmlns="{_MD}">'
        f'<RoleDescriptor xsi:type="fed:SecurityTokenServiceType" '
        f'protocolSupportEnumeration="http://docs.oasis-open.org/wsfed/federation/200706" '
        f'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'xmlns:fed="http://docs.oasis-open.org/wsfed/federation/200706">{keys}'
        f'<fed:PassiveRequestorEndpoint><EndpointReference xmlns="http://www.w3.org/2005/08/addressing">'
        f'<Address>{login}/wsfed</Address></EndpointReference></fed:PassiveRequestorEndpoint></RoleDescriptor>'
        f'<IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">{keys}'
        f'<SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="{login}/saml2"/>'
        f'<SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="{login}/saml2"/>'
        f'<SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{login}/saml2"/>'
        f'</IDPSSODescriptor></EntityDescriptor>'
    )


# --------------------------------------------------------------------------- command line


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description="Loopback Microsoft Graph for Rollover demos and tests.")
    parser.add_argument("--scenario", default="scenarios/demo-tenant.yaml", help="YAML/JSON tenant scenario")
    parser.add_argument("--port", type=int, default=8089, help="port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="added latency per Graph request")
    args = parser.parse_args(argv)
    graph = LocalGraph.from_scenario(args.scenario, latency=args.latency_ms / 1000).start(args.port, quiet=False)
    print(f"Local Graph for tenant {graph.tenant_id} at {graph.base_url} (Ctrl+C to stop)")
    for sp in graph.service_principals.values():
        print(f"  {sp['displayName']}: appId {sp['appId']}  metadata {graph.metadata_url(sp['appId'])}")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        graph.stop()


if __name__ == "__main__":
    main()
