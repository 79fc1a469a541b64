"""Messages: what people write in a space (``post_as``) and ``/v1/messages`` (create with JSON or multipart, list,
get, edit, delete), with Webex's limits, mentions and visibility rules.
"""

from __future__ import annotations

import copy
import ipaddress
import re
from html import escape
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import urlparse

import requests as http
from werkzeug.wrappers import Request, Response

from fakes.webex.cards import CardValidator
from fakes.webex.model import (
    CARD_CONTENT_TYPE,
    MAX_EDITS,
    MAX_FILE_BYTES,
    MAX_TEXT_BYTES,
    ApiFailure,
    ContentFile,
    Person,
    Room,
    int_arg,
    json_body,
    json_response,
    ordered_message,
    parse_timestamp,
    utc_timestamp,
)
from fakes.webex.state import WebexWorld


class MessageRoutes(WebexWorld):
    """``/v1/messages`` and people writing in spaces."""

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
        return json_response(message)

    def _api_messages_get(self, caller: Person, request: Request, message_id: str) -> Response:
        with self._lock:
            return json_response(self._visible_message(caller, message_id))

    def _api_messages_list(self, caller: Person, request: Request) -> Response:
        room_id = request.args.get("roomId")
        if not room_id:
            raise ApiFailure(400, "roomId is required.")
        with self._lock:
            room = self._member_room(caller, room_id)
            mentioned = request.args.get("mentionedPeople")
            if mentioned not in (None, "me", caller.id):
                raise ApiFailure(400, "Only me or the person ID of the current user may be specified.")
            if mentioned and int_arg(request, "max", 50) > 100:
                raise ApiFailure(400, "max cannot exceed 100 when used with mentionedPeople.")
            if caller.bot and room.type == "group" and not mentioned:
                # Real behaviour: bots must pass mentionedPeople=me to list a group space.
                raise ApiFailure(403, "Failed to get activity.")
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
        body = json_body(request)
        with self._lock:
            message = self._visible_message(caller, message_id)
            if message["personId"] != caller.id:
                raise ApiFailure(403, "Only the author of a message can edit it.")
            if not body.get("roomId"):
                raise ApiFailure(400, "roomId is required.")
            if body["roomId"] != message["roomId"]:
                raise ApiFailure(400, "roomId does not match the room of the message.")
            if message.get("attachments") or message.get("files"):
                raise ApiFailure(400, "Edits of messages containing files or attachments are not "
                                       "currently supported.")
            if self._edit_counts.get(message_id, 0) >= MAX_EDITS:
                raise ApiFailure(400, f"A message can be edited at most {MAX_EDITS} times.")
            if not (body.get("text") or body.get("markdown")):
                raise ApiFailure(400, "text or markdown is required.")
            _check_text_sizes(body)
            edited = self._messages[message_id]
            for key in ("text", "markdown", "html", "mentionedPeople", "mentionedGroups"):
                edited.pop(key, None)
            edited.update(_authored_fields(body, self._people.values()))
            edited["updated"] = utc_timestamp()
            self._edit_counts[message_id] = self._edit_counts.get(message_id, 0) + 1
            return json_response(ordered_message(edited))

    def _api_messages_delete(self, caller: Person, request: Request, message_id: str) -> Response:
        with self._lock:
            message = self._visible_message(caller, message_id)
            if message["personId"] != caller.id:
                raise ApiFailure(403, "Only the author of a message can delete it.")
            self._deleted.append(self._messages.pop(message_id))
        return Response(status=204)

_MENTION = re.compile(r"<@(personId|personEmail):([^|>]+)(?:\|([^>]*))?>|<@all>")

def _message_request(request: Request) -> tuple[dict[str, Any], Any]:
    """Fields of ``POST /messages`` and the uploaded file, from JSON or multipart/form-data."""
    if request.mimetype == "multipart/form-data":
        # The SDK sends local files with requests_toolbelt's MultipartEncoder: plain form fields
        # plus one "files" part.
        fields = request.form.to_dict(flat=True)
        uploads = request.files.getlist("files")
        if len(uploads) > 1:
            raise ApiFailure(400, "Only one file is allowed per message.")
        return fields, uploads[0] if uploads else None
    return json_body(request), None


