"""SocketEvents without a network: the record path and the lease rules of the websocket's holder."""

from __future__ import annotations

import sqlite3

import pytest

from rollover.pipeline.socket_events import SocketEvents, connection_status, lease_name
from rollover.storage import Storage

TOKEN = "bot-token-never-stored"


class FakeClient:
    def __init__(self, record):
        self.record, self.started, self.stopped = record, False, False

    def start(self):
        self.started = True
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.stopped = True

    def status(self):
        raise AssertionError("not asked in these tests")


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def storage(tmp_path):
    storage = Storage(tmp_path / "events.sqlite3")
    storage.migrate()
    return storage


def source(storage, clock, clients, wakes=None, owner="holder") -> SocketEvents:
    def factory(record):
        clients.append(FakeClient(record))
        return clients[-1]
    events = SocketEvents(storage, TOKEN, factory, lease_seconds=30.0, owner=owner, clock=clock,
                          wake=lambda: wakes.append(1) if wakes is not None else None)
    events._report = lambda now: None        # the fake client has no status to report
    return events


def test_record_commits_under_the_webhook_key_and_wakes_the_worker(storage):
    wakes: list[int] = []
    events = source(storage, Clock(), [], wakes)
    payload = {"resource": "messages", "event": "created", "actorId": "P", "data": {"id": "M1"}}
    events.record("messages", "M1", payload)
    events.record("messages", "M1", payload)           # the same frame again: SQLite's spool cannot tell, so the
    assert wakes == [1, 1]                             # worker is woken and the move drops the copy
    storage.events.admit_all()
    assert storage.db.execute("SELECT count(*) FROM events").fetchone() == (1,)
    assert Storage(storage.location).events.status("messages:M1")["status"] == "pending"   # seen by another process


def test_record_raises_when_the_database_refuses_so_the_frame_is_not_acknowledged(storage, monkeypatch):
    events = source(storage, Clock(), [])

    def locked(*args, **kwargs):
        raise sqlite3.OperationalError("database is locked")
    monkeypatch.setattr(storage.events, "record", locked)
    with pytest.raises(sqlite3.OperationalError):
        events.record("messages", "M1", {})


def test_a_holder_that_cannot_renew_closes_its_connection_before_its_lease_runs_out(storage, monkeypatch):
    clock, clients = Clock(), []
    holder = source(storage, clock, clients)
    assert holder.tick() and clients[0].started
    started = clock.now

    def unreachable(*args, **kwargs):
        raise sqlite3.OperationalError("disk I/O error")
    monkeypatch.setattr(storage.leases, "acquire", unreachable)
    clock.now = started + 20.0
    assert holder.tick() and not clients[0].stopped     # still its own lease: keeps the connection
    clock.now = started + 28.5                           # the next renewal would come after the lease ends
    assert not holder.tick() and clients[0].stopped and not holder.holding


def test_the_lease_is_named_by_a_hash_of_the_token_and_a_reader_sees_no_holder_without_a_report(storage):
    assert TOKEN not in lease_name(TOKEN) and lease_name(TOKEN) != lease_name(TOKEN + "x")
    status = connection_status(storage, TOKEN, lease_seconds=30.0, now=1_000_000.0)
    assert status == {"mode": "websocket", "state": "no holder", "last_report_at": None}
    storage.connections.report(lease_name(TOKEN), "holder", {"mode": "websocket", "state": "connected"}, 1_000_000.0)
    assert connection_status(storage, TOKEN, lease_seconds=30.0, now=1_000_010.0)["state"] == "connected"
    assert connection_status(storage, TOKEN, lease_seconds=30.0, now=1_000_040.0)["state"] == "no holder"
