"""Building the running bot: its services, its worker and its background jobs.

The chat layer (handlers/ and cards/) sits above the core, so it is handed in as a ``ChatLayer``
by the entry point (``bot.py``) or the fakes' harness; the core never imports it.
"""

from __future__ import annotations

import gc
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping

from rollover.settings import Config, load_config
from rollover.storage import Storage

if TYPE_CHECKING:   # the web process (resolve_config, open_storage) loads none of the worker's modules
    from rollover.integrations.entra_client import EntraClient
    from rollover.integrations.webex_client import WebexClient
    from rollover.pipeline.registry import Registry
    from rollover.pipeline.socket_events import SocketEvents
    from rollover.pipeline.worker import Worker
    from rollover.presenters import Presenters
    from rollover.services import Services


@dataclass(frozen=True)
class ChatLayer:
    """What the layer above the core provides: the chat commands and card actions, and the cards the core posts."""

    registry: Registry
    cards: Presenters


ChatLayerFactory = Callable[[], ChatLayer]


def freeze_startup_heap() -> None:
    """Once per process, when it is set up: what is loaded by then (modules, the app) lives as long as the
    process, so the cycle collector's passes stop walking it again and again. Unfrozen, a full pass took
    ~25 ms and the older-generation ones up to 6 ms in the web worker: the acknowledgement's worst cases
    (bench/webhook_ack.py). Frozen objects are still freed by reference counting when dropped."""
    if gc.get_freeze_count() == 0:
        gc.freeze()


def resolve_config(config: Config | Mapping[str, Any] | None) -> Config:
    """A Config as is; a mapping of overrides (by setting key) on top of the environment; None: the environment."""
    if isinstance(config, Config):
        return config
    return load_config(**dict(config or {}))


def open_storage(config: Config) -> Storage:
    storage = Storage(config.database_path)
    storage.migrate()
    return storage


def build_services(config: Config, chat: ChatLayer, webex: WebexClient | None = None,
                   entra: EntraClient | None = None) -> Services:
    """Everything the worker's handlers use, built once per process (or per background job)."""
    from rollover.integrations.webex_client import WebexClient
    from rollover.services import Services
    webex = webex or WebexClient(config.webex_access_token, config.webex_base_url)
    return Services(config=config, storage=open_storage(config), webex=webex, registry=chat.registry,
                    cards=chat.cards, entra=entra if entra is not None else build_entra_client(config))


def build_entra_client(config: Config) -> EntraClient | None:
    """The Graph client when Entra credentials (or a local Graph) are configured; None otherwise."""
    if not config.graph_configured:
        return None
    from rollover.integrations.entra_client import EntraClient
    return EntraClient.from_settings(
        config.azure_tenant_id or None, config.azure_client_id or None,
        client_secret=config.azure_client_secret or None,
        certificate_path=config.azure_client_certificate_path or None,
        use_managed_identity=config.graph_managed_identity, base_url=config.graph_base_url)


def build_worker(services: Services, owner: str | None = None) -> Worker:
    from rollover.pipeline.dispatcher import Dispatcher
    from rollover.pipeline.worker import Worker
    config = services.config
    return Worker(services.storage, Dispatcher(services), lease_seconds=config.worker_lease_seconds,
                  max_attempts=config.worker_max_attempts, poll_seconds=config.worker_poll_seconds,
                  owner=owner, threads=config.worker_threads, slow_threads=config.worker_slow_threads)


def start_background_jobs(config: Config, chat: ChatLayer) -> Callable[[], None]:
    """The scheduler running the rotation and reminder sweeps, each job with its own clients.

    Returns the function that stops it."""
    from rollover.scheduling import start_scheduler
    scheduler = start_scheduler(build_services(config, chat), build_services(config, chat))
    return lambda: scheduler.shutdown(wait=False)   # a sweep in a long Graph step must not hold up the exit


def close_services(services: Services) -> None:
    if services.entra is not None:
        services.entra.close()
    services.storage.dispose()


def run_worker_until(worker: Worker, stop: threading.Event) -> threading.Thread:
    """The worker in a thread of this process (``serve``, the demo, tests)."""
    thread = threading.Thread(target=worker.run_forever, args=(stop,), name="rollover-worker", daemon=True)
    thread.start()
    return thread


def start_socket_events(config: Config, storage: Storage, wake: Callable[[], Any]) -> SocketEvents | None:
    """In websocket mode, the event source of ``worker`` and ``serve``: it holds the Webex websocket while
    this process holds its lease (standing by otherwise) and wakes ``wake`` after each new event.
    None in webhook mode."""
    if not config.websocket_events:
        return None
    from rollover.integrations.webex_socket import MercuryClient
    from rollover.pipeline.socket_events import SocketEvents
    token, catalog = config.webex_access_token, config.webex_catalog_url
    return SocketEvents(storage, token, lambda record: MercuryClient(token, record, u2c_url=catalog),
                        lease_seconds=config.websocket_lease_seconds, wake=wake).start()
