"""Where documents come from: an explicit, size-limited HTTP(S) fetch and Entra's metadata URL.

This is the only network access in the ``certificates`` package, and it happens only when a caller
asks for a URL. Redirects are followed by hand so that each hop is checked: http/https only, a
well-formed host and port and, unless private addresses are allowed, a public address. Each hop's
host is resolved once and then connected to as resolved (no second DNS answer can point the
connection elsewhere), straight, without a proxy or .netrc credentials from the environment.

One overall deadline covers every hop: name resolution, connecting, the TLS handshake, the status
line, the headers and the whole body. Socket timeouts alone bound each read, not their sum, so a
server sending a byte a second would hold the fetch for ever; at the deadline a timer shuts the
fetch's sockets down, which ends whatever read is waiting.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
import threading
import time
from typing import Optional
from urllib.parse import SplitResult, quote, unquote, urljoin, urlsplit, urlunsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from rollover.errors import UserError

ALLOWED_SCHEMES = ("http", "https")
MAX_REDIRECTS = 5
CHUNK_SIZE = 64 * 1024
MAX_URL_LENGTH = 8192
MAX_HOST_LENGTH = 253
MAX_LABEL_LENGTH = 63
SHOWN_URL_CHARACTERS = 120
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
TENANT_DOMAIN = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                           r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")

# IPv6 spellings that carry an IPv4 address (checked like that address) or reach local networks.
NAT64 = ipaddress.ip_network("64:ff9b::/96")             # RFC 6052: the last 32 bits are the IPv4 address
LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")     # RFC 8215: a site's own translator
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")          # deprecated ::a.b.c.d

_this_fetch = threading.local()  # the running fetch's deadline, for name resolution


def fetch_url(url: str, *, max_bytes: int, timeout: float = 15, deadline_seconds: float = 30,
              allow_private: bool = True, session: Optional[requests.Session] = None) -> bytes:
    """GET ``url`` (http/https only) and return at most ``max_bytes`` bytes; ``UserError`` otherwise.

    ``timeout`` bounds each network wait, ``deadline_seconds`` the whole fetch. ``allow_private=False``
    (URLs typed in chat) refuses every hop whose address is not globally routable: loopback, private,
    link-local (cloud metadata), shared (100.64/10), reserved ranges and their IPv6 spellings.
    """
    http = session or _new_session()
    deadline = _Deadline(deadline_seconds)
    _this_fetch.deadline = deadline
    try:
        return _fetch(http, url, max_bytes, timeout, deadline, allow_private)
    finally:
        _this_fetch.deadline = None
        deadline.close()
        if session is None:
            http.close()


def _new_session() -> requests.Session:
    http = requests.Session()
    http.trust_env = False  # no proxy (it would connect wherever it likes) and no .netrc credentials
    return http


# ---------------------------------------------------------------------------------------------
# The overall deadline


class _Deadline:
    """One fetch's deadline. At the deadline every socket the fetch opened is shut down.

    It keeps a duplicate of each socket's descriptor: shutting the duplicate down ends any read
    on the socket, including one inside TLS (which wraps the same kernel socket after taking over
    the original Python object), and owning the duplicate means no reused descriptor number is
    ever touched. The duplicates are closed when the fetch ends.
    """

    def __init__(self, seconds: float):
        self.at = time.monotonic() + seconds
        self.expired = False
        self._lock = threading.Lock()
        self._twins: list[socket.socket] = []
        self._timer = threading.Timer(max(seconds, 0), self._expire)
        self._timer.daemon = True
        self._timer.start()

    def left(self) -> float:
        return self.at - time.monotonic()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            twin = sock.dup()
            self._twins.append(twin)
            if self.expired:
                _shut(twin)

    def close(self) -> None:
        self._timer.cancel()
        with self._lock:
            for twin in self._twins:
                twin.close()
            self._twins.clear()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for twin in self._twins:
                _shut(twin)


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed by the other side


class _Watched:
    """A urllib3 connection that hands its socket to the deadline as soon as the socket exists."""

    def __init__(self, *args, deadline: _Deadline, **kwargs):
        self._deadline = deadline
        super().__init__(*args, **kwargs)

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        self._deadline.watch(sock)
        return sock


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _PinnedHostAdapter(HTTPAdapter):
    """Connects to an already-checked IP while TLS still verifies (and SNI names) the real host.

    Its connections are watched by the fetch's deadline (pools get it as a connection argument).
    """

    def __init__(self, hostname: str, deadline: _Deadline):
        self._hostname = hostname
        self._deadline = deadline
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["server_hostname"] = self._hostname
        kwargs["assert_hostname"] = self._hostname
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": functools.partial(_WatchedHTTPPool, deadline=self._deadline),
            "https": functools.partial(_WatchedHTTPSPool, deadline=self._deadline),
        }


# ---------------------------------------------------------------------------------------------
# URLs and addresses


def public_address(url: str) -> str:
    """The address to connect to for a URL's host, refusing hosts that resolve to an internal address."""
    parts, host, port = _checked_url(url)
    addresses = _resolve(url, host, port)
    for address in addresses:
        if not is_public_address(address):
            raise UserError(f"Refusing to fetch {redact(url)}: {parts.hostname} is an internal address; I only "
                            "fetch public URLs (an operator can allow internal ones with ROLLOVER_ALLOW_PRIVATE_URLS).")
    return addresses[0]


