"""Storage on both stores (``store``: SQLite and PostgreSQL): migrations, durable events, leases, claims,
compare-and-set, the audit entry in the change's transaction."""

import sqlite3
import threading
import time

import pytest

from rollover.storage import MIGRATIONS, RotationChange, Storage


def test_migrations_apply_once(store):
    storage = Storage(store)
    assert storage.migrate() == [name for name, _ in MIGRATIONS]
    assert storage.migrate() == []
    again = Storage(storage.location)
    assert again.migrate() == []
    assert storage.db.execute("SELECT count(*) FROM migrations").fetchone() == (len(MIGRATIONS),)
    again.dispose(), storage.dispose()


def test_sqlite_runs_in_wal_mode(tmp_path):
    storage = Storage(tmp_path / "db" / "rollover.sqlite3")
    storage.migrate()
    assert storage.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_redelivered_event_is_recorded_once(storage):
    assert storage.events.record("messages:M1", "messages", "created", {"data": {"id": "M1"}})
    again = storage.events.record("messages:M1", "messages", "created", {"data": {"id": "M1"}})
    assert again is (storage.dialect == "sqlite")      # SQLite's spool cannot look a key up; PostgreSQL's inbox can
    storage.events.admit_all()                          # either way the move keeps one
    assert storage.events.count("pending") == 1
    assert storage.events.backlog(now=10**10)["pending"] == 1 and storage.events.backlog(now=10**10)["failed"] == 0


def test_a_claimed_event_is_not_given_to_a_second_worker_until_its_lease_ends(storage):
    storage.events.record("messages:M1", "messages", "created", {"data": {"id": "M1"}}, now=100)
    first = storage.events.claim("worker-a", lease_seconds=30, now=100)
    assert first.data_id == "M1" and first.attempts == 1
    assert storage.events.claim("worker-b", lease_seconds=30, now=110) is None
    again = storage.events.claim("worker-b", lease_seconds=30, now=131)   # worker-a died
    assert again.key == "messages:M1" and again.attempts == 2
    assert not storage.events.finish("messages:M1", "worker-a")           # lost its lease
    assert storage.events.finish("messages:M1", "worker-b")
    assert storage.events.claim("worker-c", lease_seconds=30, now=1000) is None


def test_a_retried_event_waits_until_it_is_due(storage):
    storage.events.record("messages:M1", "messages", "created", {"data": {"id": "M1"}}, now=100)
    event = storage.events.claim("w", lease_seconds=30, now=100)
    storage.events.retry_later(event.key, "w", available_at=200, error="429")
    assert storage.events.claim("w", lease_seconds=30, now=150) is None
    assert storage.events.claim("w", lease_seconds=30, now=200).attempts == 2


