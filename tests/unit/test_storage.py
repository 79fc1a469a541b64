"""Storage: migrations, durable events, leases."""

import sqlite3

from rollover.storage import MIGRATIONS, Storage


def test_migrations_apply_once_and_enable_wal(tmp_path):
    storage = Storage(tmp_path / "db" / "rollover.sqlite3")
    assert storage.migrate() == [name for name, _ in MIGRATIONS]
    assert storage.migrate() == []
    assert Storage(storage.location).migrate() == []
    assert storage.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_redelivered_event_is_recorded_once(tmp_path):
    storage = Storage(tmp_path / "r.sqlite3")
    storage.migrate()
    assert storage.events.record("messages:M1", "messages", "created", {"data": {"id": "M1"}})
    assert not storage.events.record("messages:M1", "messages", "created", {"data": {"id": "M1"}})
    assert storage.events.count("pending") == 1


def test_a_claimed_event_is_not_given_to_a_second_worker_until_its_lease_ends(tmp_path):
    storage = Storage(tmp_path / "r.sqlite3")
    storage.migrate()
    storage.events.record("messages:M1", "messages", "created", {"data": {"id": "M1"}}, now=100)
    first = storage.events.claim("worker-a", lease_seconds=30, now=100)
    assert first.data_id == "M1" and first.attempts == 1
    assert storage.events.claim("worker-b", lease_seconds=30, now=110) is None
    again = storage.events.claim("worker-b", lease_seconds=30, now=131)   # worker-a died
    assert again.key == "messages:M1" and again.attempts == 2
    assert not storage.events.finish("messages:M1", "worker-a")           # lost its lease
    assert storage.events.finish("messages:M1", "worker-b")
    assert storage.events.claim("worker-c", lease_seconds=30, now=1000) is None


def test_a_retried_event_waits_until_it_is_due(tmp_path):
    storage = Storage(tmp_path / "r.sqlite3")
    storage.migrate()
    storage.events.record("messages:M1", "messages", "created", {"data": {"id": "M1"}}, now=100)
    event = storage.events.claim("w", lease_seconds=30, now=100)
    storage.events.retry_later(event.key, "w", available_at=200, error="429")
    assert storage.events.claim("w", lease_seconds=30, now=150) is None
    assert storage.events.claim("w", lease_seconds=30, now=200).attempts == 2


def test_each_thread_gets_its_own_connection(tmp_path):
    import threading
    storage = Storage(tmp_path / "r.sqlite3")
    storage.migrate()
    seen = []
    thread = threading.Thread(target=lambda: seen.append(storage.database.db.conn))
    thread.start()
    thread.join()
    assert seen[0] is not storage.database.db.conn
    assert isinstance(seen[0], sqlite3.Connection)
