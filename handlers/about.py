"""about: what this Rollover instance runs with (versions, storage, Webex, Graph), without secrets."""

import time

from cards.about import about_card, about_text
from rollover import VERSION
from rollover.describe import plural
from rollover.pipeline.dispatcher import Context
from rollover.pipeline.registry import command
from rollover.pipeline.socket_events import connection_sentence, connection_status


@command("about", button="About")
def show_about(ctx: Context) -> None:
    """Show this bot's version, storage and connections (no secrets)."""
    facts = deployment_facts(ctx)
    ctx.reply(about_text(facts), card=about_card(facts))


def deployment_facts(ctx: Context) -> list[tuple[str, str]]:
    config = ctx.config
    storage_state = "reachable" if ctx.storage.ping() else "unreachable"
    named = len(config.allowed_people)
    people = f" and {plural(named, 'named person', 'named people')}" if named else ""
    rooms = (plural(len(config.allowed_rooms), "listed room") if config.allowed_rooms
             else "any room with an allowed person (set ROLLOVER_ALLOWED_ROOMS to limit)")
    approvers = len(config.approvers) + (1 if config.approver_group else 0)
    return [
        ("Version", VERSION),
        ("Database", f"{ctx.storage.describe()}, {storage_state}"),
        ("Webex API", config.webex_base_url),
        ("Webex events", webex_events(ctx)),
        ("Microsoft Graph", f"{'configured' if ctx.services.entra is not None else 'not configured'} "
                            f"({config.graph_base_url})"),
        ("Graph writes", "report-only: described, never sent" if config.report_only else "after approval"),
        ("Approvers", plural(len(config.approvers), "person") + (" and an Entra group" if config.approver_group else "")
                      if approvers else "none configured: no rotation can start"),
        ("Allowed", f"{', '.join(config.allowed_domains) or 'no domain'}{people}"),
        ("Rooms", rooms),
        ("This space", ctx.room_id),
    ]


def webex_events(ctx: Context) -> str:
    """How events arrive: webhooks, or the websocket with its state as its holder last reported it."""
    config = ctx.config
    if not config.websocket_events:
        return "webhooks (POST /webhooks/webex)"
    return connection_sentence(connection_status(ctx.storage, config.webex_access_token, now=time.time(),
                                                 lease_seconds=config.websocket_lease_seconds))
