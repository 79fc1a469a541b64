"""``make cards``: a screenshot of every card state, drawn by the browser the demo page uses, into docs/cards/.

    python -m fakes.web.gallery [--out docs/cards]

The cards are the bot's own: a demo world (the local Webex, the local Graph and the real bot) is walked through
every state - commands, reminders, and rotations to each of their steps, with the clock moved where a state needs
time to pass (a scheduled window, an expired approval) - and the card each step posted is kept.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from fakes.demo import STOCKHOLM, DemoWorld, digest_morning, sweep_and_show
from fakes.web.browser import BrowserMissing
from fakes.web.render import render_cards
from rollover.rotation import engine as rotation

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "docs" / "cards"
# The order of the gallery; each name is one card state.
STATES = ("help", "about", "status", "explain", "apps", "app", "reminder", "digest", "plan", "window-picker",
          "approval", "waiting-for-activation", "sign-in-check", "roll-back", "rolled-back", "done", "refused",
          "expired")


class _Clock:
    """The services' clock, moved by hand (a window that starts, an approval that expires)."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(timezone.utc) + self.offset


class _Walk:
    """A demo world driven from state to state; ``cards`` keeps the card each state showed."""

    def __init__(self, world: DemoWorld) -> None:
        self.world, self.cards = world, {}
        self.clock = _Clock()
        world.services.clock = self.clock

    def keep(self, name: str, replies: list[dict], containing: str = "") -> None:
        cards = [m["attachments"][0]["content"] for m in replies if m.get("attachments")]
        cards = [card for card in cards if containing in str(card)]
        if not cards:
            raise LookupError(f"{name}: the bot posted no card{f' with {containing!r}' if containing else ''}")
        self.cards[name] = cards[-1]

    def say(self, name: str | None, text: str, person: Any = None, containing: str = "") -> None:
        replies = self.world.say(person or self.world.alice, text)
        if name:
            self.keep(name, replies, containing)

    def click(self, name: str | None, person: Any, button: str, inputs: dict | None = None) -> None:
        world = self.world
        message = world.last_card_with(button)
        before = world._bot_messages()
        world.webex.click(person, message["id"], inputs, button=button)
        replies = world._show_replies(before)
        if name:
            self.keep(name, replies)

    def sweep(self, name: str) -> None:
        before = self.world._bot_messages()
        rotation.sweep(self.world.services)
        self.keep(name, self.world._show_replies(before))


def collect_cards(world: DemoWorld) -> dict[str, dict]:
    """Walk ``world`` through every card state; returns {state: card JSON} in ``STATES`` order."""
    walk, alice, bob = _Walk(world), world.alice, world.bob
    walk.say("help", "help")
    walk.click("about", bob, "About")
    walk.say(None, "watch Cisco Webex")
    walk.say("status", "status")
    walk.say("explain", "explain")
    walk.say("apps", "apps", bob)
    walk.say("app", "app Cisco Webex", bob)
    _reminders(walk)
    # A rotation through every step, then rolled back.
    walk.say("plan", "rotate Cisco Webex")
    walk.click("window-picker", bob, "Approve")
    start = (walk.clock() + timedelta(hours=2)).astimezone(STOCKHOLM)     # windows are in the space's zone
    walk.click("approval", alice, "Schedule this window",
               {"window_date": start.strftime("%Y-%m-%d"), "window_time": start.strftime("%H:%M")})
    walk.click("waiting-for-activation", bob, "Approve")
    walk.clock.offset += timedelta(hours=2, minutes=5)
    walk.sweep("sign-in-check")
    walk.click("roll-back", alice, "Roll back")
    walk.click("rolled-back", bob, "Approve")
    # Again, to the end.
    walk.say(None, "rotate Cisco Webex")
    walk.click(None, bob, "Approve")
    walk.click(None, alice, "Now: I'm ready")
    walk.click(None, bob, "Approve")
    walk.click("done", alice, "Sign-in works")
    # Refused by an approver, and left undecided until it expired.
    walk.say(None, "rotate Salesforce")
    walk.click("refused", bob, "Reject")
    walk.say(None, "rotate Legacy HR portal")
    walk.clock.offset += timedelta(hours=world.config.approval_hours + 1)
    walk.sweep("expired")
    return {name: walk.cards[name] for name in STATES}


def _reminders(walk: _Walk) -> None:
    world = walk.world
    walk.say(None, "remind on")
    walk.say(None, "remind time 09:00 Europe/Stockholm")     # digest_morning() is 09:05 in Stockholm
    morning = digest_morning(world.config.digest_weekday)
    sweeper = world.bot.new_services()                # the scheduler's own clients, as in `bot.py worker`
    try:
        replies = sweep_and_show(world, sweeper, morning)
    finally:
        if sweeper.entra is not None:
            sweeper.entra.close()
    cards = [m["attachments"][0]["content"] for m in replies if m.get("attachments")]
    digests = [card for card in cards if "Weekly digest" in str(card)]
    reminders = [card for card in cards if "Weekly digest" not in str(card)]
    if not (digests and reminders):
        raise LookupError("the reminder sweep posted no reminder or no digest")
    walk.cards["reminder"], walk.cards["digest"] = reminders[0], digests[0]


def build_gallery(out_dir: Path) -> list[Any]:
    """Collect every card state from a fresh demo world and render each to ``out_dir/<state>.png``."""
    with tempfile.TemporaryDirectory(prefix="rollover-cards-") as folder:
        world = DemoWorld(str(Path(folder) / "rollover.sqlite3"), out=io.StringIO(), web=True).start()
        try:
            cards = collect_cards(world)
        finally:
            world.stop()
    return render_cards(list(cards.items()), out_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fakes.web.gallery", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for the PNG files (docs/cards)")
    args = parser.parse_args(argv)
    try:
        results = build_gallery(args.out)
    except BrowserMissing as missing:
        parser.exit(1, f"{parser.prog}: {missing}\n")
    for result in results:
        print(f"{result.path}  {result.height} px  {'ok' if result.ok else '; '.join(result.errors)}")
    return 0 if all(result.ok for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