def is_public_address(address: str) -> bool:
    """Globally routable, also once the IPv4 address inside an IPv6 spelling is taken out.

    ``ipaddress`` calls 64:ff9b::7f00:1 (NAT64), 2002:7f00:1::1 (6to4) and ::127.0.0.1 global,
    yet they reach 127.0.0.1 through a translator, a relay or the host's own stack.
    """
    ip = ipaddress.ip_address(address)
    if not ip.is_global:
        return False
    if ip.version == 4:
        return True
    if ip in LOCAL_NAT64:
        return False
    embedded = _embedded_ipv4(ip)
    return embedded is None or embedded.is_global


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> Optional[ipaddress.IPv4Address]:
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip.sixtofour:
        return ip.sixtofour
    if ip.teredo:
        return ip.teredo[1]
    if ip in NAT64 or ip in IPV4_COMPATIBLE:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _checked_url(url: str) -> tuple[SplitResult, str, int]:
    """The URL's parts, its host (IDNA-encoded, brackets removed) and port; ``UserError`` if malformed."""
    if len(url) > MAX_URL_LENGTH:
        raise UserError(f"Refusing to fetch {redact(url)}: the URL is longer than {MAX_URL_LENGTH} characters.")
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. http://[::1/ ("Invalid IPv6 URL")
        raise UserError(f"Refusing to fetch {redact(url)}: it is not a valid URL ({exc}).") from None
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        shown = repr(scheme[:20]) if scheme else "(none)"
        raise UserError(f"Refusing to fetch {redact(url)}: unsupported URL scheme {shown}; "
                        "only http and https URLs are allowed.")
    if not parts.hostname:
        raise UserError(f"Refusing to fetch {redact(url)}: the URL has no host name (only http and https URLs "
                        "with a host are allowed).")
    return parts, _checked_host(url, parts.hostname), _checked_port(url, parts)


def _checked_port(url: str, parts: SplitResult) -> int:
    try:
        port = parts.port  # None when the URL names none
    except ValueError:  # not a number, or above 65535
        port = 0
    if port == 0:
        raise UserError(f"Refusing to fetch {redact(url)}: its port {(_port_text(parts) or '')[:12]!r} is not a "
                        "number from 1 to 65535.")
    return port or (443 if parts.scheme.lower() == "https" else 80)


def _port_text(parts: SplitResult) -> Optional[str]:
    """What follows the host's colon, or None when the URL names no port."""
    host_and_port = parts.netloc.rpartition("@")[2]
    after_host = host_and_port.rpartition("]")[2] if host_and_port.startswith("[") else host_and_port
    return after_host.partition(":")[2] if ":" in after_host else None


