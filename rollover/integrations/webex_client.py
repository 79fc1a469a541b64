"""Narrow wrapper over webexpythonsdk: the rest of the bot never imports the SDK's API classes.

Two kinds of failure come out of here:
- ``WebexUnavailable`` for what is worth retrying later (429 with its Retry-After, 5xx,
  connection problems). The SDK's own rate-limit loop is switched off
  (``wait_on_rate_limit=False``) because it sleeps unboundedly inside the worker;
  the worker reschedules the event instead.
- ``WebexError`` for a permanent refusal (4xx), with the API's message.
"""

from __future__ import annotations

import logging
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from webexpythonsdk import WebexAPI
from webexpythonsdk.exceptions import ApiError, RateLimitError

from rollover import metrics
from rollover.errors import Retryable, UserError

log = logging.getLogger(__name__)

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
TOKEN_REFUSED_RETRY_SECONDS = 300.0


class WebexError(Exception):
    """Webex refused a request for good (4xx other than 429)."""

    def __init__(self, message: str, status_code: int | None = None):
        super().__init__(message)
        self.status_code = status_code


class WebexUnavailable(WebexError, Retryable):
    """Webex is rate limiting or failing; try again after ``retry_after`` seconds."""

    def __init__(self, message: str, status_code: int | None = None, retry_after: float | None = None):
        super().__init__(message, status_code)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Person:
    id: str
    display_name: str
    emails: tuple[str, ...]
    type: str = "person"   # "person" | "bot"

    @property
    def email(self) -> str:
        return self.emails[0].lower() if self.emails else ""


@dataclass(frozen=True)
class Message:
    id: str
    room_id: str
    room_type: str
    person_id: str
    person_email: str
    text: str = ""
    html: str = ""
    files: tuple[str, ...] = ()
    parent_id: str | None = None
    mentioned_people: tuple[str, ...] = ()


@dataclass(frozen=True)
class AttachmentAction:
    id: str
    message_id: str
    person_id: str
    room_id: str
    inputs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Webhook:
    id: str
    name: str
    target_url: str
    resource: str
    event: str
    status: str
    filter: str | None = None


@dataclass(frozen=True)
class Download:
    filename: str
    content_type: str
    data: bytes


def _translate(error: Exception, what: str) -> WebexError:
    """Map SDK/transport errors onto our two failure kinds, without request details (tokens)."""
    if isinstance(error, RateLimitError):
        return WebexUnavailable(f"Webex is rate limiting {what}", 429, float(error.retry_after))
    if isinstance(error, ApiError):
        detail = error.message or error.description or error.status or "error"
        if error.status_code == 401:
            # A revoked or rotated token: nothing is lost, work waits (long) until an operator fixes it.
            return WebexUnavailable(f"Webex refused the bot's token {what} (401): check WEBEX_ACCESS_TOKEN",
                                    401, TOKEN_REFUSED_RETRY_SECONDS)
        if error.status_code >= 500:
            return WebexUnavailable(f"Webex failed {what}: [{error.status_code}] {detail}", error.status_code)
        return WebexError(f"Webex refused {what}: [{error.status_code}] {detail}", error.status_code)
    if isinstance(error, requests.RequestException):
        return WebexUnavailable(f"Webex could not be reached for {what}: {type(error).__name__}")
    raise error


