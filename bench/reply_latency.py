"""Benchmark: chat reply latency, from the webhook POST to the reply posted on the local Webex, against the floor.

Runs the local Webex (fakes/) in this process and the bot as it is deployed:
  1. the Procfile setup: ``gunicorn 'bot:create_app()'`` (2 workers x 4 threads) + ``python bot.py worker``;
  2. ``python bot.py serve`` (one process, worker thread);
  3. the floor: one webexpythonsdk post of the same reply, the least any bot must do per message.
Each message is ``help`` from its own space (the bot answers with the help card); latency runs from sending the
signed webhook to the local Webex answering the bot's post. Rates 1, 10 and 50 msg/s (open loop), the three
set-ups alternating round by round so a noisy neighbour hits all alike; the median of the rounds is reported.
The last line is the summary, ending with the Procfile setup's worst p50 as ``ratio N`` to the floor's p50.

    python bench/reply_latency.py [--rates 1,10,50] [--seconds 6] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.webhook_ack import percentile  # noqa: E402
from fakes.webex import LocalWebex  # noqa: E402
from rollover.integrations.webex_client import WebexClient  # noqa: E402
from rollover.pipeline.webhooks import sync_webhooks  # noqa: E402
from tests.support.processes import free_port  # noqa: E402

SECRET = "bench-secret-0123456789"
throughput: dict[tuple[str, float], list[float]] = {}    # (set-up, rate) -> replies per second, per round
SCHEMA = ROOT.parent / "shared" / "reference" / "adaptive-card-1.3.0.schema.json"
GUNICORN = ["--workers", "2", "--threads", "4", "--log-level", "warning"]   # as in the Procfile


class ReplyClock:
    """Wraps the local Webex's message creation: the moment each bot reply was accepted, by space. With
    ``latency`` every message read and post of the API takes that much longer (Webex's own time)."""

    def __init__(self, webex: LocalWebex, bot_id: str, latency: float = 0.0):
        self.replies: dict[str, float] = {}
        self.lock = threading.Lock()
        original, read = webex._api_messages_create, webex._api_messages_get

        def slow_read(caller, request, message_id):
            time.sleep(latency)
            return read(caller, request, message_id)
        if latency:
            webex._api_messages_get = slow_read

        def timed(caller, request):
            time.sleep(latency)
            response = original(caller, request)
            if caller.id == bot_id and response.status_code == 200:
                room_id = response.get_json().get("roomId")
                with self.lock:
                    self.replies.setdefault(room_id, time.perf_counter())
            return response
        webex._api_messages_create = timed


class Setup:
    """One deployment of the bot against the local Webex: its processes, its webhook URL and its database."""

    def __init__(self, name: str, webex: LocalWebex, token: str, folder: str):
        self.name, self.port = name, free_port()
        self.env = {**os.environ, "WEBEX_ACCESS_TOKEN": token, "WEBEX_BASE_URL": webex.base_url,
                    "ROLLOVER_WEBHOOK_SECRET": SECRET, "ROLLOVER_DATABASE": f"{folder}/{name}.sqlite3",
                    "ROLLOVER_ALLOWED_DOMAINS": "example.com", "ROLLOVER_LOG_LEVEL": "WARNING"}
        self.processes: list[subprocess.Popen] = []

    def start(self) -> None:
        if self.name == "procfile":
            self._spawn([sys.executable, "-m", "gunicorn", *GUNICORN, "--bind", f"127.0.0.1:{self.port}",
                         "bot:create_app()"])
            self._spawn([sys.executable, "bot.py", "worker"])
        else:
            self._spawn([sys.executable, "bot.py", "serve", "--host", "127.0.0.1", "--port", str(self.port)])
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if requests.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not start")

    def _spawn(self, command: list[str]) -> None:
        self.processes.append(subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.wait(15)


def open_loop(count: int, rate: float, send) -> None:
    """Call ``send(i)`` for i in range(count) on schedule (start + i/rate), whether or not earlier ones finished."""
    start = time.perf_counter() + 0.2
    senders = 8

    def sender(offset: int) -> None:
        for i in range(offset, count, senders):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            send(i)
    threads = [threading.Thread(target=sender, args=(k,)) for k in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def measure_bot(setup: Setup, webex: LocalWebex, clock: ReplyClock, people: list, count: int,
                rate: float) -> list[float]:
    """Latency of each ``help``: its signed webhook sent, until the bot's reply in its space was accepted."""
    rooms = [webex.add_room(f"bench {setup.name} {i}", "group", [people[i % len(people)]]) for i in range(count)]
    messages = [webex.post_as(people[i % len(people)], rooms[i], "help") for i in range(count)]
    deliveries = [webex.webhook_event("messages", "created", m["id"]) for m in messages]
    sent = [0.0] * count
    session = threading.local()

    def send(i: int) -> None:
        http = getattr(session, "http", None)
        if http is None:
            http = session.http = requests.Session()
        body, headers = deliveries[i]
        sent[i] = time.perf_counter()
        if http.post(f"{setup.url}/webhooks/webex", data=body, headers=headers, timeout=10).status_code != 200:
            raise RuntimeError("the webhook was not accepted")
    open_loop(count, rate, send)
    deadline = time.time() + 60
    while time.time() < deadline and any(room.id not in clock.replies for room in rooms):
        time.sleep(0.01)
    missing = sum(room.id not in clock.replies for room in rooms)
    if missing:
        raise RuntimeError(f"{setup.name}: {missing} of {count} messages got no reply")
    throughput.setdefault((setup.name, rate), []).append(
        count / (max(clock.replies[room.id] for room in rooms) - min(sent)))
    return [clock.replies[room.id] - sent[i] for i, room in enumerate(rooms)]


def measure_floor(webex: LocalWebex, token: str, reply: dict, people: list, count: int, rate: float) -> list[float]:
    """One SDK post of the bot's reply per message, on the same schedule: the least a bot must do."""
    from webexpythonsdk import WebexAPI
    rooms = [webex.add_room(f"bench floor {i}", "group", [people[i % len(people)]]) for i in range(count)]
    latencies = [0.0] * count
    local = threading.local()

    def send(i: int) -> None:
        api = getattr(local, "api", None)
        if api is None:
            api = local.api = WebexAPI(access_token=token, base_url=webex.base_url)
        started = time.perf_counter()
        api.messages.create(roomId=rooms[i].id, text=reply.get("text"), markdown=reply.get("markdown"),
                            attachments=reply.get("attachments"))
        latencies[i] = time.perf_counter() - started
    open_loop(count, rate, send)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="1,10,50", help="messages per second, comma-separated")
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each measurement (at least 8 messages)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the median is reported")
    parser.add_argument("--api-latency-ms", type=float, default=0.0,
                        help="add this to every message read and post of the local Webex (e.g. 25)")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    results: dict[tuple[str, float], list[tuple[float, float]]] = {}
    with LocalWebex(SCHEMA if SCHEMA.exists() else None) as webex, tempfile.TemporaryDirectory() as folder:
        bot, token = webex.add_bot()
        people = [webex.add_person(f"person{n}@example.com", f"Person {n}") for n in range(20)]
        clock = ReplyClock(webex, bot.id, args.api_latency_ms / 1000)
        setups = [Setup("procfile", webex, token, folder), Setup("serve", webex, token, folder)]
        try:
            for setup in setups:
                setup.start()
            sync_webhooks(WebexClient(token, webex.base_url), name="rollover", public_url=setups[0].url,
                          secret=SECRET)
            reply = warm_up(setups, webex, clock, people)
            for _ in range(args.rounds):
                for rate in rates:
                    count = max(8, int(rate * args.seconds))
                    for setup in setups:
                        latencies = measure_bot(setup, webex, clock, people, count, rate)
                        results.setdefault((setup.name, rate), []).append(summary(latencies))
                    latencies = measure_floor(webex, token, reply, people, count, rate)
                    results.setdefault(("floor", rate), []).append(summary(latencies))
        finally:
            for setup in setups:
                setup.stop()
    report(results, rates, args.rounds, args.api_latency_ms)


def warm_up(setups: list[Setup], webex: LocalWebex, clock: ReplyClock, people: list) -> dict:
    """Imports, connections and caches of every process; returns the bot's help reply (the floor posts it)."""
    for setup in setups:
        measure_bot(setup, webex, clock, people, 8, 10.0)
    replies = [r for r in webex.requests if r.method == "POST" and r.path == "/v1/messages"]
    fields = replies[-1].json or {}
    return {"text": fields.get("text"), "markdown": fields.get("markdown"), "attachments": fields.get("attachments")}


def summary(latencies: list[float]) -> tuple[float, float]:
    return percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000


def report(results: dict, rates: list[float], rounds: int, latency_ms: float) -> None:
    median = {key: (statistics.median(p50 for p50, _ in values), statistics.median(p99 for _, p99 in values))
              for key, values in results.items()}
    parts = []
    for name in ("procfile", "serve", "floor"):
        cells = [f"{rate:g}/s {median[(name, rate)][0]:.1f}/{median[(name, rate)][1]:.1f}" for rate in rates]
        parts.append(f"{name} p50/p99 ms " + ", ".join(cells))
    ratios = [median[("procfile", rate)][0] / median[("floor", rate)][0] for rate in rates]
    worst = max(range(len(rates)), key=lambda i: median[("procfile", rates[i])][0])
    serve_ratio = max(median[("serve", rate)][0] / median[("floor", rate)][0] for rate in rates)
    top = max(rates)
    handled = ", ".join(f"{name} {statistics.median(throughput[(name, top)]):.0f}/s" for name in ("procfile", "serve"))
    api = f", Webex API at +{latency_ms:g} ms" if latency_ms else ""
    print(f"reply_latency: help -> reply posted{api}, median of {rounds} alternating rounds | " + " | ".join(parts)
          + f" | throughput at {top:g}/s offered: {handled}"
          + f" | serve worst p50 ratio {serve_ratio:.1f} | Procfile worst p50 "
          f"{median[('procfile', rates[worst])][0]:.1f} ms at {rates[worst]:g}/s, floor (one SDK post) "
          f"{median[('floor', rates[worst])][0]:.1f} ms: ratio {ratios[worst]:.1f}")


if __name__ == "__main__":
    main()
