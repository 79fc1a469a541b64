"""`python bot.py demo`: the real bot, end to end, against a local Webex API on a fresh SQLite file.

Everything runs for real on 127.0.0.1: the bot's webhook service (Flask) with its worker
thread, the local Webex API that the real webexpythonsdk talks to, and webhooks that the
local Webex signs and delivers to the bot exactly as Webex would. With ``--events websocket``
the local Webex sends the same events as frames of its local Mercury instead, and the bot runs
with ROLLOVER_EVENTS=websocket: no webhook, no secret, an outbound websocket. Each capability
adds its scenes to ``SCENES``; ``--interactive`` lets a person type as a space member.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from datetime import time as clock_time
from pathlib import Path
from typing import Any, Callable
from zoneinfo import ZoneInfo

from cards.text import all_actions, summarize_card
from fakes.graph import LocalGraph
from fakes.harness import LocalBot
from fakes.webex import LocalWebex
from fakes.webex_mercury import WebexMercury
from rollover.pipeline.socket_events import connection_status
from rollover.reminders import sweep as reminders
from rollover.settings import WEEKDAYS

SECRET = "demo-webhook-secret"
EVENTS = ("webhook", "websocket")
CONNECT_SECONDS = 20.0      # the bot's first websocket connection (catalog, device, authorization)
SCENARIO = Path(__file__).resolve().parent / "scenarios" / "demo-tenant.yaml"
WIDTH = 100
STOCKHOLM = ZoneInfo("Europe/Stockholm")


@dataclass
class DemoWorld:
    """The demo's Webex organisation, the running bot, and the transcript printer."""

    database_path: str
    out: Any = field(default_factory=lambda: sys.stdout)      # read when the world is made (pytest swaps it)
    webex: LocalWebex = field(init=False)
    extras: dict[str, Any] = field(default_factory=dict)
    # The browser demo (`demo --web`) adds a second approver and someone from outside the allowed domains.
    web: bool = False
    posted: list[dict] = field(default_factory=list)    # every message the bot posted, in transcript order
    # How Webex hands events to the bot: signed webhooks, or frames on the bot's websocket (local Mercury).
    events: str = "webhook"
    mercury: WebexMercury | None = field(default=None, init=False)

    @property
    def over_socket(self) -> bool:
        return self.events == "websocket"

    def start(self) -> "DemoWorld":
        # The local Entra tenant: a Webex SAML app whose active certificate expires in 20 days, and others.
        self.graph = LocalGraph.from_scenario(SCENARIO).start()
        self.webex = LocalWebex(deliver_events=True).start()
        if self.events not in EVENTS:
            raise ValueError(f"events must be one of {', '.join(EVENTS)}")
        transport: dict[str, Any] = {}
        if self.over_socket:
            # The local Webex's Mercury knows its tokens; the bot finds it through its catalog URL.
            self.mercury = WebexMercury(self.webex.token_owner).start()
            self.webex.deliver_over(self.mercury)
            transport = {"events_mode": "websocket", "webex_catalog_url": self.mercury.u2c_url}
        self.bot = LocalBot(self.webex, self.database_path, secret="" if self.over_socket else SECRET,
                            graph=self.graph, owner="demo-worker",
                            allowed_domains=("example.com",), worker_poll_seconds=0.05,
                            azure_tenant_id=self.graph.tenant_id,
                            approvers=("bob@example.com", "carol@example.com") if self.web else ("bob@example.com",),
                            **transport)
        self.alice = self.webex.add_person("alice@example.com", "Alice Admin")
        self.bob = self.webex.add_person("bob@example.com", "Bob Builder")
        members = [self.alice, self.bob]
        if self.web:
            self.carol = self.webex.add_person("carol@example.com", "Carol Checker")
            self.mallory = self.webex.add_person("mallory@outside.example", "Mallory Outsider")
            members += [self.carol, self.mallory]
        self.room = self.webex.add_room("SSO certificates", "group", members)
        self.config, self.services = self.bot.config, self.bot.services
        self.bot_url = self.bot.serve()
        if self.over_socket:
            self._wait_connected()
        else:
            self.bot.register_webhooks(self.bot_url)
        return self

    def stop(self) -> None:
        self.bot.close()
        self.webex.deliver_over(None)
        self.webex.stop()
        if self.mercury is not None:
            self.mercury.stop()
        self.graph.stop()

    def _wait_connected(self) -> None:
        """Events reach only a registered, connected device: the scenes start once the bot holds its websocket
        and has reported it (what `about` reads)."""
        config, storage = self.config, self.services.storage
        deadline = time.monotonic() + CONNECT_SECONDS
        while connection_status(storage, config.webex_access_token, lease_seconds=config.websocket_lease_seconds,
                                now=time.time())["state"] != "connected" or self.mercury.connected_devices() != 1:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the bot did not connect to the local Mercury: {self.bot.socket_events.status()}")
            time.sleep(0.02)

    def transport_summary(self) -> str:
        """How the events of this demo reached the bot, counted on the local Webex's side."""
        deliveries = self.webex.wait_for_deliveries()
        if not self.over_socket:
            return f"{len(deliveries)} signed webhooks delivered"
        frames = self.webex.frames_sent
        acked = sum(self.mercury.acked(frame) for frame in frames)
        return (f"{len(frames)} websocket frames sent, {acked} acknowledged after their events were recorded, "
                f"{len(deliveries)} webhooks delivered")

    # --- acting as people -------------------------------------------------------------------------

    def say(self, person, text: str, *, files=None) -> list[dict]:
        self._print_line(person.display_name, text + (f"  [file: {files[0].name}]" if files else ""))
        mark = self._bot_messages()
        self.webex.post_as(person, self.room, text, files=files)
        return self._show_replies(mark)

    def click(self, person, button: str, message: dict | None = None) -> list[dict]:
        message = message or self.last_card_with(button)
        self._print_line(person.display_name, f"clicks [{button}]")
        mark = self._bot_messages()
        self.webex.click(person, message["id"], button=button)
        return self._show_replies(mark)

    def last_card_with(self, button: str) -> dict:
        for message in reversed(self.webex.sent_by_bot(self.room)):
            card = (message.get("attachments") or [{}])[0].get("content", {})
            if any(a.get("title") == button for a in all_actions(card)):
                return message
        raise LookupError(f"no card with a [{button}] button in the space")

    def narrate(self, text: str) -> None:
        print(f"\n── {text} " + "─" * max(0, WIDTH - len(text) - 4), file=self.out)

    # --- transcript ---------------------------------------------------------------------------------

    def _bot_messages(self) -> set[str]:
        return {m["id"] for m in self.webex.sent_by_bot(self.room)}

    def _show_replies(self, before: set[str], timeout: float = 20.0) -> list[dict]:
        self.webex.wait_for_deliveries()
        self._wait_until_idle(timeout)
        replies = [m for m in self.webex.sent_by_bot(self.room) if m["id"] not in before]
        for message in replies:
            self._print_message(message)
        return replies

    def _wait_until_idle(self, timeout: float) -> None:
        storage = self.services.storage
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and storage.events.count("pending"):
            time.sleep(0.05)

    def _print_message(self, message: dict) -> None:
        self.posted.append(message)
        attachments = message.get("attachments")
        if attachments:
            self._print_line("Rollover", "[card]\n" + summarize_card(attachments[0]["content"]))
        else:
            self._print_line("Rollover", message.get("markdown") or message.get("text", ""))
        names = {f["url"]: f["name"] for f in self.webex.files_posted}
        for url in message.get("files", []):
            self._print_line("", f"[file attached: {names.get(url, url.rsplit('/', 1)[-1])}]")

    def _print_line(self, who: str, text: str) -> None:
        indent = " " * 14
        lines = []
        for paragraph in text.splitlines() or [""]:
            lines += textwrap.wrap(paragraph, WIDTH - len(indent)) or [""]
        print(f"{who[:12]:>12}  {lines[0]}", file=self.out)
        for line in lines[1:]:
            print(indent + line, file=self.out)



