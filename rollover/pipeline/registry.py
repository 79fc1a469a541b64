"""The explicit registry of chat commands and card actions.

Handler modules mark functions with ``@command`` / ``@card_action`` / ``@file_handler``
(the decorators return the function unchanged, so handlers stay plain, testable
functions); ``handlers.build_registry()`` lists the modules and collects them.
A command's docstring is its help text: the first line is the summary shown by
``help``.
"""

from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable

Handler = Callable[..., Any]


@dataclass(frozen=True)
class CommandSpec:
    name: str
    usage: str
    handler: Handler
    button: str | None = None      # title of a quick button on the help card (commands without arguments)

    @property
    def summary(self) -> str:
        doc = inspect.getdoc(self.handler) or ""
        return doc.splitlines()[0] if doc else ""


@dataclass(frozen=True)
class ActionSpec:
    action_id: str
    handler: Handler


def command(name: str, usage: str | None = None, *, button: str | None = None) -> Callable[[Handler], Handler]:
    """Mark a function as the handler of chat command ``name`` (matched exactly, case-insensitively)."""
    if not name or name != name.lower() or " " in name:
        raise ValueError(f"command names are single lower-case words, got {name!r}")

    def mark(function: Handler) -> Handler:
        if not inspect.getdoc(function):
            raise ValueError(f"command {name!r} needs a docstring: it is the help text")
        function._rollover_command = CommandSpec(name, usage or name, function, button)
        return function
    return mark


def card_action(action_id: str) -> Callable[[Handler], Handler]:
    """Mark a function as the handler of card submits whose data carries ``action: action_id``."""
    def mark(function: Handler) -> Handler:
        function._rollover_action = ActionSpec(action_id, function)
        return function
    return mark


def file_handler(function: Handler) -> Handler:
    """Mark the function that handles a file dropped into the space without a command."""
    function._rollover_file_handler = True
    return function


class Registry:
    def __init__(self) -> None:
        self.commands: dict[str, CommandSpec] = {}
        self.actions: dict[str, ActionSpec] = {}
        self.file_handler: Handler | None = None

    def add_module(self, module: ModuleType) -> None:
        for _, function in inspect.getmembers(module, inspect.isfunction):
            if function.__module__ != module.__name__:
                continue   # imported helpers are registered by their own module
            self._add_function(function)

    def _add_function(self, function: Handler) -> None:
        spec = getattr(function, "_rollover_command", None)
        if spec is not None:
            if spec.name in self.commands:
                raise ValueError(f"command {spec.name!r} is registered twice")
            self.commands[spec.name] = spec
        action = getattr(function, "_rollover_action", None)
        if action is not None:
            if action.action_id in self.actions:
                raise ValueError(f"card action {action.action_id!r} is registered twice")
            self.actions[action.action_id] = action
        if getattr(function, "_rollover_file_handler", False):
            if self.file_handler is not None:
                raise ValueError("only one file handler may be registered")
            self.file_handler = function

    def find_command(self, word: str) -> CommandSpec | None:
        return self.commands.get(word.lower())

    def suggest(self, word: str) -> str | None:
        """The closest command name, for 'did you mean' replies."""
        matches = difflib.get_close_matches(word.lower(), list(self.commands), n=1, cutoff=0.6)
        return matches[0] if matches else None

    def sorted_commands(self) -> list[CommandSpec]:
        return sorted(self.commands.values(), key=lambda spec: spec.name)
