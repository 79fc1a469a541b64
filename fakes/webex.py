"""Loopback Webex API for the tests and the demo ("local Webex").

A real HTTP server on 127.0.0.1 that the unmodified ``webexpythonsdk.WebexAPI`` talks to through
``base_url="http://127.0.0.1:PORT/v1/"`` (keep the trailing slash: the SDK joins relative paths with
``urljoin``).  It follows the official OpenAPI subset in
``shared/reference/webex-messaging-openapi-subset.json`` for ``/messages``, ``/attachment/actions`` and
``/webhooks`` (field names, status codes, the error body ``{"message", "errors": [{"description"}],
"trackingId"}``) and adds the few other endpoints a bot needs: ``/people``, ``/rooms/{id}`` and ``/contents/{id}``.

Besides the API it holds a small simulated world (people, bots, rooms, hosted files) and test helpers
that act like Webex itself: ``post_as`` (a person writes in a space), ``click`` (a person submits a
card), ``webhook_event`` (the signed payload Webex would POST to the bot), fault injection and a record
of every request.

Run ``python local_webex.py --port 8090`` to start it standalone; it prints a bot token.
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import hmac
import ipaddress
import json
import logging
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from html import escape
from pathlib import Path
from typing import Any, Callable, Iterable
from urllib.parse import urlencode, urlparse

import requests as http
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

try:
    import jsonschema
    from jsonschema.exceptions import best_match
except ImportError:  # jsonschema is a dev requirement; the demo may run without it.
    jsonschema = None
    best_match = None

logger = logging.getLogger(__name__)

DEFAULT_CARD_SCHEMA_PATH = (
    Path(__file__).resolve().parents[2] / "shared/reference/adaptive-card-1.3.0.schema.json"
)
CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
MAX_TEXT_BYTES = 7439  # "The maximum message length is 7439 bytes." (Create a Message)
MAX_EDITS = 10  # "Update a message you have posted not more than 10 times" (Edit a Message)
MAX_CARD_ACTIONS = 5  # Buttons & Cards guide: up to five buttons per card
MAX_CARD_VERSION = (1, 3)
MAX_FILE_BYTES = 100 * 1024 * 1024  # 100 MB per attachment
WEBHOOK_RESOURCES = frozenset({
    "attachmentActions", "dataSources", "memberships", "messages", "rooms", "meetings", "recordings",
    "convergedRecordings", "meetingParticipants", "meetingTranscripts", "telephony_calls",
    "telephony_conference", "telephony_mwi", "uc_counters", "serviceApp", "adminBatchJobs",
})
WEBHOOK_EVENTS = frozenset({
    "created", "updated", "deleted", "started", "ended", "joined", "left", "migrated", "authorized",
    "deauthorized", "statusChanged",
})
SCAN_STATES = frozenset({"clean", "scanning", "infected", "unscannable"})
UNAUTHORIZED_MESSAGE = "The request requires a valid access token set in the Authorization request header."


def make_id(kind: str) -> str:
    """Return a Webex-style id: base64 of ``ciscospark://us/KIND/uuid`` (URL-safe alphabet, no padding).

    Real ids use the same scheme; the URL-safe alphabet keeps ids usable as path segments and in the
    SDK's hand-built pagination query strings, which are not re-encoded.
    """
    raw = f"ciscospark://us/{kind}/{uuid.uuid4()}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def utc_timestamp() -> str:
    """Webex timestamp format: ISO 8601 UTC with milliseconds and a ``Z`` suffix."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_timestamp(value: str) -> datetime:
    """Parse an ISO 8601 timestamp (``Z`` or offset); naive values are taken as UTC."""
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def sign_body(secret: str, raw_body: bytes) -> str:
    """``X-Spark-Signature``: hex HMAC-SHA1 of the raw body keyed with the webhook secret."""
    return hmac.new(secret.encode(), raw_body, hashlib.sha1).hexdigest()


DEFAULT_ORG_ID = make_id("ORGANIZATION")


@dataclass(frozen=True)
class Person:
    """A person or bot of the simulated organisation."""

    id: str
    email: str
    display_name: str
    org_id: str
    bot: bool
    created: str

    def to_json(self) -> dict[str, Any]:
        """The ``/people`` representation."""
        data: dict[str, Any] = {
            "id": self.id,
            "emails": [self.email],
            "phoneNumbers": [],
            "displayName": self.display_name,
            "nickName": self.display_name.split(" ")[0],
        }
        if not self.bot:
            first, _, last = self.display_name.partition(" ")
            data.update(firstName=first, lastName=last)
        data.update(orgId=self.org_id, created=self.created, type="bot" if self.bot else "person")
        return data


@dataclass
class Room:
    """A space: ``group`` or ``direct`` (exactly two members)."""

    id: str
    title: str
    type: str
    member_ids: list[str]
    created: str


@dataclass
class ContentFile:
    """A file hosted at ``/v1/contents/{id}`` with its anti-malware scan state."""

    id: str
    name: str
    data: bytes
    content_type: str
    scan_state: str
    scanning_polls: int
    retry_after: int
    room_ids: set[str] = field(default_factory=set)


@dataclass
class _Fault:
    method: str
    path: re.Pattern[str]
    status: int
    remaining: int
    retry_after: int | None
    message: str


