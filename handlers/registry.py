"""Collects the chat commands and card actions of every module in this package.

Adding a command means adding one module here: the registry finds it itself (as errbot finds its
plugins), so no hand-kept list can forget one. The mechanism (decorators, ``Registry``) is the core's
``rollover.pipeline.registry``.
"""

from __future__ import annotations

import importlib
import pkgutil

from rollover.app import ChatLayer
from rollover.pipeline.registry import Registry

NOT_HANDLERS = {"actions", "registry"}   # shared constants and this collector


def handler_module_names() -> list[str]:
    import handlers
    return sorted(f"handlers.{info.name}" for info in pkgutil.iter_modules(handlers.__path__)
                  if info.name not in NOT_HANDLERS)


def build_registry() -> Registry:
    registry = Registry()
    for name in handler_module_names():
        registry.add_module(importlib.import_module(name))
    return registry


def build_chat_layer() -> ChatLayer:
    """The layer above the core, as the entry point and the fakes' harness hand it to ``rollover.app``."""
    from cards.presenters import PRESENTERS
    return ChatLayer(registry=build_registry(), cards=PRESENTERS)
