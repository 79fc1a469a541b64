"""Scenario harness: conversations through signed webhooks, answered against the local Webex API.

A test reads like a conversation:

    replies = chat.say(chat.alice, "status")
    assert "expires" in replies[0].text

``say``/``click`` create the message or card action in the local Webex, send the signed
webhook through the Flask app (as Webex would), run the worker until idle, and return what
the bot posted meanwhile, read from the local Webex's request log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import bot
from local_webex import LocalWebex
from settings import load_config
from webex_client import WebexClient
from webhooks import sync_webhooks

SECRET = "conversation-test-secret"
SHARED = Path(__file__).resolve().parents[2] / "shared"


@dataclass
class Posted:
    """One message the bot posted."""

    room_id: str | None
    to_person_id: str | None
    text: str
    markdown: str
    card: dict[str, Any] | None
    parent_id: str | None
    file_name: str | None = None

    @property
    def body(self) -> str:
        return self.markdown or self.text


@dataclass
class Conversation:
    webex: LocalWebex
    tmp_path: Path
    overrides: dict[str, Any] = field(default_factory=dict)
    graph: Any = None        # a started local_graph.LocalGraph, or None (Graph not configured)

    def __post_init__(self) -> None:
        self.bot_person, self.token = self.webex.add_bot()
        self.alice = self.webex.add_person("alice@example.com", "Alice Admin")
        self.bob = self.webex.add_person("bob@example.com", "Bob Builder")
        self.mallory = self.webex.add_person("mallory@evil.example", "Mallory")
        self.room = self.webex.add_room("SSO team", "group", [self.alice, self.bob, self.mallory])
        self.direct = self.webex.add_room("Alice", "direct", [self.alice])
        self.config = load_config({}).replace(**{
            "database_path": str(self.tmp_path / "rollover.sqlite3"),
            "webhook_secret": SECRET,
            "webex_access_token": self.token,
            "webex_base_url": self.webex.base_url,
            "allowed_domains": ("example.com",),
            "worker_lease_seconds": 5.0,
            "allow_private_urls": True,         # the local servers live on 127.0.0.1
            **({"graph_base_url": self.graph.base_url,
                "federation_metadata_base": self.graph.root_url} if self.graph else {}),
            **self.overrides,
        })
        self.app = bot.create_app(self.config)
        self.client = self.app.test_client()
        self.services = bot.build_services(self.config)
        self.worker = bot.build_worker(self.services, owner="test-worker")
        sync_webhooks(WebexClient(self.token, self.webex.base_url), name=self.config.webhook_name,
                      public_url="http://bot.test", secret=SECRET)

    # --- what people do ------------------------------------------------------------------------

    def say(self, person, text: str, *, room=None, files=None, process: bool = True) -> list[Posted]:
        message = self.webex.post_as(person, room or self.room, text, files=files)
        return self.deliver("messages", message["id"], process=process)

    def click(self, person, card_message_id: str, inputs: dict | None = None, *, button: str | None = None,
              process: bool = True) -> list[Posted]:
        action = self.webex.click(person, card_message_id, inputs, button=button)
        return self.deliver("attachmentActions", action["id"], process=process)

    def deliver(self, resource: str, data_id: str, *, process: bool = True) -> list[Posted]:
        """Send Webex's signed webhook for ``data_id`` through the app; run the worker."""
        mark = len(self.webex.requests)
        body, headers = self.webex.webhook_event(resource, "created", data_id)
        response = self.client.post("/webhooks/webex", data=body, headers=headers)
        assert response.status_code == 200, response.json
        if process:
            self.worker.drain()
        return self.posted_since(mark)

    # --- what the bot did ----------------------------------------------------------------------

    def posted_since(self, mark: int) -> list[Posted]:
        posted = []
        for entry in self.webex.requests[mark:]:
            if entry["method"] != "POST" or entry["path"] != "/v1/messages" or entry["status"] != 200:
                continue
            fields = entry.get("json") or entry.get("form") or {}
            attachments = fields.get("attachments") or []
            posted.append(Posted(
                room_id=fields.get("roomId"), to_person_id=fields.get("toPersonId"),
                text=fields.get("text", ""), markdown=fields.get("markdown", ""),
                card=attachments[0]["content"] if attachments else None, parent_id=fields.get("parentId"),
                file_name=(entry.get("uploads") or [None])[0]))
        return posted

    def close(self) -> None:
        if self.services.entra is not None:
            self.services.entra.close()

    def last_card_message(self, room=None) -> dict[str, Any]:
        cards = [m for m in self.webex.sent_by_bot(room or self.room) if m.get("attachments")]
        assert cards, "the bot has posted no card in this room"
        return cards[-1]


@pytest.fixture
def local_webex():
    with LocalWebex(SHARED / "reference" / "adaptive-card-1.3.0.schema.json") as webex:
        yield webex


@pytest.fixture
def chat(make_chat) -> Conversation:
    return make_chat()


@pytest.fixture
def make_chat(local_webex, tmp_path):
    """A conversation with setting overrides, e.g. make_chat(allow_bots=True) or make_chat(graph=graph)."""
    made: list[Conversation] = []

    def make(graph=None, **overrides):
        made.append(Conversation(local_webex, tmp_path, overrides, graph))
        return made[-1]
    yield make
    for conversation in made:
        conversation.close()


@pytest.fixture
def local_graph():
    """An empty local Graph tenant on 127.0.0.1 (seed it with add_saml_app / add_signing_certificate)."""
    from local_graph import LocalGraph
    with LocalGraph() as graph:
        yield graph


@pytest.fixture
def graph(local_graph):
    return local_graph


@pytest.fixture
def client(graph):
    """The real Graph client (msgraph-sdk) against the local Graph; quick retries keep fault tests fast."""
    from entra_client import EntraClient
    with EntraClient(graph.base_url, max_retries=2, retry_delay=0) as entra:
        yield entra


@pytest.fixture
def demo_graph():
    """The local Graph seeded with scenarios/demo-tenant.yaml (a Webex app expiring in 20 days, ...)."""
    from local_graph import LocalGraph
    with LocalGraph.from_scenario(Path(__file__).resolve().parents[1] / "scenarios" / "demo-tenant.yaml") as graph:
        yield graph


@pytest.fixture
def graph_chat(make_chat, demo_graph) -> Conversation:
    return make_chat(graph=demo_graph)
