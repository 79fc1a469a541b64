"""Card submissions: a person clicking a card's button (``click``) and ``/v1/attachment/actions``.
"""

from __future__ import annotations

import copy
from typing import Any

from werkzeug.wrappers import Request, Response

from fakes.webex.cards import pick_submit, submitted_inputs
from fakes.webex.model import (
    ApiFailure,
    Person,
    json_body,
    json_response,
    make_id,
    utc_timestamp,
)
from fakes.webex.state import WebexWorld


class ActionRoutes(WebexWorld):
    """``/v1/attachment/actions`` and people clicking cards."""

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
            submit = pick_submit(card, button)
            action = {
                "id": make_id("ATTACHMENT_ACTION"),
                "type": "submit",
                "messageId": card_message_id,
                "inputs": submitted_inputs(card, submit, inputs or {}),
                "personId": person.id,
                "roomId": room.id,
                "created": utc_timestamp(),
            }
            self._actions[action["id"]] = action
        self._maybe_deliver(deliver, "attachmentActions", "created", action)
        return copy.deepcopy(action)

    # ---- attachment actions ------------------------------------------------------------------

    def _api_actions_create(self, caller: Person, request: Request) -> Response:
        body = json_body(request)
        if body.get("type") != "submit" or not isinstance(body.get("inputs"), dict):
            raise ApiFailure(400, "type 'submit', messageId and inputs are required.")
        with self._lock:
            message = self._visible_message(caller, str(body.get("messageId")))
            if not message.get("attachments"):
                raise ApiFailure(400, "The message has no card attachment.")
            action = {"id": make_id("ATTACHMENT_ACTION"), "type": "submit", "messageId": message["id"],
                      "inputs": body["inputs"], "personId": caller.id, "roomId": message["roomId"],
                      "created": utc_timestamp()}
            self._actions[action["id"]] = action
        # A client's click fires the attachmentActions webhook, exactly like ``click``.
        self._maybe_deliver(None, "attachmentActions", "created", action)
        # The spec answers 202 Accepted (the SDK's create() expects 200 and raises ApiError).
        return json_response(action, status=202)

    def _api_actions_get(self, caller: Person, request: Request, action_id: str) -> Response:
        with self._lock:
            action = self._actions.get(action_id)
            room = self._rooms.get(action["roomId"]) if action else None
            if action is None or caller.id not in room.member_ids:
                raise ApiFailure(404, "Attachment action not found.")
            return json_response(action)
