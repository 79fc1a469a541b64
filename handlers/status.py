"""status: every certificate the space tracks, worst first, with the diagnosis."""

from datetime import datetime, timezone

from cards.certificates import STATUS_WORDS, day, empty_status_text, status_card, status_text, when
from handlers.registry import command
from tracking import room_certificates, room_diagnosis

ROTATION_ACTION = "rotation-start"


@command("status", button="Status")
def show_status(ctx) -> None:
    """Show every certificate tracked in this space, worst first."""
    views = room_certificates(ctx.services, ctx.room_id)
    if not views:
        ctx.reply(empty_status_text())
        return
    numbers = {s.id: n for n, s in enumerate(ctx.storage.sources(room_id=ctx.room_id), start=1)}
    rows = [status_row(view, numbers) for view in views]
    diagnosis = room_diagnosis(ctx.services, ctx.room_id)
    rotatable = apps_due_for_rotation(ctx, views) if ROTATION_ACTION in ctx.services.registry.actions else []
    ctx.reply(status_text(rows, diagnosis), card=status_card(rows, diagnosis, rotatable_apps=rotatable))


def apps_due_for_rotation(ctx, views) -> list[str]:
    """The watched Entra apps whose active signing certificate needs attention (warning or worse): an app
    rotated a moment ago gets no Start rotation button (`rotate <app>` still starts one)."""
    due = {view.certificate.details.get("sp_id") for view in views
           if view.certificate.source_kind == "entra-app" and view.certificate.active and view.status != "ok"}
    return [app["display_name"] for app in ctx.storage.entra_apps() if app["sp_id"] in due]


def status_row(view, source_numbers: dict[int, int]) -> dict:
    cert = view.certificate
    not_after = datetime.fromtimestamp(cert.not_after, timezone.utc)
    what = _what(cert)
    return {
        "status": view.status,
        "title": f"{cert.source_label}: {what}",
        "detail": (f"{STATUS_WORDS[view.status]}: not after {day(not_after)} ({when(view.days_left)}) · "
                   f"SHA-1 {cert.sha1} · source #{source_numbers.get(cert.source_id, '?')}"),
    }


def _what(cert) -> str:
    if cert.source_kind == "entra-app":
        state = "active" if cert.active else "inactive"
        return f"{state} token-signing certificate"
    role = {"idp": "IdP", "sp": "Webex SP"}.get(cert.role, "")
    use = f" {cert.use}" if cert.use else ""
    subject = cert.subject.split(",")[0]
    return f"{role}{use} certificate {subject}".strip()
