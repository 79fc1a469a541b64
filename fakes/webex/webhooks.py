"""``/v1/webhooks``: registering, listing, updating and deleting the bot's webhooks.
"""

from __future__ import annotations

import copy
from typing import Any
from urllib.parse import urlparse

from werkzeug.wrappers import Request, Response

from fakes.webex.model import (
    WEBHOOK_EVENTS,
    WEBHOOK_RESOURCES,
    ApiFailure,
    Person,
    json_body,
    json_response,
    make_id,
    utc_timestamp,
)
from fakes.webex.state import WebexWorld


class WebhookRoutes(WebexWorld):
    """``/v1/webhooks``."""

    def disable_webhook(self, webhook_id: str) -> None:
        """Mark a webhook ``inactive`` as Webex does after repeated delivery failures."""
        with self._lock:
            self._webhooks[webhook_id]["status"] = "inactive"

    def webhooks(self) -> list[dict[str, Any]]:
        """All registered webhooks (any owner)."""
        with self._lock:
            return copy.deepcopy(list(self._webhooks.values()))

    # ---- webhooks ----------------------------------------------------------------------------

    def _api_webhooks_create(self, caller: Person, request: Request) -> Response:
        body = json_body(request)
        for name in ("name", "targetUrl", "resource", "event"):
            if not isinstance(body.get(name), str) or not body[name]:
                raise ApiFailure(400, f"{name} is required.")
        if body["resource"] not in WEBHOOK_RESOURCES:
            raise ApiFailure(400, f"Unsupported resource '{body['resource']}'.")
        if body["event"] not in WEBHOOK_EVENTS:
            raise ApiFailure(400, f"Unsupported event '{body['event']}'.")
        _check_target_url(body["targetUrl"])
        hook = {"id": make_id("WEBHOOK"), "name": body["name"], "targetUrl": body["targetUrl"],
                "resource": body["resource"], "event": body["event"]}
        for optional in ("filter", "secret"):
            if body.get(optional):
                hook[optional] = str(body[optional])
        hook.update(status="active", created=utc_timestamp(), orgId=caller.org_id, createdBy=caller.id,
                    appId=self._app_id, ownedBy=body.get("ownedBy") or "creator")
        with self._lock:
            self._webhooks[hook["id"]] = hook
        return json_response(hook)

    def _api_webhooks_list(self, caller: Person, request: Request) -> Response:
        with self._lock:
            hooks = [h for h in self._webhooks.values() if h["createdBy"] == caller.id]
            return self._page(request, hooks, default_max=100)

    def _api_webhooks_get(self, caller: Person, request: Request, webhook_id: str) -> Response:
        with self._lock:
            return json_response(self._own_webhook(caller, webhook_id))

    def _api_webhooks_update(self, caller: Person, request: Request, webhook_id: str) -> Response:
        body = json_body(request)
        for name in ("name", "targetUrl"):
            if not isinstance(body.get(name), str) or not body[name]:
                raise ApiFailure(400, f"{name} is required.")
        if body.get("status") not in (None, "active"):
            raise ApiFailure(400, "status can only be set to 'active'.")
        _check_target_url(body["targetUrl"])
        with self._lock:
            hook = self._own_webhook(caller, webhook_id)
            hook.update(name=body["name"], targetUrl=body["targetUrl"])
            for optional in ("secret", "ownedBy", "status"):
                if body.get(optional):
                    hook[optional] = body[optional]
            return json_response(hook)

    def _api_webhooks_delete(self, caller: Person, request: Request, webhook_id: str) -> Response:
        with self._lock:
            self._own_webhook(caller, webhook_id)
            del self._webhooks[webhook_id]
        return Response(status=204)

    def _own_webhook(self, caller: Person, webhook_id: str) -> dict[str, Any]:
        hook = self._webhooks.get(webhook_id)
        if hook is None or hook["createdBy"] != caller.id:
            raise ApiFailure(404, "Webhook not found.")
        return hook

def _check_target_url(url: str) -> None:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ApiFailure(400, "targetUrl must be an http(s) URL.")