class WebexClient:
    """The handful of Webex calls the bot makes."""

    def __init__(self, access_token: str, base_url: str, timeout: float = 30):
        self._token = access_token
        self._base_url = base_url
        self._timeout = timeout
        self._api = WebexAPI(access_token=access_token, base_url=base_url,
                             single_request_timeout=timeout, wait_on_rate_limit=False)
        self._me: Person | None = None

    def _call(self, what: str, function, *args, **kwargs):
        try:
            result = function(*args, **kwargs)
        except (ApiError, requests.RequestException) as error:
            # By status for /metrics: 429 is rate limiting, 'network' no answer at all.
            metrics.count("webex_requests", status=metrics.status_label(getattr(error, "status_code", None)))
            raise _translate(error, what) from None
        metrics.count("webex_requests", status="2xx")
        return result

    # --- people ------------------------------------------------------------------------------

    def me(self) -> Person:
        """The bot's own identity (cached: it never changes while running)."""
        if self._me is None:
            self._me = _person(self._call("reading the bot's identity", self._api.people.me))
        return self._me

    def get_person(self, person_id: str) -> Person:
        return _person(self._call("looking up a person", self._api.people.get, person_id))

    # --- rooms -------------------------------------------------------------------------------

    def room_title(self, room_id: str) -> str:
        """The space's title, as its members see it (Webex answers 404 when the bot is not a member)."""
        return self._call("reading a space", self._api.rooms.get, room_id).title

    # --- messages ----------------------------------------------------------------------------

    def get_message(self, message_id: str) -> Message:
        m = self._call("reading a message", self._api.messages.get, message_id)
        return Message(
            id=m.id, room_id=m.roomId, room_type=getattr(m, "roomType", "") or "",
            person_id=m.personId, person_email=(getattr(m, "personEmail", "") or "").lower(),
            text=getattr(m, "text", "") or "", html=getattr(m, "html", "") or "",
            files=tuple(getattr(m, "files", None) or ()), parent_id=getattr(m, "parentId", None),
            mentioned_people=tuple(getattr(m, "mentionedPeople", None) or ()))

    def post_message(self, *, room_id: str | None = None, to_person_id: str | None = None,
                     text: str | None = None, markdown: str | None = None, card: dict | None = None,
                     parent_id: str | None = None, file: tuple[str, bytes] | None = None) -> str:
        """Post text/markdown, optionally one card (with the text as fallback) or one file; returns its id."""
        kwargs: dict[str, Any] = {"roomId": room_id, "toPersonId": to_person_id, "text": text,
                                  "markdown": markdown, "parentId": parent_id}
        if card is not None:
            kwargs["attachments"] = [{"contentType": CARD_CONTENT_TYPE, "content": card}]
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        if file is None:
            message = self._call("posting a message", self._api.messages.create, **kwargs)
            return message.id
        # The SDK uploads local paths only; the file lives just long enough to be sent.
        filename, data = file
        with tempfile.TemporaryDirectory(prefix="rollover-upload-") as folder:
            path = Path(folder) / Path(filename).name
            path.write_bytes(data)
            message = self._call("posting a file", self._api.messages.create, files=[str(path)], **kwargs)
        return message.id

    def delete_message(self, message_id: str) -> None:
        self._call("deleting a message", self._api.messages.delete, message_id)

    # --- card actions ------------------------------------------------------------------------

    def get_attachment_action(self, action_id: str) -> AttachmentAction:
        a = self._call("reading a card action", self._api.attachment_actions.get, action_id)
        return AttachmentAction(id=a.id, message_id=a.messageId, person_id=a.personId, room_id=a.roomId,
                                inputs=dict(getattr(a, "inputs", None) or {}))

    # --- files ---------------------------------------------------------------------------------

    def download(self, url: str, max_bytes: int, *, max_wait_seconds: float = 30) -> Download:
        """Download a message attachment with the bot token.

        Webex scans files first: 423 + Retry-After while scanning (we wait, up to
        ``max_wait_seconds``), 410 when it found malware, 428 when it could not scan.
        """
        if not _same_origin(url, self._base_url):
            # The bot token goes only to the Webex API host, whatever a message's file URL says.
            raise UserError("That attachment is not hosted by Webex, so I did not download it.")
        deadline = time.monotonic() + max_wait_seconds
        while True:
            try:
                response = requests.get(url, headers={"Authorization": f"Bearer {self._token}"},
                                        stream=True, timeout=self._timeout)
            except requests.RequestException as error:
                metrics.count("webex_requests", status="network")
                raise WebexUnavailable(f"Webex could not be reached for a download: {type(error).__name__}") \
                    from None
            metrics.count("webex_requests", status=metrics.status_label(response.status_code))
            with response:
                if response.status_code == 423:
                    wait = _retry_after(response, default=2.0)
                    if time.monotonic() + wait > deadline:
                        raise WebexUnavailable("Webex is still scanning the file", 423, wait)
                    time.sleep(wait)
                    continue
                _refuse_unsafe_download(response)
                return _read_limited(response, max_bytes)

    # --- webhooks ------------------------------------------------------------------------------

    def list_webhooks(self) -> list[Webhook]:
        return [_webhook(w) for w in self._call("listing webhooks", lambda: list(self._api.webhooks.list()))]

    def create_webhook(self, *, name: str, target_url: str, resource: str, event: str, secret: str) -> Webhook:
        w = self._call("creating a webhook", self._api.webhooks.create, name=name, targetUrl=target_url,
                       resource=resource, event=event, secret=secret)
        return _webhook(w)

    def update_webhook(self, webhook_id: str, *, name: str, target_url: str, secret: str,
                       status: str = "active") -> Webhook:
        w = self._call("updating a webhook", self._api.webhooks.update, webhook_id, name=name,
                       targetUrl=target_url, secret=secret, status=status)
        return _webhook(w)

    def delete_webhook(self, webhook_id: str) -> None:
        self._call("deleting a webhook", self._api.webhooks.delete, webhook_id)


