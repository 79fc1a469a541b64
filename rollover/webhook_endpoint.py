"""``POST /webhooks/webex`` as a plain WSGI callable, in front of the Flask app.

The acknowledgement is the request Webex waits on for every event, and it needs nothing Flask offers: one
path, one method, a body, a JSON answer. Flask's own share of a request (its request and response objects,
URL matching, serialising the answer) is most of what an HMAC-only Flask endpoint costs, more than the
acknowledgement's own work. So this endpoint answers in WSGI, and everything else (``/healthz``, ``/metrics``,
any other path) passes through to Flask untouched. ``web.create_app`` installs it as ``app.wsgi_app``, Flask's
documented place for middleware, so gunicorn, ``serve`` and ``app.test_client()`` all reach it the same way.

It is the only route of the path: every answer to it is given here (405 for another method, 411, 413, 400 for a
body cut short, the receiver's 200/400/401), and a failure to record is a 500 with an incident id, its
traceback in the log.
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Callable, Iterable

from rollover.pipeline.webhooks import WebhookReceiver

log = logging.getLogger(__name__)

PATH = "/webhooks/webex"
READ_CHUNK = 65536

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict, StartResponse], Iterable[bytes]]


class WebhookEndpoint:
    """Answers ``PATH`` itself; hands every other request to ``app``."""

    def __init__(self, receiver: WebhookReceiver, max_bytes: int, app: WSGIApp):
        self._receiver = receiver
        self._max_bytes = max_bytes
        self._app = app

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH:
            return self._app(environ, start_response)
        if environ.get("REQUEST_METHOD") != "POST":
            return respond(start_response, 405, {"error": "only POST is allowed here"}, [("Allow", "POST")])
        body = read_body(environ, self._max_bytes)
        if isinstance(body, Refusal):
            return respond(start_response, body.status, {"error": body.reason})
        try:
            answer = self._receiver.receive(body, environ.get("HTTP_X_SPARK_SIGNATURE"))
        except Exception:
            incident = secrets.token_hex(4)
            log.exception("incident %s: a webhook delivery could not be recorded", incident)
            return respond(start_response, 500, {"error": "the event could not be recorded", "incident": incident})
        return respond(start_response, answer.status, answer.body)


@dataclass(frozen=True)
class Refusal:
    """Why a body was not read: nothing of it is verified or recorded."""
    status: int
    reason: str


TOO_LARGE = Refusal(413, "body too large")
LENGTH_REQUIRED = Refusal(411, "a Content-Length or a chunked body is required")
CUT_SHORT = Refusal(400, "the body ended before its Content-Length")


def read_body(environ: dict, max_bytes: int) -> bytes | Refusal:
    """The request body, or why it was not read.

    With a Content-Length, a body over ``max_bytes`` is refused before a byte of it is read. A chunked body has
    no length to refuse it by, so it is read up to one byte past the limit (never cut short and then verified).
    Neither a length nor a stream the server ends (``wsgi.input_terminated``): nothing can be read safely."""
    stream = environ["wsgi.input"]
    length = content_length(environ)
    if length is not None:
        if length > max_bytes:
            return TOO_LARGE
        body = stream.read(length) if length else b""
        return body if len(body) == length else CUT_SHORT
    if not environ.get("wsgi.input_terminated"):
        return LENGTH_REQUIRED
    chunks, size = [], 0
    while size <= max_bytes:
        chunk = stream.read(min(READ_CHUNK, max_bytes + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return TOO_LARGE if size > max_bytes else b"".join(chunks)


def content_length(environ: dict) -> int | None:
    """The declared length; None for a chunked body or a header that is not a plain number (as werkzeug)."""
    if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return None
    value = environ.get("CONTENT_LENGTH", "").strip()
    return int(value) if value.isascii() and value.isdigit() else None


def respond(start_response: StartResponse, status: int, body: dict,
            headers: list[tuple[str, str]] | None = None) -> list[bytes]:
    payload = json.dumps(body, separators=(",", ":")).encode() + b"\n"
    start_response(STATUS_LINES[status], [("Content-Type", "application/json"),
                                          ("Content-Length", str(len(payload))), *(headers or ())])
    return [payload]


STATUS_LINES = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}
