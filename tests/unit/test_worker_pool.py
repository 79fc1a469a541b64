"""The worker's pool: several events at a time, one person's messages and a space's clicks in order, and slow
work moved out of the way of chat. The dispatcher is a stand-in that records and blocks on request."""

import threading

import pytest

from rollover.errors import Retryable
from rollover.pipeline.worker import Worker
from rollover.storage import Storage
from tests.support.processes import wait_until


class Dispatcher:
    """Records the order events start and end; an event whose id is in ``hold`` waits until released."""

    def __init__(self):
        self.started, self.finished = [], []
        self.hold: dict[str, threading.Event] = {}
        self.fail_once: set[str] = set()
        self.lock = threading.Lock()

    def handle(self, event, last_attempt=False):
        data_id = event.payload["data"]["id"]
        with self.lock:
            self.started.append(data_id)
        if data_id in self.hold:
            assert self.hold[data_id].wait(30), f"{data_id} was never released"
        if data_id in self.fail_once:
            self.fail_once.discard(data_id)
            raise Retryable("Webex is rate limiting", retry_after=0.05)
        with self.lock:
            self.finished.append(data_id)


@pytest.fixture
def storage(tmp_path):
    storage = Storage(tmp_path / "events.sqlite3")
    storage.migrate()
    return storage


def record(storage, data_id, *, room="R1", person="P1", resource="messages", now=None):
    storage.events.record(f"{resource}:{data_id}", resource, "created",
                         {"resource": resource, "data": {"id": data_id, "roomId": room, "personId": person}}, now=now)


def running(worker):
    stop = threading.Event()
    thread = threading.Thread(target=worker.run_forever, args=(stop,), daemon=True)
    thread.start()

    def halt():
        stop.set()
        worker.wake.set()
        thread.join(30)
        assert not thread.is_alive()
    return halt


def make_worker(storage, dispatcher, **kwargs):
    return Worker(storage, dispatcher, lease_seconds=30, max_attempts=5, poll_seconds=0.05, **kwargs)


def test_a_later_event_of_the_same_group_waits_for_the_earlier_one_also_during_its_retry(storage):
    record(storage, "click-1", resource="attachmentActions", person="alice", now=900.0)
    record(storage, "click-2", resource="attachmentActions", person="bob", now=900.0)   # same space: same group
    first = storage.events.claim("w1", 30, now=1000.0)
    assert first.key == "attachmentActions:click-1"
    assert storage.events.claim("w2", 30, now=1000.0) is None     # running: the second click waits
    storage.events.retry_later(first.key, "w1", available_at=2000.0, error="busy")
    assert storage.events.claim("w2", 30, now=1500.0) is None     # waiting for its retry: still first in line
    again = storage.events.claim("w1", 30, now=2000.0)
    assert again.key == first.key and again.attempts == 2
    assert storage.events.finish(first.key, "w1", now=2001.0)
    assert storage.events.claim("w2", 30, now=2001.0).key == "attachmentActions:click-2"


def test_groups_are_one_person_in_one_space_for_messages_and_the_space_for_clicks(storage):
    record(storage, "m1", person="alice")
    record(storage, "m2", person="alice")
    record(storage, "m3", person="bob")
    record(storage, "c1", resource="attachmentActions", person="alice")
    record(storage, "c2", resource="attachmentActions", person="bob")
    claimed = [storage.events.claim(f"w{i}", 30) for i in range(5)]
    assert [e.key if e else None for e in claimed] == ["messages:m1", "messages:m3", "attachmentActions:c1",
                                                      None, None]


def test_two_clicks_on_one_rotation_stay_in_order_when_the_first_is_retried(storage):
    dispatcher = Dispatcher()
    dispatcher.fail_once.add("click-1")                         # e.g. the rotation was busy for a moment
    record(storage, "click-1", resource="attachmentActions", person="alice")
    record(storage, "click-2", resource="attachmentActions", person="bob")
    worker = make_worker(storage, dispatcher, threads=4, slow_threads=4)
    halt = running(worker)
    try:
        assert wait_until(lambda: len(dispatcher.finished) == 2)
    finally:
        halt()
    assert dispatcher.started == ["click-1", "click-1", "click-2"]   # the retry of the first came before the second
    assert dispatcher.finished == ["click-1", "click-2"]


