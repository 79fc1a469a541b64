"""The demo space as a web page: a small view over the local Webex's and the local Graph's own state.

``SpacePage`` serves ``static/space.html`` and a JSON view of the space as one member sees it (the space's
messages, files and cards, plus the private answers the bot sent that member). It keeps no copy of the
conversation: every poll reads the local Webex, and what a person does in the page goes through the local
Webex API with that person's token, exactly as a Webex client would (messages as JSON or multipart with the
file, card clicks as ``POST /attachment/actions``), so the local Webex signs and delivers the webhooks.
"""

from __future__ import annotations

import json
import mimetypes
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests as http
from werkzeug.wrappers import Request, Response

from fakes.graph import LocalGraph
from fakes.server import Fault, LoopbackServer
from fakes.web.browser import asset_path, check_installed
from fakes.web.entra import entra_view
from fakes.webex import LocalWebex, Person, Room

_MENTION = re.compile(r"<@(?:personId|personEmail):[^|>]+\|([^>]*)>|<@all>")
_FILE_ID = re.compile(r"/contents/([^/?]+)$")


@dataclass(frozen=True)
class Member:
    """Someone the page can act as, with their part in the story (requester, approver, ...)."""

    person: Person
    role: str


class SpacePage(LoopbackServer):
    """The page and its JSON view; ``?as=<person id>`` picks the member the page acts as."""

    name = "space-page"

    def __init__(self, webex: LocalWebex, graph: LocalGraph | None, room: Room, bot: Person,
                 members: list[Member]):
        super().__init__()
        check_installed()
        self.webex, self.graph, self.room, self.bot = webex, graph, room, bot
        self.members = {member.person.id: member for member in members}
        self._tokens = {person_id: webex.issue_token(member.person) for person_id, member in self.members.items()}

    @property
    def url(self) -> str:
        return self.root_url + "/"

    # ---- WSGI --------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        refusal = self._foreign(request)
        if refusal:
            return _json({"message": refusal}, 403)
        path = request.path
        if path == "/" and request.method == "GET":
            if request.args.get("as") not in self.members:     # the story is told from the requester's side
                return Response(status=302, headers={"Location": f"/?as={quote(next(iter(self.members)))}"})
            return _file_response(asset_path("/static/space.html"))
        if path.startswith(("/static/", "/vendor/")) and request.method == "GET":
            return _file_response(asset_path(path))
        member = self.members.get(request.args.get("as", ""))
        if member is None:
            return _json({"message": "Pick a member of the space: ?as=<person id>."}, 400)
        routes = {("GET", "/api/space"): self._space, ("POST", "/api/messages"): self._post_message,
                  ("POST", "/api/actions"): self._click}
        if (request.method, path) in routes:
            return routes[(request.method, path)](member, request)
        if path.startswith("/files/") and request.method == "GET":
            return self._download(member, path[len("/files/"):])
        return _json({"message": "Not found."}, 404)

    def _foreign(self, request: Request) -> str | None:
        """Only this machine's browser, on this page, may use it: a Host other than the loopback address (DNS
        rebinding) or a POST from another origin (a page posting a form here) is refused."""
        port = self.root_url.rsplit(":", 1)[-1]
        ours = {f"127.0.0.1:{port}", f"localhost:{port}"}
        if request.host not in ours:
            return "This page answers only at its loopback address."
        origin = request.headers.get("Origin")
        if request.method == "POST" and origin is not None and origin.removeprefix("http://") not in ours:
            return "This page accepts posts only from itself."
        return None

    def fault_response(self, fault: Fault) -> Response:
        return _json({"message": fault.message or "Injected failure."}, fault.status or 500)

    # ---- the view ----------------------------------------------------------------------------

    def _space(self, member: Member, request: Request) -> Response:
        """The space as ``member`` sees it, oldest first, plus the Entra tenant (one poll updates both)."""
        private = self.webex.direct_room_between(member.person, self.bot)
        messages = [(message, False) for message in self.webex.messages_in(self.room)]
        if private is not None:
            messages += [(message, True) for message in self.webex.messages_in(private)]
        messages.sort(key=lambda pair: pair[0]["created"])
        return _json({
            "room": {"id": self.room.id, "title": self.room.title, "type": self.room.type},
            "me": member.person.id,
            "bot": {"id": self.bot.id, "name": self.bot.display_name},
            "members": [{"id": m.person.id, "name": m.person.display_name, "email": m.person.email, "role": m.role}
                        for m in self.members.values()],
            "messages": [self._message_view(message, private_answer) for message, private_answer in messages],
            "entra": entra_view(self.graph) if self.graph is not None else None,
        })

    def _message_view(self, message: dict[str, Any], private_answer: bool) -> dict[str, Any]:
        author = self.webex.person(message["personId"])
        attachments = message.get("attachments") or []
        text = message.get("text", "")
        if not message.get("markdown") and self.bot.id in message.get("mentionedPeople", []) \
                and text.startswith(self.bot.display_name):
            # Written in a Webex client: the mention is in the html only; draw it as the client does.
            text = f"**@{self.bot.display_name}**" + _escape_markdown(text[len(self.bot.display_name):])
        return {
            "id": message["id"], "created": message["created"], "parentId": message.get("parentId"),
            "author": author.display_name, "authorId": author.id, "bot": author.bot, "private": private_answer,
            # Mentions show as the name, as Webex clients draw them.
            "markdown": _MENTION.sub(lambda m: f"**@{m.group(1) or 'All'}**", message.get("markdown") or ""),
            "text": text,
            "files": [self._file_view(url) for url in message.get("files", [])],
            "card": attachments[0]["content"] if attachments else None,
        }

    def _file_view(self, url: str) -> dict[str, str]:
        match = _FILE_ID.search(url)
        hosted = self.webex.hosted_file(match.group(1)) if match else None
        name = hosted.name if hosted else url.rsplit("/", 1)[-1]
        return {"name": name, "url": f"/files/{match.group(1) if match else ''}"}

    def _download(self, member: Member, content_id: str) -> Response:
        hosted = self.webex.hosted_file(content_id)
        rooms = [self.room] + [r for r in [self.webex.direct_room_between(member.person, self.bot)] if r]
        if hosted is None or not {room.id for room in rooms} & hosted.room_ids:
            return _json({"message": "No such file in this space."}, 404)
        return Response(hosted.data, content_type=hosted.content_type, headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(hosted.name)}"})

    # ---- acting as a member, through the local Webex API -------------------------------------

    def _post_message(self, member: Member, request: Request) -> Response:
        """Forward the page's message (JSON, or multipart with the file) to ``POST /v1/messages`` unchanged."""
        return self._forward(member, "messages", request.get_data(), request.headers.get("Content-Type", ""))

    def _click(self, member: Member, request: Request) -> Response:
        """A card's Action.Submit: ``POST /v1/attachment/actions`` with the inputs the card collected."""
        body = request.get_json(silent=True) or {}
        action = {"type": "submit", "messageId": body.get("messageId"), "inputs": body.get("inputs") or {}}
        return self._forward(member, "attachment/actions", json.dumps(action).encode(), "application/json")

    def _forward(self, member: Member, endpoint: str, body: bytes, content_type: str) -> Response:
        answer = http.post(self.webex.base_url + endpoint, data=body, timeout=30, headers={
            "Authorization": "Bearer " + self._tokens[member.person.id], "Content-Type": content_type})
        return Response(answer.content, status=answer.status_code, content_type="application/json")


def _escape_markdown(text: str) -> str:
    return re.sub(r"([\\`*_{}\[\]()#+\-.!<>|~])", r"\\\1", text)


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json",
                    headers={"Cache-Control": "no-store"})


def _file_response(path: Any) -> Response:
    if path is None or not path.is_file():
        return _json({"message": "Not found."}, 404)
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return Response(path.read_bytes(), content_type=content_type, headers={"Cache-Control": "no-store"})
