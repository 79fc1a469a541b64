"""Who may talk to the bot: allowed e-mail domains, allowed people, allowed rooms.

Checked for every message and, separately, for every card click (with the
person id of the fetched action, never the webhook body). Fails closed: an
empty allow-list allows nobody.
"""

from __future__ import annotations

from rollover.settings import Config

REFUSAL = "Sorry, you are not allowed to use Rollover here. Ask your Webex administrators for access."


def is_room_allowed(config: Config, room_id: str) -> bool:
    """Whether the bot works in this room at all (ROLLOVER_ALLOWED_ROOMS; empty: every room)."""
    return not config.allowed_rooms or room_id in config.allowed_rooms


def is_allowed(config: Config, email: str, room_id: str) -> bool:
    return refusal_reason(config, email, room_id) is None


def refusal_reason(config: Config, email: str, room_id: str) -> str | None:
    """Why this person may not use the bot in this room (for the log), or None when they may."""
    email = (email or "").strip().lower()
    if not email or "@" not in email:
        return "no e-mail address"
    if config.allowed_rooms and room_id not in config.allowed_rooms:
        return "room not in ROLLOVER_ALLOWED_ROOMS"
    domain = email.rsplit("@", 1)[1]
    if email in config.allowed_people or domain in config.allowed_domains:
        return None
    return "neither in ROLLOVER_ALLOWED_DOMAINS nor in ROLLOVER_ALLOWED_PEOPLE"