# --- scenes ------------------------------------------------------------------------------------------

def scene_core(world: DemoWorld) -> None:
    if world.over_socket:
        world.narrate("The team asks the bot what it can do (a websocket frame per message, recorded, then acked)")
    else:
        world.narrate("The team asks the bot what it can do (a signed webhook per message)")
    world.say(world.alice, "help")
    world.narrate("A typo gets a suggestion, never a guess")
    world.say(world.bob, "halp")
    world.narrate("A button on a card: the click comes back as a cardAction frame on the websocket" if world.over_socket
                  else "A button on a card: the click comes back as an attachmentActions webhook")
    world.click(world.bob, "About")


def scene_certificates(world: DemoWorld) -> None:
    world.narrate("Cisco mailed 'your SSO certificate expires': Alice drops the Webex SP metadata into the space")
    metadata = demo_control_hub_metadata(days_left=45)
    world.say(world.alice, "", files=[world.webex.add_file("idb-meta-7f9e2c4a-SP.xml", metadata, "application/xml")])
    world.narrate("Entra's side, from its published federation metadata URL")
    world.say(world.alice, f"check {world.graph.metadata_url(WEBEX_APP_ID)}")


def scene_entra(world: DemoWorld) -> None:
    world.narrate("The Entra tenant through Microsoft Graph: which SAML apps expire first")
    world.say(world.bob, "apps")
    world.say(world.bob, "app Cisco Webex")
    world.click(world.bob, "Watch in this space")
    world.narrate("Everything the space tracks, worst first, and the chain of trust in plain words")
    world.say(world.alice, "status")
    world.say(world.alice, "explain")


