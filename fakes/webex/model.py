"""The local Webex's data model and wire format: ids, timestamps, people, rooms, files, errors, JSON responses.

Field names, status codes and the error body ``{"message", "errors": [{"description"}], "trackingId"}`` follow
the official OpenAPI subset in ``shared/reference/webex-messaging-openapi-subset.json``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from werkzeug.wrappers import Request, Response

DEFAULT_CARD_SCHEMA_PATH = (
    Path(__file__).resolve().parents[3] / "shared/reference/adaptive-card-1.3.0.schema.json"
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



class ApiFailure(Exception):
    """Raised inside a handler to answer with the Webex error body."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class WebexRequest(Request):
    """A request with room for one 100 MB file plus the multipart envelope."""

    # Room for one 100 MB file plus the multipart envelope.
    max_content_length = MAX_FILE_BYTES + 1024 * 1024


_MESSAGE_KEY_ORDER = ("id", "parentId", "roomId", "roomType", "text", "markdown", "html", "files",
                      "personId", "personEmail", "mentionedPeople", "mentionedGroups", "attachments",
                      "created", "updated")


def ordered_message(message: dict[str, Any]) -> dict[str, Any]:
    """Message JSON with the spec's field order (absent fields stay absent, as Webex omits them)."""
    return {key: message[key] for key in _MESSAGE_KEY_ORDER if key in message}


def json_response(body: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    response = Response(json.dumps(body), status=status, content_type="application/json;charset=UTF-8",
                        headers=headers or {})
    response.headers["TrackingID"] = f"ROUTER_{uuid.uuid4()}"
    return response


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """The Webex error body: ``{"message", "errors": [{"description"}], "trackingId"}``."""
    tracking_id = f"ROUTER_{uuid.uuid4()}"
    body = {"message": message, "errors": [{"description": message}], "trackingId": tracking_id}
    response = Response(json.dumps(body), status=status, content_type="application/json;charset=UTF-8",
                        headers=headers or {})
    response.headers["TrackingID"] = tracking_id
    return response


def json_body(request: Request) -> dict[str, Any]:
    body = request.get_json(force=True, silent=True)
    if not isinstance(body, dict):
        raise ApiFailure(400, "The request body must be a JSON object.")
    return body


def int_arg(request: Request, name: str, default: int) -> int:
    """An integer query parameter; 400 when it is not one."""
    try:
        return int(request.args.get(name, default))
    except ValueError:
        raise ApiFailure(400, f"{name} must be an integer.") from None

