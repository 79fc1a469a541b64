"""URL fetch edges (issue 11, items 7-9): the deadline, malformed URLs, IPv6 spellings of internal addresses.

Every server here listens on 127.0.0.1; name resolution is replaced where a test needs a name, so
no test sends a DNS query. No assertion is about elapsed time: a slow server counts what it
managed to send before the client gave up, and a slow resolver is shown to be still running
when the fetch has already answered.
"""

import io
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rollover.certificates import sources
from rollover.certificates.check_cli import run_check
from rollover.certificates.sources import fetch_url, is_public_address, redact
from rollover.errors import UserError

SLOW_HEADER_BYTES = 400  # at one byte per 50 ms: 20 s of headers, against a 1 s deadline


class TrickleServer:
    """Accepts one connection at a time and sends ``prefix`` then ``trickle`` one byte at a time."""

    def __init__(self, prefix: bytes, trickle: bytes, pause: float = 0.05, read_request: bool = True):
        self.prefix, self.trickle, self.pause, self.read_request = prefix, trickle, pause, read_request
        self.sent = []        # trickled bytes sent per connection before the client went away
        self.finished = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        connection, _ = self.listener.accept()
        with connection:
            if self.read_request:
                connection.recv(65536)
            sent = 0
            try:
                connection.sendall(self.prefix)
                for byte in self.trickle:
                    connection.sendall(bytes([byte]))
                    sent += 1
                    time.sleep(self.pause)
            except OSError:
                pass  # the client closed the connection: what we wanted
            self.sent.append(sent)
        self.finished.set()

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def trickle():
    servers = []

    def start(*args, **kwargs) -> TrickleServer:
        servers.append(TrickleServer(*args, **kwargs))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def slow_headers() -> bytes:
    header = b"X-Slow: " + b"a" * (SLOW_HEADER_BYTES - 12) + b"\r\n"
    return header + b"Content-Length: 2\r\n\r\nok"


def test_headers_sent_a_byte_at_a_time_run_into_the_deadline(trickle):
    """Each byte came well within the read timeout, so only an overall deadline can stop this."""
    server = trickle(b"HTTP/1.1 200 OK\r\n", slow_headers())
    with pytest.raises(UserError, match="did not answer in time"):
        fetch_url(f"http://127.0.0.1:{server.port}/metadata.xml", max_bytes=10_000, timeout=5, deadline_seconds=1)
    assert server.finished.wait(30)
    assert server.sent[0] < SLOW_HEADER_BYTES


def test_a_status_line_sent_a_byte_at_a_time_runs_into_the_deadline(trickle):
    server = trickle(b"", b"HTTP/1.1 200 OK\r\n" + slow_headers())
    with pytest.raises(UserError, match="did not answer in time"):
        fetch_url(f"http://127.0.0.1:{server.port}/", max_bytes=10_000, timeout=5, deadline_seconds=1)
    assert server.finished.wait(30)
    assert server.sent[0] < SLOW_HEADER_BYTES


def test_a_tls_handshake_sent_a_byte_at_a_time_runs_into_the_deadline(trickle):
    """A TLS record header announcing 16 KB, then its bytes one by one."""
    server = trickle(b"\x16\x03\x03\x40\x00", b"\x02" * SLOW_HEADER_BYTES)
    with pytest.raises(UserError, match="did not answer in time"):
        fetch_url(f"https://127.0.0.1:{server.port}/", max_bytes=10_000, timeout=5, deadline_seconds=1)
    assert server.finished.wait(30)
    assert server.sent[0] < SLOW_HEADER_BYTES


