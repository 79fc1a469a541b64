"""Webhook events: the signed payload Webex POSTs for a message or card action, and its delivery to every
matching active webhook (each in a background thread) - or, once ``deliver_over(mercury)`` was called, as
``conversation.activity`` frames of the local Mercury (``fakes.webex_mercury``) to the bots that hear them.
"""

from __future__ import annotations

import copy
import json
import logging
import threading
from typing import Any

import requests as http

from fakes.webex.model import (
    Person,
    Room,
    make_id,
    sign_body,
    utc_timestamp,
)
from fakes.webex.state import WebexWorld

logger = logging.getLogger(__name__)


class Delivery(WebexWorld):
    """Builds and delivers webhook events (or websocket frames, see ``deliver_over``)."""

    _event_socket: Any = None       # the local Mercury that receives the events instead of webhooks

    def deliver_over(self, mercury: Any) -> None:
        """From now on, delivered events go to ``mercury`` (a ``WebexMercury``; None: back to webhooks) as the
        frames Webex sends a bot's websocket, instead of webhook POSTs; ``wait_for_deliveries`` then waits
        until every frame was acknowledged."""
        self._event_socket = mercury

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
            return envelope(hook or self._unregistered_webhook(owner, resource, event),
                             actor_id, data, secret)

    def wait_for_deliveries(self, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Wait for background webhook deliveries; returns the delivery record."""
        with self._lock:
            threads = list(self._delivery_threads)
        for thread in threads:
            thread.join(timeout)
        with self._lock:
            self._delivery_threads = [t for t in self._delivery_threads if t.is_alive()]
            deliveries = copy.deepcopy(self.deliveries)
        socket = self._event_socket
        if socket is not None:      # acknowledged = recorded by the bot (it acks only after its commit)
            socket.wait_for(lambda: not socket.pending(), timeout)
        return deliveries

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
                    and hook["event"] == event and filter_matches(hook.get("filter"), data, owner)):
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
        if self._event_socket is not None:
            self._send_frames(self._event_socket, resource, obj)
            return
        with self._lock:
            data = self._event_data(resource, obj["id"])
            payloads = []
            for hook in self._webhooks.values():
                owner = self._people[hook["createdBy"]]
                if (hook["status"] == "active" and hook["resource"] == resource and hook["event"] == event
                        and self._receives(owner, resource, data)
                        and filter_matches(hook.get("filter"), data, owner)):
                    payloads.append((hook["id"], hook["targetUrl"],
                                     envelope(hook, obj["personId"], data, None)))
            for hook_id, url, (body, headers) in payloads:
                thread = threading.Thread(target=self._post_event, args=(hook_id, url, body, headers),
                                          name="local-webex-delivery", daemon=True)
                self._delivery_threads.append(thread)
                thread.start()

    def _send_frames(self, mercury: Any, resource: str, obj: dict[str, Any]) -> None:
        """The event as a ``conversation.activity`` frame to each bot that would hear it (the webhook rule)."""
        with self._lock:
            data = self._event_data(resource, obj["id"])
            bots = [p.id for p in self._people.values() if p.bot and self._receives(p, resource, data)]
            obj = copy.deepcopy(obj)
        if not bots:
            return
        if resource == "messages":
            frames = mercury.on_message(obj, recipients=bots)
        else:
            frames = mercury.on_attachment_action(obj, recipients=bots)
        with self._lock:
            self.frames_sent += frames

    def _post_event(self, hook_id: str, url: str, body: bytes, headers: dict[str, str]) -> None:
        record: dict[str, Any] = {"webhookId": hook_id, "targetUrl": url, "body": json.loads(body)}
        try:
            record["status"] = http.post(url, data=body, headers=headers, timeout=10).status_code
        except http.RequestException as exc:
            logger.warning("webhook delivery to %s failed: %s", url, exc)
            record["error"] = str(exc)
        with self._lock:
            self.deliveries.append(record)


def filter_matches(filter_text: str | None, data: dict[str, Any], owner: Person) -> bool:
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


def envelope(hook: dict[str, Any], actor_id: str, data: dict[str, Any],
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

