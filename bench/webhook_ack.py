"""Benchmark: webhook acknowledgement latency under gunicorn, against the floor.

Sends N signed webhooks at a fixed rate (open loop: a request is sent on schedule
whether or not earlier ones have answered) to
  1. the real app (`bot:create_app()`: verify signature, record durably in SQLite, 200), and
  2. the floor: a bare Flask endpoint on the same gunicorn settings that only verifies the HMAC, and
  3. the same HMAC check as a plain WSGI callable: the app answers webhooks in plain WSGI, before Flask
     (rollover/webhook_endpoint.py), so this is the simplest code doing the floor's work the app's way.
The servers run side by side and are measured in short alternating rounds, in mirrored order (A B C,
C B A, ...), so a busy neighbour or a slow drift hits all alike; prints one line: p50/p99 of each over all
its rounds together, and the app's p99 ratio to each floor (target <= 1.3 to the HMAC-only Flask floor at
200 req/s on 2 cores).

    python bench/webhook_ack.py [--rate 200] [--count 100] [--rounds 50] [--database postgresql://…]

With ``--database`` the app is measured a second time on that PostgreSQL (in a schema of its own, dropped
afterwards), beside SQLite and the floor; the line names the server's durability settings, since an ack
waits for the commit (``python -m tests.support.postgres run -- …`` gives a throwaway server, fsync off).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rollover.pipeline.webhooks import signature_for  # noqa: E402
from tests.support.processes import start_gunicorn  # noqa: E402

SECRET = "bench-secret-0123456789"
GUNICORN_ARGS = ["--workers", "2", "--threads", "4", "--log-level", "warning"]   # as in the Procfile


def bodies(count: int, tag: str) -> list[bytes]:
    return [json.dumps({"id": "WH1", "name": "rollover", "resource": "messages", "event": "created",
                        "actorId": "P1", "data": {"id": f"{tag}-{i}", "roomId": "R1", "personId": "P1"}}).encode()
            for i in range(count)]


def measure(port: int, payloads: list[bytes], rate: float, senders: int = 16) -> list[float]:
    """Open-loop load: request i is due at start + i/rate; latency is measured from its send. Each sender's
    connection is opened before the round starts and kept through it: a round times requests, not TCP
    handshakes (a round is shorter than gunicorn's 2 s keep-alive, so none finds its connection closed)."""
    latencies: list[float] = [0.0] * len(payloads)
    connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(senders)]
    for connection in connections:
        connection.connect()
    start = time.perf_counter() + 0.05

    def sender(offset: int) -> None:
        connection = connections[offset]
        for i in range(offset, len(payloads), senders):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            body = payloads[i]
            sent = time.perf_counter()
            connection.request("POST", "/webhooks/webex", body=body, headers={
                "Content-Type": "application/json", "X-Spark-Signature": signature_for(SECRET, body)})
            response = connection.getresponse()
            response.read()
            latencies[i] = time.perf_counter() - sent
            if response.status != 200:
                raise RuntimeError(f"unexpected status {response.status}")
        connection.close()

    threads = [threading.Thread(target=sender, args=(k,)) for k in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second")
    parser.add_argument("--count", type=int, default=100, help="requests per server and round")
    parser.add_argument("--rounds", type=int, default=50, help="alternating rounds, pooled")
    parser.add_argument("--database", metavar="URL", help="also measure the app on this PostgreSQL")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, contextlib.ExitStack() as stack:
        app_env = {"ROLLOVER_WEBHOOK_SECRET": SECRET, "ROLLOVER_DATABASE": f"{folder}/bench.sqlite3"}
        servers = {"app": start_gunicorn("bot:create_app()", app_env, GUNICORN_ARGS)}
        if args.database:
            from rollover.storage.postgresql import scratch_schema
            url = stack.enter_context(scratch_schema(args.database, "rollover_bench"))
            servers["postgresql"] = start_gunicorn("bot:create_app()", {**app_env, "ROLLOVER_DATABASE": url},
                                                   GUNICORN_ARGS)
        servers["floor"] = start_gunicorn("bench.floor_app:create_floor_app()", {"FLOOR_SECRET": SECRET}, GUNICORN_ARGS)
        servers["wsgi floor"] = start_gunicorn("bench.floor_app:create_wsgi_floor_app()", {"FLOOR_SECRET": SECRET},
                                              GUNICORN_ARGS)
        try:
            results: dict[str, list[float]] = {name: [] for name in servers}
            for name, (_, port) in servers.items():
                measure(port, bodies(200, f"warm-{name}"), args.rate)      # imports, connections, caches
            # Alternate the servers round by round, in mirrored order (A B C, C B A, ...), so a noisy neighbour or a
            # slow drift hits all alike; each server's rounds are pooled for its p50 and p99.
            for round_number in range(args.rounds):
                order = list(servers.items())
                for name, (_, port) in order if round_number % 2 == 0 else reversed(order):
                    results[name] += measure(port, bodies(args.count, f"{name}-{round_number}"), args.rate)
        finally:
            for process, _ in servers.values():
                process.terminate()
                process.wait(timeout=10)
    (app_p50, app_p99), (floor_p50, floor_p99) = summary(results["app"]), summary(results["floor"])
    wsgi_p50, wsgi_p99 = summary(results["wsgi floor"])
    postgres = ""
    if "postgresql" in results:
        pg_p50, pg_p99 = summary(results["postgresql"])
        postgres = (f"app on PostgreSQL ({durability(args.database)}) p50 {pg_p50:.2f} ms p99 {pg_p99:.2f} ms, "
                    f"p99 ratio {pg_p99 / floor_p99:.2f} | ")
    total = args.count * args.rounds
    print(f"webhook_ack: {total} webhooks per server in {args.rounds} alternating rounds at {args.rate:.0f}/s under "
          f"gunicorn (2 workers x 4 threads): app on SQLite p50 {app_p50:.2f} ms p99 {app_p99:.2f} ms | "
          f"{postgres}floor (HMAC-only Flask) p50 {floor_p50:.2f} ms p99 {floor_p99:.2f} ms | "
          f"plain-WSGI HMAC p50 {wsgi_p50:.2f} ms p99 {wsgi_p99:.2f} ms, the app's p99 ratio to it "
          f"{app_p99 / wsgi_p99:.2f} | "
          f"p99 ratio {app_p99 / floor_p99:.2f} (target <= 1.3)")


def summary(latencies: list[float]) -> tuple[float, float]:
    """p50 and p99 in ms of every round's requests together."""
    return percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000


def durability(url: str) -> str:
    """The server settings an acknowledgement's commit waits for."""
    import psycopg
    with psycopg.connect(url) as connection:
        return ", ".join(f"{name}={connection.execute(f'SHOW {name}').fetchone()[0]}"
                         for name in ("fsync", "synchronous_commit"))


if __name__ == "__main__":
    main()