def _read_upload(upload: Any) -> tuple[str, bytes, str]:
    """Name, bytes and content type of a multipart file part."""
    data = upload.read()
    if len(data) > MAX_FILE_BYTES:
        raise ApiFailure(400, "A file can be at most 100 MB.")
    return upload.filename or "file", data, upload.mimetype or "application/octet-stream"


def _check_text_sizes(fields: dict[str, Any]) -> None:
    for name in ("text", "markdown"):
        value = fields.get(name)
        if value is not None and not isinstance(value, str):
            raise ApiFailure(400, f"{name} must be a string.")
        if value and len(value.encode("utf-8")) > MAX_TEXT_BYTES:
            raise ApiFailure(400, f"{name} exceeds the maximum message length of {MAX_TEXT_BYTES} bytes.")


def _check_message_body(fields: dict[str, Any], upload: Any, validator: CardValidator) -> None:
    """Reject what Webex rejects (400) before anything is stored."""
    _check_text_sizes(fields)
    files = fields.get("files")
    if files is not None and (not isinstance(files, list) or not all(isinstance(f, str) for f in files)):
        raise ApiFailure(400, "files must be a list of URLs.")
    if files and len(files) > 1:
        raise ApiFailure(400, "Only one file is allowed per message.")
    attachments = fields.get("attachments")
    has_text = bool(fields.get("text") or fields.get("markdown"))
    if not (has_text or files or upload is not None or attachments):
        raise ApiFailure(400, "A message needs text, markdown, files or attachments.")
    if attachments:
        _check_attachments(attachments, has_text, validator)


def _check_attachments(attachments: Any, has_text: bool, validator: CardValidator) -> None:
    if not isinstance(attachments, list) or not all(isinstance(a, dict) for a in attachments):
        raise ApiFailure(400, "attachments must be a list of objects.")
    if len(attachments) > 1:
        raise ApiFailure(400, "Only one card per message is supported.")
    if attachments[0].get("contentType") != CARD_CONTENT_TYPE:
        raise ApiFailure(400, f"Attachment contentType must be '{CARD_CONTENT_TYPE}'.")
    if not has_text:
        # Rollover policy (the notes mark the real behaviour UNCONFIRMED): clients that cannot
        # render the card show text/markdown, so a card without fallback is refused.
        raise ApiFailure(400, "A card message needs text or markdown as fallback.")
    problem = validator.error(attachments[0].get("content"))
    if problem:
        raise ApiFailure(400, problem)


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
            raise ApiFailure(400, "before must be an ISO 8601 date and time.") from None
        messages = [m for m in messages if parse_timestamp(m["created"]) < before]
    if args.get("beforeMessage"):
        order = list(all_messages)
        if args["beforeMessage"] not in all_messages:
            raise ApiFailure(404, "Message not found.")
        limit = order.index(args["beforeMessage"])
        messages = [m for m in messages if order.index(m["id"]) < limit]
    return messages


def _fetch_loopback_file(url: str) -> tuple[str, bytes, str]:
    """Fetch a file posted by URL; only loopback hosts, so tests never leave the machine."""
    parsed = urlparse(url)
    try:
        loopback = parsed.hostname == "localhost" or ipaddress.ip_address(parsed.hostname or "").is_loopback
    except ValueError:
        loopback = False
    if parsed.scheme not in ("http", "https") or not loopback:
        raise ApiFailure(400, "The local Webex only fetches files from loopback URLs.")
    try:
        response = http.get(url, timeout=10)
    except http.RequestException as exc:
        raise ApiFailure(400, f"Could not retrieve the file: {exc}") from exc
    if response.status_code != 200:
        raise ApiFailure(400, f"Could not retrieve the file: HTTP {response.status_code}.")
    name = Path(parsed.path).name or "file"
    return name, response.content, response.headers.get("Content-Type", "application/octet-stream")

