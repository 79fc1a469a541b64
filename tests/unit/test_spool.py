"""The acknowledgement spool of an SQLite store (``rollover.storage.spool``): records cut short, damaged or
still being written; emptying, a crash inside it, a read racing it; a replaced file; appenders in several
processes and one killed while appending."""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import zlib
from pathlib import Path

import pytest

from rollover.storage import Storage, events
from rollover.storage import spool as spool_module
from rollover.storage.spool import RS, Spool, SpooledEvent, encode, parse, spool_path

ROOT = Path(__file__).resolve().parents[2]


def event(n: int, room: str = "R1", received_at: float = 100.0) -> SpooledEvent:
    return SpooledEvent(f"messages:M{n}", "messages", "created", {"data": {"id": f"M{n}"}}, f"{room} P1", received_at)


@pytest.fixture
def storage(tmp_path):
    storage = Storage(tmp_path / "rollover.sqlite3")
    storage.migrate()
    yield storage
    storage.dispose()


def keys(storage: Storage) -> list[str]:
    return [row[0] for row in storage.db.execute("SELECT key FROM events ORDER BY seq")]


def record(storage: Storage, n: int, now: float = 100.0) -> None:
    assert storage.events.record(f"messages:M{n}", "messages", "created",
                                 {"data": {"id": f"M{n}", "roomId": "R1", "personId": "P1"}}, now=now)


# --- the format ----------------------------------------------------------------------------------------

def test_whole_records_are_read_and_one_still_being_written_is_left_for_later():
    data = encode(event(1)) + encode(event(2)) + encode(event(3))[:-1]
    read = parse(data, limit=None)
    assert [e.key for e in read.events] == ["messages:M1", "messages:M2"] and read.skipped == 0
    assert read.end == len(encode(event(1)) + encode(event(2)))   # the third is read again once whole


def test_a_record_cut_short_is_skipped_and_the_next_one_read():
    cut = encode(event(1))[:20]                    # its process was killed inside the write
    read = parse(cut + encode(event(2)), limit=None)
    assert [e.key for e in read.events] == ["messages:M2"] and read.skipped == 1


def test_damaged_records_and_stray_bytes_are_skipped_never_raised():
    good = encode(event(1))
    flipped = good.replace(b"M1", b"M9")           # fails its checksum
    wrong_shape = b'["k","messages","created","not a dict",null,1.0]'
    shapes = [RS + b"zz {}\n", RS + b"00000000 \n", RS + b"%08x %b\n" % (zlib.crc32(wrong_shape), wrong_shape),
              RS + b"\n", b"stray bytes"]
    data = flipped + b"".join(shapes[:-1]) + good + shapes[-1]
    read = parse(data, limit=None)
    assert [e.key for e in read.events] == ["messages:M1"] and read.skipped == 6 and read.end == len(data)


def test_the_reading_limit_stops_after_that_many_records():
    data = b"".join(encode(event(n)) for n in range(5))
    read = parse(data, limit=2)
    assert [e.key for e in read.events] == ["messages:M0", "messages:M1"]
    assert parse(data[read.end:], limit=None).events[0].key == "messages:M2"


def test_parsing_is_linear_in_the_input():
    """Many records cut short (each byte is looked at a bounded number of times): 50,000 take well under the
    time a quadratic scan of them would (it would look at ~10^10 bytes)."""
    data = (RS + b"12345678 [") * 50_000 + encode(event(1))
    read = parse(data, limit=None)
    assert [e.key for e in read.events] == ["messages:M1"] and read.skipped == 50_000


def test_a_record_larger_than_one_read_is_read_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(spool_module, "READ_BYTES", 64)
    spool = Spool(tmp_path / "s")
    big = SpooledEvent("messages:big", "messages", "created", {"text": "x" * 500}, None, 1.0)
    spool.append(big)
    spool.append(event(2))
    read = spool.read(0, limit=10)
    assert [e.key for e in read.events] == ["messages:big", "messages:M2"]


# --- the store ---------------------------------------------------------------------------------------------

def test_an_sqlite_store_acknowledges_into_its_spool_beside_the_database(storage):
    record(storage, 1)
    path = spool_path(storage.db.path)
    assert path.exists() and oct(path.stat().st_mode & 0o777) == "0o600"
    assert keys(storage) == [] and storage.events.count("pending") == 1
    assert storage.events.admit_received() == 1 and keys(storage) == ["messages:M1"]
    assert storage.events.admit_received() == 0 and storage.events.count("pending") == 1


def test_a_redelivery_is_spooled_again_and_dropped_by_the_move(storage):
    record(storage, 1)
    storage.events.admit_all()
    record(storage, 1)                              # the spool cannot tell a redelivery: the move does
    storage.events.admit_all()
    assert keys(storage) == ["messages:M1"] and storage.events.count("pending") == 1


