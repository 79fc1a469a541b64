"""The real bot wired to the local Webex (and, when given, the local Graph): one set-up for tests and the demo.

``LocalBot`` builds the configuration a local Webex needs, the Flask app, the services and a worker,
exactly as ``bot.py serve`` does, with the chat layer (handlers and cards) the entry point would hand in.
The tests drive it synchronously (``Conversation``); the demo serves it over HTTP with a worker thread
(and, with ``events_mode="websocket"``, holds the Webex websocket as ``bot.py serve`` does).
"""

from __future__ import annotations

import threading
from typing import Any

from fakes.server import serve_wsgi
from handlers.registry import build_chat_layer
from rollover.app import build_services, build_worker, close_services, run_worker_until, start_socket_events
from rollover.integrations.webex_client import WebexClient
from rollover.pipeline.webhooks import sync_webhooks
from rollover.services import Services
from rollover.settings import Config, load_config
from rollover.web import create_app, on_recorded


class LocalBot:
    """The bot of a local Webex organisation: its token, settings, app, services and worker."""

    def __init__(self, webex: Any, database_path: str, *, secret: str, graph: Any = None,
                 owner: str = "local-worker", **overrides: Any):
        self.webex, self.graph, self.secret = webex, graph, secret
        self.bot_person, self.token = webex.add_bot()
        self.config: Config = load_config({}).replace(**{
            "database_path": database_path, "webhook_secret": secret, "webex_access_token": self.token,
            "webex_base_url": webex.base_url,
            "allow_private_urls": True,         # the local servers live on 127.0.0.1
            **({"graph_base_url": graph.base_url, "federation_metadata_base": graph.root_url} if graph else {}),
            **overrides,
        })
        self.chat = build_chat_layer()
        self.app = create_app(self.config)
        self.services = self.new_services()
        self.worker = build_worker(self.services, owner=owner)
        self._server = None
        self.socket_events = None
        self._stop = threading.Event()

    def new_services(self) -> Services:
        """Services with their own clients, as a background job of ``bot.py worker`` has."""
        return build_services(self.config, self.chat)

    def register_webhooks(self, public_url: str) -> None:
        sync_webhooks(WebexClient(self.token, self.webex.base_url), name=self.config.webhook_name,
                      public_url=public_url, secret=self.secret)

    def serve(self) -> str:
        """Serve the webhook endpoint on 127.0.0.1 with a worker thread woken by each event; returns its URL.

        In websocket mode the process also takes the websocket's lease and connects, as ``bot.py serve``."""
        on_recorded(self.app, self.worker.wake.set)
        self._worker_thread = run_worker_until(self.worker, self._stop)
        self.socket_events = start_socket_events(self.config, self.worker.storage, self.worker.wake.set)
        self.app.extensions["rollover"]["socket_events"] = self.socket_events
        self._server = serve_wsgi(self.app, name="local-bot")
        return f"http://127.0.0.1:{self._server.server.server_port}"

    def close(self) -> None:
        if self.socket_events is not None:
            self.socket_events.stop()
        self._stop.set()
        if self._server is not None:
            self._server.stop()
            self._worker_thread.join(timeout=5)
        close_services(self.services)
        self.app.extensions["rollover"]["storage"].dispose()