def _checked_host(url: str, hostname: str) -> str:
    try:
        return str(ipaddress.ip_address(hostname))
    except ValueError:
        pass
    try:
        ascii_host = hostname.encode("idna").decode("ascii")  # checks label lengths too
    except UnicodeError:
        ascii_host = ""
    labels = hostname.rstrip(".").split(".")
    if not ascii_host or len(ascii_host) > MAX_HOST_LENGTH or any(len(label) > MAX_LABEL_LENGTH for label in labels):
        raise UserError(f"Refusing to fetch {redact(url)}: its host name is not valid (at most {MAX_HOST_LENGTH} "
                        f"characters, in dot-separated labels of 1 to {MAX_LABEL_LENGTH}).")
    return ascii_host


def _resolve(url: str, host: str, port: int) -> list[str]:
    """The host's addresses in the resolver's order of preference, within the running fetch's deadline."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    deadline: Optional[_Deadline] = getattr(_this_fetch, "deadline", None)
    outcome: dict = {}

    def look_up() -> None:
        try:
            outcome["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            outcome["error"] = exc

    if deadline is None:
        look_up()
    else:  # getaddrinfo cannot be interrupted: wait for it in a thread, at most until the deadline
        resolver = threading.Thread(target=look_up, name="rollover-resolve", daemon=True)
        resolver.start()
        resolver.join(max(deadline.left(), 0))
    if "infos" not in outcome:
        in_time = "" if "error" in outcome else " in time"
        raise UserError(f"Could not fetch {redact(url)}: could not resolve {host}{in_time}.")
    addresses = list(dict.fromkeys(info[4][0].split("%")[0] for info in outcome["infos"]))
    if not addresses:
        raise UserError(f"Could not fetch {redact(url)}: could not resolve {host}.")
    return addresses


def redact(url: str) -> str:
    """scheme://host[:port]/path: query strings and credentials may carry secrets (SAS tokens...).

    Never raises, whatever the URL, so that it can report any other error; cut to one line.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:  # e.g. an unclosed IPv6 bracket
        parts, host = None, ""
    if parts is None or not parts.scheme or not host:
        return repr(url.split("?", 1)[0].split("#", 1)[0].rpartition("@")[2][:80])
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # a non-numeric port: show none rather than fail while reporting another error
        port = ""
    shown = f"{parts.scheme}://{host}{port}{parts.path}"
    return shown if len(shown) <= SHOWN_URL_CHARACTERS else shown[:SHOWN_URL_CHARACTERS - 3] + "..."


def entra_federation_metadata_url(tenant_id: str, app_id: str, base: str = "https://login.microsoftonline.com") -> str:
    """Per-app federation metadata URL (notes 1d); tenant as GUID or domain, app as its appId GUID."""
    tenant_id, app_id = tenant_id.strip(), app_id.strip()
    if not (GUID.match(tenant_id) or TENANT_DOMAIN.match(tenant_id)):
        raise UserError(f"{tenant_id[:80]!r} is not a tenant ID (a GUID) or a tenant domain name.")
    if not GUID.match(app_id):
        raise UserError(f"{app_id[:80]!r} is not an application (client) ID; it should look like a GUID.")
    return (f"{base.rstrip('/')}/{quote(tenant_id)}/federationmetadata/2007-06/federationmetadata.xml"
            f"?appid={quote(app_id)}")


# ---------------------------------------------------------------------------------------------
# The fetch


def _fetch(http: requests.Session, url: str, max_bytes: int, timeout: float, deadline: _Deadline,
           allow_private: bool) -> bytes:
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        with _get(http, current, timeout, deadline, allow_private) as response:
            if response.is_redirect:
                current = _redirect_target(current, response.headers.get("Location", ""))
                continue
            if response.status_code >= 400:
                raise UserError(f"Could not fetch {redact(current)}: the server answered HTTP {response.status_code}.")
            return _read_limited(response, current, max_bytes, deadline)
    raise UserError(f"Could not fetch {redact(url)}: more than {MAX_REDIRECTS} redirects.")


