"""The simulated Webex organisation behind the local Webex: people, tokens, rooms, messages, and who sees what.

``WebexWorld`` holds the state (behind the server's one lock) and the rules every route shares; the route
mixins (``messages``, ``files``, ``actions``, ``webhooks``, ``directory``) and ``delivery`` build on it.
"""

from __future__ import annotations

import base64
import copy
import threading
import uuid
from typing import Any, Iterable
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

from fakes.webex.cards import CardValidator
from fakes.webex.model import (
    DEFAULT_ORG_ID,
    ApiFailure,
    ContentFile,
    Person,
    Room,
    int_arg,
    json_response,
    make_id,
    ordered_message,
    utc_timestamp,
)


class WebexWorld:
    """State and shared rules of the local Webex. Helpers return deep copies: callers cannot change state."""

    base_url: str
    _lock: threading.RLock

    def _init_world(self, card_validator: CardValidator, deliver_events: bool) -> None:
        self.card_validator = card_validator
        self.deliver_events = deliver_events
        self.deliveries: list[dict[str, Any]] = []
        self.frames_sent: list[str] = []          # websocket frame ids, once delivering over the local Mercury
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
        self._delivery_threads: list[threading.Thread] = []
        self._app_id = make_id("APPLICATION")

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

    def token_owner(self, token: str) -> str | None:
        """The person id a token acts as (the local Mercury authorizes websockets with it)."""
        with self._lock:
            return self._tokens.get(token)

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

    # ---- inspection helpers ------------------------------------------------------------------

    def person(self, person_id: str) -> Person:
        """A person (or bot) of the organisation, by id."""
        with self._lock:
            return self._people[person_id]

    def direct_room_between(self, person: Person, other: Person) -> Room | None:
        """The 1:1 space of two people, if they have one (where a bot's private answers land)."""
        with self._lock:
            return self._direct_room(person, other, create=False)

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


    # ---- state helpers (call with the lock held) ---------------------------------------------

    def _store_message(self, author: Person, room: Room, fields: dict[str, Any]) -> dict[str, Any]:
        message = ordered_message({"id": make_id("MESSAGE"), "roomId": room.id, "roomType": room.type,
                                    "personId": author.id, "personEmail": author.email,
                                    "created": utc_timestamp(), **fields})
        self._messages[message["id"]] = message
        return message

    def _visible_message(self, caller: Person, message_id: str) -> dict[str, Any]:
        message = self._messages.get(message_id)
        if message is None or not self._can_see(caller, message):
            raise ApiFailure(404, "Message not found.")
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
            raise ApiFailure(404, "Could not find a room with provided ID.")
        return room

    def _destination(self, caller: Person, fields: dict[str, Any]) -> Room:
        targets = [k for k in ("roomId", "toPersonId", "toPersonEmail") if fields.get(k)]
        if len(targets) != 1:
            raise ApiFailure(400, "Exactly one of roomId, toPersonId or toPersonEmail is required.")
        if targets[0] == "roomId":
            return self._member_room(caller, fields["roomId"])
        other = self._person_from(fields.get("toPersonId"), fields.get("toPersonEmail"))
        return self._direct_room(caller, other, create=True)

    def _person_from(self, person_id: str | None, email: str | None) -> Person:
        for person in self._people.values():
            if person.id == person_id or (email and person.email.lower() == email.lower()):
                return person
        raise ApiFailure(404, "Could not find a person with the provided ID or e-mail.")

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
            raise ApiFailure(400, "parentId must be a message in the same room.")

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

    def _page(self, request: Request, items: list[dict[str, Any]], *, default_max: int) -> Response:
        """One page of ``items`` with an RFC 5988 ``Link: <...>; rel="next"`` pointing at this server."""
        limit = int_arg(request, "max", default_max)
        offset = int_arg(request, "cursor", 0)
        if limit < 1 or offset < 0:
            raise ApiFailure(400, "max must be a positive integer.")
        page = items[offset:offset + limit]
        headers = {}
        if offset + limit < len(items):
            query = {k: v for k, v in request.args.items() if k not in ("max", "cursor")}
            query.update(max=limit, cursor=offset + limit)
            next_url = f"{self.base_url}{request.path[len('/v1/'):]}?{urlencode(query)}"
            headers["Link"] = f'<{next_url}>; rel="next"'
        return json_response({"items": copy.deepcopy(page)}, headers=headers)
