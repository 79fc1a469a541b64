"""Each "where to click" path once per card: 'Entra admin center > Enterprise applications > … > Token
encryption' in full the first time, 'Entra admin center … Token encryption' after that.

A path starts at a console's name (Entra admin center, Control Hub, Site Administration) and goes on through
two or more '>' (or '›') steps; Markdown-escaped '\\>' counts too. One left-to-right scan per text, so the
work grows with the text's length only (app names in paths come from Entra).
"""

from __future__ import annotations

import re
from typing import Iterable

_ROOTS = re.compile(r"Entra admin center|Control Hub|Site Administration")
_SEPARATORS = (" \\> ", " > ", " › ")
_STOPS = frozenset(">.;,:()\n›\\")
_MIN_STEPS = 2
# Words that go on with the sentence, never part of a menu name.
_SENTENCE_WORDS = frozenset("first then and or before after if when so to in now again only with for but is are "
                            "must".split())


class PathsSaid:
    """The paths a card (or a text) has spelled out so far; later mentions get the short form."""

    def __init__(self) -> None:
        self._said: set[str] = set()

    def text(self, text: str) -> str:
        if not text or "Entra admin center" not in text and "Control Hub" not in text \
                and "Site Administration" not in text:
            return text
        out, done = [], 0
        for start, end, steps in _paths(text):
            key = text[start:end].replace("\\", "")
            out.append(text[done:start])
            if key in self._said:
                out.append(f"{steps[0]} … {steps[-1]}")
            else:
                self._said.add(key)
                out.append(text[start:end])
            done = end
        out.append(text[done:])
        return "".join(out)

    def lines(self, lines: Iterable[str]) -> list[str]:
        return [self.text(line) for line in lines]


def _paths(text: str) -> list[tuple[int, int, list[str]]]:
    """(start, end, [root, step, …]) of every path in ``text``, left to right, not overlapping."""
    found: list[tuple[int, int, list[str]]] = []
    resume = 0
    for root in _ROOTS.finditer(text):
        if root.start() < resume:
            continue
        end, steps = root.end(), [root.group(0)]
        while True:
            step = _step(text, end)
            if step is None:
                break
            end, name = step
            steps.append(name)
        if len(steps) > _MIN_STEPS:
            found.append((root.start(), end, steps))
            resume = end
    return found


def _step(text: str, at: int) -> tuple[int, str] | None:
    """After a separator at ``at``: the end of the next step and its name, or None."""
    separator = next((s for s in _SEPARATORS if text.startswith(s, at)), None)
    if separator is None:
        return None
    begin = at + len(separator)
    if text.startswith("(", begin):                       # a placeholder step: '(the Webex app)'
        close = text.find(")", begin, begin + 80)
        return None if close < 0 else (close + 1, text[begin:close + 1])
    end = begin
    while end < len(text) and text[end] not in _STOPS and not any(text.startswith(s, end) for s in _SEPARATORS):
        end += 1
    name = _menu_words(text[begin:end])
    return (begin + len(name), name) if name else None


def _menu_words(segment: str) -> str:
    """A step's name without the sentence that goes on after the path ('… Verification certificates first')."""
    words = segment.rstrip().split(" ")
    for index, word in enumerate(words[1:], start=1):
        if word in _SENTENCE_WORDS:
            return " ".join(words[:index])
    return " ".join(words)
