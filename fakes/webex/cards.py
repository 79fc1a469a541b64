"""Adaptive Cards as the local Webex sees them: validation before a card is stored, and what a click submits."""

from __future__ import annotations

import copy
import json
import logging
import re
from pathlib import Path
from typing import Any, Iterable

from fakes.webex.model import MAX_CARD_ACTIONS, MAX_CARD_VERSION

try:
    import jsonschema
    from jsonschema.exceptions import best_match
except ImportError:  # jsonschema is a dev requirement; the demo may run without it.
    jsonschema = None
    best_match = None

logger = logging.getLogger(__name__)


class CardValidator:
    """Checks a card the way Rollover needs Webex to accept it.

    Always: ``type`` AdaptiveCard, ``version`` <= 1.3, ``body`` a list, at most five actions per card.
    With the official 1.3.0 schema file (and jsonschema installed): full Draft-06 validation.
    """

    def __init__(self, schema_path: Path | None):
        self.schema_validator = None
        if schema_path is None or not Path(schema_path).is_file():
            return
        if jsonschema is None:
            logger.warning("jsonschema is not installed: Adaptive Cards get structural checks only")
            return
        schema = json.loads(Path(schema_path).read_text(encoding="utf-8"))
        self.schema_validator = jsonschema.Draft6Validator(schema)

    def error(self, card: Any) -> str | None:
        """Return why ``card`` is rejected, or None when it is acceptable."""
        if not isinstance(card, dict):
            return "Attachment content must be an Adaptive Card object"
        problem = self._structural_error(card)
        if problem is None and self.schema_validator is not None:
            problem = self._schema_error(card)
        if problem is None:
            problem = self._action_count_error(card)
        return problem

    @staticmethod
    def _structural_error(card: dict[str, Any]) -> str | None:
        if card.get("type") != "AdaptiveCard":
            return "Card type must be 'AdaptiveCard'"
        version = card.get("version")
        if not isinstance(version, str) or not re.fullmatch(r"\d+\.\d+", version):
            return "Card version is required, e.g. '1.3'"
        if tuple(int(part) for part in version.split(".")) > MAX_CARD_VERSION:
            return f"Card version {version} is not supported; Webex supports Adaptive Cards up to 1.3"
        if "body" in card and not isinstance(card["body"], list):
            return "Card body must be a list"
        return None

    def _schema_error(self, card: dict[str, Any]) -> str | None:
        error = best_match(self.schema_validator.iter_errors(card))
        if error is None:
            return None
        error = _most_specific(error)
        where = "/" + "/".join(str(part) for part in error.absolute_path)
        return f"Invalid Adaptive Card 1.3: {error.message} (at {where})"

    @staticmethod
    def _action_count_error(card: dict[str, Any]) -> str | None:
        for sub_card in _cards_within(card):
            count = len(_actions_of_card(sub_card))
            if count > MAX_CARD_ACTIONS:
                return f"A card can have at most {MAX_CARD_ACTIONS} actions (buttons); this one has {count}"
        return None


def _most_specific(error: Any) -> Any:
    """Descend through ``anyOf`` contexts to the error of the branch that matched the element type.

    ``best_match`` alone stops at "... is not valid under any of the given schemas"; branches whose
    ``type`` discriminator failed are noise, the remaining branch names the real problem.
    """
    while error.context:
        branches: dict[Any, list[Any]] = {}
        for sub_error in error.context:
            branches.setdefault(sub_error.relative_schema_path[0], []).append(sub_error)
        matching = [
            sub_error
            for branch in branches.values()
            if not any(list(e.relative_path) == ["type"] for e in branch)
            for sub_error in branch
        ]
        error = best_match(matching or error.context)
    return error


def walk(node: Any, *, into_show_cards: bool) -> Iterable[dict[str, Any]]:
    """Yield every dict in a card tree, optionally skipping nested ShowCard cards."""
    if isinstance(node, list):
        for item in node:
            yield from walk(item, into_show_cards=into_show_cards)
    elif isinstance(node, dict):
        yield node
        for key, value in node.items():
            if key == "card" and node.get("type") == "Action.ShowCard" and not into_show_cards:
                continue
            yield from walk(value, into_show_cards=into_show_cards)


def _cards_within(card: dict[str, Any]) -> list[dict[str, Any]]:
    """The card itself plus every card nested in an Action.ShowCard."""
    return [node for node in walk(card, into_show_cards=True)
            if node is card or node.get("type") == "AdaptiveCard"]


def _actions_of_card(card: dict[str, Any]) -> list[dict[str, Any]]:
    """Buttons of one card: its ``actions`` bar plus ActionSets in its body (not nested cards)."""
    actions = list(card.get("actions") or [])
    for node in walk(card.get("body") or [], into_show_cards=False):
        if node.get("type") == "ActionSet":
            actions.extend(node.get("actions") or [])
    return actions


def card_inputs(card: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Input elements of a card, by id."""
    return {node["id"]: node for node in walk(card, into_show_cards=True)
            if str(node.get("type", "")).startswith("Input.") and "id" in node}


def _default_input_value(element: dict[str, Any]) -> str:
    if element.get("type") == "Input.Toggle":
        return str(element.get("value", element.get("valueOff", "false")))
    return str(element.get("value", ""))


def pick_submit(card: dict[str, Any], button: str | None) -> dict[str, Any]:
    submits = [n for n in walk(card, into_show_cards=True) if n.get("type") == "Action.Submit"]
    if button is not None:
        submits = [s for s in submits if button in (s.get("title"), s.get("id"))]
    if len(submits) != 1:
        titles = [s.get("title") for s in walk(card, into_show_cards=True)
                  if s.get("type") == "Action.Submit"]
        raise ValueError(f"pick exactly one Action.Submit with button=<title or id>; card has {titles}")
    return submits[0]


def submitted_inputs(card: dict[str, Any], submit: dict[str, Any],
                      values: dict[str, Any]) -> dict[str, Any]:
    """``data`` of the button merged with the card's input values, as Webex reports them."""
    elements = card_inputs(card)
    unknown = set(values) - set(elements)
    if unknown:
        raise ValueError(f"card has no input(s) {sorted(unknown)}; inputs are {sorted(elements)}")
    data = submit.get("data")
    merged: dict[str, Any] = copy.deepcopy(data) if isinstance(data, dict) else {}
    if submit.get("associatedInputs") == "none":
        return merged
    for input_id, element in elements.items():
        value = str(values[input_id]) if input_id in values else _default_input_value(element)
        if element.get("isRequired") and value == "":
            raise ValueError(f"required input {input_id!r} is empty: a client would not submit")
        merged[input_id] = value
    return merged

