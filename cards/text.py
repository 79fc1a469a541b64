"""Cards summarised as plain text: for the demo transcript and the interactive demo."""

from __future__ import annotations

from typing import Any


def summarize_card(card: dict[str, Any]) -> str:
    lines: list[str] = []
    _walk(card.get("body", []), lines)
    buttons = [a.get("title", "?") for a in card.get("actions", []) or []]
    if buttons:
        lines.append("  ".join(f"[{title}]" for title in buttons))
    return "\n".join(lines)


def _walk(elements: list[dict[str, Any]], lines: list[str]) -> None:
    for element in elements:
        kind = element.get("type")
        if kind == "TextBlock":
            lines.append(element.get("text", ""))
        elif kind == "FactSet":
            lines.extend(f"  {f.get('title', '')}: {f.get('value', '')}" for f in element.get("facts", []))
        elif kind == "Container":
            _walk(element.get("items", []), lines)
        elif kind == "ColumnSet":
            for column in element.get("columns", []):
                _walk(column.get("items", []), lines)
        elif kind == "ActionSet":
            lines.append("  ".join(f"[{a.get('title', '?')}]" for a in element.get("actions", [])))
        elif kind and kind.startswith("Input."):
            lines.append(f"<{element.get('label') or element.get('placeholder') or element.get('id')}>")
