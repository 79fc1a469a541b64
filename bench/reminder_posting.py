"""Benchmark: a reminder sweep that posts 1,200 cards, against posting the same cards one after the other.

The local Webex (fakes/) runs in a process of its own, as Webex's servers do; 300 spaces each track three
certificates inside a reminder threshold and are due their weekly digest, so one sweep
(``reminders.run_sweep``: refresh, decide, record, compose and post, with the real handlers' cards) posts
1,200 messages. Each space's source keeps a Control Hub metadata document, which the trust diagnosis on the
cards reads. The floor is the least any bot must do: the same 1,200 messages posted by webexpythonsdk, one
after the other. Sweep and floor alternate round by round (a fresh database each round); the medians are
reported, and the last words are ``ratio N``.

    python bench/reminder_posting.py [--spaces 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
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


def control_hub_metadata() -> bytes:
    """A Webex Control Hub SP metadata document (signing and encryption certificate), as a space drops it."""
    from tests.support.certfactory import make_cert, make_sp_metadata
    org = "7f9e2c4a-0000-4000-8000-0000000000e1"
    certificate, _ = make_cert("idbroker.webex.com", NOW - timedelta(days=300), NOW + timedelta(days=25.5))
    return make_sp_metadata(f"https://idbroker.webex.com/{org}", [certificate], [certificate],
                            [f"https://idbroker.webex.com/idb/Consumer/metaAlias/{org}/sp"])


def seed(storage, rooms: list[str]) -> None:
    now = NOW.timestamp()
    sources = [(n + 1, room, "file", f"bench-{n}.pem", f"bench-{n}.pem") for n, room in enumerate(rooms)]
    certificates = [(n + 1, f"{n:08X}{k:032X}", now + days * DAY_SECONDS, None)
                    for n in range(len(rooms)) for k, days in enumerate(DAYS_LEFT)]
    insert_rows(storage, sources, certificates)
    # Each space keeps the document it tracks: the trust diagnosis on its reminder cards reads it.
    storage.db.execute("UPDATE sources SET content = ?", [control_hub_metadata()])
    for room in rooms:
        storage.reminders.save_subscription(ReminderSubscription(room, True, THRESHOLDS, "09:00", "UTC", 0.0,
                                                                 "bench", 0.0))


class WebexProcess:
    """The local Webex in a process of its own, as Webex is: its work (cards validated against the schema,
    messages stored) does not compete with the sweep for this interpreter. Commands on stdin: ``mark``
    (remember the request log's length), ``posted`` (print the messages posted since, as JSON)."""

    def __init__(self, spaces: int):
        self.process = subprocess.Popen([sys.executable, __file__, "--serve", "--spaces", str(spaces)],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        hello = json.loads(self.process.stdout.readline())
        self.base_url, self.token, self.rooms = hello["base_url"], hello["token"], hello["rooms"]

    def ask(self, command: str) -> str:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.process.stdout.readline()

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(30)


def serve(spaces: int) -> None:
    with LocalWebex(SCHEMA if SCHEMA.exists() else None) as webex:
        _, token = webex.add_bot()
        alice = webex.add_person("alice@example.com", "Alice Admin")
        rooms = [webex.add_room(f"bench {n}", "group", [alice]).id for n in range(spaces)]
        print(json.dumps({"base_url": webex.base_url, "token": token, "rooms": rooms}), flush=True)
        mark = 0
        for line in sys.stdin:
            if line.strip() == "mark":
                mark = len(webex.requests)
                print("ok", flush=True)
            elif line.strip() == "posted":
                posted = [r.json or {} for r in webex.requests[mark:]
                          if r.method == "POST" and r.path == "/v1/messages" and r.status == 200]
                print(json.dumps(posted), flush=True)


def sweep_once(webex: WebexProcess, rooms: list[str], folder: str, chat) -> tuple[float, list[dict]]:
    """One sweep on a fresh database; returns its seconds and the messages it posted."""
    config = load_config({}).replace(database_path=f"{folder}/sweep-{time.monotonic_ns()}.sqlite3",
                                     webex_access_token=webex.token, webex_base_url=webex.base_url,
                                     allowed_domains=("example.com",))
    services = build_services(config, chat)
    seed(services.storage, rooms)
    webex.ask("mark")
    started = time.perf_counter()
    report = run_sweep(services, NOW)
    seconds = time.perf_counter() - started
    close_services(services)
    if report.waiting or report.failed:
        raise RuntimeError(f"the sweep did not post everything: {report.lines()[:3]}")
    return seconds, json.loads(webex.ask("posted"))


def floor_once(webex: WebexProcess, messages: list[dict]) -> float:
    """The same messages, posted by the SDK one after the other."""
    from webexpythonsdk import WebexAPI
    api = WebexAPI(access_token=webex.token, base_url=webex.base_url)
    started = time.perf_counter()
    for message in messages:
        api.messages.create(roomId=message["roomId"], text=message.get("text"), markdown=message.get("markdown"),
                            attachments=message.get("attachments"))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spaces", type=int, default=300, help="spaces, each posted 3 reminders and a digest")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the medians are reported")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.spaces)
    chat = build_chat_layer()
    sweeps, floors = [], []
    webex = WebexProcess(args.spaces)
    try:
        with tempfile.TemporaryDirectory() as folder:
            sweep_once(webex, webex.rooms[:10], folder, chat)                  # warm-up: imports, connections
            for _ in range(args.rounds):
                seconds, posted = sweep_once(webex, webex.rooms, folder, chat)
                sweeps.append(seconds)
                floors.append(floor_once(webex, posted))
    finally:
        webex.close()
    sweep_s, floor_s = statistics.median(sweeps), statistics.median(floors)
    print(f"reminder_posting: one sweep posting {len(posted):,} messages ({args.spaces} spaces x 3 reminders + "
          f"digest), local Webex in its own process, median of {args.rounds} alternating rounds: {sweep_s:.2f} s | "
          f"floor ({len(posted):,} sequential SDK posts of the same messages) {floor_s:.2f} s | ratio "
          f"{sweep_s / floor_s:.2f}")


if __name__ == "__main__":
    main()
