"""The about card: deployment facts as a fact set."""

from __future__ import annotations

from webexpythonsdk.models.cards import AdaptiveCard

from cards.common import card, facts, heading


def about_card(deployment: list[tuple[str, str]]) -> AdaptiveCard:
    return card([*heading("About this Rollover"), facts(deployment)])


def about_text(deployment: list[tuple[str, str]]) -> str:
    return "About this Rollover:\n" + "\n".join(f"- {title}: {value}" for title, value in deployment)
