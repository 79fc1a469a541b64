"""``LocalWebex``: the loopback Webex API for the tests and the demo, on the shared server plumbing.

A real HTTP server on 127.0.0.1 that the unmodified ``webexpythonsdk.WebexAPI`` talks to through
``base_url="http://127.0.0.1:PORT/v1/"`` (keep the trailing slash: the SDK joins relative paths with
``urljoin``).  It follows the official OpenAPI subset in
``shared/reference/webex-messaging-openapi-subset.json`` for ``/messages``, ``/attachment/actions`` and
``/webhooks`` and adds the few other endpoints a bot needs: ``/people``, ``/rooms/{id}`` and ``/contents/{id}``.

Besides the API it holds a small simulated world (people, bots, rooms, hosted files) and test helpers
that act like Webex itself: ``post_as`` (a person writes in a space), ``click`` (a person submits a
card), ``webhook_event`` (the signed payload Webex would POST to the bot); fault injection and the
request log come from ``fakes.server.LoopbackServer``.
"""

from __future__ import annotations

from pathlib import Path

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from fakes.server import Fault, LoopbackServer
from fakes.webex.actions import ActionRoutes
from fakes.webex.cards import CardValidator
from fakes.webex.delivery import Delivery
from fakes.webex.directory import DirectoryRoutes
from fakes.webex.files import FileRoutes
from fakes.webex.messages import MessageRoutes
from fakes.webex.model import (
    DEFAULT_CARD_SCHEMA_PATH,
    UNAUTHORIZED_MESSAGE,
    ApiFailure,
    Person,
    WebexRequest,
    error_response,
)
from fakes.webex.webhooks import WebhookRoutes

_URL_MAP = Map([Rule("/v1" + path, methods=[method], endpoint=endpoint) for path, method, endpoint in (
    ("/people/me", "GET", "people_me"),
    ("/people", "GET", "people_list"),
    ("/people/<person_id>", "GET", "people_get"),
    ("/rooms/<room_id>", "GET", "rooms_get"),
    ("/messages", "GET", "messages_list"),
    ("/messages", "POST", "messages_create"),
    ("/messages/direct", "GET", "messages_direct"),
    ("/messages/<message_id>", "GET", "messages_get"),
    ("/messages/<message_id>", "PUT", "messages_edit"),
    ("/messages/<message_id>", "DELETE", "messages_delete"),
    ("/attachment/actions", "POST", "actions_create"),
    ("/attachment/actions/<action_id>", "GET", "actions_get"),
    ("/webhooks", "GET", "webhooks_list"),
    ("/webhooks", "POST", "webhooks_create"),
    ("/webhooks/<webhook_id>", "GET", "webhooks_get"),
    ("/webhooks/<webhook_id>", "PUT", "webhooks_update"),
    ("/webhooks/<webhook_id>", "DELETE", "webhooks_delete"),
    ("/contents/<content_id>", "GET", "contents_get"),  # werkzeug adds HEAD
)])


class LocalWebex(LoopbackServer, MessageRoutes, ActionRoutes, WebhookRoutes, FileRoutes, DirectoryRoutes,
                 Delivery):
    """Loopback Webex API plus a simulated world, for tests and the demo.

    All state sits behind one lock; helpers return deep copies so callers cannot change it behind
    the server's back.  ``deliver_events=True`` POSTs signed webhook events to registered targets as
    Webex does (the tests usually send them themselves, through ``webhook_event``).
    """

    name = "local-webex"
    request_class = WebexRequest

    def __init__(self, card_schema_path: Path | None = DEFAULT_CARD_SCHEMA_PATH, *,
                 deliver_events: bool = False, host: str = "127.0.0.1"):
        LoopbackServer.__init__(self, host)
        self._init_world(CardValidator(card_schema_path), deliver_events)

    def stop(self) -> None:
        """Stop serving and wait for pending webhook deliveries."""
        LoopbackServer.stop(self)
        self.wait_for_deliveries()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1/`` with the trailing slash the SDK needs."""
        return f"{self.root_url}/v1/"

    # ---- WSGI --------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        try:
            try:
                endpoint, args = _URL_MAP.bind_to_environ(request.environ).match()
            except MethodNotAllowed:
                raise ApiFailure(405, "The requested method is not supported for this resource.") from None
            except NotFound:
                raise ApiFailure(404, "The requested resource could not be found.") from None
            caller = self._authenticate(request)
            # Looked up on the instance, so a test can stall one endpoint (tests/crash).
            return getattr(self, f"_api_{endpoint}")(caller, request, **args)
        except ApiFailure as failure:
            return error_response(failure.status, failure.message, failure.headers)

    def fault_response(self, fault: Fault) -> Response:
        """An injected failure in the Webex error shape; a 429 always carries Retry-After (1 s by default)."""
        retry_after = fault.retry_after if fault.retry_after is not None else ("1" if fault.status == 429 else None)
        message = fault.message or ("Too many requests." if fault.status == 429 else "Injected server error.")
        return error_response(fault.status, message, {"Retry-After": retry_after} if retry_after else {})

    def internal_error(self, request: Request) -> Response:
        return error_response(500, "Internal error in the local Webex server.")

    def _authenticate(self, request: Request) -> Person:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        with self._lock:
            person_id = self._tokens.get(token.strip()) if scheme.lower() == "bearer" else None
            if person_id is None:
                raise ApiFailure(401, UNAUTHORIZED_MESSAGE)
            return self._people[person_id]