def test_the_spool_is_emptied_once_read_through_and_later_records_are_read(storage, monkeypatch):
    monkeypatch.setattr(events, "EMPTY_AFTER_BYTES", 2000)
    for n in range(20):
        record(storage, n)
    storage.events.admit_all()
    assert spool_path(storage.db.path).stat().st_size == 0
    assert storage.db.execute("SELECT read_to FROM event_spool").fetchone() == (0,)
    for n in range(20, 25):
        record(storage, n)
    storage.events.admit_all()
    assert keys(storage) == [f"messages:M{n}" for n in range(25)]


def test_a_crash_between_emptying_s_commit_and_its_truncation_loses_and_repeats_nothing(storage, monkeypatch):
    monkeypatch.setattr(events, "EMPTY_AFTER_BYTES", 500)
    for n in range(5):
        record(storage, n)

    def crash(fd, length):
        raise KeyboardInterrupt("killed")          # the process dies after committing offset 0
    monkeypatch.setattr(events.os, "ftruncate", crash)
    with pytest.raises(KeyboardInterrupt):
        storage.events.admit_all()
    monkeypatch.undo()
    for n in range(5, 8):
        record(storage, n)
    storage.events.admit_all()                      # reads the file again from its start: the first five drop
    assert keys(storage) == [f"messages:M{n}" for n in range(8)]


def test_a_read_waits_for_an_emptying_between_its_commit_and_its_truncation(storage, monkeypatch):
    """Without the readers' shared lock, a worker reading in that window takes the old file's end as its
    position, and the records appended after the truncation, up to that length, are never read."""
    monkeypatch.setattr(events, "EMPTY_AFTER_BYTES", 500)
    for n in range(5):
        record(storage, n)
    other = Storage(storage.db.path)
    truncate, racing = os.ftruncate, []

    def slow_truncate(fd, length):
        # The five records are the read's limit, so the other worker does not go on to empty the file itself.
        racing.append(threading.Thread(target=other.events.admit_received, args=(5,)))
        racing[0].start()
        time.sleep(0.3)
        assert racing[0].is_alive()                 # the other worker waits for the file
        truncate(fd, length)
    monkeypatch.setattr(events.os, "ftruncate", slow_truncate)
    storage.events.admit_all()
    monkeypatch.undo()
    racing[0].join(10)
    for n in range(5, 12):
        record(storage, n)
    storage.events.admit_all()
    assert keys(storage) == [f"messages:M{n}" for n in range(12)]
    other.dispose()


def test_a_spool_replaced_under_the_store_is_read_from_its_start(storage):
    for n in range(3):
        record(storage, n)
    storage.events.admit_all()
    path = spool_path(storage.db.path)
    storage.events.close()
    path.unlink()                                   # restored from a backup, or recreated by hand
    for n in range(3, 5):
        record(storage, n)
    storage.events.admit_all()
    assert keys(storage) == [f"messages:M{n}" for n in range(5)]


def test_a_spooled_delivery_has_a_status_and_an_age(storage):
    record(storage, 1, now=100)
    assert storage.events.status("messages:M1") == {"status": "pending", "attempts": 0, "last_error": None}
    assert storage.events.status("messages:M2") is None
    assert storage.events.backlog(now=130) == {"pending": 1, "failed": 0, "oldest_pending_seconds": 30}


APPENDER = textwrap.dedent("""
    import sys, time
    from rollover.storage.spool import Spool, SpooledEvent
    spool, name = Spool(__import__("pathlib").Path(sys.argv[1])), sys.argv[2]
    for n in range(int(sys.argv[3])):
        spool.append(SpooledEvent(f"messages:{name}-{n}", "messages", "created", {"x": "y" * 300}, name,
                                  time.time()))
        print(n, flush=True)        # acknowledged: the append returned
""")


def appender(path: Path, name: str, count: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", APPENDER, str(path), name, str(count)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_appenders_in_several_processes_write_whole_records_each_in_its_order(storage):
    path = spool_path(storage.db.path)
    processes = [appender(path, name, 400) for name in ("a", "b", "c")]
    for process in processes:
        process.communicate(timeout=60)
    read = Spool(path).read(0, limit=None)
    assert read.skipped == 0 and len(read.events) == 1200
    for name in ("a", "b", "c"):
        assert [e.key for e in read.events if e.order_key == name] == [f"messages:{name}-{n}" for n in range(400)]


def test_every_record_acknowledged_before_a_kill_is_handled(storage):
    path = spool_path(storage.db.path)
    process = appender(path, "k", 1_000_000)
    acknowledged = [process.stdout.readline() for _ in range(300)]
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    last = int(acknowledged[-1])
    storage.events.admit_all()
    stored = set(keys(storage))
    assert {f"messages:k-{n}" for n in range(last + 1)} <= stored
