"""Who may talk to the bot: allowed e-mail domains, allowed people, allowed rooms.

Checked for every message and, separately, for every card click (with the
person id of the fetched action, never the webhook body). Fails closed: an
empty allow-list allows nobody.
"""

from __future__ import annotations

from settings import Config

REFUSAL = "Sorry, you are not allowed to use Rollover here. Ask your Webex administrators for access."


def is_allowed(config: Config, email: str, room_id: str) -> bool:
    email = (email or "").strip().lower()
    if not email or "@" not in email:
        return False
    if config.allowed_rooms and room_id not in config.allowed_rooms:
        return False
    domain = email.rsplit("@", 1)[1]
    return email in config.allowed_people or domain in config.allowed_domains
