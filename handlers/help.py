"""help: the list of commands, generated from the registry."""

from cards.help import help_card, help_text
from handlers.registry import command


@command("help")
def show_help(ctx) -> None:
    """Show what I can do."""
    commands = ctx.services.registry.sorted_commands()
    ctx.reply(help_text(commands), card=help_card(commands))
