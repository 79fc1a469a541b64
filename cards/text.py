"""Cards as text: summarised for the demo transcript, and the characters a reader sees at first (card budgets)."""

from __future__ import annotations

import re
from typing import Any

from rollover.describe import unescape

_SPACES = re.compile(r"\s+")
_BOLD = re.compile(r"(?<!\\)\*\*")      # '**' is markup only where not escaped (plain() escapes every '*')


def summarize_card(card: dict[str, Any], *, opened: bool = False) -> str:
    """The card as a reader first sees it: texts without Markdown escapes, facts, inputs, buttons. What a
    ShowCard button opens follows the buttons only when ``opened`` (as if each was clicked)."""
    lines: list[str] = []
    _walk(card.get("body", []), lines)
    buttons = [a.get("title", "?") for a in card.get("actions", []) or []]
    if buttons:
        lines.append("  ".join(f"[{title}]" for title in buttons))
    if opened:
        for title, text in show_card_texts(card).items():
            lines += [f"[{title}] opens:", text]
    return "\n".join(lines)


def markdown_texts(card: dict[str, Any]) -> list[str]:
    """Every TextBlock text and fact of the card as sent (Markdown escapes kept), ShowCards included."""
    found: list[str] = []
    stack: list[Any] = [card]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack += node
        elif isinstance(node, dict):
            if node.get("type") == "TextBlock":
                found.append(node.get("text", ""))
            elif node.get("type") == "FactSet":
                found += [f"{f.get('title', '')}: {f.get('value', '')}" for f in node.get("facts", [])]
            stack += [value for value in node.values() if isinstance(value, (list, dict))]
    return found


def visible_chars(card: dict[str, Any]) -> int:
    """How many characters a reader sees before opening any ShowCard, whitespace runs counted once (as the
    browser renderer counts them, within a few characters: no bullets or list numbers)."""
    return len(_SPACES.sub(" ", summarize_card(card)).strip())


def show_card_texts(card: dict[str, Any]) -> dict[str, str]:
    """What each ShowCard button of the card opens, by button title, summarised."""
    opened = {}
    for action in all_actions(card):
        if action.get("type") == "Action.ShowCard":
            opened[action.get("title", "?")] = summarize_card(action.get("card") or {})
    return opened


def all_actions(card: dict[str, Any]) -> list[dict[str, Any]]:
    """Every button of a card: its actions and those of its ActionSets, wherever they are nested."""
    actions = list(card.get("actions") or [])
    stack = list(card.get("body") or [])
    while stack:
        element = stack.pop()
        actions += element.get("actions", []) if element.get("type") == "ActionSet" else []
        stack += element.get("items", []) + [i for c in element.get("columns", []) for i in c.get("items", [])]
    return actions


def _walk(elements: list[dict[str, Any]], lines: list[str]) -> None:
    for element in elements:
        kind = element.get("type")
        if kind == "TextBlock":
            lines.append(unescape(_BOLD.sub("", element.get("text", ""))))
        elif kind == "FactSet":
            lines.extend(f"  {unescape(f.get('title', ''))}: {unescape(f.get('value', ''))}"
                         for f in element.get("facts", []))
        elif kind == "Container":
            _walk(element.get("items", []), lines)
        elif kind == "ColumnSet":
            _columns(element.get("columns", []), lines)
        elif kind == "ActionSet":
            lines.append("  ".join(f"[{a.get('title', '?')}]" for a in element.get("actions", [])))
        elif kind and kind.startswith("Input."):
            lines.append(f"<{element.get('label') or element.get('placeholder') or element.get('id')}>")


def _columns(columns: list[dict[str, Any]], lines: list[str]) -> None:
    """A column of one line (an emoji, a number) prefixes the next column's first line, as it reads."""
    prefix = ""
    for column in columns:
        own: list[str] = []
        _walk(column.get("items", []), own)
        if len(own) == 1 and column is not columns[-1]:
            prefix += own[0] + " "
            continue
        if own:
            own[0] = prefix + own[0]
            prefix = ""
        lines.extend(own)
    if prefix.strip():
        lines.append(prefix.strip())
