"""The web adapter: webhooks verified, recorded durably and acknowledged (``webhook_endpoint``, plain WSGI),
in front of Flask's ``/healthz`` and ``/metrics``. Everything after the acknowledgement runs in the worker."""

from __future__ import annotations

import logging
import sys
import time
import weakref
from typing import Any, Callable, Mapping

from flask import Flask, request

from rollover import VERSION, metrics
from rollover.app import freeze_startup_heap, open_storage, resolve_config
from rollover.logging_setup import configure_logging
from rollover.pipeline.socket_events import connection_status
from rollover.pipeline.wakeup import wake_channel_for
from rollover.pipeline.webhooks import WebhookReceiver
from rollover.settings import Config
from rollover.webhook_endpoint import WebhookEndpoint

log = logging.getLogger("rollover")


def create_app(config: Config | Mapping[str, Any] | None = None) -> Flask:
    """The webhook service. Work after the acknowledgement runs in ``serve``'s thread or ``bot.py worker``.

    Sets two process-wide things once, for the acknowledgement's tail latency: the interpreter's switch interval
    (``ACK_SWITCH_INTERVAL``) and the start-up heap frozen out of the cycle collector's passes.

    After each recorded event the app wakes the workers: those of this process through
    ``app.extensions["rollover"]["wake_callbacks"]`` (``serve``'s worker thread adds its wake-up there),
    those of other processes on this host through the database's wake-up channel (``pipeline.wakeup``)."""
    config = resolve_config(config)
    if not config.websocket_events:
        config.require("webhook_secret")   # websocket mode: only /healthz (and webhooks if a secret is set)
    if not logging.getLogger().handlers:   # under gunicorn nobody else set it up: keep the secret filter
        configure_logging(config)
    storage = open_storage(config)
    metrics.enable(config)
    wake_callbacks: list[Callable[[], Any]] = []
    wake_channel = wake_channel_for(config.database_path)

    def wake_workers() -> None:
        for wake in wake_callbacks:   # a worker thread of this process (serve)
            wake()
        wake_channel.notify()         # the worker processes of this host (the Procfile's worker)

    receiver = WebhookReceiver(config.webhook_secret, storage, config.max_webhook_bytes, on_recorded=wake_workers)
    app = Flask("rollover")
    app.config["MAX_CONTENT_LENGTH"] = config.max_webhook_bytes   # Flask's routes take no body: none large
    app.extensions["rollover"] = {"config": config, "storage": storage, "wake_callbacks": wake_callbacks,
                                  "wake_channel": wake_channel}

    if config.metrics_token:
        @app.get("/metrics")
        def metrics_endpoint():
            status, headers, body = metrics.answer(config, storage, "/metrics", request.headers.get("Authorization"),
                                                   token_required=True)
            return body, int(status.split()[0]), headers

    @app.get("/healthz")
    def healthz():
        try:
            backlog = storage.events.backlog(time.time())
        except Exception:
            log.exception("health check: database unreachable")
            return {"status": "unavailable", "version": VERSION, "database": "unreachable",
                    "store": storage.describe()}, 503
        # A growing backlog or an old pending event means no worker is running (or Webex is refusing us).
        health = {"status": "ok", "version": VERSION, "database": "ok", "store": storage.describe(), "events": backlog}
        if config.websocket_events:
            health["websocket"] = websocket = connection_status(
                storage, config.webex_access_token, lease_seconds=config.websocket_lease_seconds, now=time.time(),
                local=app.extensions["rollover"].get("socket_events"))
            # Still 200: the web process itself is fine; "degraded" says events are not arriving right now.
            health["status"] = "ok" if websocket["state"] == "connected" else "degraded"
        return health, 200

    # What notify keeps open (a PostgreSQL connection, a socket) is closed with the app, not left to the
    # garbage collector (psycopg warns then, at some unrelated moment).
    weakref.finalize(app, wake_channel.close)
    # POST /webhooks/webex is answered in plain WSGI, before Flask (webhook_endpoint says why); Flask serves the rest.
    app.wsgi_app = WebhookEndpoint(receiver, config.max_webhook_bytes, app.wsgi_app)
    freeze_startup_heap()
    sys.setswitchinterval(ACK_SWITCH_INTERVAL)
    return app


# A thread waiting for the interpreter lock (an acknowledgement back from its SQLite commit) gets it after at
# most this long, not Python's default 5 ms: under load that wait was the acknowledgement's tail (p99 1.34-1.50x
# the bare HMAC endpoint with 5 ms, 1.02-1.21x with 0.5-1 ms; bench/webhook_ack.py). Process-wide, like logging.
ACK_SWITCH_INTERVAL = 0.0005


def on_recorded(app: Flask, callback: Callable[[], Any]) -> None:
    """Call ``callback`` after each event the app records (an in-process worker's wake-up)."""
    app.extensions["rollover"]["wake_callbacks"].append(callback)
