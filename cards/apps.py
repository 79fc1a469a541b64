"""Entra app cards: the SAML apps of the tenant, and one app in detail."""

from __future__ import annotations

from datetime import datetime

from webexpythonsdk.models.cards import AdaptiveCard
from webexpythonsdk.models.cards.options import ActionStyle

from cards.certificates import STATUS_WORDS, certificate_row, day, when
from cards.common import card, details, facts, heading, paragraph, plain, submit
from handlers import actions as action_ids
from rollover.certificates.health import STATUS_EMOJI, STATUS_ORDER
from rollover.describe import plural

MAX_APPS = 30


def app_rows(apps: list[dict]) -> list[dict]:
    """Per app (certificates already carrying ``status``/``days_left``): the active certificate's state,
    which is what sign-ins depend on. Worst first."""
    rows = [_app_row(app) for app in apps]
    return sorted(rows, key=lambda r: (-STATUS_ORDER.index(r["status"]), r["name"].lower()))


def apps_card(rows: list[dict]) -> AdaptiveCard:
    apps = f"{plural(len(rows), 'enterprise app')} {'uses' if len(rows) == 1 else 'use'} SAML"
    body = [*heading("SAML apps in Entra ID", subtitle=f"{apps}, worst first")]
    for row in rows[:MAX_APPS]:
        body.append(certificate_row(status=row["status"], title=row["name"], detail=row["detail"]))
    if len(rows) > MAX_APPS:
        body.append(paragraph(f"… and {len(rows) - MAX_APPS} more. `app <name>` shows any of them.", subtle=True))
    if not rows:
        body.append(paragraph("No enterprise app uses SAML single sign-on in this tenant."))
    return card(body)


def apps_text(rows: list[dict]) -> str:
    return "\n".join([f"SAML apps in Entra ID ({len(rows)}, worst first):"] +
                     [f"{STATUS_EMOJI[r['status']]} {r['name']} — {r['detail']}" for r in rows[:MAX_APPS]])


def app_card(app: dict, cert_rows: list[dict], settings: list[tuple[str, str]], *, watched: bool,
             verdict: tuple[str, str] | None, can_rotate: bool) -> AdaptiveCard:
    body = [*heading(plain(app["display_name"]), subtitle="Entra enterprise app"),
            paragraph(plain(app_answer(cert_rows, watched=watched, can_rotate=can_rotate)))]
    for row in cert_rows:
        body.append(certificate_row(status=row["status"], title=row["title"], detail=row["detail"]))
    if verdict is not None:
        body.append(paragraph(plain(verdict[1])))
    actions = []
    if not watched:
        actions.append(submit("Watch in this space", action_ids.WATCH_APP, sp_id=app["sp_id"]))
    if can_rotate:
        actions.append(submit("Start rotation", action_ids.ROTATION_START, style=ActionStyle.POSITIVE,
                              app=app["display_name"]))
    settings_facts = [("appId", plain(app["app_id"])), *((plain(name), plain(value)) for name, value in settings)]
    actions.append(details("Details", [facts(settings_facts)]))
    return card(body, actions=actions)


def app_answer(cert_rows: list[dict], *, watched: bool, can_rotate: bool) -> str:
    """How the certificate sign-ins depend on stands, and what the buttons do about it."""
    active = next((row for row in cert_rows if row["title"].startswith("Active")), None)
    if active is None:
        said = "It has no active token-signing certificate: sign-ins cannot be signed."
    else:
        state, _, rest = active["detail"].partition(": ")
        verb = {"valid": "is valid", "not valid yet": "is not valid yet"}.get(state, state)
        said = f"Its active signing certificate {verb}: {rest.split(' · ')[0]}."
    if can_rotate:
        said += " Start rotation renews it, with approvals."
    if not watched:
        said += " Watch in this space adds it to status and reminders."
    return said


def _app_row(app: dict) -> dict:
    certs = app["facts"]["signing_certificates"]
    active = next((c for c in certs if c["active"]), None)
    if active is None:
        return {"name": app["display_name"], "status": "critical",
                "detail": "no active token-signing certificate: sign-ins cannot be signed"}
    detail = (f"active certificate {STATUS_WORDS[active['status']]}: not after "
              f"{day(datetime.fromisoformat(active['not_after']))} ({when(active['days_left'])})")
    others = len(certs) - 1
    if others:
        detail += f" · {others} other certificate{'s' if others > 1 else ''}"
    return {"name": app["display_name"], "status": active["status"], "detail": detail}
