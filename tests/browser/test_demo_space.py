"""`bot.py demo --web`: the demo space in chromium, driven as its members would, against the real bot.

Every click and message goes through the page to the local Webex API, which signs and delivers the webhooks to
the bot; the bot's answers come back into the page by its own polling. Screenshots of each test's last state go
to ``$ROLLOVER_SCREENSHOTS`` when it is set.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests
from playwright.sync_api import expect

from fakes.demo import demo_site_admin_metadata
from fakes.web.demo_web import space_page, web_world

pytestmark = pytest.mark.browser

WAIT_MS = 30_000     # the bot answers within a second; a loaded CI machine gets room


class DemoSpace:
    """The page as one member sees it, with what a person does there."""

    def __init__(self, world: Any, server: Any, page: Any) -> None:
        self.world, self.server, self.page = world, server, page
        self.me = world.alice                                # the page opens as the requester
        page.goto(server.url)
        expect(page.locator("body[data-ready]")).to_have_count(1)

    def act_as(self, person: Any) -> None:
        self.page.select_option("#member", person.id)
        expect(self.page.locator("#member")).to_have_value(person.id)
        self.me = person

    def mine(self) -> Any:
        return self.page.locator(f'#timeline li.message[data-author="{self.me.display_name}"]')

    def say(self, text: str) -> None:
        count = sum(m["personId"] == self.me.id for m in self.world.webex.messages_in(self.world.room))
        self.page.fill("#text", text)
        self.page.press("#text", "Enter")
        expect(self.mine()).to_have_count(count + 1)
        expect(self.mine().last).to_contain_text(text)

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


# ---- the page's HTTP side, without the browser -----------------------------------------------------------------

def test_the_view_keeps_private_answers_and_files_to_those_who_may_see_them(tmp_path):
    world = web_world(str(tmp_path / "rollover.sqlite3"), out=io.StringIO())
    server = space_page(world)
    try:
        world.say(world.alice, "rotate Cisco Webex")
        world.click(world.alice, "Approve")                   # her own request: refused, privately
        metadata = world.webex.add_file("idb-meta-SP.xml", b"<md/>", "application/xml")
        world.say(world.bob, "", files=[metadata])

        def view(person):
            return requests.get(server.root_url + "/api/space", params={"as": person.id}, timeout=10).json()
        alice_private = [m["markdown"] + m["text"] for m in view(world.alice)["messages"] if m["private"]]
        assert len(alice_private) == 1 and "approve" in alice_private[0].lower()
        assert not [m for m in view(world.bob)["messages"] if m["private"]]
        shared = [m for m in view(world.mallory)["messages"] if m["files"]][-1]["files"][0]
        download = requests.get(server.root_url + shared["url"], params={"as": world.mallory.id}, timeout=10)
        assert (download.status_code, download.content, shared["name"]) == (200, b"<md/>", "idb-meta-SP.xml")
        assert requests.get(server.root_url + "/files/nope", params={"as": world.bob.id}, timeout=10).status_code == 404
        assert requests.get(server.root_url + "/api/space", params={"as": "stranger"}, timeout=10).status_code == 400
        first = requests.get(server.root_url + "/", allow_redirects=False, timeout=10)
        assert first.headers["Location"] == f"/?as={world.alice.id}"        # the story opens as the requester
        # DNS rebinding (another Host) and another site's form posting here are refused.
        rebound = requests.get(server.root_url + "/api/space", params={"as": world.alice.id}, timeout=10,
                               headers={"Host": "attacker.example"})
        forged = requests.post(server.root_url + "/api/messages", params={"as": world.alice.id}, timeout=10,
                               json={"text": "rotate Cisco Webex"}, headers={"Origin": "http://attacker.example"})
        assert (rebound.status_code, forged.status_code) == (403, 403)
    finally:
        server.stop()
        world.stop()


def test_demo_web_plays_the_scenes_then_serves_the_space(capsys):
    from fakes.web.demo_web import run

    seen = {}

    def look(page):
        seen["html"] = requests.get(page.url, timeout=10).text
        requester = next(iter(page.members))
        seen["messages"] = requests.get(page.root_url + "/api/space", params={"as": requester}, timeout=10).json()[
            "messages"]

    assert run(port=0, scenes=[lambda world: world.say(world.alice, "help")], wait=look) == 0
    assert "Acting as" in seen["html"]
    assert [m["card"] is not None for m in seen["messages"]] == [False, True]      # "help", and the help card
    assert re.search(r"served at http://127\.0\.0\.1:\d+/", capsys.readouterr().out)
