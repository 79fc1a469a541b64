"""explain: the chain of trust for this space, in plain words."""

from cards.explain import diagnosis_card, diagnosis_text
from handlers.status import apps_due_for_rotation
from rollover.pipeline.dispatcher import Context
from rollover.pipeline.registry import command
from rollover.tracking import room_certificates, room_diagnosis


@command("explain", button="Explain")
def explain(ctx: Context) -> None:
    """Explain which certificate is which, what expires, and what to do (upload to Azure or just activate)."""
    diagnosis = room_diagnosis(ctx.services, ctx.room_id)
    rotatable = apps_due_for_rotation(ctx, room_certificates(ctx.services, ctx.room_id))
    ctx.reply(diagnosis_text(diagnosis, rotatable), card=diagnosis_card(diagnosis, rotatable))
