"""Words on cards: plurals, short thumbprints in what is shown at first, Markdown escapes never shown as text."""

from cards.common import card, details, facts, paragraph
from cards.paths import PathsSaid
from cards.text import summarize_card, visible_chars
from rollover.describe import plain, plural, short_thumbprint, shorten_thumbprints, unescape

SHA1 = "010A52D9C0FFEE00112233445566778899AAE357"


def test_plural_counts_say_one_thing_or_many_never_thing_s():
    assert plural(1, "certificate") == "1 certificate" and plural(2, "certificate") == "2 certificates"
    assert plural(0, "problem") == "0 problems"
    assert plural(1, "person") == "1 person" and plural(3, "person") == "3 people"
    assert plural(1, "entry") == "1 entry" and plural(15, "entry") == "15 entries"
    assert plural(2, "named person", "named people") == "2 named people"


def test_a_thumbprint_is_shortened_to_its_first_eight_and_last_four_digits():
    assert short_thumbprint(SHA1) == "010A52D9…E357"
    assert short_thumbprint(SHA1.lower()) == "010A52D9…E357"
    assert shorten_thumbprints(f"certificate {SHA1}, then {SHA1.lower()}.") == \
        "certificate 010A52D9…E357, then 010A52D9…E357."
    # A SHA-256 (64 digits) or a GUID is not a thumbprint.
    assert shorten_thumbprints("A" * 64) == "A" * 64
    assert shorten_thumbprints("0ab4c0de-0000-4000-8000-00000000a001") == "0ab4c0de-0000-4000-8000-00000000a001"


def test_cards_show_short_thumbprints_and_keep_them_whole_behind_details():
    built = card([paragraph(f"Entra signs with {SHA1}."), facts([("SHA-1", SHA1)])],
                 actions=[details("Details", [paragraph(f"Thumbprint {SHA1}")])]).to_dict()
    shown = summarize_card(built)
    assert SHA1 not in shown and "Entra signs with 010A52D9…E357." in shown and "SHA-1: 010A52D9…E357" in shown
    assert f"Thumbprint {SHA1}" in summarize_card(built, opened=True)
    assert visible_chars(built) == len("Entra signs with 010A52D9…E357. SHA-1: 010A52D9…E357 [Details]")


def test_escaped_markdown_reads_as_written():
    text = "Management > Settings [x](y) *a* `b` <@all> back\\slash"
    assert unescape(plain(text)) == text
    shown = summarize_card(card([paragraph(plain(text))]).to_dict())
    assert shown == text and "\\>" not in shown


VERIFICATION = ("Entra admin center > Enterprise applications > Cisco Webex > Single sign-on > SAML Certificates > "
                "Verification certificates")
CONTROL_HUB = "Control Hub > Organization Settings > Authentication"


def test_each_where_to_click_path_is_spelled_out_once_then_named_short():
    said = PathsSaid()
    first = said.text(f"Upload it in {VERIFICATION} first, then activate it in {CONTROL_HUB} (single sign-on).")
    assert VERIFICATION in first and CONTROL_HUB in first
    again = said.text(f"Check {VERIFICATION}. Import it into {CONTROL_HUB} (import the metadata).")
    assert again == ("Check Entra admin center … Verification certificates. Import it into Control Hub … "
                     "Authentication (import the metadata).")
    # A shorter path that is only the beginning of one said is a different place: spelled out once too.
    signing = "Entra admin center > Enterprise applications > Cisco Webex > Single sign-on > SAML Certificates"
    assert said.text(f"Create it in {signing}.") == f"Create it in {signing}."


def test_paths_in_markdown_escaped_text_and_on_the_whole_card_once():
    escaped = plain(f"activate it in {CONTROL_HUB}.")
    built = card([paragraph(escaped), paragraph(escaped)],
                 actions=[details("Details", [paragraph(escaped)])]).to_dict()
    shown = summarize_card(built, opened=True)
    assert shown.count(CONTROL_HUB) == 1 and shown.count("Control Hub … Authentication") == 2


def test_a_console_name_without_a_path_is_left_alone():
    said = PathsSaid()
    text = "Control Hub trusts Entra; Site Administration > SSO Configuration is a place; Control Hub > x."
    assert said.text(text) == text and said.text(text) == text


def test_a_cards_texts_are_walked_in_reading_order_into_show_cards_only_when_asked():
    from webexpythonsdk.models.cards import ActionSet, AdaptiveCard, Column, ColumnSet, Container, Fact, FactSet
    from webexpythonsdk.models.cards import TextBlock as T
    from webexpythonsdk.models.cards.actions import ShowCard, Submit

    from cards.common import _texts
    inner = AdaptiveCard(body=[T(text="s1"), FactSet(facts=[Fact(title="sf", value="sv")])],
                         actions=[ShowCard(title="deep", card=AdaptiveCard(body=[T(text="s2")]))])
    columns = ColumnSet(columns=[Column(items=[T(text="c"), FactSet(facts=[Fact(title="f1", value="v1")])]),
                                 Column(items=[T(text="d")])])
    body = [T(text="a"), Container(items=[T(text="b"), columns]),
            ActionSet(actions=[ShowCard(title="x", card=inner), Submit(title="go")]), T(text="e")]
    actions = [ShowCard(title="more", card=AdaptiveCard(body=[T(text="m1")])), Submit(title="ok")]

    def walked(into_show_cards):
        return [getattr(element, name) for element, name in _texts([*body, *actions], into_show_cards=into_show_cards)]
    assert walked(False) == ["a", "b", "c", "f1", "v1", "d", "e"]
    assert walked(True) == ["a", "b", "c", "f1", "v1", "d", "s1", "sf", "sv", "s2", "e", "m1"]
