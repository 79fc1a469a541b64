"""Narrow synchronous wrapper over msgraph-sdk + azure-identity.

This is the only module that imports msgraph / kiota / azure-identity. Everything it returns
is a plain dataclass. The SDK is async: every call runs on one private event loop in a
background thread, so any thread may call the methods; ``close()`` shuts it down.

Retries (429/503/504, honouring ``Retry-After``) come from kiota's ``RetryHandler``;
``max_retries`` / ``retry_delay`` configure it. Non-idempotent POSTs
(addTokenSigningCertificate) are sent with retries OFF: a 503 after the server already
created a certificate must not create a second one (entra_operations re-reads instead).

Request budget (see ``inventory``): keyCredentials come with the SP list (``key`` is null on
lists). The thumbprint is taken from ``customKeyIdentifier`` when it is 20 bytes (portal and
addTokenSigningCertificate certificates default it to the SHA-1 thumbprint), and a single
``$select=keyCredentials`` GET (limited by Graph to 150/min/tenant) is only made for an
object whose thumbprints cannot be derived that way or don't explain its active thumbprint.
Write operations always verify against the DER of the Verify key.
"""
from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import json
import logging
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable, Iterable, Iterator, Optional, TypeVar
from urllib.parse import urlparse

import httpx
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError
from azure.identity.aio import CertificateCredential, ClientSecretCredential, ManagedIdentityCredential
from kiota_abstractions.api_error import APIError
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
from kiota_http.middleware.options import RetryHandlerOption
from msgraph import GraphRequestAdapter, GraphServiceClient
from msgraph.generated.applications.applications_request_builder import ApplicationsRequestBuilder
from msgraph.generated.models.application import Application
from msgraph.generated.models.key_credential import KeyCredential
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.password_credential import PasswordCredential
from msgraph.generated.models.request_signature_verification import RequestSignatureVerification
from msgraph.generated.models.self_signed_certificate import SelfSignedCertificate
from msgraph.generated.models.service_principal import ServicePrincipal
from msgraph.generated.service_principals.item.add_token_signing_certificate.add_token_signing_certificate_post_request_body import (  # noqa: E501 (a generated module's name)
    AddTokenSigningCertificatePostRequestBody,
)
from msgraph.generated.service_principals.service_principals_request_builder import ServicePrincipalsRequestBuilder
from msgraph.generated.users.item.check_member_groups.check_member_groups_post_request_body import (
    CheckMemberGroupsPostRequestBody,
)
from msgraph.generated.users.users_request_builder import UsersRequestBuilder
from msgraph_core import GraphClientFactory

from rollover import metrics
from rollover.errors import Retryable, UserError
from rollover.integrations.entra_model import (  # noqa: F401  (re-exported: the client's callers use these)
    ApplicationInfo,
    InventoryAssembly,
    KeyCredentialInfo,
    PasswordCredentialInfo,
    SamlAppInventory,
    ServicePrincipalInfo,
    SigningCertificate,
    _application_info,
    _parse_binary,
    _parse_time,
    _sp_info,
    _utc,
    build_inventory_entry,
    cycle_collection_paused,
    to_trust_facts,
)

log = logging.getLogger(__name__)

GRAPH_BASE_URL = "https://graph.microsoft.com/v1.0"
GRAPH_SCOPES = ["https://graph.microsoft.com/.default"]
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
MAX_PAGE_SIZE = 999           # Graph's $top limit for servicePrincipals / applications
APP_ID_IN_FILTER_LIMIT = 15   # values per "appId in (...)" clause

SP_LIST_FIELDS = ["id", "appId", "displayName", "preferredSingleSignOnMode", "preferredTokenSigningKeyThumbprint",
                  "notificationEmailAddresses", "tokenEncryptionKeyId", "keyCredentials", "servicePrincipalNames",
                  "replyUrls"]
SP_SINGLE_FIELDS = SP_LIST_FIELDS + ["passwordCredentials", "samlSingleSignOnSettings"]
APP_FIELDS = ["id", "appId", "displayName", "identifierUris", "keyCredentials", "passwordCredentials",
              "requestSignatureVerification", "tokenEncryptionKeyId", "web"]

