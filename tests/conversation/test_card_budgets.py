"""The demo's cards read in five seconds: each card type within its budget of visible characters (outside
ShowCards, counted from the card JSON), one row per certificate, short thumbprints, each where-to-click path once,
plurals right, fallback texts complete and free of Markdown escapes, and a transcript two thirds shorter."""

from __future__ import annotations

import io
import json
import re
import tempfile
from pathlib import Path

import pytest

from cards.paths import _paths
from cards.text import summarize_card, visible_chars
from fakes import demo

# Visible characters (outside ShowCards) a card of each type may show; the demo's cards as of issue 15, plus
# a little room. Before issue 15: explain 3,062, status 1,291, a rotation plan 1,888.
BUDGETS = {"help": 1500, "about": 600, "check": 800, "apps": 450, "app": 700, "status": 650, "explain": 1200,
           "reminder": 420, "digest": 520, "rotation": 750}
TRANSCRIPT_BEFORE = 40_568            # characters of the demo transcript before issue 15
THUMBPRINT = re.compile(r"\b[0-9A-F]{40}\b")
WRONG_PLURALS = re.compile(r"\(s\)|(?<!and )\b1 (?:people|days|certificates|problems|things|entries|approvals"
                           r"|reminders)\b|\b(?:[02-9]|\d\d+) (?:person|day|certificate|problem|thing|entry|reminder)"
                           r"\b(?!-)")
ESCAPES = re.compile(r"\\[\\`*_\[\]<>@]")


@pytest.fixture(scope="module")
def played():
    with tempfile.TemporaryDirectory() as folder:
        world = demo.DemoWorld(str(Path(folder) / "demo.sqlite3"), out=io.StringIO()).start()
        try:
            for scene in demo.SCENES:
                scene(world)
        finally:
            world.stop()
        return world.out.getvalue(), world.posted


def kind_of(card: dict) -> str:
    heading = card["body"][0]["text"]
    titles = {a.get("title") for a in card.get("actions") or []}
    for kind, found in [("rotation", "Rotation #" in heading), ("explain", "Chain of trust" in heading),
                        ("status", "SSO certificates of this space" in heading), ("digest", "Weekly digest" in heading),
                        ("reminder", " expires in " in heading or " expired " in heading),
                        ("about", heading == "About this Rollover"), ("help", heading == "Rollover"),
                        ("apps", heading == "SAML apps in Entra ID"),
                        ("check", "Status of this space" in titles), ("app", "Watch in this space" in titles)]:
        if found:
            return kind
    raise AssertionError(f"a card of no known type: {heading}")


def cards(posted) -> list[tuple[str, dict, str]]:
    return [(kind_of(m["attachments"][0]["content"]), m["attachments"][0]["content"], m.get("text") or "")
            for m in posted if m.get("attachments")]


def test_every_card_type_stays_within_its_budget(played):
    _, posted = played
    found = cards(posted)
    assert {kind for kind, _, _ in found} == set(BUDGETS)          # the demo shows every type
    over = [(kind, visible_chars(card), summarize_card(card)[:60]) for kind, card, _ in found
            if visible_chars(card) > BUDGETS[kind]]
    assert over == []


def test_the_transcript_says_the_same_in_two_thirds_of_the_words(played):
    transcript, _ = played
    assert len(transcript) < TRANSCRIPT_BEFORE * 2 / 3
    for scene in ("what it can do", "drops the Webex SP metadata", "which SAML apps expire first",
                  "the chain of trust in plain words", "reminders due and the weekly digest", "snoozes",
                  "the plan first", "Bob approves", "The maintenance window", "signed in",
                  "Site Administration export", "adding Webex's new one to Entra", "the audit log"):
        assert scene in transcript
    assert not THUMBPRINT.search(transcript)                    # 010A52D9…E357 to the eye, whole in files
    assert not WRONG_PLURALS.search(transcript), WRONG_PLURALS.search(transcript)
    assert not ESCAPES.search(transcript)


def test_status_and_the_digest_have_one_row_per_certificate(played):
    _, posted = played
    for kind, card, _ in cards(posted):
        if kind in ("status", "digest"):
            rows = [b for b in card["body"] if b["type"] == "ColumnSet"]
            assert len(rows) == 2, kind              # Entra's certificate (metadata + app), Webex's (signs+encrypts)
            where = " ".join(row["columns"][1]["items"][2]["text"] for row in rows)
            assert "(active)" in where and "(signing, encryption)" in where


def test_each_where_to_click_path_once_per_card_and_the_menu_caveat_once_at_most(played):
    _, posted = played
    for _kind, card, text in cards(posted):
        for whole in (summarize_card(card, opened=True), text):
            spelled = [whole[start:end] for start, end, _ in _paths(whole)]
            assert len(spelled) == len(set(spelled)), (spelled, whole)
    everything = json.dumps([m.get("markdown") or m.get("text") for m in posted] +
                            [m["attachments"][0]["content"] for m in posted if m.get("attachments")])
    assert everything.count("may differ") + everything.count("may word them") <= 1


def test_fallback_texts_are_complete_and_plain(played):
    _, posted = played
    for kind, card, text in cards(posted):
        assert text and not ESCAPES.search(text), (kind, text)
        assert set(THUMBPRINT.findall(json.dumps(card))) <= set(THUMBPRINT.findall(text)), kind
        assert not WRONG_PLURALS.search(text), (kind, text)


def test_reminders_speak_of_their_own_certificate(played):
    _, posted = played
    reminders = {card["body"][0]["text"]: summarize_card(card, opened=True)
                 for kind, card, _ in cards(posted) if kind == "reminder"}
    entra = next(text for heading, text in reminders.items() if "Entra signing certificate" in heading)
    webex = next(text for heading, text in reminders.items() if "Webex SP certificate" in heading)
    assert "Upload" not in entra and "Webex SP certificate" not in entra
    assert "Upload it to Azure first?" in webex and "Entra signing certificate" not in webex


def test_rotation_cards_show_where_the_rotation_is(played):
    _, posted = played
    indicators = [card["body"][2]["text"] for kind, card, _ in cards(posted) if kind == "rotation"]
    assert "1 Create ✓ · 2 Window ✓ · **3 Activate** · 4 Verify · 5 Done" in indicators
    assert "1 Add to Entra ✓ · 2 Activate in Webex ✓ · 3 Done ✓" in indicators