def test_a_body_cut_at_the_deadline_is_not_returned_as_the_whole_body(trickle):
    body = b"x" * SLOW_HEADER_BYTES
    server = trickle(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", body)  # no length: the end is EOF
    with pytest.raises(UserError, match="did not answer in time"):
        fetch_url(f"http://127.0.0.1:{server.port}/", max_bytes=10_000, timeout=5, deadline_seconds=1)


def test_a_slow_name_lookup_counts_against_the_deadline(monkeypatch):
    entered, release = threading.Event(), threading.Event()

    def stuck_resolver(host, port, *args, **kwargs):
        entered.set()
        release.wait(60)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(sources.socket, "getaddrinfo", stuck_resolver)
    try:
        with pytest.raises(UserError, match="could not resolve slow.example in time"):
            fetch_url("https://slow.example/metadata.xml", max_bytes=10, deadline_seconds=1)
        assert entered.is_set() and not release.is_set()  # answered while the lookup still hung
    finally:
        release.set()


# ---------------------------------------------------------------------------------------------
# Malformed URLs


@pytest.mark.parametrize("url, reason", [
    ("http://example.com:99999/x", "its port '99999' is not a number from 1 to 65535"),
    ("http://example.com:abc/x", "its port 'abc' is not a number from 1 to 65535"),
    ("http://example.com:0/x", "its port '0' is not a number from 1 to 65535"),
    ("http://[::1/metadata", "it is not a valid URL"),
    ("http://" + "a" * 300 + ".example.com/", "its host name is not valid"),
    ("http://" + "abcdefghi." * 26 + "com/", "its host name is not valid"),
    ("http://a..b/", "its host name is not valid"),
    ("ftp://example.com/metadata.xml", "unsupported URL scheme 'ftp'"),
    ("file:///etc/passwd", "unsupported URL scheme 'file'"),
    ("gopher://example.com/", "unsupported URL scheme 'gopher'"),
    ("example.com/metadata.xml", "unsupported URL scheme (none)"),
    ("http:///metadata.xml", "the URL has no host name"),
    ("https://example.com/" + "a" * 9000, "the URL is longer than 8192 characters"),
])
def test_malformed_urls_get_a_plain_reason_before_any_network_use(url, reason, monkeypatch):
    monkeypatch.setattr(sources.socket, "getaddrinfo", lambda *a, **k: pytest.fail("no lookup expected"))
    with pytest.raises(UserError) as caught:
        fetch_url(url, max_bytes=10)
    message = str(caught.value)
    assert reason in message and message.endswith(".") and len(message) < 300


def test_an_unresolvable_host_is_named(monkeypatch):
    def no_such_host(host, *args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(sources.socket, "getaddrinfo", no_such_host)
    for allow_private in (True, False):
        with pytest.raises(UserError, match=r"could not resolve no-such-host\.example\.$"):
            fetch_url("https://no-such-host.example/federationmetadata.xml", max_bytes=10,
                      allow_private=allow_private)


@pytest.mark.parametrize("url", ["http://[::1/", "http://h:99999/p?sig=SECRET", "http://user:pw@[::1/x",
                                 "https://" + "a" * 5_000_000, "\x00\n://", ""])
def test_redact_never_fails_and_stays_short(url):
    shown = redact(url)
    assert len(shown) < 200 and "SECRET" not in shown and "pw" not in shown


def test_a_redirect_to_a_malformed_url_is_refused_plainly(trickle):
    server = trickle(b"HTTP/1.1 302 Found\r\nLocation: http://[::1/x\r\nContent-Length: 0\r\n\r\n", b"")
    with pytest.raises(UserError, match="redirects to an invalid URL"):
        fetch_url(f"http://127.0.0.1:{server.port}/", max_bytes=10)


def test_check_names_unsupported_schemes_and_reports_the_other_inputs(tmp_path):
    missing = str(tmp_path / "missing.pem")
    out = io.StringIO()
    code = run_check(["--json", "ftp://example.com/metadata.xml", missing], out, io.StringIO())
    ftp, file = json.loads(out.getvalue())["sources"]
    assert code == 3
    assert "unsupported URL scheme 'ftp'" in ftp["error"]
    assert file["error"] == f"Cannot read {missing}: No such file or directory."


# ---------------------------------------------------------------------------------------------
# Internal addresses


@pytest.mark.parametrize("address", [
    "64:ff9b::7f00:1",        # NAT64 of 127.0.0.1 (the issue)
    "64:ff9b::a9fe:a9fe",     # NAT64 of 169.254.169.254, the cloud metadata service
    "64:ff9b::a00:1",         # NAT64 of 10.0.0.1
    "64:ff9b:1::808:808",     # a site's own NAT64 prefix (RFC 8215), whatever it embeds
    "2002:7f00:1::1",         # 6to4 of 127.0.0.1 (the issue)
    "2002:c0a8:101::1",       # 6to4 of 192.168.1.1
    "::127.0.0.1",            # IPv4-compatible (the issue)
    "::a9fe:a9fe",            # IPv4-compatible 169.254.169.254
    "::ffff:127.0.0.1",       # IPv4-mapped
    "::ffff:10.1.2.3",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    "::1", "fe80::1", "fc00::1", "127.0.0.1", "10.0.0.1", "169.254.169.254", "100.64.0.1",
])
def test_internal_addresses_in_every_spelling_are_refused(address):
    assert not is_public_address(address)


@pytest.mark.parametrize("address", ["64:ff9b::808:808", "2002:808:808::1", "::ffff:8.8.8.8",
                                     "2606:4700:4700::1111", "8.8.8.8"])
def test_public_addresses_in_those_spellings_are_allowed(address):
    assert is_public_address(address)


@pytest.mark.parametrize("host", ["[64:ff9b::7f00:1]", "[2002:7f00:1::1]", "[::127.0.0.1]", "[::ffff:7f00:1]"])
def test_chat_urls_with_those_literals_are_refused_before_connecting(host, monkeypatch):
    monkeypatch.setattr(sources.HTTPAdapter, "send", lambda *a, **k: pytest.fail("no request expected"))
    with pytest.raises(UserError, match="is an internal address"):
        fetch_url(f"http://{host}:8080/metadata.xml", max_bytes=10, allow_private=False)


def test_a_name_that_resolves_to_nat64_of_the_metadata_service_is_refused(monkeypatch):
    monkeypatch.setattr(sources.socket, "getaddrinfo", lambda host, port, *a, **k: [
        (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("64:ff9b::a9fe:a9fe", port, 0, 0))])
    with pytest.raises(UserError, match="metadata.example is an internal address"):
        fetch_url("http://metadata.example/latest/meta-data/", max_bytes=10, allow_private=False)


# ---------------------------------------------------------------------------------------------
# Name resolution once, connection as resolved


class Ok(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server naming)
        body = f"host={self.headers['Host']}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        """Quiet."""


def test_the_next_address_is_tried_when_the_first_refuses_the_connection(monkeypatch):
    """A name resolving to a dead address first (as localhost's ::1 often is) still reaches its server."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    port = httpd.server_address[1]
    dead = socket.create_server(("127.0.0.2", 0))
    dead_port = dead.getsockname()[1]
    dead.close()  # nothing listens there now: connection refused
    monkeypatch.setattr(sources.socket, "getaddrinfo", lambda host, p, *a, **k: [
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.2", p)),
        (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", p))])
    try:
        assert fetch_url(f"http://two.example:{port}/", max_bytes=100) == f"host=two.example:{port}".encode()
        with pytest.raises(UserError, match="could not connect"):
            fetch_url(f"http://127.0.0.2:{dead_port}/", max_bytes=100)
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_credentials_in_the_url_go_to_that_host_only(monkeypatch):
    """The URL is rewritten to the checked address; its user:password still reaches the server it names."""
    seen = []

    class Auth(Ok):
        def do_GET(self):  # noqa: N802
            seen.append(self.headers.get("Authorization"))
            super().do_GET()

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Auth)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        port = httpd.server_address[1]
        fetch_url(f"http://reader:s%40cret@127.0.0.1:{port}/", max_bytes=100)
        fetch_url(f"http://127.0.0.1:{port}/", max_bytes=100)
        assert seen == ["Basic cmVhZGVyOnNAY3JldA==", None]  # base64 of reader:s@cret
    finally:
        httpd.shutdown()
        httpd.server_close()
