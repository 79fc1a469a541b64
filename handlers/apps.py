"""apps, app <name>, watch <app>: the Entra side of the trust, read through Microsoft Graph."""

from __future__ import annotations

from datetime import datetime

from cards.apps import app_card, app_rows, apps_card, apps_text
from cards.certificates import STATUS_WORDS, VERDICT_TITLE, day, when
from cards.paths import PathsSaid
from handlers import actions as action_ids
from rollover.certificates.health import days_until, validity_status
from rollover.errors import UserError
from rollover.pipeline.dispatcher import Context
from rollover.pipeline.registry import card_action, command
from rollover.tracking import (
    app_answer,
    find_entra_app,
    known_entra_apps,
    require_graph,
    watch_entra_app,
)


@command("apps", button="Entra apps")
def list_apps(ctx: Context) -> None:
    """List the SAML apps in Entra ID with the state of their signing certificates, worst first."""
    require_graph(ctx.services)
    apps = [with_status(app, ctx) for app in known_entra_apps(ctx.services, refresh=True)]
    rows = app_rows(apps)
    ctx.reply(apps_text(rows), card=apps_card(rows))


@command("app", usage="app <name or appId>")
def show_app(ctx: Context) -> None:
    """Show one Entra app: its certificates, settings and what they mean for Webex."""
    require_graph(ctx.services)
    app = with_status(find_entra_app(ctx.services, ctx.args), ctx)
    watched = any(s.location == app["sp_id"]
                  for s in ctx.storage.tracking.sources(room_id=ctx.room_id, kind="entra-app"))
    answer, sentence = app_answer(ctx.services, ctx.room_id, app)
    verdict = (VERDICT_TITLE[answer], sentence)
    card = app_card(app, certificate_rows(app), app_settings(app), watched=watched, verdict=verdict,
                    can_rotate=True)
    ctx.reply(app_text(app, verdict), card=card)


@command("watch", usage="watch <Entra app>")
def watch_app(ctx: Context) -> None:
    """Track an Entra app's signing certificates in this space (status, reminders, rotation)."""
    require_graph(ctx.services)
    _watch(ctx, find_entra_app(ctx.services, ctx.args))


@card_action(action_ids.WATCH_APP)
def watch_app_button(ctx: Context) -> None:
    require_graph(ctx.services)
    sp_id = str(ctx.inputs.get("sp_id", ""))
    app = next((a for a in known_entra_apps(ctx.services) if a["sp_id"] == sp_id), None)
    if app is None:
        raise UserError("That app is no longer a SAML app in Entra; `apps` shows the current list.")
    _watch(ctx, app)


def _watch(ctx: Context, app: dict) -> None:
    watched = {source.location for source in ctx.storage.tracking.sources(room_id=ctx.room_id, kind="entra-app")}
    watch_entra_app(ctx.services, room_id=ctx.room_id, app=app, added_by=ctx.person_email)
    if app["sp_id"] in watched:
        ctx.reply(markdown=f"This space already tracks **{app['display_name']}**; I read its signing certificates "
                           "again just now. `status` shows them.")
        return
    ctx.reply(markdown=f"This space now tracks **{app['display_name']}**: `status` shows its signing "
                       "certificates and reminders will include them.")


def with_status(app: dict, ctx) -> dict:
    """The app with each signing certificate's status and days left as of now."""
    now, config = ctx.now(), ctx.config
    certs = []
    for cert in app["facts"]["signing_certificates"]:
        not_before, not_after = datetime.fromisoformat(cert["not_before"]), datetime.fromisoformat(cert["not_after"])
        certs.append({**cert, "status": validity_status(not_before, not_after, now, warning_days=config.warning_days,
                                                        critical_days=config.critical_days),
                      "days_left": days_until(not_after, now)})
    return {**app, "facts": {**app["facts"], "signing_certificates": certs}}


def certificate_rows(app: dict) -> list[dict]:
    rows = []
    for cert in sorted(app["facts"]["signing_certificates"], key=lambda c: not c["active"]):
        state = "Active" if cert["active"] else "Inactive"
        rows.append({"status": cert["status"],
                     "title": f"{state} token-signing certificate {cert.get('display_name') or ''}".strip(),
                     "detail": (f"{STATUS_WORDS[cert['status']]}: not after "
                                f"{day(datetime.fromisoformat(cert['not_after']))} ({when(cert['days_left'])}) · "
                                f"thumbprint {cert['thumbprint']}")})
    return rows


def app_settings(app: dict) -> list[tuple[str, str]]:
    facts = app["facts"]
    signed = {True: "required (Webex's signing certificate must be in Entra)", False: "not required",
              None: "unknown (needs Application.Read.All on the app registration)"}[facts["requires_signed_requests"]]
    settings = [
        ("Signed requests", signed),
        ("Verification certificates", ", ".join(facts["verification_certificate_thumbprints"]) or "none"),
        ("Token encryption", facts["token_encryption_thumbprint"] or "off"),
        ("Expiry e-mails to", ", ".join(facts["notification_emails"]) or "nobody"),
        ("Identifier (Entity ID)", ", ".join(facts["sp_entity_ids"]) or "not set"),
    ]
    for secret in facts["client_secrets"]:
        settings.append((f"Client secret '{secret['name']}'",
                         f"expires {secret['end'][:10] if secret['end'] else '?'}"))
    for cert in facts["certificate_credentials"]:
        settings.append((f"App certificate '{cert['name']}'", f"expires {cert['end'][:10] if cert['end'] else '?'}"))
    return settings


def app_text(app: dict, verdict: tuple[str, str]) -> str:
    lines = [f"{app['display_name']} (appId {app['app_id']})"]
    lines += [f"- {row['title']}: {row['detail']}" for row in certificate_rows(app)]
    lines += [f"- {name}: {value}" for name, value in app_settings(app)]
    lines.append(f"{verdict[0]}: {verdict[1]}")
    return "\n".join(PathsSaid().lines(lines))