READ_PERMISSION_HINT = "the application permission Application.Read.All (with admin consent)"
WRITE_PERMISSION_HINT = ("Application.ReadWrite.OwnedBy with the bot's app registered as an owner of {target}, "
                         "or Application.ReadWrite.All")
GROUP_PERMISSION_HINT = "the application permissions GroupMember.Read.All and User.Read.All"

T = TypeVar("T")
UTC = dt.timezone.utc


# --------------------------------------------------------------------------- errors


class GraphError(UserError):
    """Base class of the permanent Graph failures this module reports: a sentence for the person, as is."""


class GraphConfigurationError(GraphError):
    """Settings don't allow building a client (missing credential, plain http to a remote host)."""


class GraphAuthenticationError(GraphError):
    """No token could be obtained."""


class GraphPermissionError(GraphError):
    """403 Authorization_RequestDenied; the message names the permission that is missing."""


class GraphNotFoundError(GraphError):
    """404 for the object the call addressed."""


class GraphUnavailableError(Retryable):
    """5xx after the SDK's retries, or Graph unreachable: try again later (its sentence says so)."""


class GraphThrottledError(GraphUnavailableError):
    """429 still returned after the SDK's retries."""


class GraphRequestError(GraphError):
    """Graph rejected the request (400 and other 4xx)."""


@dataclass(frozen=True)
class NewSigningCertificate:
    """The selfSignedCertificate returned by addTokenSigningCertificate (``key_id`` is the Sign key's)."""
    thumbprint: str
    key_id: Optional[str]
    custom_key_identifier: Optional[bytes]
    display_name: Optional[str]
    start: Optional[dt.datetime]
    end: Optional[dt.datetime]
    der: Optional[bytes] = field(default=None, repr=False)


@dataclass(frozen=True)
class PlannedRequest:
    """One Graph write, built with the SDK before it is sent, so dry runs show exactly what goes out.

    ``body`` is the serialised JSON with every ``key`` shortened and secrets removed.
    """
    method: str
    url: str
    body: Optional[dict]
    retry_safe: bool = True
    _request_information: Any = field(default=None, repr=False, compare=False)
    _response_type: Any = field(default=None, repr=False, compare=False)
    _access: Any = field(default=None, repr=False, compare=False)

    def describe(self) -> str:
        body = "" if self.body is None else " " + json.dumps(self.body, sort_keys=True)
        return f"{self.method} {self.url}{body}"


@dataclass(frozen=True)
class _Access:
    """What a call needs, so a 403 can name the missing permission."""
    kind: str          # "read" | "write" | "groups"
    target: str

    def permission_message(self) -> str:
        if self.kind == "read":
            return (f"Microsoft Graph refused to read {self.target}: the bot's app registration needs "
                    f"{READ_PERMISSION_HINT}.")
        if self.kind == "write":
            return (f"Microsoft Graph refused to change {self.target}: the bot's app registration needs "
                    f"{WRITE_PERMISSION_HINT.format(target=self.target)}.")
        return (f"Microsoft Graph refused to read group membership ({self.target}): the bot's app registration "
                f"needs {GROUP_PERMISSION_HINT}.")



def _odata_quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _looks_like_guid(value: str) -> bool:
    try:
        uuid.UUID(value)
        return True
    except ValueError:
        return False


def display_safe_body(content: Optional[bytes]) -> Optional[dict]:
    """The JSON body with ``key`` values shortened and any ``secretText`` removed (for logs and dry runs)."""
    if not content:
        return None
    return _redact(json.loads(content))


def _redact(value: Any) -> Any:
    if isinstance(value, dict):
        redacted = {}
        for name, item in value.items():
            if name == "key" and isinstance(item, str):
                redacted[name] = f"{item[:12]}...({len(base64.b64decode(item))} bytes DER)"
            elif name == "secretText":
                continue
            else:
                redacted[name] = _redact(item)
        return redacted
    if isinstance(value, list):
        return [_redact(item) for item in value]
    return value


class _CountingTransport(httpx.AsyncBaseTransport):
    """The innermost transport, under the SDK's retry middleware: every response Graph sends, each retried 429
    included, is counted by status for /metrics (no URL, no token)."""

    def __init__(self, inner: httpx.AsyncBaseTransport):
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await self._inner.handle_async_request(request)
        except httpx.HTTPError:
            metrics.count("graph_requests", status="network")
            raise
        metrics.count("graph_requests", status=metrics.status_label(response.status_code))
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


