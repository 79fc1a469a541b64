"""Benchmark (draft): from a Mercury frame sent to the event recorded and its frame acknowledged.

The loopback Mercury (fakes/webex_mercury.py) sends ``conversation.activity`` frames at a fixed rate
(open loop: each frame leaves on schedule whatever happened to the previous ones) and times each
from just before its send to the arrival of its ack. Two listeners, one after the other per round,
each on its own bot device:
  1. Rollover's MercuryClient: parse, derive the public id, ``record()`` (in memory for now; the
     durable events table comes with the worker integration), then ack;
  2. the floor: a bare websockets loop that parses the frame and acks its id - the least any
     listener must do.
Prints one line: p50/p99 of the median round of each, and events lost (must be 0).

    python bench/websocket_events.py [--rate 50] [--count 500] [--rounds 3]
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import threading
import time
import uuid
from pathlib import Path

import requests
from websockets.sync.client import connect

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fakes.webex_mercury import WebexMercury  # noqa: E402
from rollover.integrations.webex_socket import MercuryClient, socket_url  # noqa: E402


def webex_id(kind: str) -> str:
    return base64.urlsafe_b64encode(f"ciscospark://us/{kind}/{uuid.uuid4()}".encode()).decode().rstrip("=")


ROLLOVER, FLOOR = webex_id("PEOPLE"), webex_id("PEOPLE")
TOKENS = {"rollover-bench-token-0123456789": ROLLOVER, "floor-bench-token-0123456789": FLOOR}
ROOM, ALICE = webex_id("ROOM"), webex_id("PEOPLE")


def send_frames(mercury: WebexMercury, owner: str, count: int, rate: float) -> list[str]:
    """Open loop: frame i is due at start + i/rate. Returns the frame ids."""
    frames: list[str] = []
    start = time.perf_counter() + 0.2
    for i in range(count):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        frames += mercury.message_created(webex_id("MESSAGE"), ROOM, ALICE, recipients=[owner])
    return frames


def latencies(mercury: WebexMercury, frames: list[str], timeout: float = 30.0) -> tuple[list[float], int]:
    """Seconds from send to ack per frame, and how many never got acknowledged."""
    mercury.wait_for(lambda: all(f in mercury.acked_at for f in frames), timeout)
    done = [f for f in frames if f in mercury.acked_at and f in mercury.sent_at]
    return [mercury.acked_at[f] - mercury.sent_at[f] for f in done], len(frames) - len(done)


def rollover_round(mercury: WebexMercury, count: int, rate: float) -> tuple[list[float], int]:
    recorded: dict[str, dict] = {}

    def record(resource: str, event_id: str, payload: dict) -> None:
        recorded.setdefault(f"{resource}:{event_id}", payload)

    client = MercuryClient("rollover-bench-token-0123456789", record, u2c_url=mercury.u2c_url).start()
    try:
        if not client.wait_connected(10):
            raise RuntimeError(f"the client did not connect: {client.status()}")
        return latencies(mercury, send_frames(mercury, ROLLOVER, count, rate))
    finally:
        client.stop()


def floor_round(mercury: WebexMercury, count: int, rate: float) -> tuple[list[float], int]:
    token = "floor-bench-token-0123456789"
    headers = {"Authorization": f"Bearer {token}"}
    wdm = requests.get(mercury.u2c_url, params={"format": "hostmap"}, headers=headers, timeout=10).json()
    wdm_url = wdm["serviceLinks"]["wdm"]
    devices = requests.get(f"{wdm_url}/devices", headers=headers, timeout=10).json()["devices"]
    device = devices[0] if devices else requests.post(f"{wdm_url}/devices", headers=headers, timeout=10, json={
        "name": "floor", "deviceType": "DESKTOP"}).json()
    stop = threading.Event()
    with connect(socket_url(device["webSocketUrl"]), proxy=None, ping_interval=None) as socket:
        socket.send(json.dumps({"id": str(uuid.uuid4()), "type": "authorization",
                                "data": {"token": f"Bearer {token}"}}))

        def listen() -> None:
            while not stop.is_set():
                try:
                    frame = json.loads(socket.recv(timeout=0.2))
                except TimeoutError:
                    continue
                except Exception:
                    return
                socket.send(json.dumps({"type": "ack", "messageId": frame["id"]}))

        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        try:
            return latencies(mercury, send_frames(mercury, FLOOR, count, rate))
        finally:
            stop.set()
            listener.join(5)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] if ordered else float("nan")


def median_round(rounds: list[tuple[float, float]]) -> tuple[float, float]:
    """The round with the median p99 (p50 from the same round)."""
    return sorted(rounds, key=lambda r: r[1])[len(rounds) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=50.0, help="frames per second")
    parser.add_argument("--count", type=int, default=500, help="frames per listener and round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the median round is reported")
    args = parser.parse_args()
    results: dict[str, list[tuple[float, float]]] = {"rollover": [], "floor": []}
    lost = 0
    with WebexMercury(TOKENS) as mercury:
        rollover_round(mercury, 50, args.rate)            # warm up: imports, device, catalog
        for _ in range(args.rounds):
            for name, run in (("rollover", rollover_round), ("floor", floor_round)):
                seconds, missing = run(mercury, args.count, args.rate)
                lost += missing
                results[name].append((percentile(seconds, 50) * 1000, percentile(seconds, 99) * 1000))
    (p50, p99), (floor_p50, floor_p99) = median_round(results["rollover"]), median_round(results["floor"])
    print(f"websocket_events: {args.count} frames x {args.rounds} rounds at {args.rate:.0f}/s, sent -> recorded "
          f"and acknowledged, median round: client p50 {p50:.2f} ms p99 {p99:.2f} ms | floor (bare recv + ack) "
          f"p50 {floor_p50:.2f} ms p99 {floor_p99:.2f} ms | p99 ratio {p99 / floor_p99:.2f} | lost {lost}")


if __name__ == "__main__":
    main()
