"""Benchmark: deciding which reminders are due, for 10,000 and 100,000 tracked certificates in 1,000 spaces.

Seeds a fresh SQLite file (or, with ``--database``, a scratch schema of that PostgreSQL, dropped afterwards)
through ``Storage`` (``insert_rows``: executemany), with every space
subscribed (60,30,14,7,1 days, 09:00 UTC) and its slot open at the benchmark's ``now``:
certificates expire uniformly between 30 days ago and three years ahead; one in ten is an inactive
Entra certificate; one in ten of those already inside a threshold has had its reminder sent, one in
twenty is snoozed and one in twenty acknowledged. Then it measures ``reminders.decide`` (the decision
only: nothing is recorded or posted) — best of ``--repeat`` runs, and peak memory in a separate
tracemalloc run — at both sizes, and prints one line with the ratio (near 10 means linear) and the floor.

The floor is the simplest code making the core decision: one SQL SELECT of the rows inside the
reminder horizon (space, SHA-1, expiry) and a plain Python loop over the tuples computing the
smallest threshold reached — no snooze, acknowledgement, history or de-duplication.

    python bench/reminder_sweep.py [--spaces 1000] [--sizes 10000,100000] [--repeat 5] [--database postgresql://…]
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.parse_metadata import best_seconds, peak_mb  # noqa: E402
from rollover.reminders.sweep import DAY_SECONDS, decide  # noqa: E402
from rollover.settings import load_config  # noqa: E402
from rollover.storage import ReminderSubscription, Storage  # noqa: E402

NOW = datetime(2026, 3, 20, 9, 5, tzinfo=timezone.utc)
THRESHOLDS = (60, 30, 14, 7, 1)


def insert_rows(storage: Storage, sources: list[tuple], certificates: list[tuple]) -> None:
    """Bulk-insert sources (id, room_id, kind, location, label) and certificates (source_id, sha1, not_after,
    active) without reading any document: tracking them one by one would take longer than the measurement."""
    with storage.transaction():
        storage.db.executemany(
            "INSERT INTO sources (id, room_id, kind, location, label, added_by, added_at) "
            "VALUES (?, ?, ?, ?, ?, 'bench', 0)", sources)
        storage.db.executemany(
            "INSERT INTO tracked_certificates (source_id, sha1, sha256, entity_id, role, use, subject, "
            "not_before, not_after, active, details, first_seen, last_seen) "
            "VALUES (?, ?, '', '', 'idp', 'signing', 'CN=bench', 0, ?, ?, '{}', 0, 0)", certificates)


def seed(storage: Storage, spaces: int, certificates: int, rng: random.Random) -> None:
    now = NOW.timestamp()
    rooms = [f"room-{n:04d}" for n in range(spaces)]
    sources = [(n + 1, room, "file", f"bench-{n}.xml", f"bench source {n}") for n, room in enumerate(rooms)]
    rows, sent, marked = [], [], []
    for n in range(certificates):
        source_id = n % spaces + 1
        not_after = now + rng.uniform(-30, 3 * 365) * DAY_SECONDS
        active = 0 if n % 10 == 0 else None
        sha1 = f"{n:040X}"
        rows.append((source_id, sha1, not_after, active))
        if not_after < now + 61 * DAY_SECONDS and n % 10 == 1:
            sent.append((rooms[source_id - 1], sha1, "threshold", 60))
        if n % 20 in (2, 3):
            marked.append((rooms[source_id - 1], sha1, n % 20 == 2))
    insert_rows(storage, sources, rows)
    for room in rooms:
        storage.reminders.save_subscription(ReminderSubscription(room, True, THRESHOLDS, "09:00", "UTC", 0.0,
                                                                 "bench", 0.0))
    storage.reminders.plan(sent, {}, now)
    for room, sha1, snooze in marked:
        if snooze:
            storage.reminders.snooze(room, sha1, until=now + 3 * DAY_SECONDS, by="bench", card_message_id="m",
                                     event_key="bench", now=now)
        else:
            storage.reminders.acknowledge(room, sha1, by="bench", event_key="bench", now=now)


def floor(storage: Storage) -> int:
    """One SELECT of the rows inside the horizon, then a plain loop: the smallest threshold reached."""
    now = NOW.timestamp()
    rows = storage.db.execute(
        "SELECT s.room_id, c.sha1, c.not_after FROM tracked_certificates c JOIN sources s ON s.id = c.source_id "
        "WHERE c.present = 1 AND c.not_after < ?", [now + (THRESHOLDS[0] + 1) * DAY_SECONDS]).fetchall()
    due = 0
    for _room, _sha1, not_after in rows:
        days_left = (not_after - now) // DAY_SECONDS
        for threshold in reversed(THRESHOLDS):
            if days_left <= threshold:
                due += 1
                break
    return due


def measure(spaces: int, certificates: int, repeat: int, database: str | None = None) -> dict:
    config = load_config({})
    with tempfile.TemporaryDirectory(prefix="rollover-bench-") as folder, contextlib.ExitStack() as stack:
        location = str(Path(folder) / "bench.sqlite3")
        if database:
            from rollover.storage.postgresql import scratch_schema
            location = stack.enter_context(scratch_schema(database, "rollover_bench"))
        storage = Storage(location)
        stack.callback(storage.dispose)
        storage.migrate()
        seed(storage, spaces, certificates, random.Random(certificates))
        if storage.dialect == "sqlite":
            storage.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")   # measure reads of the database, not of the WAL
        else:
            storage.db.execute("ANALYZE")             # the statistics autovacuum would have gathered by now
        plan = decide(storage, config, NOW)
        assert len(plan.slots) == spaces, "every space's slot should be open"
        result = {"certificates": certificates, "due": len(plan.due),
                  "seconds": best_seconds(lambda: decide(storage, config, NOW), repeat),
                  "peak_mb": peak_mb(lambda: decide(storage, config, NOW)),
                  "floor_seconds": best_seconds(lambda: floor(storage), repeat),
                  "floor_peak_mb": peak_mb(lambda: floor(storage))}
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spaces", type=int, default=1000)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--database", metavar="URL", help="run on this PostgreSQL instead of an SQLite file")
    args = parser.parse_args(argv)
    small, large = (measure(args.spaces, int(size), args.repeat, args.database) for size in args.sizes.split(","))
    ratio = large["seconds"] / small["seconds"]
    store = "PostgreSQL" if args.database else "SQLite"
    print(f"reminder_sweep ({store}): decide over {args.spaces} spaces: {small['certificates']:,} certificates "
          f"{small['seconds'] * 1000:.1f} ms, peak {small['peak_mb']:.1f} MB ({small['due']:,} due) | "
          f"{large['certificates']:,} certificates {large['seconds'] * 1000:.1f} ms, peak {large['peak_mb']:.1f} MB "
          f"({large['due']:,} due) | ratio {ratio:.1f}x for 10x | floor (one SELECT + plain loop): "
          f"{small['floor_seconds'] * 1000:.1f} ms / {large['floor_seconds'] * 1000:.1f} ms, peak "
          f"{small['floor_peak_mb']:.1f} / {large['floor_peak_mb']:.1f} MB")


if __name__ == "__main__":
    main()
