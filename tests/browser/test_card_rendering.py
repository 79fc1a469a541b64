"""Adaptive Cards drawn by Microsoft's renderer in chromium, looked at and clicked as in Webex."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from fakes.web.render import RenderedCard, main, render_cards

pytestmark = pytest.mark.browser


def _shared_cards() -> Path | None:
    """The sample cards of ../shared, when this checkout sits beside it (tests pass without it)."""
    for folder in Path(__file__).resolve().parents:
        if (folder / "shared" / "fixtures" / "cards").is_dir():
            return folder / "shared" / "fixtures" / "cards"
    return None


SHARED_CARDS = _shared_cards()

ROTATION_CARD = {
    "type": "AdaptiveCard",
    "version": "1.3",
    "body": [
        {"type": "TextBlock", "text": "Rotation #7: Cisco Webex", "size": "Large", "weight": "Bolder", "wrap": True},
        {"type": "TextBlock", "wrap": True,
         "text": "**Approve** the new certificate:\n\n- created inactive\n- activated in a window\n\n"
                 "See [the guide](https://example.com/guide). <img src=x onerror=alert(1)>"},
        {"type": "FactSet", "facts": [{"title": "Expires", "value": "2027-01-16"}]},
        {"type": "Input.Text", "id": "comment", "label": "Comment", "placeholder": "optional"},
        {"type": "TextBlock", "text": "hidden until toggled", "isVisible": False},
    ],
    "actions": [
        {"type": "Action.Submit", "title": "Approve", "id": "approve",
         "data": {"action": "rotation.approve", "rotation": 7}},
        {"type": "Action.ShowCard", "title": "Details", "card": {
            "type": "AdaptiveCard",
            "body": [{"type": "TextBlock", "text": "Thumbprint 010A52D9C3E357", "wrap": True},
                     {"type": "Input.ChoiceSet", "id": "window", "value": "now",
                      "choices": [{"title": "Now", "value": "now"}, {"title": "Tonight", "value": "tonight"}]}],
            "actions": [{"type": "Action.Submit", "title": "Pick window", "data": {"action": "rotation.window"}}],
        }},
        {"type": "Action.OpenUrl", "title": "Entra admin center", "url": "https://entra.microsoft.com/"},
    ],
}


def test_text_markdown_and_buttons_are_drawn(card_page):
    report = card_page.show(ROTATION_CARD)

    assert report["errors"] == [] and report["warnings"] == []
    assert card_page.card.locator("strong").inner_text() == "Approve"
    assert card_page.card.locator("li").all_inner_texts() == ["created inactive", "activated in a window"]
    assert card_page.card.get_by_role("link", name="the guide").get_attribute("href") == "https://example.com/guide"
    # Raw HTML in a TextBlock stays text: a card cannot inject markup into the page.
    assert "<img src=x onerror=alert(1)>" in card_page.card.inner_text()
    assert card_page.card.locator("img").count() == 0
    assert card_page.card.locator(".ac-fact-value").inner_text() == "2027-01-16"
    for title in ("Approve", "Details"):
        assert card_page.button(title).is_visible()
    # The renderer gives an Action.OpenUrl button the link role, as screen readers expect.
    assert card_page.card.get_by_role("link", name="Entra admin center", exact=True).is_visible()


def test_show_card_opens_inline_and_is_not_counted_while_closed(card_page):
    report = card_page.show(ROTATION_CARD)
    details = card_page.card.get_by_text("Thumbprint 010A52D9C3E357")
    assert details.count() == 0 or not details.is_visible()
    assert "hidden until toggled" not in card_page.card.inner_text()

    card_page.button("Details").click()

    assert details.is_visible()
    assert card_page.button("Details").get_attribute("aria-expanded") == "true"
    assert card_page.button("Pick window").is_visible()
    shown = card_page.page.evaluate("RolloverCards.visibleChars(document.getElementById('card'))")
    assert shown > report["visibleChars"]


def test_visible_characters_are_what_a_reader_sees(card_page):
    report = card_page.show({"type": "AdaptiveCard", "version": "1.3",
                             "body": [{"type": "TextBlock", "text": "Hello   world"},
                                      {"type": "TextBlock", "text": "secret", "isVisible": False}],
                             "actions": [{"type": "Action.Submit", "title": "Go"},
                                         {"type": "Action.ShowCard", "title": "More", "card": {
                                             "type": "AdaptiveCard",
                                             "body": [{"type": "TextBlock", "text": "x" * 50}]}}]})

    assert report["visibleChars"] == len("Hello world Go More")


def test_submit_reaches_the_hook_with_the_inputs_and_the_data(card_page):
    card_page.show(ROTATION_CARD)
    card_page.card.get_by_label("Comment").fill("looks right")

    card_page.button("Approve").click()

    assert card_page.submissions() == [{"actionId": "approve", "title": "Approve", "inputs": {
        "action": "rotation.approve", "rotation": 7, "comment": "looks right"}}]


def test_submit_in_a_show_card_collects_its_inputs_and_the_parent_card(card_page):
    card_page.show(ROTATION_CARD)
    card_page.card.get_by_label("Comment").fill("after 18:00")
    card_page.button("Details").click()
    card_page.card.locator("select").select_option("tonight")

    card_page.button("Pick window").click()

    assert card_page.submissions() == [{"actionId": None, "title": "Pick window", "inputs": {
        "action": "rotation.window", "window": "tonight", "comment": "after 18:00"}}]


def test_a_required_input_left_empty_stops_the_submit(card_page):
    card_page.show({"type": "AdaptiveCard", "version": "1.3",
                    "body": [{"type": "Input.Text", "id": "reason", "label": "Reason", "isRequired": True,
                              "errorMessage": "Say why"}],
                    "actions": [{"type": "Action.Submit", "title": "Refuse"}]})

    card_page.button("Refuse").click()

    assert card_page.submissions() == []
    assert card_page.card.get_by_text("Say why").is_visible()


def test_open_url_goes_to_its_hook(card_page):
    card_page.show(ROTATION_CARD)

    card_page.card.get_by_role("link", name="Entra admin center", exact=True).click()

    assert card_page.opened_urls() == ["https://entra.microsoft.com/"]
    assert card_page.submissions() == []


@pytest.mark.parametrize("card, expected", [
    ([1, 2], "MissingCardType"),
    ({"type": "AdaptiveCard", "version": "1.3", "body": [{"type": "Graph", "points": [1]}]}, "UnknownElementType"),
    # Table is 1.5: Webex (1.3) does not know it, so neither does the renderer here.
    ({"type": "AdaptiveCard", "version": "1.3", "body": [{"type": "Table", "columns": [], "rows": []}]},
     "UnknownElementType"),
    ({"type": "AdaptiveCard", "version": "1.5", "body": []}, "UnsupportedCardVersion"),
    ({"type": "AdaptiveCard", "version": "1.3", "body": [],
      "actions": [{"type": "Action.Submit", "title": str(n)} for n in range(6)]}, "TooManyActions"),
    ({"type": "AdaptiveCard", "version": "1.3", "body": [{"type": "Input.Text", "id": "a"},
                                                         {"type": "Input.Text", "id": "a"}]}, "DuplicateId"),
])
def test_invalid_cards_are_reported(card_page, card, expected):
    report = card_page.show(card)

    assert any(error.startswith(f"{expected}:") for error in report["errors"]), report


def _png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", header[16:24])


def test_render_cards_writes_one_png_per_card_and_reports_each(tmp_path):
    broken = {"type": "AdaptiveCard", "version": "1.3", "body": [{"type": "Chart"}]}
    cards = [("rotation", ROTATION_CARD), ("broken", broken)]
    if SHARED_CARDS:
        cards += [(path.stem, json.loads(path.read_text())) for path in sorted(SHARED_CARDS.glob("*.json"))]

    results = render_cards(cards, tmp_path / "out")

    assert [result.name for result in results] == [name for name, _ in cards]
    for result in results:
        assert result.path == tmp_path / "out" / f"{result.name}.png"
        assert _png_size(result.path) == (480, result.height)
    rotation, broken_result = results[:2]
    assert rotation.ok and rotation.visible_chars > 100 and rotation.height > 200
    assert not broken_result.ok and broken_result.errors[0].startswith("UnknownElementType:")
    by_name = {result.name: result for result in results}
    if SHARED_CARDS:
        assert by_name["sample_v1.0_Elements_Action.ShowCard"].ok
        assert not by_name["sample_v1.2_Tests_Action.DuplicateIds"].ok
        assert not by_name["sample_v1.2_Tests_FallbackParsing"].ok
        assert by_name["sample_v1.3_Tests_MissingErrorMessages"].warnings


def test_render_cards_width_and_offline_images(tmp_path):
    card = {"type": "AdaptiveCard", "version": "1.3",
            "body": [{"type": "TextBlock", "text": "A long sentence that wraps sooner in a narrow card.", "wrap": True},
                     {"type": "Image", "url": "https://example.com/logo.png"}]}

    [narrow] = render_cards([("narrow", card)], tmp_path, width=240)

    assert _png_size(narrow.path) == (240, narrow.height)
    assert narrow.ok
    assert narrow.warnings == ["not loaded, only 127.0.0.1 is reachable: https://example.com/logo.png"]


@pytest.mark.parametrize("names, width", [(["../escape"], 480), (["a/b"], 480), (["same", "same"], 480),
                                          ([""], 480), (["fine"], 0)])
def test_render_cards_refuses_what_it_cannot_draw(tmp_path, names, width):
    with pytest.raises(ValueError):
        render_cards([(name, ROTATION_CARD) for name in names], tmp_path / "out", width)
    assert not (tmp_path / "out").exists()


def test_cli_draws_files_and_fails_on_an_invalid_card(tmp_path, capsys):
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(ROTATION_CARD))
    bad.write_text(json.dumps({"type": "AdaptiveCard", "version": "1.3", "body": [{"type": "Chart"}]}))

    assert main([str(good), str(bad), "--out", str(tmp_path / "png")]) == 1

    out = capsys.readouterr().out
    assert f"{tmp_path / 'png' / 'good.png'}  480x" in out and "  ok" in out
    assert "bad.png" in out and "1 error(s)" in out and 'error: UnknownElementType: Unknown element type "Chart"' in out
    assert main([str(good), "--out", str(tmp_path / "png")]) == 0


def test_cli_says_which_file_is_not_json(tmp_path, capsys):
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")

    with pytest.raises(SystemExit) as exit_:
        main([str(broken), "--out", str(tmp_path)])

    assert exit_.value.code == 2
    assert "broken.json: cannot read a JSON card" in capsys.readouterr().err


def test_rendered_card_ok_is_no_errors():
    assert RenderedCard("a", Path("a.png"), 10, 5, warnings=["advice"]).ok
    assert not RenderedCard("a", Path("a.png"), 10, 5, errors=["UnknownElementType: x"]).ok


def test_the_asset_server_serves_the_page_and_nothing_else():
    import http.client

    from fakes.web.browser import serve_assets

    def status(base_url: str, path: str) -> int:
        connection = http.client.HTTPConnection(base_url.removeprefix("http://"), timeout=10)
        try:
            connection.request("GET", path)
            return connection.getresponse().status
        finally:
            connection.close()

    with serve_assets() as base_url:
        assert status(base_url, "/static/hostconfig.json") == 200
        assert status(base_url, "/vendor/adaptivecards/adaptivecards.min.js") == 200
        for path in ("/", "/static/", "/static/../../Makefile", "/static/%2e%2e/%2e%2e/Makefile",
                     "/vendor/adaptivecards/../package.json", "/vendor/markdown-it/../../package.json",
                     "/node_modules/adaptivecards/package.json", "/package.json"):
            assert status(base_url, path) == 404, path