# --------------------------------------------------------------------------- credentials


class LocalGraphCredential:
    """Async credential for the loopback Graph only: returns a fixed fake token."""

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("local-graph-fake-token", int(dt.datetime.now(UTC).timestamp()) + 3600)

    async def close(self) -> None:
        return None


def is_loopback_url(url: str) -> bool:
    return (urlparse(url).hostname or "") in LOOPBACK_HOSTS


def _validate_base_url(base_url: str) -> str:
    parsed = urlparse(base_url)
    if parsed.scheme == "https" and parsed.hostname:
        return base_url.rstrip("/")
    if parsed.scheme == "http" and is_loopback_url(base_url):
        return base_url.rstrip("/")
    raise GraphConfigurationError(
        f"The Graph base URL {parsed.scheme}://{parsed.hostname} is not allowed: use https, or plain http only "
        "for 127.0.0.1/localhost (the local Graph).")


# --------------------------------------------------------------------------- event loop


class _LoopThread:
    """One private asyncio loop in a daemon thread; ``run`` executes a coroutine there and waits."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="entra-client-loop", daemon=True)
        self.thread.start()

    def run(self, coroutine: Awaitable[T]) -> T:
        if threading.current_thread() is self.thread:
            raise RuntimeError("EntraClient methods are synchronous; don't call them from its own event loop")
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


# --------------------------------------------------------------------------- the client


class EntraClient:
    """Synchronous Graph client for SAML enterprise apps. Thread-safe; call ``close()`` when done."""

    def __init__(self, base_url: Optional[str] = None, credential: Any = None, scopes: Optional[list[str]] = None,
                 timeout: float = 30.0, max_retries: int = 3, retry_delay: float = 3.0,
                 owns_credential: bool = False):
        self.base_url = _validate_base_url(base_url or GRAPH_BASE_URL)
        if credential is None:
            if not is_loopback_url(self.base_url):
                raise GraphConfigurationError("No Entra credential configured for Microsoft Graph.")
            credential, owns_credential = LocalGraphCredential(), True
        self.credential = credential
        self._owns_credential = owns_credential
        self._scopes = list(scopes or GRAPH_SCOPES)
        self._retry_option = RetryHandlerOption(delay=retry_delay, max_retries=max_retries)
        self._timeout = timeout
        self._loop = _LoopThread()
        self._closed = False
        self.request_count = 0   # logical Graph calls made (SDK retries not included)
        self._count_lock = threading.Lock()
        self._http, self._adapter, self._graph = self._loop.run(self._build())

    @classmethod
    def from_settings(cls, tenant_id: Optional[str], client_id: Optional[str], client_secret: Optional[str] = None,
                      certificate_path: Optional[str] = None, use_managed_identity: bool = False,
                      base_url: Optional[str] = None, **options: Any) -> "EntraClient":
        """Build the azure-identity credential from AZURE_* style settings.

        Precedence: managed identity, then certificate (preferred over a secret when both are set),
        then client secret; none of them is fine only for the loopback Graph.
        """
        credential = build_credential(tenant_id, client_id, client_secret, certificate_path, use_managed_identity,
                                      base_url)
        return cls(base_url=base_url, credential=credential, owns_credential=True, **options)

    async def _build(self) -> tuple[httpx.AsyncClient, GraphRequestAdapter, GraphServiceClient]:
        auth = AzureIdentityAuthenticationProvider(self.credential, scopes=self._scopes)
        http = GraphClientFactory.create_with_default_middleware(
            client=httpx.AsyncClient(base_url=self.base_url, timeout=httpx.Timeout(self._timeout),
                                     transport=_CountingTransport(httpx.AsyncHTTPTransport())),
            options={RetryHandlerOption.get_key(): self._retry_option})
        adapter = GraphRequestAdapter(auth, client=http)
        adapter.base_url = self.base_url   # the adapter's base_url wins over the SDK default
        return http, adapter, GraphServiceClient(request_adapter=adapter)

    @property
    def credential_kind(self) -> str:
        return {ClientSecretCredential: "client_secret", CertificateCredential: "certificate",
                ManagedIdentityCredential: "managed_identity", LocalGraphCredential: "local"}.get(
                    type(self.credential), type(self.credential).__name__)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._loop.run(self._aclose())
        self._loop.stop()

    async def _aclose(self) -> None:
        await self._http.aclose()
        if self._owns_credential and hasattr(self.credential, "close"):
            await self.credential.close()

    def __enter__(self) -> "EntraClient":
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ plumbing

    def _call(self, make_coroutine: Callable[[], Awaitable[T]], access: _Access) -> T:
        """Run one SDK call on the loop and turn every failure into a clear GraphError."""
        if self._closed:
            raise RuntimeError("EntraClient is closed")
        with self._count_lock:
            self.request_count += 1
        try:
            return self._loop.run(make_coroutine())
        except ODataError as error:
            raise _translate_odata_error(error, access) from None
        except APIError as error:
            raise _translate_status(error.response_status_code, None, None, access) from None
        except ClientAuthenticationError:
            raise GraphAuthenticationError(
                "Could not get a Microsoft Graph token: check AZURE_TENANT_ID, AZURE_CLIENT_ID and the client "
                "secret, certificate or managed identity.") from None
        except httpx.HTTPError as error:
            raise GraphUnavailableError(
                f"Microsoft Graph at {urlparse(self.base_url).netloc} could not be reached ({type(error).__name__}).") \
                from None

    def _send_for_json(self, request_information: Any, access: _Access) -> Optional[dict]:
        """Send a request built by the SDK and return the JSON body (None for 204).

        The SDK's adapter does auth, retries and error mapping; we skip kiota model
        deserialisation, which costs ~6 ms per servicePrincipal in msgraph-sdk 1.65
        (six seconds for 1,000 apps) and would leak SDK types anyway.
        """
        errors = {"XXX": ODataError}
        content = self._call(lambda: self._adapter.send_primitive_async(request_information, "bytes", errors),
                             access)
        return json.loads(content) if content else None

    def _get_json(self, builder: Any, config: Optional[RequestConfiguration], access: _Access) -> dict:
        return self._send_for_json(builder.to_get_request_information(config), access)

    def _collect_pages(self, builder: Any, config: RequestConfiguration, access: _Access) -> list[dict]:
        """Follow @odata.nextLink until the last page; one request per page."""
        return [item for page in self._pages(builder, config, access) for item in page.get("value") or []]

    def _pages(self, builder: Any, config: RequestConfiguration, access: _Access) -> Iterator[dict]:
        page = self._get_json(builder, config, access)
        yield page
        while next_link := page.get("@odata.nextLink"):
            page = self._get_json(type(builder)(self._adapter, next_link), None, access)
            yield page

    # ------------------------------------------------------------------ reads

    def list_saml_service_principals(self, page_size: int = MAX_PAGE_SIZE) -> list[ServicePrincipalInfo]:
        """All SPs with preferredSingleSignOnMode 'saml' (keys are null on lists; thumbprints from
        customKeyIdentifier)."""
        query = _saml_sp_query(min(page_size, MAX_PAGE_SIZE))
        return [_sp_info(sp) for sp in self._collect_pages(
            self._graph.service_principals, RequestConfiguration(query_parameters=query),
            _Access("read", "the SAML enterprise apps"))]

    def get_service_principal(self, sp_id: str, with_keys: bool = True) -> ServicePrincipalInfo:
        """One SP. ``with_keys`` adds $select=keyCredentials (returns the DER; Graph limit 150/min/tenant)."""
        builder = self._graph.service_principals.by_service_principal_id(sp_id)
        return self._get_sp(builder, with_keys, f"the enterprise app {sp_id}")

    def get_service_principal_by_app_id(self, app_id: str, with_keys: bool = True) -> ServicePrincipalInfo:
        builder = self._graph.service_principals_with_app_id(app_id)
        return self._get_sp(builder, with_keys, f"the enterprise app with appId {app_id}")

    def _get_sp(self, builder: Any, with_keys: bool, target: str) -> ServicePrincipalInfo:
        # Without $select Graph returns the default properties, keyCredentials included but key = null.
        config = _select(builder, SP_SINGLE_FIELDS) if with_keys else None
        return _sp_info(self._get_json(builder, config, _Access("read", target)))

    def find_service_principal(self, name_or_app_id: str) -> ServicePrincipalInfo:
        """By appId (a GUID) or exact display name; refuses an ambiguous name."""
        value = name_or_app_id.strip()
        if _looks_like_guid(value):
            try:
                return self.get_service_principal_by_app_id(value)
            except GraphNotFoundError:
                return self.get_service_principal(value)
        query = ServicePrincipalsRequestBuilder.ServicePrincipalsRequestBuilderGetQueryParameters(
            filter=f"displayName eq {_odata_quote(value)}", select=["id", "appId", "displayName"], top=10)
        page = self._get_json(self._graph.service_principals, RequestConfiguration(query_parameters=query),
                              _Access("read", f"enterprise apps named '{value}'"))
        matches = page.get("value") or []
        if not matches:
            raise GraphNotFoundError(f"No enterprise app named '{value}' was found in Entra ID.")
        if len(matches) > 1:
            ids = ", ".join(sp["appId"] for sp in matches)
            raise GraphRequestError(f"{len(matches)} enterprise apps are named '{value}' (appIds {ids}); "
                                    "use the appId instead.")
        return self.get_service_principal(matches[0]["id"])

    def get_application(self, object_id: str, with_keys: bool = True) -> ApplicationInfo:
        builder = self._graph.applications.by_application_id(object_id)
        return self._get_application(builder, with_keys, f"the app registration {object_id}")

    def get_application_by_app_id(self, app_id: str, with_keys: bool = True) -> ApplicationInfo:
        """The app registration (requestSignatureVerification, Verify certs, client secrets) of an appId."""
        builder = self._graph.applications_with_app_id(app_id)
        return self._get_application(builder, with_keys, f"the app registration with appId {app_id}")

    def _get_application(self, builder: Any, with_keys: bool, target: str) -> ApplicationInfo:
        config = _select(builder, APP_FIELDS) if with_keys else None
        return _application_info(self._get_json(builder, config, _Access("read", target)))

    def inventory(self, page_size: int = MAX_PAGE_SIZE) -> list[SamlAppInventory]:
        """Every SAML app with its certificates and app-registration facts.

        Requests: ceil(SAML SPs / page_size) SP pages + app registrations (1 filtered query for <= 15 apps,
        else ceil(all registrations / page_size) pages, fetched alongside the SP pages: the two chains do not
        depend on each other) + one single $select GET per object whose thumbprints can't be derived from
        customKeyIdentifier.
        """
        with cycle_collection_paused():
            assembly = self._call(lambda: self._assemble_inventory(page_size),
                                  _Access("read", "the SAML enterprise apps and their app registrations"))
            return assembly.entries(self.get_service_principal, self.get_application)

    async def _assemble_inventory(self, page_size: int) -> InventoryAssembly:
        """Both page chains at once, as coroutines on the client's loop. Each page is converted there too, in
        slices between which the other chain's answers are read and its next request sent, and each entry is
        built as soon as its two halves are known: after the last page only its own entries are left. (In a
        thread of its own the conversion would hold the interpreter lock from the loop's socket reads.)"""
        assembly = InventoryAssembly()
        top = min(page_size, MAX_PAGE_SIZE)
        registrations: asyncio.Task | None = None
        try:
            async for page in self._pages_async(self._graph.service_principals, _saml_sp_query(top)):
                items = page.get("value") or []
                if (registrations is None and page.get("@odata.nextLink")
                        and assembly.count + len(items) > APP_ID_IN_FILTER_LIMIT):
                    # More apps than one "appId in (...)" query covers: every registration, starting now.
                    registrations = asyncio.ensure_future(
                        self._add_registrations(_all_registrations_query(top), assembly))
                    registrations.add_done_callback(_cancel_on_failure(asyncio.current_task()))
                await _in_slices(items, _sp_info, assembly.add_service_principals)
        except asyncio.CancelledError:
            # Cancelled by the registrations' failure (_cancel_on_failure): that failure is the answer.
            if registrations is not None and registrations.done() and not registrations.cancelled() \
                    and registrations.exception() is not None:
                raise registrations.exception() from None
            raise
        except BaseException:
            if registrations is not None:
                registrations.cancel()   # no orphan chain going on after the inventory failed
            raise
        if registrations is not None:
            await registrations
        else:   # few apps: one filtered query after the list (or, for one long page, every registration)
            wanted = sorted(assembly.app_ids())
            if len(wanted) > APP_ID_IN_FILTER_LIMIT:
                await self._add_registrations(_all_registrations_query(top), assembly)
            elif wanted:
                await self._add_registrations(_registrations_query(wanted), assembly)
        assembly.registrations_complete()
        return assembly

    async def _add_registrations(self, query: Any, assembly: InventoryAssembly) -> None:
        async for page in self._pages_async(self._graph.applications, query):
            await _in_slices(page.get("value") or [], _application_info, assembly.add_registrations)

    async def _pages_async(self, builder: Any, query: Any) -> AsyncIterator[dict]:
        """Each page, with the next one already requested (a page names the next, so a chain is sequential)."""
        errors = {"XXX": ODataError}

        def request(information: Any) -> asyncio.Task:
            with self._count_lock:
                self.request_count += 1
            return asyncio.ensure_future(self._adapter.send_primitive_async(information, "bytes", errors))

        pending = request(builder.to_get_request_information(RequestConfiguration(query_parameters=query)))
        try:
            while pending is not None:
                content = await pending
                page = json.loads(content) if content else {}
                next_link = page.get("@odata.nextLink")
                pending = request(type(builder)(self._adapter, next_link).to_get_request_information(None)) \
                    if next_link else None
                yield page
        finally:
            if pending is not None:
                pending.cancel()   # the caller stopped early (an error): the requested page is not wanted

    def is_member_of_group(self, user_principal_or_email: str, group_id: str) -> bool:
        """Transitive membership via the documented POST /users/{id|UPN}/checkMemberGroups.

        A value that is not a UPN is looked up by ``mail``; no match means "not a member",
        several matches are refused (fail closed on e-mail collisions).
        """
        user = user_principal_or_email.strip()
        access = _Access("groups", f"group {group_id}")
        try:
            return self._check_member_groups(user, group_id, access)
        except GraphNotFoundError:
            pass
        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
            filter=f"mail eq {_odata_quote(user)}", select=["id", "userPrincipalName", "mail"], top=2)
        page = self._get_json(self._graph.users, RequestConfiguration(query_parameters=query), access)
        matches = page.get("value") or []
        if not matches:
            return False
        if len(matches) > 1:
            raise GraphRequestError(f"Several Entra users have the e-mail address {user}; membership can't be "
                                    "decided safely.")
        return self._check_member_groups(matches[0]["id"], group_id, access)

    def _check_member_groups(self, user_key: str, group_id: str, access: _Access) -> bool:
        body = CheckMemberGroupsPostRequestBody(group_ids=[group_id])
        builder = self._graph.users.by_user_id(user_key).check_member_groups
        response = self._send_for_json(builder.to_post_request_information(body), access)
        return group_id in (response or {}).get("value", [])

    # ------------------------------------------------------------------ writes: plan, then execute

    def _plan(self, request_information: Any, response_type: Any, access: _Access,
              retry_safe: bool = True) -> PlannedRequest:
        request_information.path_parameters["baseurl"] = self.base_url
        return PlannedRequest(
            method=request_information.http_method.value, url=request_information.url,
            body=display_safe_body(request_information.content), retry_safe=retry_safe,
            _request_information=request_information, _response_type=response_type, _access=access)

    def plan_add_token_signing_certificate(self, sp_id: str, display_name: str, end: dt.datetime) -> PlannedRequest:
        """POST /servicePrincipals/{id}/addTokenSigningCertificate (not retried automatically: not idempotent)."""
        body = AddTokenSigningCertificatePostRequestBody(display_name=display_name, end_date_time=_utc(end))
        builder = self._graph.service_principals.by_service_principal_id(sp_id).add_token_signing_certificate
        return self._plan(builder.to_post_request_information(body), SelfSignedCertificate,
                          _Access("write", f"the enterprise app {sp_id}"), retry_safe=False)

    def plan_set_preferred_thumbprint(self, sp_id: str, thumbprint: str) -> PlannedRequest:
        """PATCH /servicePrincipals/{id} with only preferredTokenSigningKeyThumbprint (a fresh model)."""
        body = ServicePrincipal(preferred_token_signing_key_thumbprint=thumbprint)
        return self._plan_sp_patch(sp_id, body)

    def plan_set_notification_emails(self, sp_id: str, emails: list[str]) -> PlannedRequest:
        return self._plan_sp_patch(sp_id, ServicePrincipal(notification_email_addresses=list(emails)))

    def plan_replace_sp_credentials(self, sp_id: str, keys: Iterable[KeyCredentialInfo],
                                    passwords: Iterable[PasswordCredentialInfo]) -> PlannedRequest:
        """PATCH keyCredentials + passwordCredentials: the whole collections are REPLACED by these."""
        body = ServicePrincipal(key_credentials=[_to_key_credential(kc) for kc in keys],
                                password_credentials=[_to_password_credential(pc) for pc in passwords])
        return self._plan_sp_patch(sp_id, body)

    def plan_replace_application_keys(self, application_object_id: str, keys: Iterable[KeyCredentialInfo],
                                      require_signed_requests: Optional[bool] = None) -> PlannedRequest:
        """PATCH /applications/{id} keyCredentials (REPLACES the collection) [+ requestSignatureVerification]."""
        body = Application(key_credentials=[_to_key_credential(kc) for kc in keys])
        if require_signed_requests is not None:
            body.request_signature_verification = RequestSignatureVerification(
                is_signed_request_required=require_signed_requests)
        builder = self._graph.applications.by_application_id(application_object_id)
        return self._plan(builder.to_patch_request_information(body), None,
                          _Access("write", f"the app registration {application_object_id}"))

    def _plan_sp_patch(self, sp_id: str, body: ServicePrincipal) -> PlannedRequest:
        builder = self._graph.service_principals.by_service_principal_id(sp_id)
        return self._plan(builder.to_patch_request_information(body), None,
                          _Access("write", f"the enterprise app {sp_id}"))

    def execute(self, planned: PlannedRequest) -> Optional[NewSigningCertificate]:
        """Send a planned request exactly as built; returns the new certificate for addTokenSigningCertificate."""
        information = planned._request_information
        if not planned.retry_safe:
            information.add_request_options([RetryHandlerOption(delay=0, max_retries=0, should_retry=False)])
        log.info("Graph write: %s %s", planned.method, planned.url)
        response = self._send_for_json(information, planned._access)
        return _new_certificate(response) if planned._response_type is SelfSignedCertificate else None


