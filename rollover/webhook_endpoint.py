"""``POST /webhooks/webex`` as a plain WSGI callable, in front of the Flask app.

The acknowledgement is the request Webex waits on for every event, and it needs nothing Flask offers: one
path, one method, a body, a JSON answer. Flask's own share of a request (its request and response objects,
URL matching, serialising the answer) is most of what an HMAC-only Flask endpoint costs, more than the
acknowledgement's own work. So this endpoint answers in WSGI, and everything else (``/healthz``, ``/metrics``,
any other path) passes through to Flask untouched. ``web.create_app`` installs it as ``app.wsgi_app``, Flask's
documented place for middleware, so gunicorn, ``serve`` and ``app.test_client()`` all reach it the same way.

It is the only route of the path, and answers it in JSON: 405 for another method (a HEAD's without a body), 411
without a length, 413, 400 for a body cut short or unreadable, the receiver's 200/400/401, and a 500 with an
incident id (its traceback in the log) when the event cannot be recorded. The server's own refusals (a
malformed request line or header, which gunicorn answers before any app) stay the server's.
"""

from __future__ import annotations

import logging
import secrets
from http import HTTPStatus
from typing import Any, Callable, Iterable

from rollover.pipeline.webhooks import TOO_LARGE, Answer, WebhookReceiver

log = logging.getLogger(__name__)

PATH = "/webhooks/webex"

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
        method = environ.get("REQUEST_METHOD")
        if method != "POST":
            answer = respond(start_response, METHOD_NOT_ALLOWED, [("Allow", "POST")])
            return [] if method == "HEAD" else answer
        try:
            body = read_body(environ, self._max_bytes)
        except Exception as error:   # a malformed chunk, a connection dropped mid-body: the sender's doing
            log.warning("could not read a webhook delivery's body: %s", type(error).__name__)
            body = UNREADABLE
        if isinstance(body, Answer):
            return respond(start_response, body)
        try:
            answer = self._receiver.receive(body, environ.get("HTTP_X_SPARK_SIGNATURE"))
        except Exception:
            incident = secrets.token_hex(4)
            log.exception("incident %s: a webhook delivery could not be recorded", incident)
            return respond(start_response, Answer(500, {"error": "the event could not be recorded",
                                                        "incident": incident}))
        return respond(start_response, answer)


# The endpoint's own answers, beside the receiver's (TOO_LARGE is shared: a length over the limit is refused here).
METHOD_NOT_ALLOWED = Answer(405, {"error": "only POST is allowed here"})
LENGTH_REQUIRED = Answer(411, {"error": "a Content-Length or a chunked body is required"})
CUT_SHORT = Answer(400, {"error": "the body ended before its Content-Length"})
UNREADABLE = Answer(400, {"error": "the body could not be read"})
MAX_LENGTH_DIGITS = 18   # past this a length is absurd (and int() refuses a string over 4,300 digits)


def read_body(environ: dict, max_bytes: int) -> bytes | Answer:
    """The request body, or the answer that refuses it (nothing of it verified or recorded).

    With a Content-Length, a body over ``max_bytes`` is refused before a byte of it is read. A chunked body has
    no length to refuse it by, so it is read up to one byte past the limit (never cut short and then verified).
    Neither a length nor a stream the server ends (``wsgi.input_terminated``): nothing can be read safely."""
    stream = environ["wsgi.input"]
    length = content_length(environ)
    if length is not None:
        if length > max_bytes:
            return TOO_LARGE
        body = read_exactly(stream, length)
        return body if len(body) == length else CUT_SHORT
    if not environ.get("wsgi.input_terminated"):
        return LENGTH_REQUIRED
    body = read_exactly(stream, max_bytes + 1)      # to its end, or one byte past the limit
    return TOO_LARGE if len(body) > max_bytes else body


def read_exactly(stream, length: int) -> bytes:
    """Up to ``length`` bytes: as many reads as it takes (PEP 3333 does not promise one read returns them all),
    fewer only where the stream ends."""
    chunks, size = [], 0
    while size < length:
        chunk = stream.read(length - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def content_length(environ: dict) -> int | None:
    """The declared length; None for a chunked body, and for a header that is not a plain decimal number of at
    most ``MAX_LENGTH_DIGITS`` digits (werkzeug would read ``-1`` or ``+5`` as 0; a sender that means either is
    asked for a length instead: 411)."""
    if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return None
    value = environ.get("CONTENT_LENGTH", "").strip()
    if value.isascii() and value.isdigit() and len(value) <= MAX_LENGTH_DIGITS:
        return int(value)
    return None


def respond(start_response: StartResponse, answer: Answer,
            headers: list[tuple[str, str]] | None = None) -> list[bytes]:
    payload = answer.json
    start_response(STATUS_LINES[answer.status], [("Content-Type", "application/json"),
                                                 ("Content-Length", str(len(payload))), *(headers or ())])
    return [payload]


STATUS_LINES = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}