def test_events_of_different_groups_run_at_the_same_time(storage):
    dispatcher = Dispatcher()
    release = threading.Event()
    for n in range(3):
        dispatcher.hold[f"m{n}"] = release
        record(storage, f"m{n}", person=f"person-{n}")
    halt = running(make_worker(storage, dispatcher, threads=3, slow_threads=0))
    try:
        # All three started although none has finished: three threads, three groups.
        assert wait_until(lambda: len(dispatcher.started) == 3)
        assert dispatcher.finished == []
        release.set()
        assert wait_until(lambda: len(dispatcher.finished) == 3)
    finally:
        release.set()
        halt()


def test_slow_work_moves_to_the_slow_lane_and_chat_goes_on(storage):
    dispatcher = Dispatcher()
    release = threading.Event()
    dispatcher.hold["document"] = release                       # a document being read, for as long as we like
    record(storage, "document", person="alice")
    halt = running(make_worker(storage, dispatcher, threads=1, slow_threads=1))
    try:
        assert wait_until(lambda: dispatcher.started == ["document"])
        record(storage, "help", person="bob")
        # The only fast place is taken by the document, which turns slow: Bob's help is answered meanwhile.
        assert wait_until(lambda: dispatcher.finished == ["help"])
        assert not release.is_set()
    finally:
        release.set()
        halt()
    assert dispatcher.finished == ["help", "document"]


def test_when_both_lanes_are_full_the_next_event_waits_for_a_place(storage):
    dispatcher = Dispatcher()
    releases = {name: threading.Event() for name in ("doc-a", "doc-b")}
    dispatcher.hold.update(releases)
    record(storage, "doc-a", person="alice")
    record(storage, "doc-b", person="bob")
    halt = running(make_worker(storage, dispatcher, threads=1, slow_threads=1))
    try:
        assert wait_until(lambda: sorted(dispatcher.started) == ["doc-a", "doc-b"])
        record(storage, "help", person="carol")
        assert not wait_until(lambda: "help" in dispatcher.started, timeout=1.0)   # bounded: two at most
        releases["doc-a"].set()
        assert wait_until(lambda: "help" in dispatcher.finished)
    finally:
        for release in releases.values():
            release.set()
        halt()


def test_drain_handles_one_event_after_the_other_in_the_calling_thread(storage):
    dispatcher = Dispatcher()
    for n in range(3):
        record(storage, f"m{n}", person=f"person-{n % 2}")
    assert make_worker(storage, dispatcher, threads=4).drain() == 3
    assert dispatcher.finished == ["m0", "m1", "m2"]


def test_a_long_event_keeps_its_lease_while_it_runs(storage):
    dispatcher = Dispatcher()
    release = threading.Event()
    dispatcher.hold["slow"] = release
    record(storage, "slow")
    worker = Worker(storage, dispatcher, lease_seconds=0.3, max_attempts=5, poll_seconds=0.05, threads=2)
    halt = running(worker)
    try:
        assert wait_until(lambda: dispatcher.started == ["slow"])
        for _ in range(4):                                          # several leases long
            wait_until(lambda: False, timeout=0.3)
            assert storage.events.claim("another-worker", 0.3) is None
        release.set()
        assert wait_until(lambda: dispatcher.finished == ["slow"])
    finally:
        release.set()
        halt()
    assert storage.events.status("messages:slow") == {"status": "done", "attempts": 1, "last_error": None}


def test_the_lease_keeper_warns_only_when_another_worker_took_an_event_over(storage, caplog):
    """The keeper renews from a list taken a moment earlier: an event finished meanwhile is no lost lease."""
    worker = make_worker(storage, Dispatcher())
    record(storage, "finished", now=100.0)
    finished = storage.events.claim("w#1", 30, now=100.0)
    storage.events.finish(finished.key, "w#1", now=101.0)
    worker._renew(finished.key, "w#1")
    assert "lost the lease" not in caplog.text
    record(storage, "taken", now=100.0)
    taken = storage.events.claim("w#2", 30, now=100.0)
    assert storage.events.claim("another-worker", 30, now=200.0).key == taken.key   # w#2's lease ran out
    worker._renew(taken.key, "w#2")
    assert "lost the lease on event messages:taken to another worker" in caplog.text
