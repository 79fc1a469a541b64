"""Conversations with the real bot, driven synchronously: the tests' harness (the demo serves the same bot).

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

from fakes.harness import LocalBot
from fakes.webex import LocalWebex

SECRET = "conversation-test-secret"


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
    database: str | None = None   # an SQLite path or a PostgreSQL URL; default: a file in tmp_path

    def __post_init__(self) -> None:
        database = self.database or str(self.tmp_path / "rollover.sqlite3")
        self.bot = LocalBot(self.webex, database, secret=SECRET, graph=self.graph,
                            owner="test-worker", **{"allowed_domains": ("example.com",),
                                                    "worker_lease_seconds": 5.0, **self.overrides})
        self.bot_person, self.token = self.bot.bot_person, self.bot.token
        self.config, self.app, self.services, self.worker = (self.bot.config, self.bot.app, self.bot.services,
                                                             self.bot.worker)
        self.client = self.app.test_client()
        self.bot.register_webhooks("http://bot.test")
        self.alice = self.webex.add_person("alice@example.com", "Alice Admin")
        self.bob = self.webex.add_person("bob@example.com", "Bob Builder")
        self.mallory = self.webex.add_person("mallory@evil.example", "Mallory")
        self.room = self.webex.add_room("SSO team", "group", [self.alice, self.bob, self.mallory])
        self.direct = self.webex.add_room("Alice", "direct", [self.alice])

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
            if entry.method != "POST" or entry.path != "/v1/messages" or entry.status != 200:
                continue
            fields = entry.json or entry.form
            attachments = fields.get("attachments") or []
            posted.append(Posted(
                room_id=fields.get("roomId"), to_person_id=fields.get("toPersonId"),
                text=fields.get("text", ""), markdown=fields.get("markdown", ""),
                card=attachments[0]["content"] if attachments else None, parent_id=fields.get("parentId"),
                file_name=(entry.uploads or (None,))[0]))
        return posted

    def close(self) -> None:
        self.bot.close()

    def last_card_message(self, room=None) -> dict[str, Any]:
        cards = [m for m in self.webex.sent_by_bot(room or self.room) if m.get("attachments")]
        assert cards, "the bot has posted no card in this room"
        return cards[-1]