class _ApiFailure(Exception):
    """Raised inside a handler to answer with the Webex error body."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class _Request(Request):
    # Room for one 100 MB file plus the multipart envelope.
    max_content_length = MAX_FILE_BYTES + 1024 * 1024


class _QuietHandler(WSGIRequestHandler):
    """Request handler without the per-request access log (errors are still logged)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Skip access-log lines; the server keeps its own request record."""


# --------------------------------------------------------------------------------------------
# Adaptive Card validation
# --------------------------------------------------------------------------------------------

class CardValidator:
    """Checks a card the way Rollover needs Webex to accept it.

    Always: ``type`` AdaptiveCard, ``version`` <= 1.3, ``body`` a list, at most five actions per card.
    With the official 1.3.0 schema file (and jsonschema installed): full Draft-06 validation.
    """

    def __init__(self, schema_path: Path | None):
        self.schema_validator = None
        if schema_path is None or not Path(schema_path).is_file():
            return
        if jsonschema is None:
            logger.warning("jsonschema is not installed: Adaptive Cards get structural checks only")
            return
        schema = json.loads(Path(schema_path).read_text(encoding="utf-8"))
        self.schema_validator = jsonschema.Draft6Validator(schema)

    def error(self, card: Any) -> str | None:
        """Return why ``card`` is rejected, or None when it is acceptable."""
        if not isinstance(card, dict):
            return "Attachment content must be an Adaptive Card object"
        problem = self._structural_error(card)
        if problem is None and self.schema_validator is not None:
            problem = self._schema_error(card)
        if problem is None:
            problem = self._action_count_error(card)
        return problem

    @staticmethod
    def _structural_error(card: dict[str, Any]) -> str | None:
        if card.get("type") != "AdaptiveCard":
            return "Card type must be 'AdaptiveCard'"
        version = card.get("version")
        if not isinstance(version, str) or not re.fullmatch(r"\d+\.\d+", version):
            return "Card version is required, e.g. '1.3'"
        if tuple(int(part) for part in version.split(".")) > MAX_CARD_VERSION:
            return f"Card version {version} is not supported; Webex supports Adaptive Cards up to 1.3"
        if "body" in card and not isinstance(card["body"], list):
            return "Card body must be a list"
        return None

    def _schema_error(self, card: dict[str, Any]) -> str | None:
        error = best_match(self.schema_validator.iter_errors(card))
        if error is None:
            return None
        error = _most_specific(error)
        where = "/" + "/".join(str(part) for part in error.absolute_path)
        return f"Invalid Adaptive Card 1.3: {error.message} (at {where})"

    @staticmethod
    def _action_count_error(card: dict[str, Any]) -> str | None:
        for sub_card in _cards_within(card):
            count = len(_actions_of_card(sub_card))
            if count > MAX_CARD_ACTIONS:
                return f"A card can have at most {MAX_CARD_ACTIONS} actions (buttons); this one has {count}"
        return None


def _most_specific(error: Any) -> Any:
    """Descend through ``anyOf`` contexts to the error of the branch that matched the element type.

    ``best_match`` alone stops at "... is not valid under any of the given schemas"; branches whose
    ``type`` discriminator failed are noise, the remaining branch names the real problem.
    """
    while error.context:
        branches: dict[Any, list[Any]] = {}
        for sub_error in error.context:
            branches.setdefault(sub_error.relative_schema_path[0], []).append(sub_error)
        matching = [
            sub_error
            for branch in branches.values()
            if not any(list(e.relative_path) == ["type"] for e in branch)
            for sub_error in branch
        ]
        error = best_match(matching or error.context)
    return error


def _walk(node: Any, *, into_show_cards: bool) -> Iterable[dict[str, Any]]:
    """Yield every dict in a card tree, optionally skipping nested ShowCard cards."""
    if isinstance(node, list):
        for item in node:
            yield from _walk(item, into_show_cards=into_show_cards)
    elif isinstance(node, dict):
        yield node
        for key, value in node.items():
            if key == "card" and node.get("type") == "Action.ShowCard" and not into_show_cards:
                continue
            yield from _walk(value, into_show_cards=into_show_cards)


def _cards_within(card: dict[str, Any]) -> list[dict[str, Any]]:
    """The card itself plus every card nested in an Action.ShowCard."""
    return [node for node in _walk(card, into_show_cards=True)
            if node is card or node.get("type") == "AdaptiveCard"]


def _actions_of_card(card: dict[str, Any]) -> list[dict[str, Any]]:
    """Buttons of one card: its ``actions`` bar plus ActionSets in its body (not nested cards)."""
    actions = list(card.get("actions") or [])
    for node in _walk(card.get("body") or [], into_show_cards=False):
        if node.get("type") == "ActionSet":
            actions.extend(node.get("actions") or [])
    return actions


def _card_inputs(card: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Input elements of a card, by id."""
    return {node["id"]: node for node in _walk(card, into_show_cards=True)
            if str(node.get("type", "")).startswith("Input.") and "id" in node}


def _default_input_value(element: dict[str, Any]) -> str:
    if element.get("type") == "Input.Toggle":
        return str(element.get("value", element.get("valueOff", "false")))
    return str(element.get("value", ""))


# --------------------------------------------------------------------------------------------
# Markdown mentions
# --------------------------------------------------------------------------------------------

_MENTION = re.compile(r"<@(personId|personEmail):([^|>]+)(?:\|([^>]*))?>|<@all>")


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------

