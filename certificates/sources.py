"""Where documents come from: an explicit, size-limited HTTP(S) fetch and Entra's metadata URL.

This is the only network access in the ``certificates`` package, and it happens only when a caller
asks for a URL. Redirects are followed by hand so that each hop is checked to be http/https.
"""

from __future__ import annotations

import re
from typing import Optional
from urllib.parse import quote, urljoin, urlsplit

import requests

from errors import UserError

ALLOWED_SCHEMES = ("http", "https")
MAX_REDIRECTS = 5
CHUNK_SIZE = 64 * 1024
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
TENANT_DOMAIN = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")


def fetch_url(url: str, *, max_bytes: int, timeout: float = 15, session: Optional[requests.Session] = None) -> bytes:
    """GET ``url`` (http/https only) and return at most ``max_bytes`` bytes; ``UserError`` otherwise."""
    http = session or requests.Session()
    try:
        return _fetch(http, url, max_bytes, timeout)
    finally:
        if session is None:
            http.close()


def entra_federation_metadata_url(tenant_id: str, app_id: str, base: str = "https://login.microsoftonline.com") -> str:
    """Per-app federation metadata URL (notes 1d); tenant as GUID or domain, app as its appId GUID."""
    tenant_id, app_id = tenant_id.strip(), app_id.strip()
    if not (GUID.match(tenant_id) or TENANT_DOMAIN.match(tenant_id)):
        raise UserError(f"{tenant_id!r} is not a tenant ID (a GUID) or a tenant domain name.")
    if not GUID.match(app_id):
        raise UserError(f"{app_id!r} is not an application (client) ID; it should look like a GUID.")
    return (f"{base.rstrip('/')}/{quote(tenant_id)}/federationmetadata/2007-06/federationmetadata.xml"
            f"?appid={quote(app_id)}")


def _fetch(http: requests.Session, url: str, max_bytes: int, timeout: float) -> bytes:
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        _check_scheme(current)
        try:
            response = http.get(current, stream=True, timeout=timeout, allow_redirects=False)
        except requests.RequestException as exc:
            raise UserError(f"Could not fetch {redact(current)}: {_reason(exc)}.") from exc
        with response:
            if response.is_redirect:
                current = urljoin(current, response.headers.get("Location", ""))
                continue
            if response.status_code >= 400:
                raise UserError(f"Could not fetch {redact(current)}: the server answered HTTP {response.status_code}.")
            return _read_limited(response, current, max_bytes)
    raise UserError(f"Could not fetch {redact(url)}: more than {MAX_REDIRECTS} redirects.")


def _read_limited(response: requests.Response, url: str, max_bytes: int) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise UserError(f"Could not fetch {redact(url)}: it is larger than the {max_bytes} byte limit.")
    body = bytearray()
    try:
        for chunk in response.iter_content(CHUNK_SIZE):
            body += chunk
            if len(body) > max_bytes:
                raise UserError(f"Could not fetch {redact(url)}: it is larger than the {max_bytes} byte limit.")
    except requests.RequestException as exc:
        raise UserError(f"Could not fetch {redact(url)}: {_reason(exc)}.") from exc
    return bytes(body)


def _check_scheme(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme.lower() not in ALLOWED_SCHEMES or not parts.hostname:
        raise UserError(f"Refusing to fetch {redact(url)}: only http and https URLs are allowed.")


def redact(url: str) -> str:
    """scheme://host[:port]/path: query strings and credentials may carry secrets (SAS tokens...)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # a non-numeric port: show none rather than fail while reporting another error
        port = ""
    if not parts.scheme or not host:
        return repr(url.split("?", 1)[0][:80])
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _reason(exc: requests.RequestException) -> str:
    if isinstance(exc, requests.Timeout):
        return "the server did not answer in time"
    if isinstance(exc, requests.ConnectionError):
        return "could not connect"
    return type(exc).__name__
