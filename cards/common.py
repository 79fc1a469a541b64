"""Building blocks shared by the card builders."""

from __future__ import annotations

from typing import Any, Iterable

from webexpythonsdk.models.cards import (
    AdaptiveCard,
    Container,
    Fact,
    FactSet,
    ShowCard,
    Submit,
    TextBlock,
)
from webexpythonsdk.models.cards.options import (
    ActionStyle,
    Colors,
    ContainerStyle,
    FontSize,
    FontWeight,
    Spacing,
)

from rollover.describe import (
    plain,  # noqa: F401  (the cards' escape is the core's)
    shorten_thumbprints,
)

MAX_ACTIONS = 5   # Webex renders at most five buttons on a card


def heading(text: str, *, subtitle: str | None = None) -> list[Any]:
    blocks: list[Any] = [TextBlock(text, size=FontSize.LARGE, weight=FontWeight.BOLDER, wrap=True)]
    if subtitle:
        blocks.append(TextBlock(subtitle, isSubtle=True, wrap=True, spacing=Spacing.NONE))
    return blocks


def paragraph(text: str, *, subtle: bool = False, color: Colors | None = None,
              bold: bool = False) -> TextBlock:
    return TextBlock(text, wrap=True, isSubtle=subtle or None, color=color,
                     weight=FontWeight.BOLDER if bold else None)


def facts(pairs: Iterable[tuple[str, str]]) -> FactSet:
    return FactSet([Fact(title, value) for title, value in pairs])


def section(items: list[Any], *, style: ContainerStyle | None = None, separator: bool = True) -> Container:
    return Container(items=items, style=style, separator=separator or None, spacing=Spacing.MEDIUM)


def submit(title: str, action_id: str, *, style: ActionStyle | None = None, **data: Any) -> Submit:
    """A button whose submit data names the handler (``action``) and carries its arguments."""
    return Submit(title=title, data={"action": action_id, **data}, style=style)


def details(title: str, body: list[Any]) -> ShowCard:
    """A button that opens more of the card in place (Webex draws Action.ShowCard inline): the "why", full
    thumbprints, request bodies, history. Thumbprints stay whole in there."""
    return ShowCard(card=AdaptiveCard(body=body), title=title)


def card(body: list[Any], actions: list[Submit | ShowCard] | None = None) -> AdaptiveCard:
    """The card; thumbprints in what it shows at first are shortened (010A52D9…E357), those behind its
    ShowCard buttons stay whole."""
    if actions and len(actions) > MAX_ACTIONS:
        raise ValueError(f"a Webex card shows at most {MAX_ACTIONS} buttons, got {len(actions)}")
    for element in body:
        _shorten_visible(element)
    return AdaptiveCard(body=body, actions=actions or None)


def _shorten_visible(element: Any) -> None:
    """Shorten thumbprints in the texts and facts of ``element`` and everything inside it, ShowCards excepted."""
    if isinstance(element, list):
        for item in element:
            _shorten_visible(item)
        return
    if isinstance(element, ShowCard) or not hasattr(element, "to_dict"):
        return
    if isinstance(element, TextBlock) and isinstance(element.text, str):
        element.text = shorten_thumbprints(element.text)
    elif isinstance(element, Fact):
        element.title, element.value = shorten_thumbprints(element.title), shorten_thumbprints(element.value)
    for name in ("items", "columns", "facts", "actions"):
        _shorten_visible(getattr(element, name, None) or [])

