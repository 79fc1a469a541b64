"""A real chromium for the browser tests: one per session, a fresh tab per test.

Nothing is skipped: without chromium or the npm packages the tests fail and say `make browser-deps`.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from fakes.web.browser import launch_chromium, serve_assets


class CardPage:
    """card.html in a tab: show a card, then look at it and click it as a Webex user would."""

    def __init__(self, page: Any, base_url: str) -> None:
        self.page = page
        page.goto(f"{base_url}/static/card.html?width=480")
        self.card = page.locator("#card")

    def show(self, card: Any) -> dict[str, Any]:
        return self.page.evaluate("card => showCard(card)", card)

    def submissions(self) -> list[dict[str, Any]]:
        return self.page.evaluate("window.submissions")

    def opened_urls(self) -> list[str]:
        return self.page.evaluate("window.openedUrls")

    def button(self, title: str) -> Any:
        return self.card.get_by_role("button", name=title, exact=True)


@pytest.fixture(scope="session")
def chromium() -> Iterator[tuple[Any, str]]:
    from playwright.sync_api import sync_playwright

    with serve_assets() as base_url, sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            yield browser, base_url
        finally:
            browser.close()


@pytest.fixture
def card_page(chromium: tuple[Any, str]) -> Iterator[CardPage]:
    browser, base_url = chromium
    page = browser.new_page(viewport={"width": 512, "height": 800})
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield CardPage(page, base_url)
    finally:
        page.close()
    assert not errors, f"the page threw: {errors}"
