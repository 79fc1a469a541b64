"""What handlers, rotations and reminders use, built once per process by ``rollover.app.build_services``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable

from rollover.pipeline.registry import Registry
from rollover.settings import Config
from rollover.storage import Storage

if TYPE_CHECKING:   # types only: importing the SDK wrappers costs start-up time the `check` path never needs
    from rollover.integrations.entra_client import EntraClient
    from rollover.integrations.webex_client import WebexClient
    from rollover.presenters import Presenters


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Services:
    config: Config
    storage: Storage
    webex: WebexClient | None
    registry: Registry
    cards: Presenters | None = None           # the chat layer's card builders (rotations and reminders post them)
    entra: EntraClient | None = None          # when Graph is configured
    clock: Callable[[], datetime] = utc_now
    extras: dict[str, Any] = field(default_factory=dict)
