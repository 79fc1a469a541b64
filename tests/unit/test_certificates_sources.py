"""fetch_url against a loopback HTTP server (127.0.0.1 only) and the Entra metadata URL builder."""

import io
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rollover.certificates.check_cli import run_check
from rollover.certificates.sources import entra_federation_metadata_url, fetch_url
from rollover.errors import UserError
from tests.support.certfactory import make_cert, pem_of, utc

BODY = b"x" * 5000


class Handler(BaseHTTPRequestHandler):
    routes = {}

    def do_GET(self):  # noqa: N802 (http.server naming)
        if self.path == "/trickle":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            for _ in range(100):           # one byte every 0.2 s: 20 s in all
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.2)
            return
        status, headers, body = self.routes.get(self.path.split("?")[0], (404, {}, b"missing"))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if "Content-Length" not in headers and "Connection" not in headers:  # "Connection: close" = stream to EOF
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def log_message(self, *args):
        """Keep test output quiet."""


@pytest.fixture(scope="module")
def server():
    cert_pem = pem_of(make_cert("served", utc(2025, 1, 1), utc(2027, 1, 1))[0])
    Handler.routes = {
        "/ok": (200, {}, BODY),
        "/cert.pem": (200, {}, cert_pem),
        "/declared-big": (200, {"Content-Length": "999999"}, b""),
        "/undeclared-big": (200, {"Connection": "close"}, BODY * 3),
        "/to-ok": (302, {"Location": "/ok"}, b""),
        "/to-file": (302, {"Location": "file:///etc/passwd"}, b""),
        "/loop": (302, {"Location": "/loop"}, b""),
        "/forbidden": (403, {}, b"no"),
        "/to-metadata": (302, {"Location": "http://169.254.169.254/latest/meta-data/"}, b""),
    }
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_fetch_returns_body_and_follows_http_redirects(server):
    assert fetch_url(f"{server}/ok", max_bytes=10_000) == BODY
    assert fetch_url(f"{server}/to-ok", max_bytes=10_000) == BODY


@pytest.mark.parametrize("path", ["/declared-big", "/undeclared-big"])
def test_size_limit(server, path):
    with pytest.raises(UserError, match="limit"):
        fetch_url(f"{server}{path}", max_bytes=len(BODY) * 2)


def test_redirect_to_file_scheme_is_refused(server):
    with pytest.raises(UserError, match="only http and https"):
        fetch_url(f"{server}/to-file", max_bytes=10_000)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/x", "gopher://x", "http://"])
def test_non_http_urls_are_refused_without_a_request(url):
    with pytest.raises(UserError, match="only http and https"):
        fetch_url(url, max_bytes=10)


def test_http_errors_redirect_loops_and_dead_ports(server):
    with pytest.raises(UserError, match="HTTP 403"):
        fetch_url(f"{server}/forbidden", max_bytes=10)
    with pytest.raises(UserError, match="redirects"):
        fetch_url(f"{server}/loop", max_bytes=10)
    with pytest.raises(UserError, match="could not connect"):
        fetch_url("http://127.0.0.1:9/x", max_bytes=10, timeout=2)


def test_error_messages_hide_query_strings(server):
    with pytest.raises(UserError) as caught:
        fetch_url(f"{server}/forbidden?sig=SECRET", max_bytes=10)
    assert "SECRET" not in str(caught.value)


def test_check_cli_reads_urls(server):
    out = io.StringIO()
    code = run_check(["--json", "--now", "2025-06-01T00:00:00Z", f"{server}/cert.pem"], out, io.StringIO())
    [source] = json.loads(out.getvalue())["sources"]
    assert code == 0 and source["error"] is None and source["certificates"][0]["subject"] == "CN=served"


def test_entra_federation_metadata_url():
    tenant, app = "268da1a1-9db4-48b9-b1fe-683250ba90cc", "0f9e8d7c-6b5a-4321-8fed-cba987654321"
    assert entra_federation_metadata_url(tenant, app) == (
        f"https://login.microsoftonline.com/{tenant}/federationmetadata/2007-06/federationmetadata.xml?appid={app}")
    assert entra_federation_metadata_url("contoso.onmicrosoft.com", app, base="http://127.0.0.1:8089/").startswith(
        "http://127.0.0.1:8089/contoso.onmicrosoft.com/federationmetadata/")


@pytest.mark.parametrize("tenant, app", [
    ("../../evil", "0f9e8d7c-6b5a-4321-8fed-cba987654321"),
    ("268da1a1-9db4-48b9-b1fe-683250ba90cc", "not-a-guid&x=1"),
])
def test_entra_metadata_url_refuses_bad_ids(tenant, app):
    with pytest.raises(UserError):
        entra_federation_metadata_url(tenant, app)


def test_a_trickling_server_runs_out_of_time(server):
    started = time.monotonic()
    with pytest.raises(UserError, match="did not answer in time"):
        fetch_url(f"{server}/trickle", max_bytes=10_000, timeout=5, deadline_seconds=1)
    assert time.monotonic() - started < 3


def test_private_addresses_are_refused_when_not_allowed(server):
    with pytest.raises(UserError, match="internal address"):
        fetch_url(f"{server}/ok", max_bytes=10_000, allow_private=False)


def test_every_redirect_hop_is_checked_not_only_the_first(server, monkeypatch):
    """A public URL that redirects to the cloud metadata address is refused at the second hop."""
    from rollover.certificates import sources
    real = sources.public_address
    port = server.rsplit(":", 1)[1]
    # The first hop's host stands in for a public server (it is our loopback one).
    monkeypatch.setattr(sources, "public_address",
                        lambda url: "127.0.0.1" if "public.test" in url else real(url))
    with pytest.raises(UserError, match="internal address"):
        fetch_url(f"http://public.test:{port}/to-metadata", max_bytes=10_000, allow_private=False)
    assert fetch_url(f"http://public.test:{port}/ok", max_bytes=10_000, allow_private=False) == BODY