def _saml_sp_query(top: int) -> Any:
    return ServicePrincipalsRequestBuilder.ServicePrincipalsRequestBuilderGetQueryParameters(
        filter="preferredSingleSignOnMode eq 'saml'", select=SP_LIST_FIELDS, top=top)


def _all_registrations_query(top: int) -> Any:
    return ApplicationsRequestBuilder.ApplicationsRequestBuilderGetQueryParameters(select=APP_FIELDS, top=top)


def _registrations_query(app_ids: list[str]) -> Any:
    """The registrations of up to APP_ID_IN_FILTER_LIMIT appIds, in one query."""
    values = ",".join(_odata_quote(app_id) for app_id in app_ids)
    return ApplicationsRequestBuilder.ApplicationsRequestBuilderGetQueryParameters(
        filter=f"appId in ({values})", select=APP_FIELDS, top=APP_ID_IN_FILTER_LIMIT)


def _cancel_on_failure(task: asyncio.Task) -> Callable[[asyncio.Task], None]:
    """A done-callback: when the watched task failed, cancel ``task`` (its sibling stops asking Graph)."""
    def check(done: asyncio.Task) -> None:
        if not done.cancelled() and done.exception() is not None:
            task.cancel()
    return check


SLICE = 100   # objects converted between two turns of the loop (~1 ms)


