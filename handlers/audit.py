"""audit: the recent audit log entries of this space's rotations."""

from rollover.describe import plural, shorten_thumbprints
from rollover.pipeline.dispatcher import Context
from rollover.pipeline.registry import command
from rollover.rotation.audit import CHAT_ENTRIES, entry_line

MAX_LINE = 300   # one entry per line, thumbprints short; the full text is in `python bot.py audit --json`


@command("audit")
def show_audit(ctx: Context) -> None:
    """Show the recent audit log of this space: requests, approvals, refusals, Graph requests and results."""
    entries = ctx.storage.audit.entries(room_id=ctx.room_id, limit=CHAT_ENTRIES)
    if not entries:
        ctx.reply("The audit log of this space is empty: no rotation was requested here yet.")
        return
    lines = [f"**Audit log of this space**, the latest {plural(len(entries), 'entry')}, oldest first "
             "(`python bot.py audit --json` exports all of them):"]
    lines += [f"- {_shorten(shorten_thumbprints(entry_line(entry)))}" for entry in entries]
    ctx.reply(markdown="\n".join(lines))


def _shorten(line: str) -> str:
    return line if len(line) <= MAX_LINE else line[:MAX_LINE - 1] + "…"
