"""``python bot.py demo --web [--port 8000]``: the demo space in a browser.

It starts what ``bot.py demo`` starts (the local Webex API, the local Graph and the bot), plays the demo's
scenes into the space (printing the transcript), then serves the space on 127.0.0.1 and prints its URL. The
page opens on the whole story; go on from there as any member.
"""

from __future__ import annotations

import signal
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterable

from fakes.demo import SCENES, DemoWorld, first_line
from fakes.web.browser import BrowserMissing
from fakes.web.space import Member, SpacePage


def web_world(database_path: str, out: Any = sys.stdout, events: str = "webhook") -> DemoWorld:
    """The demo's world with the members the page can act as (events by webhook or over the websocket)."""
    return DemoWorld(database_path, out=out, web=True, events=events).start()


def space_page(world: DemoWorld, port: int = 0) -> SpacePage:
    """The page over ``world``'s space, started on 127.0.0.1:``port``."""
    members = [Member(world.alice, "requester"), Member(world.bob, "approver"),
               Member(world.carol, "second approver"), Member(world.mallory, "outside the allowed domains")]
    return SpacePage(world.webex, world.graph, world.room, world.bot.bot_person, members).start(port)


def run(*, port: int = 8000, keep_database: str | None = None, events: str = "webhook",
        scenes: Iterable[Callable[[DemoWorld], None]] = SCENES,
        wait: Callable[[SpacePage], None] | None = None) -> int:
    with tempfile.TemporaryDirectory(prefix="rollover-demo-") as folder:
        database = keep_database or str(Path(folder) / "rollover.sqlite3")
        try:
            world = web_world(database, events=events)
        except BrowserMissing as missing:
            print(f"demo --web: {missing}", file=sys.stderr)
            return 1
        if world.over_socket:
            print(first_line(world, database))
        page = None
        try:
            for scene in scenes:
                scene(world)
            try:
                page = space_page(world, port)
            except OSError as error:
                print(f"demo --web: cannot listen on 127.0.0.1:{port} ({error.strerror}); try --port", file=sys.stderr)
                return 1
            print(f"\nThe demo space is served at {page.url} — open it in a browser; Ctrl+C stops.", flush=True)
            (wait or _until_interrupted)(page)
            return 0
        finally:
            if page is not None:
                page.stop()
            world.stop()


def _until_interrupted(_page: SpacePage) -> None:
    try:
        signal.pause()      # Ctrl+C; Event().wait() can die on 'release unlocked lock'
    except KeyboardInterrupt:
        print("stopping")
