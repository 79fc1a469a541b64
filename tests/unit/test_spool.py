"""The acknowledgement spool of an SQLite store (``rollover.storage.spool``): records cut short, damaged or
still being written; emptying, a crash inside it, a read racing it; a replaced file; appenders in several
processes and one killed while appending."""

import os
import signal
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import pytest

from rollover.storage import Storage
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
    read, end = parse(data, limit=None)
    assert [e.key for e in read.events] == ["messages:M1", "messages:M2"] and read.skipped == 0
    assert end == len(encode(event(1)) + encode(event(2)))   # the third is read again once whole


def test_a_record_cut_short_is_skipped_and_the_next_one_read():
    cut = encode(event(1))[:20]                    # its process was killed inside the write
    read, _ = parse(cut + encode(event(2)), limit=None)
    assert [e.key for e in read.events] == ["messages:M2"] and read.skipped == 1


def test_damaged_records_and_stray_bytes_are_skipped_never_raised():
    good = encode(event(1))
    flipped = good.replace(b"M1", b"M9")           # fails its checksum
    wrong_shape = b'["k","messages","created","not a dict",null,1.0]'
    shapes = [RS + b"{} zz\n", RS + b" 00000000\n", RS + b"%b %08x\n" % (wrong_shape, zlib.crc32(wrong_shape)),
              RS + b"\n", RS + b"[] 0\n", b"stray bytes"]
    data = flipped + b"".join(shapes[:-1]) + good + shapes[-1]
    read, end = parse(data, limit=None)
    assert [e.key for e in read.events] == ["messages:M1"] and read.skipped == 7 and end == len(data)


def test_the_reading_limit_stops_after_that_many_records():
    data = b"".join(encode(event(n)) for n in range(5))
    read, end = parse(data, limit=2)
    assert [e.key for e in read.events] == ["messages:M0", "messages:M1"]
    assert parse(data[end:], limit=None)[0].events[0].key == "messages:M2"


class CountingBytes(bytes):
    """Counts the bytes each ``find`` looks at."""
    looked_at = 0

    def find(self, sub, start=0, end=None):
        stop = len(self) if end is None else end
        found = super().find(sub, start, stop)
        CountingBytes.looked_at += (found + 1 if found >= 0 else stop) - start
        return found


@pytest.mark.parametrize("shape", ["cut records", "no line end", "stray bytes between records"])
def test_parsing_looks_at_each_byte_a_bounded_number_of_times(shape):
    """Records cut short before one line end far away: a parse that looked for the line end again from each
    record would look at ~n^2/2 bytes."""
    data = {"cut records": (RS + b"[1, 2") * 20_000 + encode(event(1)),
            "no line end": (RS + b"[1, 2") * 20_000,
            "stray bytes between records": (b"x" * 50 + encode(event(1))) * 2_000}[shape]
    CountingBytes.looked_at = 0
    parse(CountingBytes(data), limit=None)
    assert CountingBytes.looked_at <= 3 * len(data)


def test_a_record_larger_than_one_read_is_read_whole(tmp_path, monkeypatch):
    monkeypatch.setattr(spool_module, "READ_BYTES", 64)
    spool = Spool(tmp_path / "s")
    big = SpooledEvent("messages:big", "messages", "created", {"text": "x" * 500}, None, 1.0)
    spool.append(big)
    spool.append(event(2))
    with spool.reading() as file:
        assert [e.key for e in file.read(0, limit=10).events] == ["messages:big", "messages:M2"]


# --- the store ---------------------------------------------------------------------------------------------

def test_an_sqlite_store_acknowledges_into_its_spool_beside_the_database(storage):
    os.chmod(storage.db.path, 0o640)                # the spool takes the database file's permissions, as -wal does
    record(storage, 1)
    path = spool_path(storage.db.path)
    assert path.exists() and oct(path.stat().st_mode & 0o777) == "0o640"
    assert keys(storage) == [] and storage.events.count("pending") == 1
    assert storage.events.admit_received() == 1 and keys(storage) == ["messages:M1"]
    assert storage.events.admit_received() == 0 and storage.events.count("pending") == 1