async def _in_slices(items: list[dict], convert: Callable[[dict], T], consume: Callable[[list[T]], None]) -> None:
    """Convert ``items`` a slice at a time, giving the loop a turn in between (the other chain's reads)."""
    for start in range(0, len(items), SLICE):
        consume([convert(item) for item in items[start:start + SLICE]])
        await asyncio.sleep(0)


def _select(builder: Any, fields: list[str]) -> RequestConfiguration:
    """A ``$select`` configuration using the builder's own generated query-parameter class."""
    query_type = next(value for name, value in type(builder).__dict__.items() if name.endswith("GetQueryParameters"))
    return RequestConfiguration(query_parameters=query_type(select=fields))


def _new_certificate(result: dict) -> NewSigningCertificate:
    """The selfSignedCertificate JSON; the thumbprint is recomputed from the DER when present."""
    der = _parse_binary(result.get("key"))
    thumbprint = hashlib.sha1(der).hexdigest().upper() if der else (result.get("thumbprint") or "").upper()
    return NewSigningCertificate(
        thumbprint=thumbprint, key_id=result.get("keyId"),
        custom_key_identifier=_parse_binary(result.get("customKeyIdentifier")),
        display_name=result.get("displayName"), start=_parse_time(result.get("startDateTime")),
        end=_parse_time(result.get("endDateTime")), der=der)


