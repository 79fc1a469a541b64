"""Building blocks shared by the card builders."""

from __future__ import annotations

from typing import Any, Iterable

from rollover.describe import plain  # noqa: F401  (the cards' escape is the core's)
from webexpythonsdk.models.cards import (
    AdaptiveCard, Container, Fact, FactSet, Submit, TextBlock,
)
from webexpythonsdk.models.cards.options import (
    ActionStyle, Colors, ContainerStyle, FontSize, FontWeight, Spacing,
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


def card(body: list[Any], actions: list[Submit] | None = None) -> AdaptiveCard:
    if actions and len(actions) > MAX_ACTIONS:
        raise ValueError(f"a Webex card shows at most {MAX_ACTIONS} buttons, got {len(actions)}")
    return AdaptiveCard(body=body, actions=actions or None)

