"""Where documents come from: an explicit, size-limited HTTP(S) fetch and Entra's metadata URL.

This is the only network access in the ``certificates`` package, and it happens only when a caller
asks for a URL. Redirects are followed by hand so that each hop is checked: http/https only and,
unless private addresses are allowed, a public address that is resolved once and then connected to
as resolved (no second DNS answer can point the connection elsewhere). One overall deadline covers
every hop and the whole body, so a server trickling bytes cannot hold the bot.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import time
from typing import Optional
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter

from rollover.errors import UserError

ALLOWED_SCHEMES = ("http", "https")
MAX_REDIRECTS = 5
CHUNK_SIZE = 64 * 1024
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
TENANT_DOMAIN = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")


def fetch_url(url: str, *, max_bytes: int, timeout: float = 15, deadline_seconds: float = 30,
              allow_private: bool = True, session: Optional[requests.Session] = None) -> bytes:
    """GET ``url`` (http/https only) and return at most ``max_bytes`` bytes; ``UserError`` otherwise.

    ``allow_private=False`` (URLs typed in chat) refuses every hop whose address is not globally
    routable: loopback, private, link-local (cloud metadata), shared (100.64/10) and reserved ranges.
    """
    http = session or requests.Session()
    deadline = time.monotonic() + deadline_seconds
    try:
        return _fetch(http, url, max_bytes, timeout, deadline, allow_private)
    finally:
        if session is None:
            http.close()


class _PinnedHostAdapter(HTTPAdapter):
    """Connects to an already-checked IP while TLS still verifies (and SNI names) the real host."""

    def __init__(self, hostname: str):
        self._hostname = hostname
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["server_hostname"] = self._hostname
        kwargs["assert_hostname"] = self._hostname
        super().init_poolmanager(*args, **kwargs)


def public_address(url: str) -> str:
    """The one address a URL's host resolves to, refusing anything that is not globally routable."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise UserError(f"Could not fetch {redact(url)}: the host name does not resolve.") from None
    addresses = sorted({info[4][0].split("%")[0] for info in infos})
    for address in addresses:
        if not ipaddress.ip_address(address).is_global:
            raise UserError(f"Refusing to fetch {redact(url)}: {parts.hostname} is an internal address; I only "
                            "fetch public URLs (an operator can allow internal ones with ROLLOVER_ALLOW_PRIVATE_URLS).")
    return addresses[0]


def _pinned(http: requests.Session, url: str) -> tuple[str, dict[str, str]]:
    """The URL rewritten to its checked IP, with the Host header and TLS name of the original host."""
    parts = urlsplit(url)
    address = public_address(url)
    ip_host = f"[{address}]" if ":" in address else address
    netloc = f"{ip_host}:{parts.port}" if parts.port else ip_host
    pinned = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    http.mount(f"{parts.scheme}://{netloc}/", _PinnedHostAdapter(parts.hostname))
    return pinned, {"Host": parts.netloc.rsplit("@", 1)[-1]}


def entra_federation_metadata_url(tenant_id: str, app_id: str, base: str = "https://login.microsoftonline.com") -> str:
    """Per-app federation metadata URL (notes 1d); tenant as GUID or domain, app as its appId GUID."""
    tenant_id, app_id = tenant_id.strip(), app_id.strip()
    if not (GUID.match(tenant_id) or TENANT_DOMAIN.match(tenant_id)):
        raise UserError(f"{tenant_id!r} is not a tenant ID (a GUID) or a tenant domain name.")
    if not GUID.match(app_id):
        raise UserError(f"{app_id!r} is not an application (client) ID; it should look like a GUID.")
    return (f"{base.rstrip('/')}/{quote(tenant_id)}/federationmetadata/2007-06/federationmetadata.xml"
            f"?appid={quote(app_id)}")


def _fetch(http: requests.Session, url: str, max_bytes: int, timeout: float, deadline: float,
           allow_private: bool) -> bytes:
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        _check_scheme(current)
        target, headers = (current, {}) if allow_private else _pinned(http, current)
        try:
            response = http.get(target, headers=headers, stream=True, allow_redirects=False,
                                timeout=_remaining(deadline, timeout, current))
        except requests.RequestException as exc:
            raise UserError(f"Could not fetch {redact(current)}: {_reason(exc)}.") from exc
        with response:
            if response.is_redirect:
                current = urljoin(current, response.headers.get("Location", ""))
                continue
            if response.status_code >= 400:
                raise UserError(f"Could not fetch {redact(current)}: the server answered HTTP {response.status_code}.")
            return _read_limited(response, current, max_bytes, deadline)
    raise UserError(f"Could not fetch {redact(url)}: more than {MAX_REDIRECTS} redirects.")


def _remaining(deadline: float, timeout: float, url: str) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise UserError(f"Could not fetch {redact(url)}: the server did not answer in time.")
    return min(timeout, left)


def _read_limited(response: requests.Response, url: str, max_bytes: int, deadline: float) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise UserError(f"Could not fetch {redact(url)}: it is larger than the {max_bytes} byte limit.")
    body = bytearray()
    try:
        # read1 returns whatever one socket read brings, so the deadline is checked between reads
        # even when a server trickles a byte at a time (iter_content would wait for a full chunk).
        while chunk := response.raw.read1(CHUNK_SIZE, decode_content=True):
            body += chunk
            if len(body) > max_bytes:
                raise UserError(f"Could not fetch {redact(url)}: it is larger than the {max_bytes} byte limit.")
            _remaining(deadline, 1, url)
    except (requests.RequestException, urllib3.exceptions.HTTPError) as exc:
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


def _reason(exc: Exception) -> str:
    if isinstance(exc, (requests.Timeout, urllib3.exceptions.TimeoutError)):
        return "the server did not answer in time"
    if isinstance(exc, (requests.ConnectionError, urllib3.exceptions.ProtocolError)):
        return "could not connect"
    return type(exc).__name__
