"""Benchmark: a reminder sweep that posts 1,200 cards, against posting the same cards one after the other.

The local Webex (fakes/) runs in this process; 300 spaces each track three certificates inside a reminder
threshold and are due their weekly digest, so one sweep (``reminders.run_sweep``: refresh, decide, record,
compose and post, with the real handlers' cards) posts 1,200 messages. The floor is the least any bot must
do: the same 1,200 messages posted by webexpythonsdk, one after the other. Sweep and floor alternate round
by round (a fresh database each round); the medians are reported, and the last words are ``ratio N``.

    python bench/reminder_posting.py [--spaces 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.reminder_sweep import THRESHOLDS, insert_rows  # noqa: E402
from fakes.webex import LocalWebex  # noqa: E402
from handlers.registry import build_chat_layer  # noqa: E402
from rollover.app import build_services, close_services  # noqa: E402
from rollover.reminders.sweep import DAY_SECONDS, run_sweep  # noqa: E402
from rollover.settings import load_config  # noqa: E402
from rollover.storage import ReminderSubscription  # noqa: E402

NOW = datetime(2026, 3, 20, 9, 5, tzinfo=timezone.utc)     # a Friday after 09:00 UTC: the digest is due too
SCHEMA = ROOT.parent / "shared" / "reference" / "adaptive-card-1.3.0.schema.json"
DAYS_LEFT = (5.5, 25.5, 55.5)                                # one certificate inside each of three thresholds


def seed(storage, rooms: list[str]) -> None:
    now = NOW.timestamp()
    sources = [(n + 1, room, "file", f"bench-{n}.pem", f"bench-{n}.pem") for n, room in enumerate(rooms)]
    certificates = [(n + 1, f"{n:08X}{k:032X}", now + days * DAY_SECONDS, None)
                    for n in range(len(rooms)) for k, days in enumerate(DAYS_LEFT)]
    insert_rows(storage, sources, certificates)
    for room in rooms:
        storage.reminders.save_subscription(ReminderSubscription(room, True, THRESHOLDS, "09:00", "UTC", 0.0,
                                                                 "bench", 0.0))


def sweep_once(webex: LocalWebex, token: str, rooms: list[str], folder: str, chat) -> tuple[float, list[dict]]:
    """One sweep on a fresh database; returns its seconds and the messages it posted."""
    config = load_config({}).replace(database_path=f"{folder}/sweep-{time.monotonic_ns()}.sqlite3",
                                     webex_access_token=token, webex_base_url=webex.base_url,
                                     allowed_domains=("example.com",))
    services = build_services(config, chat)
    seed(services.storage, rooms)
    mark = len(webex.requests)
    started = time.perf_counter()
    report = run_sweep(services, NOW)
    seconds = time.perf_counter() - started
    close_services(services)
    if report.waiting or report.failed:
        raise RuntimeError(f"the sweep did not post everything: {report.lines()[:3]}")
    posted = [r.json or {} for r in webex.requests[mark:]
              if r.method == "POST" and r.path == "/v1/messages" and r.status == 200]
    return seconds, posted


def floor_once(webex: LocalWebex, token: str, messages: list[dict]) -> float:
    """The same messages, posted by the SDK one after the other."""
    from webexpythonsdk import WebexAPI
    api = WebexAPI(access_token=token, base_url=webex.base_url)
    started = time.perf_counter()
    for message in messages:
        api.messages.create(roomId=message["roomId"], text=message.get("text"), markdown=message.get("markdown"),
                            attachments=message.get("attachments"))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spaces", type=int, default=300, help="spaces, each posted 3 reminders and a digest")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the medians are reported")
    args = parser.parse_args()
    chat = build_chat_layer()
    sweeps, floors = [], []
    with LocalWebex(SCHEMA if SCHEMA.exists() else None) as webex, tempfile.TemporaryDirectory() as folder:
        _, token = webex.add_bot()
        alice = webex.add_person("alice@example.com", "Alice Admin")
        rooms = [webex.add_room(f"bench {n}", "group", [alice]).id for n in range(args.spaces)]
        sweep_once(webex, token, rooms[:10], folder, chat)                  # warm-up: imports, connections
        for _ in range(args.rounds):
            seconds, posted = sweep_once(webex, token, rooms, folder, chat)
            sweeps.append(seconds)
            floors.append(floor_once(webex, token, posted))
    sweep_s, floor_s = statistics.median(sweeps), statistics.median(floors)
    print(f"reminder_posting: one sweep posting {len(posted):,} messages ({args.spaces} spaces x 3 reminders + "
          f"digest), median of {args.rounds} alternating rounds: {sweep_s:.2f} s | floor ({len(posted):,} "
          f"sequential SDK posts of the same messages) {floor_s:.2f} s | ratio {sweep_s / floor_s:.2f}")


if __name__ == "__main__":
    main()
