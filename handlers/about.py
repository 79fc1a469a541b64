"""about: what this Rollover instance runs with (versions, storage, Webex, Graph), without secrets."""

from cards.about import about_card, about_text
from handlers.registry import command


@command("about", button="About")
def show_about(ctx) -> None:
    """Show this bot's version, storage and connections (no secrets)."""
    facts = deployment_facts(ctx)
    ctx.reply(about_text(facts), card=about_card(facts))


def deployment_facts(ctx) -> list[tuple[str, str]]:
    import bot   # the version lives with the entry point
    config = ctx.config
    storage_state = "reachable" if ctx.storage.ping() else "unreachable"
    who = ", ".join([*config.allowed_domains, *config.allowed_people]) or "nobody"
    return [
        ("Version", bot.VERSION),
        ("Database", f"SQLite, {storage_state}"),
        ("Webex API", config.webex_base_url),
        ("Microsoft Graph", "connected" if ctx.services.entra is not None else "not configured"),
        ("Allowed", who),
        ("Rooms", ", ".join(config.allowed_rooms) or "any room with an allowed person"),
    ]
