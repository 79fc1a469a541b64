"""Rollover: a Webex bot that keeps Webex ↔ Microsoft Entra ID SAML certificates from expiring unnoticed.

The entry point, and the only place that puts the layers together: the core (``rollover/``), the chat
layer above it (``handlers/`` and ``cards/``), and the demo's loopback fakes (``fakes/``).

- ``python bot.py --help``: the command line (``rollover.cli``).
- ``gunicorn 'bot:create_app()'``: the webhook service (``rollover.web``): verify, record, acknowledge.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["create_app", "main"]


def create_app(config=None):
    """``gunicorn 'bot:create_app()'``: the webhook service (``rollover.web``), loaded only when asked for, so
    the command line starts without Flask."""
    from rollover.web import create_app as create_web_app
    return create_web_app(config)


def chat_layer():
    from handlers.registry import build_chat_layer
    return build_chat_layer()


def run_demo(args: argparse.Namespace) -> int:
    if args.web:
        from fakes.web.demo_web import run as run_web
        return run_web(port=args.port, keep_database=args.database, events=args.events)
    from fakes.demo import run
    from rollover.settings import load_config
    from rollover.storage import is_database_url
    configured = load_config().database_path     # DATABASE_URL set: the demo runs on that PostgreSQL
    return run(interactive=args.interactive, keep_database=args.database, events=args.events,
               postgres_url=configured if is_database_url(configured) else None)


def main(argv: list[str] | None = None) -> int:
    from rollover.cli import main as cli_main
    return cli_main(argv, chat=chat_layer, demo=run_demo)


if __name__ == "__main__":
    sys.exit(main())
