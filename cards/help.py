"""The help card, generated from the command registry."""

from __future__ import annotations

from webexpythonsdk.models.cards import AdaptiveCard

from cards.common import MAX_ACTIONS, card, facts, heading, paragraph, submit
from handlers import actions as action_ids
from rollover.pipeline.registry import CommandSpec


def help_card(commands: list[CommandSpec]) -> AdaptiveCard:
    buttons = [submit(spec.button, action_ids.RUN_COMMAND, command=spec.name) for spec in commands if spec.button]
    return card([
        *heading("Rollover", subtitle="Keeps Webex ↔ Entra ID single sign-on certificates from expiring unnoticed."),
        paragraph("Drop a SAML metadata or certificate file here and I check it; in a group space, mention me "
                  "first: @Rollover status."),
        facts((spec.usage, short_summary(spec.summary)) for spec in commands),
    ], actions=buttons[:MAX_ACTIONS])


def short_summary(summary: str) -> str:
    """What a command does, up to the colon that starts its details ('Show one Entra app: its …')."""
    return summary.split(": ")[0].rstrip(".") + "."


def help_text(commands: list[CommandSpec]) -> str:
    """Fallback for clients that cannot show cards."""
    lines = ["Rollover commands:"] + [f"- {spec.usage}: {spec.summary}" for spec in commands]
    return "\n".join(lines)