def _to_key_credential(info: KeyCredentialInfo) -> KeyCredential:
    """Existing entries are echoed with their keyId and no key (Graph keeps the stored key)."""
    return KeyCredential(
        key_id=uuid.UUID(info.key_id), type=info.type, usage=info.usage, display_name=info.display_name,
        start_date_time=info.start, end_date_time=info.end, custom_key_identifier=info.custom_key_identifier,
        key=info.der)


def _to_password_credential(info: PasswordCredentialInfo) -> PasswordCredential:
    return PasswordCredential(
        key_id=uuid.UUID(info.key_id), display_name=info.display_name, start_date_time=info.start,
        end_date_time=info.end, custom_key_identifier=info.custom_key_identifier)


def _translate_odata_error(error: ODataError, access: _Access) -> GraphError | GraphUnavailableError:
    main = error.error
    return _translate_status(error.response_status_code, main.code if main else None,
                             main.message if main else None, access, error.response_headers)


def _translate_status(status: Optional[int], code: Optional[str], message: Optional[str], access: _Access,
                      headers: Optional[dict] = None) -> GraphError | GraphUnavailableError:
    if status == 403:
        return GraphPermissionError(access.permission_message())
    if status == 401:
        return GraphAuthenticationError("Microsoft Graph rejected the bot's access token (HTTP 401): check the "
                                        "tenant, client id and credential settings.")
    if status == 404:
        return GraphNotFoundError(f"Microsoft Graph could not find {access.target}.")
    if status == 429:
        retry_after = (headers or {}).get("retry-after") or (headers or {}).get("Retry-After")
        wait = f" Graph asks to wait {retry_after} s." if retry_after else ""
        return GraphThrottledError(f"Microsoft Graph is throttling requests for {access.target} (HTTP 429) after "
                                   f"retries.{wait} Try again later.", _seconds(retry_after))
    if status is not None and status >= 500:
        return GraphUnavailableError(f"Microsoft Graph is unavailable (HTTP {status}) for {access.target} after "
                                     "retries. Try again later.")
    detail = f" {code}: {message}" if code or message else ""
    return GraphRequestError(f"Microsoft Graph rejected the request for {access.target} (HTTP {status}).{detail}")