def test_a_redelivery_is_spooled_again_and_dropped_by_the_move(storage):
    record(storage, 1)
    storage.events.admit_all()
    record(storage, 1)                              # the spool cannot tell a redelivery: the move does
    storage.events.admit_all()
    assert keys(storage) == ["messages:M1"] and storage.events.count("pending") == 1


def stored_position(storage: Storage) -> int:
    return storage.db.execute("SELECT read_to FROM event_spool").fetchone()[0]


def test_the_spool_is_emptied_once_read_through_and_records_written_after_are_read(storage, monkeypatch):
    """Emptying commits nothing: the stored position no longer fits the file (shorter, and then longer but
    without the old position's bytes before it), so reading starts again at 0."""
    monkeypatch.setattr(spool_module, "EMPTY_AFTER_BYTES", 500)
    for n in range(5):
        record(storage, n)
    storage.events.admit_all()
    emptied_at = stored_position(storage)
    assert emptied_at >= 500 and spool_path(storage.db.path).stat().st_size == 0
    for n in range(5, 20):                          # past the old position before any worker reads
        record(storage, n)
    assert storage.events.count("pending") == 20      # 5 in events, 15 in the spool
    storage.events.admit_all()
    assert keys(storage) == [f"messages:M{n}" for n in range(20)]


def test_a_crash_before_the_truncation_repeats_nothing(storage, monkeypatch):
    monkeypatch.setattr(spool_module, "EMPTY_AFTER_BYTES", 500)
    for n in range(5):
        record(storage, n)

    def crash(fd, length):
        raise KeyboardInterrupt("killed")           # the process dies as it empties the file
    monkeypatch.setattr(spool_module.os, "ftruncate", crash)
    with pytest.raises(KeyboardInterrupt):
        storage.events.admit_all()
    monkeypatch.undo()
    prune_every_event(storage)                      # long handled: a re-read would handle them again
    for n in range(5, 8):
        record(storage, n)
    storage.events.admit_all()                      # goes on from the stored position
    assert keys(storage) == [f"messages:M{n}" for n in range(5, 8)]


def prune_every_event(storage: Storage) -> None:
    storage.db.execute("DELETE FROM events")


def test_a_worker_with_an_old_look_at_the_file_does_not_read_it_again(storage):
    """Its quick look (a stat) saw the file shorter than another worker has read it since: the position is
    worked out again under the lock, from the file itself, never moved back."""
    for n in range(3):
        record(storage, n)
    stale = storage.events.spool.size_hint()
    for n in range(3, 6):
        record(storage, n)
    other = Storage(storage.db.path)
    other.events.admit_all()                        # reads all six
    prune_every_event(storage)
    storage.events.spool.size_hint = lambda: stale
    assert storage.events.admit_received(limit=2) == 0
    assert stored_position(storage) == spool_path(storage.db.path).stat().st_size
    other.dispose()


def test_a_spool_deleted_under_running_appenders_gets_their_next_records(storage):
    for n in range(3):
        record(storage, n)
    storage.events.admit_all()
    spool_path(storage.db.path).unlink()            # deleted by hand while the web process runs
    for n in range(3, 5):
        record(storage, n)                          # the appender finds its file unlinked and opens the path again
    storage.events.admit_all()
    assert keys(storage) == [f"messages:M{n}" for n in range(5)]


def test_a_spool_replaced_under_the_store_is_read_from_its_start(storage):
    for n in range(3):
        record(storage, n)
    storage.events.admit_all()
    path = spool_path(storage.db.path)
    replacement = path.with_name("restored")
    Spool(replacement).append(event(7))
    replacement.replace(path)                       # restored from a backup over the old one
    storage.events.admit_all()
    assert keys(storage) == [f"messages:M{n}" for n in (0, 1, 2, 7)]


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
    with Spool(path).reading() as file:
        read = file.read(0, limit=None)
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
