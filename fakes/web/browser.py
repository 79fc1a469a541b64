"""What every browser-driven part of the fakes needs: the page assets on a loopback server, and chromium.

The assets are ``fakes/web/static`` plus the two npm packages pinned in ``package.json``, served from
``node_modules`` (never a CDN). The browser is Debian's ``chromium`` launched by Playwright through
``executable_path``: Playwright never downloads one. ``make browser-deps`` installs both.
"""

from __future__ import annotations

import http.server
import posixpath
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parents[2]
STATIC = Path(__file__).resolve().parent / "static"
NODE_MODULES = ROOT / "node_modules"
CHROMIUM = "/usr/bin/chromium"

# URL prefix -> folder. Only the built browser bundles of node_modules are reachable.
ASSET_ROOTS = {
    "/static/": STATIC,
    "/vendor/adaptivecards/": NODE_MODULES / "adaptivecards" / "dist",
    "/vendor/markdown-it/": NODE_MODULES / "markdown-it" / "dist" / "browser",
}

# Offline, reproducible, headless: no GPU, no sandbox (root in containers), and none of the
# background traffic (updates, sync, QUIC probes) that would try to leave this closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--font-render-hinting=none",
]


class BrowserMissing(RuntimeError):
    """Chromium or the npm packages are not installed: a set-up problem with one fix."""


def check_installed() -> None:
    """Fail with the fix, rather than with a Playwright stack trace or a blank page."""
    missing = [str(path) for path in [Path(CHROMIUM), *ASSET_ROOTS.values()] if not path.exists()]
    if missing:
        raise BrowserMissing(f"missing {', '.join(missing)}: run `make browser-deps` "
                             "(apt-get install chromium fonts-liberation, then npm ci)")


def asset_path(url_path: str) -> Path | None:
    """The file a URL path names under ``ASSET_ROOTS`` (None: not an asset; ``..`` never leaves its folder)."""
    path = posixpath.normpath(unquote(urlsplit(url_path).path))
    for prefix, folder in ASSET_ROOTS.items():
        if path.startswith(prefix):
            return folder / path[len(prefix):]
    return None


class _AssetHandler(http.server.SimpleHTTPRequestHandler):
    def translate_path(self, path: str) -> str:
        # Anything else is a 404, never a directory listing.
        return str(asset_path(path) or STATIC / "missing")

    def list_directory(self, path):  # noqa: ANN001 - SimpleHTTPRequestHandler's signature
        self.send_error(404)

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - quiet, as tests expect
        pass


@contextmanager
def serve_assets() -> Iterator[str]:
    """Serve the page assets on 127.0.0.1 (a free port) and yield the base URL."""
    check_installed()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _AssetHandler)
    thread = threading.Thread(target=server.serve_forever, name="web-assets", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def launch_chromium(playwright):  # noqa: ANN001, ANN201 - playwright.sync_api types
    """Debian's chromium, headless, through Playwright's own driver (``playwright install`` is never needed)."""
    check_installed()
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
