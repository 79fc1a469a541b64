"""forget <n>: stop tracking a source (its certificates get no more reminders)."""

from rollover.errors import UserError
from rollover.pipeline.dispatcher import Context
from rollover.pipeline.registry import command


@command("forget", usage="forget <source number>")
def forget_source(ctx: Context) -> None:
    """Stop tracking source #n of this space (numbers are shown by `status`)."""
    sources = ctx.storage.tracking.sources(room_id=ctx.room_id)
    text = ctx.args.strip().lstrip("#")
    if not text.isdigit() or not 1 <= int(text) <= len(sources):
        listing = ", ".join(f"#{n} {s.label}" for n, s in enumerate(sources, start=1)) or "none"
        raise UserError(f"Which source? Give its number from `status`. This space tracks: {listing}.")
    source = sources[int(text) - 1]
    ctx.storage.tracking.delete_source(source.id)
    ctx.reply(f"Stopped tracking #{text} {source.label}. Its certificates get no more reminders here.")