def _seconds(retry_after: Optional[str]) -> Optional[float]:
    """Retry-After in seconds (Graph sends seconds; an HTTP date or garbage leaves it to our backoff)."""
    try:
        return float(retry_after) if retry_after else None
    except ValueError:
        return None


def build_credential(tenant_id: Optional[str], client_id: Optional[str], client_secret: Optional[str],
                     certificate_path: Optional[str], use_managed_identity: bool, base_url: Optional[str]) -> Any:
    """The azure-identity (async) credential for these settings; None for the loopback Graph without settings."""
    if use_managed_identity:
        return ManagedIdentityCredential(client_id=client_id) if client_id else ManagedIdentityCredential()
    if certificate_path or client_secret:
        if not tenant_id or not client_id:
            raise GraphConfigurationError("AZURE_TENANT_ID and AZURE_CLIENT_ID must be set to sign in to Entra ID.")
    if certificate_path:
        try:
            return CertificateCredential(tenant_id, client_id, certificate_path=certificate_path)
        except (OSError, ValueError) as error:
            raise GraphConfigurationError(
                f"The certificate in AZURE_CLIENT_CERTIFICATE_PATH ({certificate_path}) could not be loaded "
                f"({type(error).__name__}): it must be a PEM or PKCS12 file with an RSA private key.") from None
    if client_secret:
        return ClientSecretCredential(tenant_id, client_id, client_secret)
    if base_url and is_loopback_url(base_url):
        return None
    raise GraphConfigurationError(
        "No Entra credential is configured: set AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH "
        "(with AZURE_TENANT_ID and AZURE_CLIENT_ID), or enable managed identity.")
