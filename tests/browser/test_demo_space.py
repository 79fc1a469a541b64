"""`bot.py demo --web`: the demo space in chromium, driven as its members would, against the real bot.

Every click and message goes through the page to the local Webex API, which signs and delivers the webhooks to
the bot; the bot's answers come back into the page by its own polling. Screenshots of each test's last state go
to ``$ROLLOVER_SCREENSHOTS`` when it is set.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, Iterator

import pytest
from playwright.sync_api import expect

from fakes.demo import demo_site_admin_metadata
from fakes.web.demo_web import space_page, web_world

pytestmark = pytest.mark.browser

WAIT_MS = 30_000     # the bot answers within a second; a loaded CI machine gets room


class DemoSpace:
    """The page as one member sees it, with what a person does there."""

    def __init__(self, world: Any, server: Any, page: Any) -> None:
        self.world, self.server, self.page = world, server, page
        page.goto(server.url)
        expect(page.locator("body[data-ready]")).to_have_count(1)

    def act_as(self, person: Any) -> None:
        self.page.select_option("#member", person.id)
        expect(self.page.locator("#member")).to_have_value(person.id)

    def say(self, text: str) -> None:
        self.page.fill("#text", text)
        self.page.press("#text", "Enter")
        expect(self.messages(text)).to_have_count(1)

    def drop(self, path: Path) -> None:
        """Attach a file (as dropping it on the page does) and send it."""
        self.page.set_input_files("#file", path)
        expect(self.page.locator("#attachment-name")).to_have_text(path.name)
        self.page.click("#send")
        expect(self.page.locator("li.message .files a", has_text=path.name)).to_have_count(1)

    def messages(self, containing: str) -> Any:
        return self.page.locator("#timeline li.message", has_text=containing)

    def card(self, containing: str) -> Any:
        """The newest card showing ``containing``."""
        card = self.page.locator("#timeline .webex-card", has_text=containing).last
        expect(card).to_be_visible(timeout=WAIT_MS)
        return card

    def click(self, button: str, *, on: str) -> None:
        """Click ``button`` on the newest card showing ``on``."""
        self.card(on).get_by_role("button", name=button, exact=True).click()

    def active_certificate(self, app: str) -> str:
        return self.page.locator(f'#entra section[data-app="{app}"] li.cert.active').get_attribute("data-thumbprint")


@pytest.fixture
def space(chromium: tuple[Any, str], tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[DemoSpace]:
    browser, _assets = chromium
    world = web_world(str(tmp_path / "rollover.sqlite3"), out=io.StringIO())
    server = space_page(world)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield DemoSpace(world, server, page)
        if os.environ.get("ROLLOVER_SCREENSHOTS"):
            page.screenshot(path=Path(os.environ["ROLLOVER_SCREENSHOTS"]) / f"{request.node.name}.png")
    finally:
        page.close()
        server.stop()
        world.stop()
    assert not errors, f"the page threw: {errors}"


def test_the_whole_entra_signing_rotation_in_the_page(space):
    world = space.world
    world.say(world.alice, "watch Cisco Webex")             # the space tracks the app (a scene of the demo)
    old_active = space.active_certificate("Cisco Webex")

    space.say("status")
    space.click("Start rotation: Cisco Webex", on="SSO certificates of this space")
    expect(space.card("Rotation #1: Cisco Webex")).to_contain_text("Waiting for approval")

    space.act_as(world.bob)
    space.click("Approve", on="Rotation #1")
    space.act_as(world.alice)
    space.click("Now: I'm ready", on="Rotation #1")
    space.act_as(world.bob)
    space.click("Approve", on="Rotation #1")
    expect(space.page.locator('#entra section[data-app="Cisco Webex"] li.cert.active')).not_to_have_attribute(
        "data-thumbprint", old_active, timeout=WAIT_MS)
    new_active = space.active_certificate("Cisco Webex")
    expect(space.page.locator("#entra-writes")).to_contain_text("PATCH")

    space.act_as(world.alice)
    space.click("Sign-in works", on="Rotation #1")
    expect(space.card("Rotation #1")).to_contain_text("Done")
    assert new_active != old_active and space.active_certificate("Cisco Webex") == new_active


def test_site_administration_file_drop_and_rotate_webex_sp(space, tmp_path):
    world = space.world
    world.say(world.alice, "watch Webex Meetings")
    metadata = tmp_path / "Webex_SP_saml2_metadata.xml"
    metadata.write_bytes(demo_site_admin_metadata(days_left=365))
    verification = space.page.locator('#entra section[data-app="Webex Meetings (contoso.webex.com)"] '
                                      '[data-kind="verification"] li.cert[data-thumbprint]')
    before = verification.count()

    space.drop(metadata)
    expect(space.messages("Site Administration").last).to_be_visible(timeout=WAIT_MS)
    space.say("rotate webex-sp Webex Meetings (contoso.webex.com)")
    space.act_as(world.bob)
    space.click("Approve", on="Webex Meetings")
    space.act_as(world.alice)
    space.click("Activated in Webex", on="Webex Meetings")
    expect(space.card("Webex Meetings")).to_contain_text("Done")
    expect(verification).to_have_count(before + 1)


def test_a_requester_approving_their_own_rotation_is_refused_privately(space):
    world = space.world
    world.say(world.alice, "rotate Cisco Webex")

    space.click("Approve", on="Rotation #1")

    refusal = space.page.locator("#timeline li.message.private")
    expect(refusal).to_have_count(1, timeout=WAIT_MS)
    expect(refusal).to_contain_text("Only you can see this")
    space.act_as(world.bob)                                  # Bob, in the same space, sees no refusal
    expect(space.card("Rotation #1")).to_contain_text("Waiting for approval")
    expect(space.page.locator("#timeline li.message.private")).to_have_count(0)
