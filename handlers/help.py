"""help: the list of commands, generated from the registry; its buttons run quick commands."""

from cards.help import help_card, help_text
from handlers import actions as action_ids
from rollover.errors import UserError
from rollover.pipeline.dispatcher import Context
from rollover.pipeline.registry import card_action, command


@command("help")
def show_help(ctx: Context) -> None:
    """Show what I can do."""
    commands = ctx.services.registry.sorted_commands()
    ctx.reply(help_text(commands), card=help_card(commands))


@card_action(action_ids.RUN_COMMAND)
def run_command_button(ctx: Context) -> None:
    """A quick button: run the named command with no arguments, as if it had been typed."""
    spec = ctx.services.registry.find_command(str(ctx.inputs.get("command", "")))
    if spec is None or spec.button is None:
        raise UserError("That button runs a command I no longer have; type `help` for the current list.")
    ctx.text, ctx.args = spec.name, ""
    spec.handler(ctx)
