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

from cards.paths import PathsSaid
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
    """The card. Thumbprints in what it shows at first are shortened (010A52D9…E357), those behind its
    ShowCard buttons stay whole; each "where to click" path is spelled out once (cards.paths)."""
    if actions and len(actions) > MAX_ACTIONS:
        raise ValueError(f"a Webex card shows at most {MAX_ACTIONS} buttons, got {len(actions)}")
    for owner, name in _texts(body, into_show_cards=False):
        setattr(owner, name, shorten_thumbprints(getattr(owner, name)))
    said = PathsSaid()
    for owner, name in _texts([*body, *(actions or [])], into_show_cards=True):
        setattr(owner, name, said.text(getattr(owner, name)))
    return AdaptiveCard(body=body, actions=actions or None)


def _texts(element: Any, *, into_show_cards: bool) -> list[tuple[Any, str]]:
    """(element, attribute) of every text and fact in ``element``, in reading order. A walk with a stack (the
    next item on top), not nested generators: a reminder sweep builds a card per reminder, and the recursive
    walk cost more than building the card."""
    found: list[tuple[Any, str]] = []
    pending = [element]
    while pending:
        item = pending.pop()
        if isinstance(item, list):
            pending.extend(reversed(item))
            continue
        if not hasattr(item, "to_dict"):
            continue
        if isinstance(item, ShowCard):
            if into_show_cards and item.card is not None:
                pending.append(item.card.actions or [])
                pending.append(item.card.body or [])
            continue
        if isinstance(item, TextBlock) and isinstance(item.text, str):
            found.append((item, "text"))
        elif isinstance(item, Fact):
            found.append((item, "title"))
            found.append((item, "value"))
        for name in ("actions", "facts", "columns", "items"):   # pushed last-first: popped items, columns, ...
            children = getattr(item, name, None)
            if children:
                pending.append(children)
    return found