def scene_reminders(world: DemoWorld) -> None:
    world.narrate("Reminders in the space: Alice subscribes it, at 09:00 Stockholm time")
    world.say(world.alice, "remind on")
    world.say(world.alice, "remind time 09:00 Europe/Stockholm")
    sweeper = world.bot.new_services()                  # the scheduler's own clients, as in `bot.py worker`
    real_clock = world.services.clock
    try:
        first = digest_morning(world.config.digest_weekday)
        world.narrate(f"Fast-forward to {first.astimezone(STOCKHOLM):%A %d %B, %H:%M} in Stockholm: "
                      "reminders due and the weekly digest")
        world.services.clock = lambda: first             # the buttons' handlers live on the same day
        sweep_and_show(world, sweeper, first)
        world.narrate("The new Webex certificate comes later: Alice snoozes the Control Hub reminder")
        world.click(world.alice, "Snooze 7 days")
        second = first + timedelta(days=1)
        world.narrate("The next morning's sweep: no reminder goes out twice, and the snoozed one stays quiet")
        world.services.clock = lambda: second
        sweep_and_show(world, sweeper, second)
        world.say(world.alice, "remind")
    finally:
        world.services.clock = real_clock
        if sweeper.entra is not None:
            sweeper.entra.close()


def digest_morning(weekday: str) -> datetime:
    """09:05 in Stockholm on the digest weekday a week or two from now (the same story whatever today is)."""
    earliest = datetime.now(STOCKHOLM).date() + timedelta(days=7)
    day = earliest + timedelta(days=(WEEKDAYS.index(weekday) - earliest.weekday()) % 7)
    return datetime.combine(day, clock_time(9, 5), STOCKHOLM).astimezone(timezone.utc)


def sweep_and_show(world: DemoWorld, services, now: datetime) -> list[dict]:
    """Run one reminder sweep as of ``now`` and print what the bot posted."""
    before = world._bot_messages()
    reminders.run_sweep(services, now)
    return world._show_replies(before)


def scene_rotation_entra(world: DemoWorld) -> None:
    world.narrate("Rotate Entra's token-signing certificate of Cisco Webex: the plan first, nothing changes yet")
    world.say(world.alice, "rotate Cisco Webex")
    world.narrate("Bob approves: the bot creates the new certificate in Entra (inactive) and says where it goes")
    world.click(world.bob, "Approve")
    world.narrate("The maintenance window: Alice is ready now; activating needs its own approval")
    world.click(world.alice, "Now: I'm ready")
    world.click(world.bob, "Approve")
    world.narrate("Alice imported the new federation metadata into Control Hub and signed in")
    world.click(world.alice, "Sign-in works")


def scene_rotation_webex_sp(world: DemoWorld) -> None:
    world.narrate("Cisco renewed the Meetings site's SP certificate: Alice drops the new Site Administration export")
    world.say(world.alice, "watch Webex Meetings")
    metadata = demo_site_admin_metadata(days_left=365)
    world.say(world.alice, "", files=[world.webex.add_file("Webex_SP_saml2_metadata.xml", metadata, "application/xml")])
    world.say(world.alice, "rotate webex-sp Webex Meetings (contoso.webex.com)")
    world.narrate("That app requires verification certificates: Bob approves adding Webex's new one to Entra")
    world.click(world.bob, "Approve")
    world.click(world.alice, "Activated in Webex")
    world.narrate("Who decided what, and which Graph requests went out: the audit log")
    world.say(world.alice, "audit")


SCENES: list[Callable[[DemoWorld], None]] = [scene_core, scene_certificates, scene_entra, scene_reminders,
                                              scene_rotation_entra, scene_rotation_webex_sp]


WEBEX_APP_ID = "0ab4c0de-0000-4000-8000-00000000a001"     # "Cisco Webex" in scenarios/demo-tenant.yaml
DEMO_ORG_ID = "7f9e2c4a-0000-4000-8000-0000000000e1"


