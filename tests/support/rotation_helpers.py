"""Shared helpers of the rotation tests: a space with approvers over the demo tenant, and card lookups."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from cards.text import summarize_card
from tests.support.certfactory import make_cert, make_sp_metadata

WEBEX_APP = "Cisco Webex"                          # scenarios/demo-tenant.yaml: active certificate expires in 20 days
WEBEX_SP_ID = "0ab4c0de-0000-4000-8000-00000000b001"
MEETINGS_APP = "Webex Meetings (contoso.webex.com)"  # requires signed requests (verification certificates)
MEETINGS_APPLICATION_ID = "0ab4c0de-0000-4000-8000-00000000c002"
APPROVER_GROUP = "9a9a9a9a-0000-4000-8000-0000000a9a01"
CONTROL_HUB_ORG = "7f9e2c4a-0000-4000-8000-0000000000e1"


def rotation_overrides(graph, **overrides) -> dict:
    """Settings of a space whose rotations bob and carol approve, against the local Graph ``graph``."""
    return {"approvers": ("bob@example.com", "carol@example.com"), "azure_tenant_id": graph.tenant_id,
            "graph_consistency_seconds": 0.5, **overrides}


def add_member(chat, email: str, name: str):
    person = chat.webex.add_person(email, name)
    chat.room.member_ids.append(person.id)
    return person


def card_text(posted) -> str:
    return summarize_card(posted.card)


def cards(replies) -> list:
    return [reply for reply in replies if reply.card is not None]


def last_card_text(replies) -> str:
    return card_text(cards(replies)[-1])


def current_card(chat) -> dict:
    """The rotation card now in the space (the bot's newest card)."""
    return chat.last_card_message()


def click(chat, person, button: str, inputs: dict | None = None, message: dict | None = None, **options):
    return chat.click(person, (message or current_card(chat))["id"], inputs, button=button, **options)


def creations(graph) -> int:
    return len(graph.requests_matching("POST", r"/addTokenSigningCertificate$"))


def activations(graph) -> list:
    return [r for r in graph.requests_matching("PATCH", r"/servicePrincipals/[^/]+$")
            if "preferredTokenSigningKeyThumbprint" in (r.json or {})]


def active_thumbprint(graph, sp_id: str = WEBEX_SP_ID) -> str:
    return graph.service_principals[sp_id]["preferredTokenSigningKeyThumbprint"]


def only_rotation(chat):
    records = chat.services.storage.rotations.all(room_id=chat.room.id, open_only=False)
    assert len(records) == 1, records
    return records[0]


def site_admin_metadata(days_left: int) -> bytes:
    """Site Administration SP metadata of contoso.webex.com with a fresh signing certificate."""
    now = datetime.now(timezone.utc)
    cert, _ = make_cert("contoso.webex.com", now - timedelta(days=5), now + timedelta(days=days_left), key_index=2)
    return make_sp_metadata("https://contoso.webex.com", [cert], [],
                            ["https://contoso.webex.com/dispatcher/SAML2AuthService?siteurl=contoso"])


def control_hub_metadata(days_left: int) -> bytes:
    now = datetime.now(timezone.utc)
    cert, _ = make_cert("idbroker.webex.com", now - timedelta(days=5), now + timedelta(days=days_left), key_index=3)
    return make_sp_metadata(f"https://idbroker.webex.com/{CONTROL_HUB_ORG}", [cert], [cert],
                            [f"https://idbroker.webex.com/idb/Consumer/metaAlias/{CONTROL_HUB_ORG}/sp"])


def drop(chat, name: str, data: bytes):
    content = chat.webex.add_file(name, data, "application/xml")
    return chat.say(chat.alice, "", files=[content])


class Clock:
    """services.clock moved by hand (approval expiry, windows, clean-up after expiry)."""

    def __init__(self):
        self.offset = timedelta()

    def advance(self, **delta) -> None:
        self.offset += timedelta(**delta)

    def __call__(self) -> datetime:
        return datetime.now(timezone.utc) + self.offset


def use_clock(chat) -> Clock:
    """The conversation's services.clock, from now on moved by hand."""
    chat.services.clock = clock = Clock()
    return clock


def rotate_to_window(chat, app: str = WEBEX_APP) -> None:
    """alice asks, bob approves: the new certificate exists and the window card is up."""
    chat.say(chat.alice, f"rotate {app}")
    click(chat, chat.bob, "Approve")


def schedule_window(chat, clock: Clock, hours: float) -> list:
    """alice schedules the window ``hours`` from now, carol approves it; returns what the approval posted."""
    start = clock() + timedelta(hours=hours)
    click(chat, chat.alice, "Schedule this window",
          {"window_date": start.strftime("%Y-%m-%d"), "window_time": start.strftime("%H:%M")})
    return click(chat, chat.carol, "Approve")


def rotate_to_sign_in_test(chat, app: str = WEBEX_APP) -> None:
    """... alice picks Now, carol approves: the new certificate is active and verified."""
    rotate_to_window(chat, app)
    click(chat, chat.alice, "Now: I'm ready")
    click(chat, chat.carol, "Approve")