class LocalWebex:
    """Loopback Webex API plus a simulated world, for tests and the demo.

    All state sits behind one lock; helpers return deep copies so callers cannot change it behind
    the server's back.
    """

    def __init__(self, card_schema_path: Path | None = DEFAULT_CARD_SCHEMA_PATH, *,
                 deliver_events: bool = False, host: str = "127.0.0.1"):
        self.card_validator = CardValidator(card_schema_path)
        self.deliver_events = deliver_events
        self.host = host
        self.requests: list[dict[str, Any]] = []
        self.deliveries: list[dict[str, Any]] = []
        self._lock = threading.RLock()
        self._people: dict[str, Person] = {}
        self._tokens: dict[str, str] = {}
        self._rooms: dict[str, Room] = {}
        self._messages: dict[str, dict[str, Any]] = {}
        self._edit_counts: dict[str, int] = {}
        self._deleted: list[dict[str, Any]] = []
        self._files_posted: list[dict[str, Any]] = []
        self._contents: dict[str, ContentFile] = {}
        self._actions: dict[str, dict[str, Any]] = {}
        self._webhooks: dict[str, dict[str, Any]] = {}
        self._faults: list[_Fault] = []
        self._delivery_threads: list[threading.Thread] = []
        self._app_id = make_id("APPLICATION")
        self._server = None
        self._thread: threading.Thread | None = None
        self._url_map = self._build_url_map()

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self, port: int = 0) -> "LocalWebex":
        """Serve on ``host:port`` (0 = a free port) in a background thread; returns self."""
        if self._server is not None:
            return self
        self._server = make_server(self.host, port, self._wsgi, threaded=True,
                                   request_handler=_QuietHandler)
        # A short poll interval keeps stop() (and so every test) fast.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="local-webex", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and wait for pending webhook deliveries."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._server = None
        self.wait_for_deliveries()

    def __enter__(self) -> "LocalWebex":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The TCP port being served (after start())."""
        if self._server is None:
            raise RuntimeError("LocalWebex is not started")
        return self._server.server_port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1/`` with the trailing slash the SDK needs."""
        return f"http://{self.host}:{self.port}/v1/"

    # ---- simulated world ---------------------------------------------------------------------

    def add_person(self, email: str, display_name: str, *, bot: bool = False,
                   org_id: str = DEFAULT_ORG_ID) -> Person:
        """Create a person (or bot) of the organisation."""
        person = Person(id=make_id("PEOPLE"), email=email, display_name=display_name, org_id=org_id,
                        bot=bot, created=utc_timestamp())
        with self._lock:
            if any(p.email.lower() == email.lower() for p in self._people.values()):
                raise ValueError(f"a person with e-mail {email} already exists")
            self._people[person.id] = person
        return person

    def add_bot(self, email: str = "rollover@webex.bot",
                display_name: str = "Rollover") -> tuple[Person, str]:
        """Create a bot and an access token for it."""
        bot = self.add_person(email, display_name, bot=True)
        return bot, self.issue_token(bot)

    def issue_token(self, person: Person) -> str:
        """Create an access token acting as ``person``."""
        token = "local-" + base64.urlsafe_b64encode(uuid.uuid4().bytes + uuid.uuid4().bytes).decode().rstrip("=")
        with self._lock:
            self._tokens[token] = person.id
        return token

    def add_room(self, title: str, room_type: str = "group", members: Iterable[Person] = (), *,
                 include_bots: bool = True) -> Room:
        """Create a space with ``members``; every bot created so far joins too unless told otherwise."""
        if room_type not in ("group", "direct"):
            raise ValueError("room_type must be 'group' or 'direct'")
        with self._lock:
            member_ids = [p.id for p in members]
            if include_bots:
                member_ids += [p.id for p in self._people.values() if p.bot and p.id not in member_ids]
            if room_type == "direct" and len(set(member_ids)) != 2:
                raise ValueError("a direct room has exactly two members")
            room = Room(id=make_id("ROOM"), title=title, type=room_type, member_ids=member_ids,
                        created=utc_timestamp())
            self._rooms[room.id] = room
        return room

    def add_file(self, name: str, data: bytes, content_type: str, *, scan_state: str = "clean",
                 scanning_polls: int = 1, retry_after: int = 1) -> ContentFile:
        """Host a file at ``/v1/contents/{id}``.

        ``scan_state="scanning"`` answers 423 + Retry-After for ``scanning_polls`` downloads, then 200.
        """
        if scan_state not in SCAN_STATES:
            raise ValueError(f"scan_state must be one of {sorted(SCAN_STATES)}")
        content = ContentFile(id=make_id("CONTENT"), name=name, data=bytes(data),
                              content_type=content_type, scan_state=scan_state,
                              scanning_polls=scanning_polls, retry_after=retry_after)
        with self._lock:
            self._contents[content.id] = content
        return content

    def content_url(self, content: ContentFile | str) -> str:
        """The URL under which a hosted file is downloaded."""
        content_id = content.id if isinstance(content, ContentFile) else content
        return f"{self.base_url}contents/{content_id}"

    def post_as(self, person: Person, room: Room, text: str, *, mention_bot: bool = True,
                files: Iterable[ContentFile] | None = None, parent_id: str | None = None,
                deliver: bool | None = None) -> dict[str, Any]:
        """``person`` writes ``text`` in ``room`` from a Webex client; returns the message JSON.

        In a group space the message @mentions the room's bot the way clients render it: ``text``
        starts with the bot's display name, ``html`` carries a ``<spark-mention>`` and
        ``mentionedPeople`` lists the bot.  Direct spaces carry no mention.
        """
        with self._lock:
            room = self._rooms[room.id]
            self._require_member(person, room)
            fields: dict[str, Any] = {"text": text}
            if room.type == "group" and mention_bot:
                bot = self._bot_in(room)
                fields = {
                    "text": f"{bot.display_name} {text}",
                    "html": (f'<p><spark-mention data-object-type="person" data-object-id="{bot.id}">'
                             f"{escape(bot.display_name)}</spark-mention> {escape(text)}</p>"),
                    "mentionedPeople": [bot.id],
                }
            if files:
                fields["files"] = [self._attach_content(content, room) for content in files]
            if parent_id:
                self._check_parent(parent_id, room)
                fields["parentId"] = parent_id
            message = self._store_message(person, room, fields)
        self._maybe_deliver(deliver, "messages", "created", message)
        return copy.deepcopy(message)

    def click(self, person: Person, card_message_id: str, inputs: dict[str, Any] | None = None, *,
              button: str | None = None, deliver: bool | None = None) -> dict[str, Any]:
        """``person`` submits the card of ``card_message_id``; returns the attachment action JSON.

        ``button`` picks the Action.Submit by ``title`` or ``id`` when the card has several.  Like
        Webex, ``inputs`` is the button's ``data`` merged with the values of every card input (the
        defaults, overridden by ``inputs``).  Raises ValueError for what a client would not allow.
        """
        with self._lock:
            message = self._messages.get(card_message_id)
            if message is None or not message.get("attachments"):
                raise ValueError(f"no card message {card_message_id}")
            room = self._rooms[message["roomId"]]
            self._require_member(person, room)
            card = message["attachments"][0]["content"]
            submit = _pick_submit(card, button)
            action = {
                "id": make_id("ATTACHMENT_ACTION"),
                "type": "submit",
                "messageId": card_message_id,
                "inputs": _submitted_inputs(card, submit, inputs or {}),
                "personId": person.id,
                "roomId": room.id,
                "created": utc_timestamp(),
            }
            self._actions[action["id"]] = action
        self._maybe_deliver(deliver, "attachmentActions", "created", action)
        return copy.deepcopy(action)

    def disable_webhook(self, webhook_id: str) -> None:
        """Mark a webhook ``inactive`` as Webex does after repeated delivery failures."""
        with self._lock:
            self._webhooks[webhook_id]["status"] = "inactive"

    def inject_fault(self, method: str, path_regex: str, status: int, *, count: int = 1,
                     retry_after: int | None = None, message: str | None = None) -> None:
        """Answer the next ``count`` matching requests with ``status`` and the Webex error body.

        ``method`` may be ``"*"``; ``path_regex`` is searched in the path (e.g. ``r"/messages$"``).
        A 429 always carries ``Retry-After`` (``retry_after`` or 1 second).
        """
        if status == 429 and retry_after is None:
            retry_after = 1
        default_message = "Too many requests." if status == 429 else "Injected server error."
        with self._lock:
            self._faults.append(_Fault(method=method.upper(), path=re.compile(path_regex), status=status,
                                       remaining=count, retry_after=retry_after,
                                       message=message or default_message))

    # ---- webhook payloads --------------------------------------------------------------------

    def webhook_event(self, resource: str, event: str, data_id: str, *, actor: Person | None = None,
                      room: Room | None = None, secret: str | None = None,
                      owner: Person | None = None) -> tuple[bytes, dict[str, str]]:
        """The raw body and headers Webex would POST for an event on ``data_id``.

        The envelope comes from ``owner``'s (default: the first bot's) registered webhook matching
        resource/event/filter and is signed with its secret; ``secret`` overrides it and is the only
        key when no webhook is registered (no ``X-Spark-Signature`` without any secret).  ``actor`` and
        ``room`` override the actor and the room written into the payload.
        """
        with self._lock:
            data = self._event_data(resource, data_id)
            if room is not None:
                data.update(roomId=room.id, roomType=room.type)
            owner = owner or self._first_bot()
            hook = self._matching_webhook(owner, resource, event, data)
            actor_id = actor.id if actor else data["personId"]
            return _envelope(hook or self._unregistered_webhook(owner, resource, event),
                             actor_id, data, secret)

    def wait_for_deliveries(self, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Wait for background webhook deliveries; returns the delivery record."""
        with self._lock:
            threads = list(self._delivery_threads)
        for thread in threads:
            thread.join(timeout)
        with self._lock:
            self._delivery_threads = [t for t in self._delivery_threads if t.is_alive()]
            return copy.deepcopy(self.deliveries)

    # ---- inspection helpers ------------------------------------------------------------------

    def messages_in(self, room: Room | str) -> list[dict[str, Any]]:
        """Live messages of a room, oldest first."""
        room_id = room.id if isinstance(room, Room) else room
        with self._lock:
            return copy.deepcopy([m for m in self._messages.values() if m["roomId"] == room_id])

    def cards_in(self, room: Room | str) -> list[dict[str, Any]]:
        """Card contents posted in a room, oldest first."""
        return [m["attachments"][0]["content"] for m in self.messages_in(room) if m.get("attachments")]

    def sent_by_bot(self, room: Room | str) -> list[dict[str, Any]]:
        """Live messages posted by bots in a room, oldest first."""
        with self._lock:
            bot_ids = {p.id for p in self._people.values() if p.bot}
        return [m for m in self.messages_in(room) if m["personId"] in bot_ids]

    @property
    def deleted_messages(self) -> list[dict[str, Any]]:
        """Messages deleted through the API, in deletion order."""
        with self._lock:
            return copy.deepcopy(self._deleted)

    @property
    def files_posted(self) -> list[dict[str, Any]]:
        """Files posted through ``POST /messages``: messageId, roomId, name, contentType, data, url."""
        with self._lock:
            return copy.deepcopy(self._files_posted)

    def attachment_action(self, action_id: str) -> dict[str, Any]:
        """A stored attachment action (card submission)."""
        with self._lock:
            return copy.deepcopy(self._actions[action_id])

    def webhooks(self) -> list[dict[str, Any]]:
        """All registered webhooks (any owner)."""
        with self._lock:
            return copy.deepcopy(list(self._webhooks.values()))

    # ---- WSGI plumbing -----------------------------------------------------------------------

    @staticmethod
    def _build_url_map() -> Map:
        def rule(path: str, method: str, endpoint: str) -> Rule:
            return Rule("/v1" + path, methods=[method], endpoint=endpoint)

        return Map([
            rule("/people/me", "GET", "people_me"),
            rule("/people", "GET", "people_list"),
            rule("/people/<person_id>", "GET", "people_get"),
            rule("/rooms/<room_id>", "GET", "rooms_get"),
            rule("/messages", "GET", "messages_list"),
            rule("/messages", "POST", "messages_create"),
            rule("/messages/direct", "GET", "messages_direct"),
            rule("/messages/<message_id>", "GET", "messages_get"),
            rule("/messages/<message_id>", "PUT", "messages_edit"),
            rule("/messages/<message_id>", "DELETE", "messages_delete"),
            rule("/attachment/actions", "POST", "actions_create"),
            rule("/attachment/actions/<action_id>", "GET", "actions_get"),
            rule("/webhooks", "GET", "webhooks_list"),
            rule("/webhooks", "POST", "webhooks_create"),
            rule("/webhooks/<webhook_id>", "GET", "webhooks_get"),
            rule("/webhooks/<webhook_id>", "PUT", "webhooks_update"),
            rule("/webhooks/<webhook_id>", "DELETE", "webhooks_delete"),
            rule("/contents/<content_id>", "GET", "contents_get"),  # werkzeug adds HEAD
        ])

    def _wsgi(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        request = _Request(environ)
        try:
            response = self._dispatch(request)
        except _ApiFailure as failure:
            response = _error(failure.status, failure.message, failure.headers)
        except Exception:
            logger.exception("local Webex failed on %s %s", request.method, request.path)
            response = _error(500, "Internal error in the local Webex server.")
        self._record(request, response)
        return response(environ, start_response)

    def _dispatch(self, request: Request) -> Response:
        fault = self._take_fault(request.method, request.path)
        if fault is not None:
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            return _error(fault.status, fault.message, headers)
        try:
            endpoint, args = self._url_map.bind_to_environ(request.environ).match()
        except MethodNotAllowed:
            raise _ApiFailure(405, "The requested method is not supported for this resource.")
        except NotFound:
            raise _ApiFailure(404, "The requested resource could not be found.")
        caller = self._authenticate(request)
        return getattr(self, f"_api_{endpoint}")(caller, request, **args)

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.method in ("*", method) and fault.path.search(path):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _authenticate(self, request: Request) -> Person:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        with self._lock:
            person_id = self._tokens.get(token.strip()) if scheme.lower() == "bearer" else None
            if person_id is None:
                raise _ApiFailure(401, UNAUTHORIZED_MESSAGE)
            return self._people[person_id]

    def _record(self, request: Request, response: Response) -> None:
        headers = dict(request.headers)
        if "Authorization" in headers:
            headers["Authorization"] = "<redacted>"
        entry: dict[str, Any] = {
            "method": request.method,
            "path": request.path,
            "query": request.args.to_dict(flat=True),
            "json": request.get_json(silent=True) if request.is_json else None,
            "headers": headers,
            "status": response.status_code,
        }
        if request.mimetype == "multipart/form-data":
            entry["form"] = request.form.to_dict(flat=True)
            entry["uploads"] = [upload.filename for upload in request.files.values()]
        with self._lock:
            self.requests.append(entry)

    # ---- people ------------------------------------------------------------------------------

    def _api_people_me(self, caller: Person, request: Request) -> Response:
        return _json(caller.to_json())

    def _api_people_get(self, caller: Person, request: Request, person_id: str) -> Response:
        with self._lock:
            person = self._people.get(person_id)
        if person is None:
            raise _ApiFailure(404, "Person not found.")
        return _json(person.to_json())

    def _api_people_list(self, caller: Person, request: Request) -> Response:
        email = request.args.get("email", "").lower()
        ids = set(filter(None, request.args.get("id", "").split(",")))
        name = request.args.get("displayName", "").lower()
        if not (email or ids or name):
            raise _ApiFailure(400, "Specify email, displayName or id.")
        with self._lock:
            people = [p.to_json() for p in self._people.values()
                      if (not email or p.email.lower() == email)
                      and (not ids or p.id in ids)
                      and (not name or p.display_name.lower().startswith(name))]
        return self._page(request, people, default_max=100)

    # ---- rooms -------------------------------------------------------------------------------

    def _api_rooms_get(self, caller: Person, request: Request, room_id: str) -> Response:
        """A space's details, for its members only (Webex answers others with 404)."""
        with self._lock:
            room = self._member_room(caller, room_id)
            return _json({"id": room.id, "title": room.title, "type": room.type, "isLocked": False,
                          "lastActivity": room.created, "created": room.created})

    # ---- messages ----------------------------------------------------------------------------

    def _api_messages_create(self, caller: Person, request: Request) -> Response:
        fields, upload = _message_request(request)
        _check_message_body(fields, upload, self.card_validator)
        # Fetched before taking the lock: the URL may point back at this very server.
        posted_file = _read_upload(upload) if upload is not None else (
            _fetch_loopback_file(fields["files"][0]) if fields.get("files") else None)
        with self._lock:
            room = self._destination(caller, fields)
            if fields.get("parentId"):
                self._check_parent(fields["parentId"], room)
            message_fields = _authored_fields(fields, self._people.values())
            content = self._host_posted_file(posted_file, room) if posted_file else None
            if content is not None:
                message_fields["files"] = [self.content_url(content)]
            if fields.get("attachments"):
                message_fields["attachments"] = copy.deepcopy(fields["attachments"])
            if fields.get("parentId"):
                message_fields["parentId"] = fields["parentId"]
            message = self._store_message(caller, room, message_fields)
            if content is not None:
                self._files_posted.append({"messageId": message["id"], "roomId": room.id,
                                           "name": content.name, "contentType": content.content_type,
                                           "data": content.data, "url": self.content_url(content)})
        self._maybe_deliver(None, "messages", "created", message)
        return _json(message)

    def _api_messages_get(self, caller: Person, request: Request, message_id: str) -> Response:
        with self._lock:
            return _json(self._visible_message(caller, message_id))

    def _api_messages_list(self, caller: Person, request: Request) -> Response:
        room_id = request.args.get("roomId")
        if not room_id:
            raise _ApiFailure(400, "roomId is required.")
        with self._lock:
            room = self._member_room(caller, room_id)
            mentioned = request.args.get("mentionedPeople")
            if mentioned not in (None, "me", caller.id):
                raise _ApiFailure(400, "Only me or the person ID of the current user may be specified.")
            if mentioned and _int_arg(request, "max", 50) > 100:
                raise _ApiFailure(400, "max cannot exceed 100 when used with mentionedPeople.")
            if caller.bot and room.type == "group" and not mentioned:
                # Real behaviour: bots must pass mentionedPeople=me to list a group space.
                raise _ApiFailure(403, "Failed to get activity.")
            messages = [m for m in reversed(self._messages.values())
                        if m["roomId"] == room.id and self._can_see(caller, m)
                        and (not mentioned or caller.id in m.get("mentionedPeople", []))]
            messages = _filter_messages(messages, request.args, self._messages)
            return self._page(request, messages, default_max=50)

    def _api_messages_direct(self, caller: Person, request: Request) -> Response:
        with self._lock:
            other = self._person_from(request.args.get("personId"), request.args.get("personEmail"))
            room = self._direct_room(caller, other, create=False)
            parent_id = request.args.get("parentId")
            messages = [] if room is None else [
                m for m in reversed(self._messages.values())
                if m["roomId"] == room.id and (not parent_id or m.get("parentId") == parent_id)]
            return self._page(request, messages, default_max=50)

    def _api_messages_edit(self, caller: Person, request: Request, message_id: str) -> Response:
        body = _json_body(request)
        with self._lock:
            message = self._visible_message(caller, message_id)
            if message["personId"] != caller.id:
                raise _ApiFailure(403, "Only the author of a message can edit it.")
            if not body.get("roomId"):
                raise _ApiFailure(400, "roomId is required.")
            if body["roomId"] != message["roomId"]:
                raise _ApiFailure(400, "roomId does not match the room of the message.")
            if message.get("attachments") or message.get("files"):
                raise _ApiFailure(400, "Edits of messages containing files or attachments are not "
                                       "currently supported.")
            if self._edit_counts.get(message_id, 0) >= MAX_EDITS:
                raise _ApiFailure(400, f"A message can be edited at most {MAX_EDITS} times.")
            if not (body.get("text") or body.get("markdown")):
                raise _ApiFailure(400, "text or markdown is required.")
            _check_text_sizes(body)
            edited = self._messages[message_id]
            for key in ("text", "markdown", "html", "mentionedPeople", "mentionedGroups"):
                edited.pop(key, None)
            edited.update(_authored_fields(body, self._people.values()))
            edited["updated"] = utc_timestamp()
            self._edit_counts[message_id] = self._edit_counts.get(message_id, 0) + 1
            return _json(_ordered_message(edited))

    def _api_messages_delete(self, caller: Person, request: Request, message_id: str) -> Response:
        with self._lock:
            message = self._visible_message(caller, message_id)
            if message["personId"] != caller.id:
                raise _ApiFailure(403, "Only the author of a message can delete it.")
            self._deleted.append(self._messages.pop(message_id))
        return Response(status=204)

    # ---- attachment actions ------------------------------------------------------------------

    def _api_actions_create(self, caller: Person, request: Request) -> Response:
        body = _json_body(request)
        if body.get("type") != "submit" or not isinstance(body.get("inputs"), dict):
            raise _ApiFailure(400, "type 'submit', messageId and inputs are required.")
        with self._lock:
            message = self._visible_message(caller, str(body.get("messageId")))
            if not message.get("attachments"):
                raise _ApiFailure(400, "The message has no card attachment.")
            action = {"id": make_id("ATTACHMENT_ACTION"), "type": "submit", "messageId": message["id"],
                      "inputs": body["inputs"], "personId": caller.id, "roomId": message["roomId"],
                      "created": utc_timestamp()}
            self._actions[action["id"]] = action
        # The spec answers 202 Accepted (the SDK's create() expects 200 and raises ApiError).
        return _json(action, status=202)

    def _api_actions_get(self, caller: Person, request: Request, action_id: str) -> Response:
        with self._lock:
            action = self._actions.get(action_id)
            room = self._rooms.get(action["roomId"]) if action else None
            if action is None or caller.id not in room.member_ids:
                raise _ApiFailure(404, "Attachment action not found.")
            return _json(action)

    # ---- webhooks ----------------------------------------------------------------------------

    def _api_webhooks_create(self, caller: Person, request: Request) -> Response:
        body = _json_body(request)
        for name in ("name", "targetUrl", "resource", "event"):
            if not isinstance(body.get(name), str) or not body[name]:
                raise _ApiFailure(400, f"{name} is required.")
        if body["resource"] not in WEBHOOK_RESOURCES:
            raise _ApiFailure(400, f"Unsupported resource '{body['resource']}'.")
        if body["event"] not in WEBHOOK_EVENTS:
            raise _ApiFailure(400, f"Unsupported event '{body['event']}'.")
        _check_target_url(body["targetUrl"])
        hook = {"id": make_id("WEBHOOK"), "name": body["name"], "targetUrl": body["targetUrl"],
                "resource": body["resource"], "event": body["event"]}
        for optional in ("filter", "secret"):
            if body.get(optional):
                hook[optional] = str(body[optional])
        hook.update(status="active", created=utc_timestamp(), orgId=caller.org_id, createdBy=caller.id,
                    appId=self._app_id, ownedBy=body.get("ownedBy") or "creator")
        with self._lock:
            self._webhooks[hook["id"]] = hook
        return _json(hook)

    def _api_webhooks_list(self, caller: Person, request: Request) -> Response:
        with self._lock:
            hooks = [h for h in self._webhooks.values() if h["createdBy"] == caller.id]
            return self._page(request, hooks, default_max=100)

    def _api_webhooks_get(self, caller: Person, request: Request, webhook_id: str) -> Response:
        with self._lock:
            return _json(self._own_webhook(caller, webhook_id))

    def _api_webhooks_update(self, caller: Person, request: Request, webhook_id: str) -> Response:
        body = _json_body(request)
        for name in ("name", "targetUrl"):
            if not isinstance(body.get(name), str) or not body[name]:
                raise _ApiFailure(400, f"{name} is required.")
        if body.get("status") not in (None, "active"):
            raise _ApiFailure(400, "status can only be set to 'active'.")
        _check_target_url(body["targetUrl"])
        with self._lock:
            hook = self._own_webhook(caller, webhook_id)
            hook.update(name=body["name"], targetUrl=body["targetUrl"])
            for optional in ("secret", "ownedBy", "status"):
                if body.get(optional):
                    hook[optional] = body[optional]
            return _json(hook)

    def _api_webhooks_delete(self, caller: Person, request: Request, webhook_id: str) -> Response:
        with self._lock:
            self._own_webhook(caller, webhook_id)
            del self._webhooks[webhook_id]
        return Response(status=204)

    # ---- contents ----------------------------------------------------------------------------

    def _api_contents_get(self, caller: Person, request: Request, content_id: str) -> Response:
        with self._lock:
            content = self._contents.get(content_id)
            visible = content is not None and (
                not content.room_ids
                or any(caller.id in self._rooms[r].member_ids for r in content.room_ids))
            if not visible:
                raise _ApiFailure(404, "Content not found.")
            if content.scan_state == "scanning" and content.scanning_polls > 0:
                content.scanning_polls -= 1
                raise _ApiFailure(423, "The file is being scanned for malware; retry later.",
                                  {"Retry-After": str(content.retry_after)})
            if content.scan_state == "scanning":
                content.scan_state = "clean"
            if content.scan_state == "infected":
                raise _ApiFailure(410, "The file was found to be infected and is no longer available.")
            if content.scan_state == "unscannable" and request.args.get("allow") != "unscannable":
                raise _ApiFailure(428, "The file could not be scanned for malware; add "
                                       "?allow=unscannable to download it anyway.")
            data, name, content_type = content.data, content.name, content.content_type
        return Response(data, status=200, headers={
            "Content-Type": content_type,
            "Content-Disposition": f'attachment; filename="{name}"',
            "Content-Length": str(len(data)),
        })

    # ---- state helpers (call with the lock held) ---------------------------------------------

    def _store_message(self, author: Person, room: Room, fields: dict[str, Any]) -> dict[str, Any]:
        message = _ordered_message({"id": make_id("MESSAGE"), "roomId": room.id, "roomType": room.type,
                                    "personId": author.id, "personEmail": author.email,
                                    "created": utc_timestamp(), **fields})
        self._messages[message["id"]] = message
        return message

    def _visible_message(self, caller: Person, message_id: str) -> dict[str, Any]:
        message = self._messages.get(message_id)
        if message is None or not self._can_see(caller, message):
            raise _ApiFailure(404, "Message not found.")
        return message

    def _can_see(self, person: Person, message: dict[str, Any]) -> bool:
        """Room members see messages; in group spaces a bot sees only its own and those mentioning it."""
        room = self._rooms[message["roomId"]]
        if person.id not in room.member_ids:
            return False
        if person.bot and room.type == "group":
            return message["personId"] == person.id or person.id in message.get("mentionedPeople", [])
        return True

    def _member_room(self, caller: Person, room_id: str) -> Room:
        room = self._rooms.get(room_id)
        if room is None or caller.id not in room.member_ids:
            raise _ApiFailure(404, "Could not find a room with provided ID.")
        return room

    def _destination(self, caller: Person, fields: dict[str, Any]) -> Room:
        targets = [k for k in ("roomId", "toPersonId", "toPersonEmail") if fields.get(k)]
        if len(targets) != 1:
            raise _ApiFailure(400, "Exactly one of roomId, toPersonId or toPersonEmail is required.")
        if targets[0] == "roomId":
            return self._member_room(caller, fields["roomId"])
        other = self._person_from(fields.get("toPersonId"), fields.get("toPersonEmail"))
        return self._direct_room(caller, other, create=True)

    def _person_from(self, person_id: str | None, email: str | None) -> Person:
        for person in self._people.values():
            if person.id == person_id or (email and person.email.lower() == email.lower()):
                return person
        raise _ApiFailure(404, "Could not find a person with the provided ID or e-mail.")

    def _direct_room(self, caller: Person, other: Person, *, create: bool) -> Room | None:
        for room in self._rooms.values():
            if room.type == "direct" and set(room.member_ids) == {caller.id, other.id}:
                return room
        if not create:
            return None
        room = Room(id=make_id("ROOM"), title=other.display_name, type="direct",
                    member_ids=[caller.id, other.id], created=utc_timestamp())
        self._rooms[room.id] = room
        return room

    def _check_parent(self, parent_id: str, room: Room) -> None:
        parent = self._messages.get(parent_id)
        if parent is None or parent["roomId"] != room.id:
            raise _ApiFailure(400, "parentId must be a message in the same room.")

    def _require_member(self, person: Person, room: Room) -> None:
        if person.id not in room.member_ids:
            raise ValueError(f"{person.email} is not a member of room {room.title!r}")

    def _bot_in(self, room: Room) -> Person:
        for person_id in room.member_ids:
            if self._people[person_id].bot:
                return self._people[person_id]
        raise ValueError(f"room {room.title!r} has no bot to mention")

    def _first_bot(self) -> Person:
        for person in self._people.values():
            if person.bot:
                return person
        raise ValueError("no bot: call add_bot() first")

    def _attach_content(self, content: ContentFile, room: Room) -> str:
        self._contents[content.id].room_ids.add(room.id)
        return self.content_url(content)

    def _host_posted_file(self, posted_file: tuple[str, bytes, str], room: Room) -> ContentFile:
        """Host a file posted with a message (Webex re-hosts every posted file under /contents)."""
        name, data, content_type = posted_file
        content = ContentFile(id=make_id("CONTENT"), name=name, data=data, content_type=content_type,
                              scan_state="clean", scanning_polls=0, retry_after=1, room_ids={room.id})
        self._contents[content.id] = content
        return content

    def _own_webhook(self, caller: Person, webhook_id: str) -> dict[str, Any]:
        hook = self._webhooks.get(webhook_id)
        if hook is None or hook["createdBy"] != caller.id:
            raise _ApiFailure(404, "Webhook not found.")
        return hook

    def _page(self, request: Request, items: list[dict[str, Any]], *, default_max: int) -> Response:
        """One page of ``items`` with an RFC 5988 ``Link: <...>; rel="next"`` pointing at this server."""
        limit = _int_arg(request, "max", default_max)
        offset = _int_arg(request, "cursor", 0)
        if limit < 1 or offset < 0:
            raise _ApiFailure(400, "max must be a positive integer.")
        page = items[offset:offset + limit]
        headers = {}
        if offset + limit < len(items):
            query = {k: v for k, v in request.args.items() if k not in ("max", "cursor")}
            query.update(max=limit, cursor=offset + limit)
            next_url = f"{self.base_url}{request.path[len('/v1/'):]}?{urlencode(query)}"
            headers["Link"] = f'<{next_url}>; rel="next"'
        return _json({"items": copy.deepcopy(page)}, headers=headers)

    # ---- events and delivery -----------------------------------------------------------------

    def _event_data(self, resource: str, data_id: str) -> dict[str, Any]:
        if resource == "messages":
            message = self._messages.get(data_id) or next(
                (m for m in self._deleted if m["id"] == data_id), None)
            if message is None:
                raise ValueError(f"no message {data_id}")
            keys = ("id", "roomId", "roomType", "personId", "personEmail", "mentionedPeople", "created")
            return {k: copy.deepcopy(message[k]) for k in keys if k in message}
        if resource == "attachmentActions":
            action = self._actions.get(data_id)
            if action is None:
                raise ValueError(f"no attachment action {data_id}")
            keys = ("id", "type", "messageId", "personId", "roomId", "created")
            return {k: action[k] for k in keys}
        raise ValueError(f"webhook events for resource {resource!r} are not simulated")

    def _matching_webhook(self, owner: Person, resource: str, event: str,
                          data: dict[str, Any]) -> dict[str, Any] | None:
        for hook in self._webhooks.values():
            if (hook["createdBy"] == owner.id and hook["resource"] == resource
                    and hook["event"] == event and _filter_matches(hook.get("filter"), data, owner)):
                return hook
        return None

    def _unregistered_webhook(self, owner: Person, resource: str, event: str) -> dict[str, Any]:
        return {"id": make_id("WEBHOOK"), "name": "unregistered", "targetUrl": "", "resource": resource,
                "event": event, "orgId": owner.org_id, "createdBy": owner.id, "appId": self._app_id,
                "ownedBy": "creator", "status": "active", "created": utc_timestamp()}

    def _receives(self, owner: Person, resource: str, data: dict[str, Any]) -> bool:
        """Whether Webex notifies ``owner`` of this event at all.

        A bot hears a group space only when mentioned (not even its own posts there); in a direct
        space it hears everything, its own messages included, hence the SDK's loop-prevention advice.
        """
        if resource == "messages":
            if owner.bot and data["roomType"] == "group":
                return owner.id in data.get("mentionedPeople", [])
            return self._can_see(owner, self._messages[data["id"]])
        card = self._messages.get(data["messageId"])
        return card is not None and card["personId"] == owner.id  # the app that posted the card

    def _maybe_deliver(self, deliver: bool | None, resource: str, event: str,
                       obj: dict[str, Any]) -> None:
        """POST the signed event to every matching active webhook, each in a background thread."""
        if not (self.deliver_events if deliver is None else deliver):
            return
        with self._lock:
            data = self._event_data(resource, obj["id"])
            payloads = []
            for hook in self._webhooks.values():
                owner = self._people[hook["createdBy"]]
                if (hook["status"] == "active" and hook["resource"] == resource and hook["event"] == event
                        and self._receives(owner, resource, data)
                        and _filter_matches(hook.get("filter"), data, owner)):
                    payloads.append((hook["id"], hook["targetUrl"],
                                     _envelope(hook, obj["personId"], data, None)))
            for hook_id, url, (body, headers) in payloads:
                thread = threading.Thread(target=self._post_event, args=(hook_id, url, body, headers),
                                          name="local-webex-delivery", daemon=True)
                self._delivery_threads.append(thread)
                thread.start()

    def _post_event(self, hook_id: str, url: str, body: bytes, headers: dict[str, str]) -> None:
        record: dict[str, Any] = {"webhookId": hook_id, "targetUrl": url, "body": json.loads(body)}
        try:
            record["status"] = http.post(url, data=body, headers=headers, timeout=10).status_code
        except http.RequestException as exc:
            logger.warning("webhook delivery to %s failed: %s", url, exc)
            record["error"] = str(exc)
        with self._lock:
            self.deliveries.append(record)


# --------------------------------------------------------------------------------------------
# Module-level helpers (pure)
# --------------------------------------------------------------------------------------------

_MESSAGE_KEY_ORDER = ("id", "parentId", "roomId", "roomType", "text", "markdown", "html", "files",
                      "personId", "personEmail", "mentionedPeople", "mentionedGroups", "attachments",
                      "created", "updated")


def _ordered_message(message: dict[str, Any]) -> dict[str, Any]:
    """Message JSON with the spec's field order (absent fields stay absent, as Webex omits them)."""
    return {key: message[key] for key in _MESSAGE_KEY_ORDER if key in message}


def _json(body: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    response = Response(json.dumps(body), status=status, content_type="application/json;charset=UTF-8",
                        headers=headers or {})
    response.headers["TrackingID"] = f"ROUTER_{uuid.uuid4()}"
    return response


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """The Webex error body: ``{"message", "errors": [{"description"}], "trackingId"}``."""
    tracking_id = f"ROUTER_{uuid.uuid4()}"
    body = {"message": message, "errors": [{"description": message}], "trackingId": tracking_id}
    response = Response(json.dumps(body), status=status, content_type="application/json;charset=UTF-8",
                        headers=headers or {})
    response.headers["TrackingID"] = tracking_id
    return response


def _json_body(request: Request) -> dict[str, Any]:
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        raise _ApiFailure(400, "The request body must be a JSON object.")
    return body


def _int_arg(request: Request, name: str, default: int) -> int:
    """An integer query parameter; 400 when it is not one."""
    try:
        return int(request.args.get(name, default))
    except ValueError:
        raise _ApiFailure(400, f"{name} must be an integer.")


def _message_request(request: Request) -> tuple[dict[str, Any], Any]:
    """Fields of ``POST /messages`` and the uploaded file, from JSON or multipart/form-data."""
    if request.mimetype == "multipart/form-data":
        # The SDK sends local files with requests_toolbelt's MultipartEncoder: plain form fields
        # plus one "files" part.
        fields = request.form.to_dict(flat=True)
        uploads = request.files.getlist("files")
        if len(uploads) > 1:
            raise _ApiFailure(400, "Only one file is allowed per message.")
        return fields, uploads[0] if uploads else None
    return _json_body(request), None


def _read_upload(upload: Any) -> tuple[str, bytes, str]:
    """Name, bytes and content type of a multipart file part."""
    data = upload.read()
    if len(data) > MAX_FILE_BYTES:
        raise _ApiFailure(400, "A file can be at most 100 MB.")
    return upload.filename or "file", data, upload.mimetype or "application/octet-stream"


def _check_text_sizes(fields: dict[str, Any]) -> None:
    for name in ("text", "markdown"):
        value = fields.get(name)
        if value is not None and not isinstance(value, str):
            raise _ApiFailure(400, f"{name} must be a string.")
        if value and len(value.encode("utf-8")) > MAX_TEXT_BYTES:
            raise _ApiFailure(400, f"{name} exceeds the maximum message length of {MAX_TEXT_BYTES} bytes.")


def _check_message_body(fields: dict[str, Any], upload: Any, validator: CardValidator) -> None:
    """Reject what Webex rejects (400) before anything is stored."""
    _check_text_sizes(fields)
    files = fields.get("files")
    if files is not None and (not isinstance(files, list) or not all(isinstance(f, str) for f in files)):
        raise _ApiFailure(400, "files must be a list of URLs.")
    if files and len(files) > 1:
        raise _ApiFailure(400, "Only one file is allowed per message.")
    attachments = fields.get("attachments")
    has_text = bool(fields.get("text") or fields.get("markdown"))
    if not (has_text or files or upload is not None or attachments):
        raise _ApiFailure(400, "A message needs text, markdown, files or attachments.")
    if attachments:
        _check_attachments(attachments, has_text, validator)


def _check_attachments(attachments: Any, has_text: bool, validator: CardValidator) -> None:
    if not isinstance(attachments, list) or not all(isinstance(a, dict) for a in attachments):
        raise _ApiFailure(400, "attachments must be a list of objects.")
    if len(attachments) > 1:
        raise _ApiFailure(400, "Only one card per message is supported.")
    if attachments[0].get("contentType") != CARD_CONTENT_TYPE:
        raise _ApiFailure(400, f"Attachment contentType must be '{CARD_CONTENT_TYPE}'.")
    if not has_text:
        # Rollover policy (the notes mark the real behaviour UNCONFIRMED): clients that cannot
        # render the card show text/markdown, so a card without fallback is refused.
        raise _ApiFailure(400, "A card message needs text or markdown as fallback.")
    problem = validator.error(attachments[0].get("content"))
    if problem:
        raise _ApiFailure(400, problem)


def _authored_fields(fields: dict[str, Any], people: Iterable[Person]) -> dict[str, Any]:
    """text/markdown/html/mentions of a message written through the API.

    Markdown mentions (``<@personId:ID|Name>``, ``<@personEmail:x|Name>``, ``<@all>``) become
    ``mentionedPeople``/``mentionedGroups`` and ``<spark-mention>`` tags in ``html``; the html is a
    minimal rendering (escaped text in ``<p>``), not a Markdown renderer.
    """
    result: dict[str, Any] = {}
    markdown = fields.get("markdown")
    if markdown:
        plain, html, mentioned, groups = _render_mentions(markdown, list(people))
        result.update(text=fields.get("text") or plain, markdown=markdown, html=f"<p>{html}</p>")
        if mentioned:
            result["mentionedPeople"] = mentioned
        if groups:
            result["mentionedGroups"] = groups
    elif fields.get("text"):
        result["text"] = fields["text"]
    return result


def _render_mentions(markdown: str, people: list[Person]) -> tuple[str, str, list[str], list[str]]:
    plain, html, mentioned, groups, position = [], [], [], [], 0
    for match in _MENTION.finditer(markdown):
        plain.append(markdown[position:match.start()])
        html.append(escape(markdown[position:match.start()]))
        position = match.end()
        if match.group(0) == "<@all>":
            plain.append("All")
            html.append('<spark-mention data-object-type="groupMention" data-group-type="all">All'
                        "</spark-mention>")
            groups.append("all")
            continue
        kind, key, label = match.groups()
        person = next((p for p in people if (p.id if kind == "personId" else p.email.lower())
                       == (key if kind == "personId" else key.lower())), None)
        name = label or (person.display_name if person else key)
        plain.append(name)
        if person is None:
            html.append(escape(name))
            continue
        html.append(f'<spark-mention data-object-type="person" data-object-id="{person.id}">'
                    f"{escape(name)}</spark-mention>")
        mentioned.append(person.id)
    plain.append(markdown[position:])
    html.append(escape(markdown[position:]))
    return "".join(plain), "".join(html), mentioned, groups


def _filter_messages(messages: list[dict[str, Any]], args: Any,
                     all_messages: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Apply parentId / before / beforeMessage of ``GET /messages`` (newest first in, newest first out)."""
    if args.get("parentId"):
        messages = [m for m in messages if m.get("parentId") == args["parentId"]]
    if args.get("before"):
        try:
            before = parse_timestamp(args["before"])
        except ValueError:
            raise _ApiFailure(400, "before must be an ISO 8601 date and time.")
        messages = [m for m in messages if parse_timestamp(m["created"]) < before]
    if args.get("beforeMessage"):
        order = list(all_messages)
        if args["beforeMessage"] not in all_messages:
            raise _ApiFailure(404, "Message not found.")
        limit = order.index(args["beforeMessage"])
        messages = [m for m in messages if order.index(m["id"]) < limit]
    return messages


def _filter_matches(filter_text: str | None, data: dict[str, Any], owner: Person) -> bool:
    """Webhook filters: ``key=value`` pairs joined by ``&``; ``mentionedPeople=me`` means the owner."""
    if not filter_text:
        return True
    for clause in filter_text.split("&"):
        key, _, value = clause.partition("=")
        if key == "mentionedPeople":
            wanted = owner.id if value == "me" else value
            if wanted not in data.get("mentionedPeople", []):
                return False
        elif str(data.get(key)) != value:
            return False
    return True


def _envelope(hook: dict[str, Any], actor_id: str, data: dict[str, Any],
              secret: str | None) -> tuple[bytes, dict[str, str]]:
    """The signed webhook POST: raw JSON body and headers."""
    body: dict[str, Any] = {key: hook[key] for key in ("id", "name", "targetUrl", "resource", "event")}
    if hook.get("filter"):
        body["filter"] = hook["filter"]
    body.update(orgId=hook["orgId"], createdBy=hook["createdBy"], appId=hook["appId"],
                ownedBy=hook.get("ownedBy", "creator"), status=hook["status"], actorId=actor_id,
                created=hook["created"], data=data)
    raw = json.dumps(body, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json; charset=utf-8"}
    key = secret or hook.get("secret")
    if key:
        headers["X-Spark-Signature"] = sign_body(key, raw)
    return raw, headers


def _check_target_url(url: str) -> None:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise _ApiFailure(400, "targetUrl must be an http(s) URL.")


def _fetch_loopback_file(url: str) -> tuple[str, bytes, str]:
    """Fetch a file posted by URL; only loopback hosts, so tests never leave the machine."""
    parsed = urlparse(url)
    try:
        loopback = parsed.hostname == "localhost" or ipaddress.ip_address(parsed.hostname or "").is_loopback
    except ValueError:
        loopback = False
    if parsed.scheme not in ("http", "https") or not loopback:
        raise _ApiFailure(400, "The local Webex only fetches files from loopback URLs.")
    try:
        response = http.get(url, timeout=10)
    except http.RequestException as exc:
        raise _ApiFailure(400, f"Could not retrieve the file: {exc}")
    if response.status_code != 200:
        raise _ApiFailure(400, f"Could not retrieve the file: HTTP {response.status_code}.")
    name = Path(parsed.path).name or "file"
    return name, response.content, response.headers.get("Content-Type", "application/octet-stream")


def _pick_submit(card: dict[str, Any], button: str | None) -> dict[str, Any]:
    submits = [n for n in _walk(card, into_show_cards=True) if n.get("type") == "Action.Submit"]
    if button is not None:
        submits = [s for s in submits if button in (s.get("title"), s.get("id"))]
    if len(submits) != 1:
        titles = [s.get("title") for s in _walk(card, into_show_cards=True)
                  if s.get("type") == "Action.Submit"]
        raise ValueError(f"pick exactly one Action.Submit with button=<title or id>; card has {titles}")
    return submits[0]


def _submitted_inputs(card: dict[str, Any], submit: dict[str, Any],
                      values: dict[str, Any]) -> dict[str, Any]:
    """``data`` of the button merged with the card's input values, as Webex reports them."""
    elements = _card_inputs(card)
    unknown = set(values) - set(elements)
    if unknown:
        raise ValueError(f"card has no input(s) {sorted(unknown)}; inputs are {sorted(elements)}")
    data = submit.get("data")
    merged: dict[str, Any] = copy.deepcopy(data) if isinstance(data, dict) else {}
    if submit.get("associatedInputs") == "none":
        return merged
    for input_id, element in elements.items():
        value = str(values[input_id]) if input_id in values else _default_input_value(element)
        if element.get("isRequired") and value == "":
            raise ValueError(f"required input {input_id!r} is empty: a client would not submit")
        merged[input_id] = value
    return merged


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> None:
    """Run the local Webex standalone with a bot, a person and two rooms; print how to use them."""
    parser = argparse.ArgumentParser(description="Loopback Webex API for Rollover")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--deliver", action="store_true",
                        help="POST signed webhook events to registered targetUrls")
    args = parser.parse_args(argv)
    server = LocalWebex(deliver_events=args.deliver)
    bot, bot_token = server.add_bot()
    alice = server.add_person("alice@example.com", "Alice Admin")
    group = server.add_room("SSO operations", "group", [alice])
    direct = server.add_room("Alice Admin", "direct", [alice])
    server.start(args.port)
    print(f"Local Webex listening on {server.base_url}")
    print(f"WEBEX_ACCESS_TOKEN={bot_token}")
    print(f"bot {bot.email} id={bot.id}")
    print(f"person {alice.email} token={server.issue_token(alice)}")
    print(f"group room id={group.id}\ndirect room id={direct.id}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        print("stopping")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
