"""status: every certificate the space tracks, worst first, with the diagnosis."""


from cards.certificates import empty_status_text, status_card, status_text
from rollover.describe import certificate_rows
from rollover.pipeline.dispatcher import Context
from rollover.pipeline.registry import command
from rollover.tracking import room_certificates, room_diagnosis


@command("status", button="Status")
def show_status(ctx: Context) -> None:
    """Show every certificate tracked in this space, worst first."""
    views = room_certificates(ctx.services, ctx.room_id)
    if not views:
        ctx.reply(empty_status_text())
        return
    numbers = {s.id: n for n, s in enumerate(ctx.storage.tracking.sources(room_id=ctx.room_id), start=1)}
    rows = certificate_rows(views, numbers)
    diagnosis = room_diagnosis(ctx.services, ctx.room_id)
    rotatable = apps_due_for_rotation(ctx, views)
    ctx.reply(status_text(rows, diagnosis, rotatable), card=status_card(rows, diagnosis, rotatable_apps=rotatable))


def apps_due_for_rotation(ctx: Context, views) -> list[str]:
    """The watched Entra apps whose active signing certificate needs attention (warning or worse): an app
    rotated a moment ago gets no Start rotation button (`rotate <app>` still starts one)."""
    due = {view.certificate.details.get("sp_id") for view in views
           if view.certificate.source_kind == "entra-app" and view.certificate.active and view.status != "ok"}
    return [app["display_name"] for app in ctx.storage.tracking.entra_apps() if app["sp_id"] in due]