def test_workers_claiming_at_once_never_take_the_same_event(storage):
    """Four threads (each its own connection) drain 200 events: each is claimed exactly once. On PostgreSQL
    that is SKIP LOCKED's work: under READ COMMITTED a plain sub-select hands one row to several."""
    for n in range(200):
        storage.events.record(f"messages:M{n}", "messages", "created", {"data": {"id": f"M{n}"}}, now=100)
    claimed: list[list[str]] = [[] for _ in range(4)]
    start = threading.Barrier(4)

    def drain(mine: list[str]) -> None:
        start.wait()
        while (event := storage.events.claim(f"w{id(mine)}", lease_seconds=300, now=100)) is not None:
            mine.append(event.key)
        storage.close()
    threads = [threading.Thread(target=drain, args=(mine,)) for mine in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    every = [key for mine in claimed for key in mine]
    assert sorted(every) == sorted(f"messages:M{n}" for n in range(200))       # none twice, none missed
    assert storage.db.execute("SELECT max(attempts) FROM events").fetchone() == (1,)


def record(storage, n, room="R1", person="P1", now=100.0) -> bool:
    return storage.events.record(f"messages:M{n}", "messages", "created",
                                 {"data": {"id": f"M{n}", "roomId": room, "personId": person}}, now=now)


def test_an_acknowledged_delivery_waits_in_the_inbox_and_counts_as_pending(storage):
    record(storage, 1, now=100)
    assert storage.db.execute("SELECT count(*) FROM events").fetchone() == (0,)     # the ack wrote the inbox only
    assert storage.events.status("messages:M1") == {"status": "pending", "attempts": 0, "last_error": None}
    assert storage.events.count("pending") == 1 and storage.events.count("done") == 0
    assert storage.events.backlog(now=130) == {"pending": 1, "failed": 0, "oldest_pending_seconds": 30}
    assert storage.events.admit_received() == 1 and storage.events.admit_received() == 0
    assert storage.events.backlog(now=130) == {"pending": 1, "failed": 0, "oldest_pending_seconds": 30}
    assert record(storage, 1) is (storage.dialect == "sqlite")   # a redelivery after the move: a duplicate
    event = storage.events.claim("w", lease_seconds=30, now=130)
    storage.events.finish(event.key, "w", now=131)
    assert record(storage, 1) is (storage.dialect == "sqlite")   # ... also after the event was handled
    assert storage.events.claim("w", lease_seconds=30, now=132) is None    # the move dropped both
    assert storage.events.count("pending") == 0 and storage.events.status("messages:M1")["status"] == "done"


def test_a_second_copy_that_reached_the_inbox_is_dropped_by_the_move(storage):
    """On PostgreSQL a redelivery can pass the ack's check while the first copy is being moved: the move is the
    guard that keeps a key in ``events`` once."""
    record(storage, 1)
    storage.events.admit_received()
    storage.db.execute("INSERT INTO event_inbox (key, resource, event, payload, order_key, received_at) "
                       "VALUES ('messages:M1', 'messages', 'created', '{}', NULL, 101)")
    assert storage.events.admit_received() == 1
    assert storage.db.execute("SELECT count(*) FROM events").fetchone() == (1,)
    assert storage.db.execute("SELECT count(*) FROM event_inbox").fetchone() == (0,)


def test_a_backlog_is_moved_in_batches_in_the_order_it_came(storage, monkeypatch):
    from rollover.storage import events
    monkeypatch.setattr(events, "ADMIT_BATCH", 3)
    for n in range(8):
        record(storage, n, room=f"R{n % 2}", now=100 + n)
    batches, admit = [], storage.events.admit_received
    monkeypatch.setattr(storage.events, "admit_received", lambda: batches.append(admit()) or batches[-1])
    assert storage.events.claim("w", lease_seconds=30, now=200).key == "messages:M0"
    assert batches == [3, 3, 2]
    moved = [row[0] for row in storage.db.execute("SELECT key FROM events ORDER BY seq")]
    assert moved == [f"messages:M{n}" for n in range(8)]
    assert storage.db.execute("SELECT count(*) FROM event_inbox").fetchone() == (0,)


def test_recording_while_workers_move_and_claim_loses_nothing_and_keeps_each_group_in_order(storage):
    """Two threads record a group's deliveries one after another (as Webex sends one space's clicks) while
    three workers move, claim and finish: every delivery is handled once, each group in the order it came."""
    per_group, groups = 60, ("R1", "R2")
    recorded = threading.Event()
    handled: list[str] = []
    lock = threading.Lock()

    def sender(room: str) -> None:
        for n in range(per_group):
            record(storage, f"{room}-{n}", room=room)
        storage.close()

    def worker(name: str) -> None:
        while True:
            event = storage.events.claim(name, lease_seconds=300, now=100)
            if event is None:
                if recorded.is_set() and storage.events.count("pending") == 0:
                    break
                time.sleep(0.001)   # nothing ready: let the senders and the other workers run
                continue
            with lock:
                handled.append(event.key)
            assert storage.events.finish(event.key, name, now=100)
        storage.close()
    senders = [threading.Thread(target=sender, args=(room,)) for room in groups]
    workers = [threading.Thread(target=worker, args=(f"w{k}",)) for k in range(3)]
    for thread in senders + workers:
        thread.start()
    for thread in senders:
        thread.join(60)
    recorded.set()
    for thread in workers:
        thread.join(60)
    assert sorted(handled) == sorted(f"messages:M{room}-{n}" for room in groups for n in range(per_group))
    for room in groups:   # a group's next event is claimable only once the one before it finished
        assert [key for key in handled if key.startswith(f"messages:M{room}-")] == \
            [f"messages:M{room}-{n}" for n in range(per_group)]


def test_a_reminder_claim_is_exclusive_until_it_runs_out(storage):
    storage.reminders.plan([("room", "AB", "threshold", 30)], {}, now=100)
    first = storage.reminders.claim("a", now=100, wall_now=1000, claim_seconds=60)
    assert first is not None and first.attempts == 1
    assert storage.reminders.claim("b", now=100, wall_now=1030, claim_seconds=60) is None
    taken_over = storage.reminders.claim("b", now=100, wall_now=1061, claim_seconds=60)   # "a" crashed
    assert taken_over.id == first.id and taken_over.attempts == 2
    assert not storage.reminders.finish(first.id, "a", "sent", now=1062, message_id="M")
    assert storage.reminders.finish(first.id, "b", "sent", now=1062, message_id="M")
    assert [r["status"] for r in storage.reminders.all()] == ["sent"]


def new_rotation(storage, app_key="sp-1") -> int | None:
    return storage.rotations.create(kind="entra-signing", app_key=app_key, app_name="App", room_id="room",
                                    requested_by="alice@example.com", marker=f"m-{app_key}",
                                    state="awaiting-create-approval", plan={}, data={}, deadline=None,
                                    event_key="e1", now=100.0)


def change(state: str, now: float = 200.0) -> RotationChange:
    return RotationChange(state=state, data={"at": now}, deadline=None, finished=False, event_key="e2", now=now)


def test_one_open_rotation_per_app_and_compare_and_set_on_its_version(storage):
    rotation_id = new_rotation(storage)
    assert rotation_id is not None and new_rotation(storage) is None     # the app has an open rotation
    assert storage.rotations.change(rotation_id, 1, change("creating"), lease_owner="a", lease_until=10**10,
                                    now=1000)
    # An older card (version 1) changes nothing; another thread's live lease keeps "b" out.
    assert not storage.rotations.change(rotation_id, 1, change("cancelled"), lease_owner="a", lease_until=10**10,
                                        now=1000)
    assert not storage.rotations.change(rotation_id, 2, change("cancelled"), lease_owner="b", lease_until=10**10,
                                        now=1000)
    record = storage.rotations.get(rotation_id)
    assert (record.state, record.version, record.state_version, record.data) == ("creating", 2, 2, {"at": 200.0})


def test_an_approval_is_counted_once_per_person(storage):
    rotation_id = new_rotation(storage)
    pending, approved = change("awaiting-create-approval"), change("creating")
    pending = RotationChange(**{**pending.__dict__, "state_changed": False})
    kwargs = dict(required=2, approved=approved, pending=pending, lease_owner="a", lease_until=10**10, now=1000)
    assert storage.rotations.approve(rotation_id, 1, "bob@example.com", **kwargs) == 1
    assert storage.rotations.approve(rotation_id, 2, "bob@example.com", **kwargs) is None   # bob again: nothing
    assert storage.rotations.get(rotation_id).version == 2
    assert storage.rotations.approve(rotation_id, 2, "carol@example.com", **kwargs) == 2
    assert storage.rotations.get(rotation_id).state == "creating"


def test_a_change_and_its_audit_entry_commit_together_or_not_at_all(storage):
    rotation_id = new_rotation(storage)
    with pytest.raises(RuntimeError):
        with storage.transaction():
            storage.rotations.change(rotation_id, 1, change("creating"), lease_owner="a", lease_until=10**10,
                                     now=1000)
            storage.audit.append(at=1.0, room_id="room", rotation_id=rotation_id, app="App", actor="a",
                                 action="approved", detail="", before=None, after=None, requests=[])
            raise RuntimeError("the process failed between the two")
    assert storage.rotations.get(rotation_id).version == 1 and storage.audit.entries() == []
    with storage.transaction():
        storage.rotations.change(rotation_id, 1, change("creating"), lease_owner="a", lease_until=10**10, now=1000)
        storage.audit.append(at=1.0, room_id="room", rotation_id=rotation_id, app="App", actor="a",
                             action="approved", detail="", before=None, after=None, requests=[])
    assert storage.rotations.get(rotation_id).version == 2 and len(storage.audit.entries()) == 1


def test_the_audit_log_refuses_updates_and_deletes(storage):
    storage.audit.append(at=1.0, room_id="room", rotation_id=None, app="", actor="a", action="refused",
                         detail="d", before=None, after=None, requests=[])
    for statement in ("UPDATE audit_log SET actor = 'mallory'", "DELETE FROM audit_log"):
        with pytest.raises(Exception, match="append-only"):
            storage.db.execute(statement)
    assert [e.actor for e in storage.audit.entries()] == ["a"]


def test_the_store_is_named_without_its_password(store):
    storage = Storage(store)
    described = storage.describe()
    assert described.startswith("PostgreSQL " if store.startswith("postgresql://") else "SQLite ")
    if store.startswith("postgresql://"):
        with_password = store.replace("postgresql://rollover@", "postgresql://rollover:s3cret@")
        assert "s3cret" not in Storage(with_password).describe()
        assert described.endswith(store.rsplit("/", 1)[1])
    storage.dispose()


def test_each_thread_gets_its_own_sqlite_connection(tmp_path):
    storage = Storage(tmp_path / "r.sqlite3")
    storage.migrate()
    seen = []
    thread = threading.Thread(target=lambda: seen.append(storage.database.db.conn))
    thread.start()
    thread.join()
    assert seen[0] is not storage.database.db.conn
    assert isinstance(seen[0], sqlite3.Connection)
