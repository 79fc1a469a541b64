"""The README documents every chat command and every command-line sub-command (as datasette's test_docs does)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from handlers.registry import build_registry, handler_module_names
from rollover.cli import build_parser

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def _section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end if end != -1 else None]


def _sub_commands() -> list[str]:
    parser = build_parser()
    [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sorted(commands.choices)


@pytest.mark.parametrize("name", sorted(build_registry().commands))
def test_every_chat_command_is_in_the_readme(name):
    assert re.search(rf"\| `{re.escape(name)}( [^`]*)?` \|", _section("Chat commands")), \
        f"chat command {name!r} is missing from the README's 'Chat commands' table"


@pytest.mark.parametrize("name", _sub_commands())
def test_every_cli_sub_command_is_in_the_readme(name):
    assert re.search(rf"`{re.escape(name)}( [^`]*)?`", _section("Command line")), \
        f"`bot.py {name}` is missing from the README's 'Command line' table"


def test_every_handler_module_registers_something():
    """The registry finds handler modules itself; a module that registers nothing is a mistake."""
    registry = build_registry()
    registered = {spec.handler.__module__ for spec in registry.commands.values()}
    registered |= {spec.handler.__module__ for spec in registry.actions.values()}
    registered |= {registry.file_handler.__module__} if registry.file_handler else set()
    assert [name for name in handler_module_names() if name not in registered] == []
