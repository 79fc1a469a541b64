"""The about card: whether this Rollover can do its job, then the deployment facts."""

from __future__ import annotations

from webexpythonsdk.models.cards import AdaptiveCard

from cards.common import card, facts, heading, paragraph, plain


def about_answer(deployment: list[tuple[str, str]]) -> str:
    """'Ready: …' or what stands in the way (database, Graph, approvers), from the facts themselves."""
    said = dict(deployment)
    problems = []
    if said.get("Database", "").endswith("unreachable"):
        problems.append("the database is unreachable")
    if said.get("Microsoft Graph", "").startswith("not configured"):
        problems.append("Microsoft Graph is not configured (no Entra apps, no rotations)")
    if said.get("Approvers", "").startswith("none"):
        problems.append("no approvers are configured (no rotation can start)")
    if problems:
        return "Not everything works: " + "; ".join(problems) + "."
    writes = said.get("Graph writes", "?")
    return f"Ready: version {said.get('Version', '?')}, database reachable, Graph writes {writes}."


def about_card(deployment: list[tuple[str, str]]) -> AdaptiveCard:
    return card([*heading("About this Rollover"), paragraph(plain(about_answer(deployment))),
                 facts((plain(title), plain(value)) for title, value in deployment)])


def about_text(deployment: list[tuple[str, str]]) -> str:
    return "\n".join([f"About this Rollover: {about_answer(deployment)}"] +
                     [f"- {title}: {value}" for title, value in deployment])