def demo_control_hub_metadata(days_left: int) -> bytes:
    """Control Hub SP metadata shaped like Webex's idb-meta-<org>-SP.xml, with a fresh certificate."""
    return _demo_sp_metadata(f"https://idbroker.webex.com/{DEMO_ORG_ID}",
                             f"https://idbroker.webex.com/idb/Consumer/metaAlias/{DEMO_ORG_ID}/sp",
                             "idbroker.webex.com", days_left, key_index=3, uses=("signing", "encryption"))


def demo_site_admin_metadata(days_left: int) -> bytes:
    """Site Administration SP metadata of contoso.webex.com (Webex_SP_saml2_metadata.xml), freshly renewed."""
    return _demo_sp_metadata("https://contoso.webex.com",
                             "https://contoso.webex.com/dispatcher/SAML2AuthService?siteurl=contoso",
                             "contoso.webex.com", days_left, key_index=2, uses=("signing",))


def _demo_sp_metadata(entity: str, acs: str, subject: str, days_left: int, *, key_index: int,
                      uses: tuple[str, ...]) -> bytes:
    import base64
    from xml.sax.saxutils import quoteattr

    from fakes.graph import make_self_signed_certificate, pooled_rsa_key
    now = datetime.now(timezone.utc)
    der, _ = make_self_signed_certificate(subject, now - timedelta(days=320), now + timedelta(days=days_left),
                                          pooled_rsa_key(key_index))
    b64 = base64.b64encode(der).decode()
    key = ('<md:KeyDescriptor use="{use}"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data>'
           f'<ds:X509Certificate>{b64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>')
    return ('<?xml version="1.0" encoding="UTF-8"?>'
            '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
            f'entityID="{entity}"><md:SPSSODescriptor AuthnRequestsSigned="true" WantAssertionsSigned="true" '
            'protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
            + "".join(key.format(use=use) for use in uses) +
            '<md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:transient</md:NameIDFormat>'
            '<md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" '
            f'Location={quoteattr(acs)} index="0"/></md:SPSSODescriptor></md:EntityDescriptor>').encode()


def run(*, interactive: bool = False, keep_database: str | None = None, postgres_url: str | None = None,
        events: str = "webhook") -> int:
    """The demo on a temporary SQLite file, on ``keep_database``, or on the PostgreSQL of ``postgres_url``
    (DATABASE_URL) in a schema of its own that is dropped afterwards: the database's own tables stay untouched."""
    with contextlib.ExitStack() as stack:
        if keep_database:
            database = keep_database
        elif postgres_url:
            from rollover.storage.postgresql import scratch_schema
            database = stack.enter_context(scratch_schema(postgres_url, "rollover_demo"))
        else:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="rollover-demo-"))
            database = str(Path(folder) / "rollover.sqlite3")
        return _play(database, interactive, events)


def _play(database: str, interactive: bool, events: str) -> int:
    world = DemoWorld(database, events=events).start()
    try:
        storage = world.bot.services.storage
        print(first_line(world, storage.describe()))
        if interactive:
            return _interactive(world)
        for scene in SCENES:
            scene(world)
        store = "PostgreSQL" if storage.dialect == "postgresql" else "SQLite"
        how = ("came over the bot's Webex websocket (ROLLOVER_EVENTS=websocket) and went through"
               if world.over_socket else "went through a signed webhook,")
        print(f"\nDemo finished: every message above {how} the {store} event queue and the worker "
              f"({world.transport_summary()}).")
        return 0
    finally:
        world.stop()


def first_line(world: DemoWorld, database: str) -> str:
    if world.over_socket:
        return (f"Rollover demo over the Webex websocket (ROLLOVER_EVENTS=websocket, no webhooks): local Webex API "
                f"at {world.webex.base_url}, local Mercury at {world.mercury.u2c_url}, database {database}")
    return f"Rollover demo: local Webex API at {world.webex.base_url}, bot at {world.bot_url}, database {database}"


def _interactive(world: DemoWorld) -> int:
    print("You are Alice in the space 'SSO certificates'. Type a message for the bot (no @mention needed),\n"
          "`click <button title>` to press a button on the latest card that has it, or `quit`.")
    while True:
        try:
            line = input("alice> ").strip()
        except EOFError:
            return 0
        if line in {"quit", "exit"}:
            return 0
        if line.startswith("click "):
            try:
                world.click(world.alice, line[len("click "):].strip())
            except (LookupError, ValueError) as error:
                print(f"  ({error})")
        elif line:
            world.say(world.alice, line)