def _person(p) -> Person:
    return Person(id=p.id, display_name=getattr(p, "displayName", "") or "",
                  emails=tuple(e.lower() for e in (getattr(p, "emails", None) or ())),
                  type=getattr(p, "type", "person") or "person")


def _webhook(w) -> Webhook:
    return Webhook(id=w.id, name=w.name, target_url=w.targetUrl, resource=w.resource, event=w.event,
                   status=getattr(w, "status", "active") or "active", filter=getattr(w, "filter", None))


def _same_origin(url: str, base_url: str) -> bool:
    a, b = urlsplit(url), urlsplit(base_url)
    try:
        return (a.scheme, a.hostname, a.port, a.username) == (b.scheme, b.hostname, b.port, None)
    except ValueError:   # an unparsable port
        return False


def _retry_after(response: requests.Response, default: float) -> float:
    try:
        return max(0.0, float(response.headers.get("Retry-After", default)))
    except ValueError:
        return default


def _refuse_unsafe_download(response: requests.Response) -> None:
    if response.status_code == 410:
        raise UserError("Webex flagged that file as malicious (410 Gone), so I did not read it.")
    if response.status_code == 428:
        raise UserError("Webex could not scan that file for malware (428), so I did not read it. "
                        "Send it as plain XML or PEM text, or give me its URL with `check <url>`.")
    if response.status_code == 429 or response.status_code >= 500:
        raise WebexUnavailable(f"Webex failed a download: [{response.status_code}]", response.status_code,
                               _retry_after(response, default=5.0))
    if response.status_code != 200:
        raise UserError(f"I could not download that file: Webex answered {response.status_code}.")


def _read_limited(response: requests.Response, max_bytes: int) -> Download:
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise UserError(f"That file is {int(declared):,} bytes; I read files up to {max_bytes:,} bytes.")
    chunks, size = [], 0
    for chunk in response.iter_content(64 * 1024):
        size += len(chunk)
        if size > max_bytes:
            raise UserError(f"That file is larger than {max_bytes:,} bytes, the most I read.")
        chunks.append(chunk)
    disposition = response.headers.get("Content-Disposition", "")
    match = re.search(r'filename="?([^";]+)"?', disposition)
    return Download(filename=match.group(1) if match else "attachment",
                    content_type=response.headers.get("Content-Type", "application/octet-stream"),
                    data=b"".join(chunks))