def _get(http: requests.Session, url: str, timeout: float, deadline: _Deadline,
         allow_private: bool) -> requests.Response:
    """The response to one GET (headers read, body not yet); tries the host's next address if one refuses."""
    parts, host, port = _checked_url(url)
    addresses = _resolve(url, host, port) if allow_private else [public_address(url)]
    for index, address in enumerate(addresses):
        target = _pinned(http, parts, host, address, deadline)
        try:
            return http.get(target, headers={"Host": _host_header(parts, host)}, auth=_credentials(parts),
                            stream=True, allow_redirects=False, timeout=_remaining(deadline, timeout, url))
        except requests.RequestException as exc:
            if deadline.expired or deadline.left() <= 0:
                raise UserError(f"Could not fetch {redact(url)}: the server did not answer in time.") from exc
            if index + 1 < len(addresses) and _could_not_connect(exc):
                continue
            raise UserError(f"Could not fetch {redact(url)}: {_reason(exc)}.") from exc
        except ValueError:  # requests parses a redirect's Location even when not following it
            raise UserError(f"Could not fetch {redact(url)}: it redirects to an invalid URL.") from None
    raise AssertionError("unreachable: _resolve returns at least one address")


def _pinned(http: requests.Session, parts: SplitResult, host: str, address: str, deadline: _Deadline) -> str:
    """The URL rewritten to a checked IP, served by an adapter that keeps TLS on the real host name."""
    ip_host = f"[{address}]" if ":" in address else address
    netloc = f"{ip_host}:{parts.port}" if parts.port else ip_host
    http.mount(f"{parts.scheme}://{netloc}/", _PinnedHostAdapter(host, deadline))
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))


def _credentials(parts: SplitResult) -> Optional[tuple[str, str]]:
    """user:password@ of this hop's own URL (the pinned URL has none), for HTTP Basic authentication."""
    return (unquote(parts.username), unquote(parts.password or "")) if parts.username else None


def _host_header(parts: SplitResult, host: str) -> str:
    bracketed = f"[{host}]" if ":" in host else host
    return f"{bracketed}:{parts.port}" if parts.port else bracketed


def _redirect_target(current: str, location: str) -> str:
    try:
        return urljoin(current, location)
    except ValueError:
        raise UserError(f"Could not fetch {redact(current)}: it redirects to an invalid URL.") from None


def _remaining(deadline: _Deadline, timeout: float, url: str) -> float:
    left = deadline.left()
    if left <= 0 or deadline.expired:
        raise UserError(f"Could not fetch {redact(url)}: the server did not answer in time.")
    return min(timeout, left)


def _read_limited(response: requests.Response, url: str, max_bytes: int, deadline: _Deadline) -> bytes:
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
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
        _remaining(deadline, 1, url)
        raise UserError(f"Could not fetch {redact(url)}: {_reason(exc)}.") from exc
    _remaining(deadline, 1, url)  # a socket shut down at the deadline reads as the end: not a whole body
    return bytes(body)


def _could_not_connect(exc: requests.RequestException) -> bool:
    """The connection itself failed (refused, unreachable, timed out): another address may work."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, urllib3.exceptions.ConnectTimeoutError)  # NewConnectionError included


def _reason(exc: Exception) -> str:
    if isinstance(exc, (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError)):
        return "the server did not answer in time"
    if isinstance(exc, requests.exceptions.SSLError):
        return "its TLS certificate could not be verified or the TLS connection failed"
    if isinstance(exc, (requests.ConnectionError, urllib3.exceptions.ProtocolError, ConnectionError)):
        return "could not connect"
    if isinstance(exc, (requests.exceptions.ContentDecodingError, urllib3.exceptions.DecodeError)):
        return "its compressed body could not be decoded"
    return type(exc).__name__
