"""The help card, generated from the command registry."""

from __future__ import annotations

from webexpythonsdk.models.cards import AdaptiveCard

from cards.common import card, facts, heading, paragraph
from handlers.registry import CommandSpec


def help_card(commands: list[CommandSpec]) -> AdaptiveCard:
    return card([
        *heading("Rollover", subtitle="Keeps Webex ↔ Entra ID single sign-on certificates from expiring unnoticed."),
        facts((spec.usage, spec.summary) for spec in commands),
        paragraph("In a group space, mention me first: @Rollover status. "
                  "Drop a SAML metadata or certificate file here and I will check it.", subtle=True),
    ])


def help_text(commands: list[CommandSpec]) -> str:
    """Fallback for clients that cannot show cards."""
    lines = ["Rollover commands:"] + [f"- {spec.usage}: {spec.summary}" for spec in commands]
    return "\n".join(lines)
