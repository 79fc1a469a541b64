"""Webex webhooks: receiving deliveries (fast path) and registering the bot's webhooks.

``WebhookReceiver.receive`` is the whole acknowledgement path: check the size,
verify ``X-Spark-Signature`` before looking at the body, record the event
durably, answer. No remote call happens here; the worker does the rest.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Callable

from rollover import metrics

if TYPE_CHECKING:   # the acknowledgement path loads neither the Webex SDK nor the storage (it is handed one)
    from rollover.integrations.webex_client import WebexClient
    from rollover.storage import Storage

log = logging.getLogger(__name__)

# The events the bot acts on; anything else is acknowledged and dropped.
SUBSCRIPTIONS = (("messages", "created"), ("attachmentActions", "created"))


def signature_for(secret: str, body: bytes) -> str:
    """Webex's X-Spark-Signature: hex HMAC-SHA1 of the raw body keyed with the webhook secret."""
    return hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()


def signature_is_valid(secret: str, body: bytes, signature: str | None) -> bool:
    if not secret or not signature:
        return False
    # Bytes, not str: compare_digest refuses non-ASCII text, and a forged header must get 401, not 500.
    return hmac.compare_digest(signature_for(secret, body).encode(), signature.strip().lower().encode())


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict

    @cached_property
    def json(self) -> bytes:
        """The body as sent: compact JSON and a line end, encoded once per answer (the answers are constants)."""
        return json.dumps(self.body, separators=(",", ":")).encode() + b"\n"


TOO_LARGE = Answer(413, {"error": "body too large"})
INVALID_SIGNATURE = Answer(401, {"error": "invalid signature"})
NOT_AN_EVENT = Answer(400, {"error": "not a Webex webhook event"})
IGNORED = Answer(200, {"status": "ignored"})
ACCEPTED = Answer(200, {"status": "accepted"})
DUPLICATE = Answer(200, {"status": "duplicate"})


class WebhookReceiver:
    def __init__(self, secret: str, storage: Storage, max_bytes: int,
                 on_recorded: Callable[[], None] = lambda: None):
        self._secret = secret
        self._storage = storage
        self._max_bytes = max_bytes
        self._on_recorded = on_recorded

    def receive(self, body: bytes, signature: str | None) -> Answer:
        answer, resource = self._receive(body, signature)
        metrics.count("events_received", resource=resource,
                      outcome=answer.body.get("status") or f"refused {answer.status}")
        return answer

    def _receive(self, body: bytes, signature: str | None) -> tuple[Answer, str]:
        """The answer, and the resource as a metrics label (only those the bot subscribes to, else 'other')."""
        if len(body) > self._max_bytes:
            return TOO_LARGE, "other"
        if not signature_is_valid(self._secret, body, signature):
            log.warning("rejected a webhook delivery with a %s signature",
                        "missing" if not signature else "wrong")
            return INVALID_SIGNATURE, "other"
        envelope = parse_envelope(body)
        if envelope is None:
            return NOT_AN_EVENT, "other"
        resource, event, data_id = envelope["resource"], envelope["event"], envelope["data"]["id"]
        if (resource, event) not in SUBSCRIPTIONS:
            return IGNORED, "other"
        # Keep only what the worker needs: the envelope minus anything we do not use.
        payload = {"resource": resource, "event": event, "actorId": envelope.get("actorId"),
                   "data": {k: envelope["data"].get(k) for k in ("id", "roomId", "personId")}}
        is_new = self._storage.events.record(f"{resource}:{data_id}", resource, event, payload)
        if is_new:
            self._on_recorded()
        return (ACCEPTED if is_new else DUPLICATE), resource


MAX_ID_LENGTH = 512   # Webex ids are base64 of a short URI (~80 characters)


def parse_envelope(body: bytes) -> dict | None:
    """The webhook's JSON when it has the shape Webex sends (string resource, event and data.id); else None.

    Everything here is untrusted (the sender knew the secret, or forged nothing but the body's content):
    deep nesting, wrong types and invalid UTF-8 end in None, never in an exception further on."""
    try:
        envelope = json.loads(body)
    except (ValueError, RecursionError):     # RecursionError: JSON nested thousands of levels deep
        return None
    if not isinstance(envelope, dict) or not isinstance(envelope.get("data"), dict):
        return None
    fields = (envelope.get("resource"), envelope.get("event"), envelope["data"].get("id"))
    if not all(isinstance(value, str) and 0 < len(value) <= MAX_ID_LENGTH for value in fields):
        return None
    return envelope


# --- registering the bot's webhooks ------------------------------------------------------------------

@dataclass(frozen=True)
class SyncReport:
    created: list[str]
    updated: list[str]
    deleted: list[str]
    unchanged: list[str]

    def lines(self) -> list[str]:
        return ([f"created  {w}" for w in self.created] + [f"updated  {w}" for w in self.updated]
                + [f"deleted  {w}" for w in self.deleted] + [f"ok       {w}" for w in self.unchanged])


def webhook_target(public_url: str) -> str:
    return public_url.rstrip("/") + "/webhooks/webex"


def sync_webhooks(webex: WebexClient, *, name: str, public_url: str, secret: str) -> SyncReport:
    """Make the bot's webhooks exactly one ``messages`` and one ``attachmentActions`` webhook.

    Existing ones of our name are updated in place (target, secret, re-activated); duplicates
    and other resources of our name are deleted; webhooks of other names are left alone.
    """
    target = webhook_target(public_url)
    ours = [w for w in webex.list_webhooks() if w.name == name]
    report = SyncReport([], [], [], [])
    for resource, event in SUBSCRIPTIONS:
        matching = [w for w in ours if w.resource == resource and w.event == event and not w.filter]
        label = f"{resource}/{event} -> {target}"
        if not matching:
            webex.create_webhook(name=name, target_url=target, resource=resource, event=event, secret=secret)
            report.created.append(label)
            continue
        keep, *extra = matching
        # The secret cannot be read back, so it is always written; status 'active' re-enables.
        webex.update_webhook(keep.id, name=name, target_url=target, secret=secret, status="active")
        (report.unchanged if keep.target_url == target and keep.status == "active"
         else report.updated).append(label)
        for stale in extra:
            webex.delete_webhook(stale.id)
            report.deleted.append(f"{stale.resource}/{stale.event} -> {stale.target_url} (duplicate)")
    wanted = set(SUBSCRIPTIONS)
    for stale in ours:
        if (stale.resource, stale.event) not in wanted or stale.filter:
            webex.delete_webhook(stale.id)
            report.deleted.append(f"{stale.resource}/{stale.event} -> {stale.target_url}")
    return report
