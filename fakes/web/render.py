"""Adaptive Cards to PNG, drawn by Microsoft's renderer in chromium with a Webex-like host config.

    results = render_cards([("status", card_dict)], Path("render-out"))
    python -m fakes.web.render CARD.json... --out DIR [--width 480]

Each card is drawn as Webex first shows it (ShowCards closed) and reported with its height, the characters a
reader sees, and what the renderer found wrong with it: an invalid card is reported, never silently drawn.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fakes.web.browser import BrowserMissing, launch_chromium, serve_assets

WEBEX_CARD_WIDTH = 480
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class RenderedCard:
    name: str
    path: Path                 # the PNG
    height: int                # px, the card as first shown, at the requested width
    visible_chars: int         # text a reader sees outside ShowCards (whitespace runs count once)
    errors: list[str] = field(default_factory=list)    # the card is not drawn as its JSON says
    warnings: list[str] = field(default_factory=list)  # advice (hints, missing labels, console warnings)

    @property
    def ok(self) -> bool:
        return not self.errors


def render_cards(cards: list[tuple[str, dict[str, Any]]], out_dir: Path,
                 width: int = WEBEX_CARD_WIDTH) -> list[RenderedCard]:
    """Write ``out_dir/<name>.png`` for each (name, card) and report on each, in order."""
    _check_names([name for name, _ in cards])
    if not 100 <= width <= 2000:
        raise ValueError(f"a card width of {width} px makes no sense; Webex draws cards {WEBEX_CARD_WIDTH} px wide")
    out_dir.mkdir(parents=True, exist_ok=True)
    # Playwright's sync API refuses to start inside a running event loop (a caller's asyncio, or another
    # Playwright session in this thread); a thread of its own never has one.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="render-cards") as pool:
        return pool.submit(_render_all, cards, out_dir, width).result()


def _render_all(cards: list[tuple[str, dict[str, Any]]], out_dir: Path, width: int) -> list[RenderedCard]:
    try:
        from playwright.sync_api import sync_playwright  # a dev dependency: imported only when drawing
    except ImportError as missing:
        raise BrowserMissing(f"{missing}: pip install -r requirements-dev.txt") from missing

    with serve_assets() as base_url, sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = _CardPage(browser, base_url, width)
            return [page.render(name, card, out_dir) for name, card in cards]
        finally:
            browser.close()


def _check_names(names: list[str]) -> None:
    bad = [name for name in names if not _SAFE_NAME.fullmatch(name)]
    if bad:
        raise ValueError(f"card names become file names; use letters, digits, '.', '_' or '-': {bad}")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"two cards would write the same PNG: {repeated}")


class _CardPage:
    """card.html in one tab, reused for every card, with what the page itself complained about."""

    def __init__(self, browser, base_url: str, width: int) -> None:  # noqa: ANN001 - a Playwright Browser
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.page = browser.new_page(viewport={"width": width + 32, "height": 800}, device_scale_factor=1)
        self.page.set_default_timeout(30_000)
        # Nothing leaves the machine: a card's remote image is reported as not loaded, always the same way.
        self._loopback = urlsplit(base_url).netloc
        self.page.route("**/*", self._only_loopback)
        self.page.on("pageerror", lambda error: self.errors.append(f"PageError: {error}"))
        self.page.on("console", self._console)
        self.page.goto(f"{base_url}/static/card.html?width={width}")

    def _only_loopback(self, route) -> None:  # noqa: ANN001 - a Playwright Route
        if urlsplit(route.request.url).netloc == self._loopback:
            route.continue_()
        else:
            self.warnings.append(f"not loaded, only 127.0.0.1 is reachable: {route.request.url}")
            route.abort("blockedbyclient")

    def _console(self, message) -> None:  # noqa: ANN001 - a Playwright ConsoleMessage
        # The blocked loads are reported by URL above; the console only repeats them without it.
        if message.type in ("error", "warning") and "ERR_BLOCKED_BY_CLIENT" not in message.text:
            self.warnings.append(f"Console {message.type}: {message.text}")

    def render(self, name: str, card: dict[str, Any], out_dir: Path) -> RenderedCard:
        self.errors.clear()
        self.warnings.clear()
        report = self.page.evaluate("card => showCard(card)", card)
        path = out_dir / f"{name}.png"
        self.page.locator("#card").screenshot(path=path)
        return RenderedCard(name=name, path=path, height=report["height"], visible_chars=report["visibleChars"],
                            errors=report["errors"] + self.errors, warnings=report["warnings"] + self.warnings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fakes.web.render", description=__doc__.split("\n\n")[0])
    parser.add_argument("cards", nargs="+", type=Path, metavar="CARD.json", help="Adaptive Card JSON files")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the PNG files")
    parser.add_argument("--width", type=int, default=WEBEX_CARD_WIDTH, help="card width in px (default: 480)")
    args = parser.parse_args(argv)
    cards = [(path.stem, _load(parser, path)) for path in args.cards]
    try:
        results = render_cards(cards, args.out, args.width)
    except (BrowserMissing, ValueError) as problem:
        parser.exit(1, f"{parser.prog}: {problem}\n")
    for result in results:
        verdict = "ok" if result.ok else f"{len(result.errors)} error(s)"
        print(f"{result.path}  {args.width}x{result.height} px  {result.visible_chars} chars  {verdict}")
        for line in [*(f"  error: {e}" for e in result.errors), *(f"  warning: {w}" for w in result.warnings)]:
            print(line)
    return 0 if all(result.ok for result in results) else 1


def _load(parser: argparse.ArgumentParser, path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as problem:
        parser.exit(2, f"{parser.prog}: {path}: cannot read a JSON card: {problem}\n")


if __name__ == "__main__":
    sys.exit(main())
