"""Benchmark: a Webex event recorded durably and acknowledged - over the websocket, by webhook, and the floor.

The bench process plays Webex: the loopback Mercury (fakes/webex_mercury.py) and a webhook sender, both open
loop at a fixed rate (each event leaves on schedule whatever happened to the previous ones). Each receiver runs
in its own child process, as in production:
  1. websocket: ``bot.py worker``'s event source exactly as it starts (``start_socket_events``: the lease, the
     real MercuryClient) with ROLLOVER_EVENTS=websocket; it commits each event to the durable event store
     (SQLite, ``Storage``) and only then acks its frame. Timed from just before the frame is sent to the ack's
     arrival at Mercury.
  2. webhook: the real Flask app (``create_app``) on ``bot.py serve``'s server (``PooledWSGIServer``) on loopback;
     a signed POST is verified, committed to the same table, answered 200. Timed from the request sent to the
     200 read (keep-alive connections, as Webex reuses them).
  3. floor: the least any websocket listener does - a bare ``websockets`` loop that parses the frame and acks
     its id (no parsing of the activity, no database).
No worker runs in the children: only the receive path is measured. Both receivers commit through ``Storage``
as it opens SQLite (WAL, synchronous=NORMAL: a commit survives a killed process; no fsync per event).
Rounds alternate the three (a busy
neighbour hits all alike); the figures are the medians over rounds of each round's p50 and p99. After the
rounds every event must be recorded in its receiver's store and every frame acknowledged: ``lost`` counts
those that are not (must be 0). The last line is the summary with the ratios to the floor.

    python bench/websocket_events.py [--rate 50] [--count 500] [--rounds 5]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fakes.webex_mercury import WebexMercury  # noqa: E402
from rollover.pipeline.webhooks import signature_for  # noqa: E402
from rollover.storage import Storage  # noqa: E402

SECRET = "bench-webhook-secret-0123456789"
ROLLOVER_TOKEN, FLOOR_TOKEN = "rollover-bench-token-0123456789", "floor-bench-token-0123456789"
SENDERS = 8            # webhook connections: enough that one slow answer never holds up the schedule


def webex_id(kind: str) -> str:
    return base64.urlsafe_b64encode(f"ciscospark://us/{kind}/{uuid.uuid4()}".encode()).decode().rstrip("=")


ROLLOVER, FLOOR = webex_id("PEOPLE"), webex_id("PEOPLE")
ROOM, ALICE = webex_id("ROOM"), webex_id("PEOPLE")


# ---- the receivers (child processes) ---------------------------------------------------------------------

def serve_websocket(catalog: str, database: str) -> None:
    """The websocket event source as `bot.py worker` starts it, until stdin closes."""
    from rollover.app import open_storage, start_socket_events
    from rollover.settings import load_config
    config = load_config({"ROLLOVER_EVENTS": "websocket", "WEBEX_ACCESS_TOKEN": ROLLOVER_TOKEN,
                          "ROLLOVER_WEBEX_CATALOG_URL": catalog, "ROLLOVER_DATABASE": database,
                          "ROLLOVER_ALLOW_PRIVATE_URLS": "true"})
    source = start_socket_events(config, open_storage(config), lambda: None)
    sys.stdin.read()
    source.stop()


def serve_webhook(database: str) -> None:
    """The webhook service as `bot.py serve` serves it (no worker), on a free port printed first."""
    from rollover.serving import PooledWSGIServer
    from rollover.settings import load_config
    from rollover.web import create_app
    app = create_app(load_config({"ROLLOVER_WEBHOOK_SECRET": SECRET, "ROLLOVER_DATABASE": database}))
    server = PooledWSGIServer("127.0.0.1", 0, app)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(server.server_port, flush=True)
    sys.stdin.read()
    server.shutdown()


def serve_floor(catalog: str) -> None:
    """Bare websockets: catalog, device, connect, authorize; then parse each frame and ack its id."""
    import requests
    from websockets.sync.client import connect

    from rollover.integrations.webex_socket import socket_url
    headers = {"Authorization": f"Bearer {FLOOR_TOKEN}"}
    wdm = requests.get(catalog, params={"format": "hostmap"}, headers=headers, timeout=10).json()["serviceLinks"]["wdm"]
    device = requests.post(f"{wdm}/devices", headers=headers, timeout=10,
                           json={"name": "floor", "deviceType": "DESKTOP"}).json()
    with connect(socket_url(device["webSocketUrl"]), proxy=None, ping_interval=None) as socket:
        socket.send(json.dumps({"id": str(uuid.uuid4()), "type": "authorization",
                                "data": {"token": f"Bearer {FLOOR_TOKEN}"}}))
        threading.Thread(target=lambda: (sys.stdin.read(), socket.close()), daemon=True).start()
        for raw in socket:
            socket.send(json.dumps({"type": "ack", "messageId": json.loads(raw)["id"]}))


def child(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, "--serve", *args], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "NO_PROXY": "127.0.0.1"})


# ---- the load (this process) -----------------------------------------------------------------------------

def on_schedule(count: int, rate: float, send: Callable[[int], None], lanes: int = 1) -> None:
    """Open loop: event i is due at start + i/rate, sent by lane i % lanes."""
    start = time.perf_counter() + 0.2

    def lane(offset: int) -> None:
        for i in range(offset, count, lanes):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            send(i)

    threads = [threading.Thread(target=lane, args=(k,)) for k in range(lanes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def frames_round(mercury: WebexMercury, owner: str, count: int, rate: float) -> tuple[list[float], int]:
    """Seconds from a frame sent to its ack at Mercury; and how many frames were never acknowledged."""
    frames: list[str] = []
    on_schedule(count, rate, lambda i: frames.extend(
        mercury.message_created(webex_id("MESSAGE"), ROOM, ALICE, recipients=[owner])))
    mercury.wait_for(lambda: all(f in mercury.acked_at for f in frames), 30.0)
    done = [f for f in frames if f in mercury.acked_at]
    return [mercury.acked_at[f] - mercury.sent_at[f] for f in done], count - len(done)


def webhook_round(port: int, count: int, rate: float) -> tuple[list[float], int]:
    """Seconds from a signed POST sent to its 200 read; and how many were not answered 200."""
    latencies: list[float | None] = [None] * count
    connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(SENDERS)]
    for connection in connections:          # connected and warm before the schedule starts
        post(connection, webhook_body())

    def send(i: int) -> None:
        body = webhook_body()
        sent = time.perf_counter()
        if post(connections[i % SENDERS], body) == 200:
            latencies[i] = time.perf_counter() - sent

    on_schedule(count, rate, send, lanes=SENDERS)
    for connection in connections:
        connection.close()
    answered = [seconds for seconds in latencies if seconds is not None]
    return answered, count - len(answered)


def webhook_body() -> bytes:
    return json.dumps({"id": webex_id("WEBHOOK"), "name": "rollover", "resource": "messages", "event": "created",
                       "actorId": ALICE, "data": {"id": webex_id("MESSAGE"), "roomId": ROOM, "roomType": "group",
                                                  "personId": ALICE}}).encode()


def post(connection: http.client.HTTPConnection, body: bytes) -> int:
    connection.request("POST", "/webhooks/webex", body=body, headers={
        "Content-Type": "application/json", "X-Spark-Signature": signature_for(SECRET, body)})
    response = connection.getresponse()
    response.read()
    return response.status


def recorded(database: str) -> int:
    storage = Storage(database)
    try:
        return storage.events.count("pending")     # no worker runs: every recorded event is still pending
    finally:
        storage.close()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0, help="events per second")
    parser.add_argument("--count", type=int, default=500, help="events per receiver and round")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds; medians over rounds are reported")
    parser.add_argument("--serve", nargs="+", help=argparse.SUPPRESS)        # a receiver (child process)
    args = parser.parse_args()
    if args.serve:
        kind, *rest = args.serve
        {"websocket": serve_websocket, "webhook": serve_webhook, "floor": serve_floor}[kind](*rest)
        return
    with tempfile.TemporaryDirectory(prefix="bench-websocket-") as folder, \
            WebexMercury({ROLLOVER_TOKEN: ROLLOVER, FLOOR_TOKEN: FLOOR}) as mercury:
        databases = {"websocket": f"{folder}/websocket.sqlite3", "webhook": f"{folder}/webhook.sqlite3"}
        children = [child("floor", mercury.u2c_url), child("websocket", mercury.u2c_url, databases["websocket"]),
                    webhook := child("webhook", databases["webhook"])]
        try:
            port = int(webhook.stdout.readline())
            if not mercury.wait_for(lambda: mercury.connected_devices() == 2, 30.0):
                raise RuntimeError("the websocket receivers did not connect")
            rounds = {"websocket": lambda n: frames_round(mercury, ROLLOVER, n, args.rate),
                      "webhook": lambda n: webhook_round(port, n, args.rate),
                      "floor": lambda n: frames_round(mercury, FLOOR, n, args.rate)}
            figures: dict[str, list[tuple[float, float]]] = {name: [] for name in rounds}
            sent, lost = {name: 0 for name in rounds}, 0
            for round_number in range(args.rounds + 1):          # round 0 warms up: imports, caches, connections
                for name, run in rounds.items():
                    count = args.count if round_number else 100
                    seconds, missing = run(count)
                    sent[name] += count + (SENDERS if name == "webhook" else 0)     # + each connection's warm-up
                    lost += missing
                    if round_number:
                        figures[name].append((percentile(seconds, 50) * 1000, percentile(seconds, 99) * 1000))
            lost += sum(sent[name] - recorded(database) for name, database in databases.items())
        finally:
            for process in children:
                process.stdin.close()
            for process in children:
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
    medians = {name: (statistics.median(r[0] for r in rs), statistics.median(r[1] for r in rs))
               for name, rs in figures.items()}
    for name, rs in figures.items():
        print(f"  {name:9} rounds p50/p99 ms: " + ", ".join(f"{p50:.2f}/{p99:.2f}" for p50, p99 in rs))
    (ws50, ws99), (wh50, wh99), (fl50, fl99) = medians["websocket"], medians["webhook"], medians["floor"]
    print(f"websocket_events: {args.count} events x {args.rounds} alternating rounds at {args.rate:.0f}/s, "
          f"medians: websocket frame -> recorded in SQLite + acked p50 {ws50:.2f} ms p99 {ws99:.2f} ms "
          f"({ws50 / fl50:.1f}x / {ws99 / fl99:.1f}x floor) | webhook signed POST -> 200 after the insert p50 "
          f"{wh50:.2f} ms p99 {wh99:.2f} ms ({wh50 / fl50:.1f}x / {wh99 / fl99:.1f}x floor) | floor (bare websocket "
          f"recv + ack) p50 {fl50:.2f} ms p99 {fl99:.2f} ms | lost {lost}")


if __name__ == "__main__":
    main()
