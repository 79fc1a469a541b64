"""The ways people really type to a bot: slashes, punctuation, emoji, other people's mentions, any letter case."""

from __future__ import annotations

import pytest

from rollover.integrations.webex_client import Message
from rollover.pipeline.dispatcher import command_text


@pytest.mark.parametrize("typed", ["/help", "help!", "help?", "?", "🔐 help", "HELP.", "-- help"])
def test_decorated_help_is_help(chat, typed):
    reply = chat.say(chat.alice, typed)[0]
    assert reply.card is not None and "Did you mean" not in reply.body


def test_an_emoji_before_status_is_status(chat):
    reply = chat.say(chat.alice, "🔐 status")[0]
    assert "Did you mean" not in reply.body and "don't know" not in reply.body


def test_every_mention_is_removed_not_only_the_bots():
    html = ('<p><spark-mention data-object-type="person" data-object-id="ALICE">Alice</spark-mention> '
            '<spark-mention data-object-type="person" data-object-id="BOT">Rollover</spark-mention> help</p>')
    message = Message(id="M", room_id="R", room_type="group", person_id="P", person_email="a@example.com",
                      text="Alice Rollover help", html=html)
    assert command_text(message, "BOT", "Rollover") == "help"


def test_cleanup_without_a_number_shows_its_own_example(chat):
    assert "e.g. “cleanup 3”" in chat.say(chat.alice, "cleanup")[0].body
    assert "e.g. “cancel 3”" in chat.say(chat.alice, "cancel")[0].body


def test_a_refusal_quoting_typed_text_is_plain_text_no_link_or_mention(chat):
    reply = chat.say(chat.alice, "remind at 1` [Sign in again](https://evil.example/login) <@all> `x")[0]
    assert reply.markdown == "" and "“" in reply.text and "`" not in reply.text.split("is not")[0][:2]
    assert "[Sign in again](https://evil.example/login)" in reply.text     # shown literally, as text


def test_time_zone_names_are_taken_in_any_letter_case(chat):
    reply = chat.say(chat.alice, "remind time 08:30 europe/STOCKHOLM")[0].body
    assert "(Europe/Stockholm)" in reply
