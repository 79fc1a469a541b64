"""`make cards`: the gallery walks a demo world through every card state the issue lists, and keeps each card."""

import io

from cards.text import summarize_card
from fakes.demo import DemoWorld
from fakes.web.gallery import STATES, collect_cards

# What each state's card says, so a gallery entry is the state it is named after.
SAYS = {"help": "Keeps Webex", "about": "About this Rollover", "status": "SSO certificates of this space",
        "explain": "Chain of trust", "apps": "SAML apps in Entra ID", "app": "Entra enterprise app",
        "reminder": "expires in", "digest": "Weekly digest",
        "plan": "Waiting for approval to create the new certificate",
        "window-picker": "Waiting for a maintenance window",
        "approval": "Waiting for approval to activate the new certificate",
        "waiting-for-activation": "Activation scheduled for the maintenance window",
        "sign-in-check": "Waiting for a test sign-in to Webex", "roll-back": "Waiting for approval to roll back",
        "rolled-back": "Rolled back", "done": "· Done", "refused": "Rejected by", "expired": "· Expired"}


def test_every_card_state_is_collected(tmp_path):
    world = DemoWorld(str(tmp_path / "rollover.sqlite3"), out=io.StringIO(), web=True).start()
    try:
        cards = collect_cards(world)
    finally:
        world.stop()
    assert list(cards) == list(STATES) == list(SAYS)
    for state, words in SAYS.items():
        assert words in summarize_card(cards[state]), state
