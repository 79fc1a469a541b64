"""The acknowledgement spool of an SQLite store: deliveries appended to one file beside the database.

A webhook's acknowledgement waits for its record. An insert into SQLite is ten system calls (the WAL's
locks, its frame headers and pages): ~0.15 ms on an idle server, ~0.3 ms at p99. An append here is three
(a shared ``flock``, the ``write``, the unlock). Both reach the page cache and neither is synced (the store
runs ``synchronous=NORMAL``), so an acknowledged delivery survives a killed process as it did in the WAL.

**Format.** Each record is RS (0x1e), the CRC-32 of its JSON in 8 hex digits, a space, the JSON (ASCII: no
newline, no RS), LF. A write cut short (its process killed inside it, a full disk) leaves a record without its
LF; the next record's RS starts afresh, and the cut one is skipped (it was never acknowledged).

**Order.** Every process appends to the same file, opened ``O_APPEND``: Linux appends each ``write`` whole and
one after another, so the file's order is the order the acknowledgements were given.

**Reading.** Workers read the records past the offset stored in the database (``event_spool``) and insert them
into ``events`` in the transaction that moves the offset (``Events.admit_received``): each record lands once,
and a redelivery is dropped there by the events' unique key.

**Emptying.** Once everything is read and the file is past ``EMPTY_AFTER_BYTES``, a worker empties it: holding
the database's write lock, it takes the file's exclusive ``flock`` (appenders hold a shared one while they
write, so no append falls between its check and the truncation; readers too, so no read falls between the
commit and the truncation), checks that the size is still the stored offset, commits offset 0, truncates. A
crash between the commit and the truncation re-reads records already inserted; the unique key drops them.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

RS, LF = b"\x1e", b"\n"
EMPTY_AFTER_BYTES = 1 << 20     # the file is emptied once read through and this large (~2,500 records)
READ_BYTES = 1 << 20            # read per pass; doubled while one record does not fit
EXCLUSIVE_WAIT_SECONDS = 1.0    # emptying waits this long for the appenders' shared locks, else tries later


@dataclass(frozen=True)
class SpooledEvent:
    key: str
    resource: str
    event: str
    payload: dict[str, Any]
    order_key: str | None
    received_at: float

    @property
    def row(self) -> tuple[str, str, str, str, str | None, float]:
        """As the events table stores it (the payload as JSON text)."""
        return (self.key, self.resource, self.event, json.dumps(self.payload, separators=(",", ":")),
                self.order_key, self.received_at)


@dataclass(frozen=True)
class SpoolRead:
    events: list[SpooledEvent]
    end: int             # the offset just past the last whole record read
    skipped: int         # records cut short or failing their check


def spool_path(database_path: str) -> Path:
    """Beside the database, as SQLite's own ``-wal`` and ``-shm`` files: the three travel together."""
    return Path(f"{database_path}-inbox")


def encode(event: SpooledEvent) -> bytes:
    body = json.dumps([event.key, event.resource, event.event, event.payload, event.order_key, event.received_at],
                      separators=(",", ":")).encode("ascii")
    return b"%b%08x %b%b" % (RS, zlib.crc32(body), body, LF)


class Spool:
    """One store's spool file. Appending is safe from any thread and process; reading is for workers."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()     # this process's appenders share one open file (and its flock)
        self._fd: int | None = None
        self._pid: int | None = None

    # --- the acknowledgement side -------------------------------------------------------------------

    def append(self, event: SpooledEvent) -> None:
        """Write the record whole or raise ``OSError`` (the delivery is then not acknowledged)."""
        record = encode(event)
        with self._lock:
            fd = self._appender()
            fcntl.flock(fd, fcntl.LOCK_SH)
            try:
                written = os.write(fd, record)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        if written != len(record):   # a full disk: the cut record is skipped by its reader
            raise OSError(f"the event spool took {written} of {len(record)} bytes (is the disk full?)")

    def _appender(self) -> int:
        if self._fd is None or self._pid != os.getpid():   # opened after a fork (gunicorn's workers), not before
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._pid = os.getpid()
        return self._fd

    def close(self) -> None:
        with self._lock:
            if self._fd is not None and self._pid == os.getpid():
                os.close(self._fd)
            self._fd = None

    # --- the workers' side ----------------------------------------------------------------------------

    def identity(self) -> tuple[int, int] | None:
        """(inode, size) of the file; None while nothing was ever appended."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return None
        return stat.st_ino, stat.st_size

    def read(self, offset: int, limit: int) -> SpoolRead:
        """Up to ``limit`` whole records from ``offset``; a record still being written is left for later.

        Under a shared lock: a worker emptying the file holds it exclusively from its commit of offset 0 to the
        truncation, and a read between the two would take the old records' end for the new file's."""
        size = READ_BYTES
        with _opened(self.path, os.O_RDONLY) as fd:
            fcntl.flock(fd, fcntl.LOCK_SH)          # released with the descriptor
            while True:
                data = os.pread(fd, size, offset)
                read = parse(data, limit)
                # Nothing whole in a full read: one record is larger than the read; read more of it.
                if read.end or read.events or len(data) < size:
                    return SpoolRead(read.events, offset + read.end, read.skipped)
                size *= 2

    def pending(self, offset: int) -> tuple[int, float | None]:
        """How many whole records lie past ``offset``, and when the first was received (for the health counts).
        Counts line ends, so a backlog of any size costs one pass over the bytes, not a parse."""
        count, oldest = 0, None
        with _opened(self.path, os.O_RDONLY) as fd:
            while data := os.pread(fd, READ_BYTES, offset):
                if oldest is None:
                    first = parse(data, 1).events
                    oldest = first[0].received_at if first else None
                count += data.count(LF)
                offset += len(data)
        return count, oldest

    def find(self, key: str, offset: int) -> bool:
        """Whether a whole record past ``offset`` carries ``key`` (a delivery not yet read by a worker)."""
        with _opened(self.path, os.O_RDONLY) as fd:
            while True:
                read = parse(os.pread(fd, READ_BYTES, offset), limit=None)
                if any(event.key == key for event in read.events):
                    return True
                if not read.end:
                    return False
                offset += read.end

    @contextmanager
    def exclusive(self) -> Iterator[int | None]:
        """Hold the file against appenders; yields a descriptor to truncate with, or None when the appenders'
        locks did not clear within ``EXCLUSIVE_WAIT_SECONDS`` (emptying waits for the next pass)."""
        with _opened(self.path, os.O_WRONLY) as fd:
            deadline = time.monotonic() + EXCLUSIVE_WAIT_SECONDS
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        yield None
                        return
                    time.sleep(0.0005)
            try:
                yield fd
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)


@contextmanager
def _opened(path: Path, flags: int) -> Iterator[int]:
    fd = os.open(path, flags | os.O_CLOEXEC)
    try:
        yield fd
    finally:
        os.close(fd)


def parse(data: bytes, limit: int | None) -> SpoolRead:
    """The whole records of ``data`` (at most ``limit``), in one pass: each byte is looked at a bounded number
    of times. ``end`` stops before a record without its LF at the end of the data (still being written)."""
    events: list[SpooledEvent] = []
    position, skipped = 0, 0
    while position < len(data) and (limit is None or len(events) < limit):
        start = data.find(RS, position)
        if start < 0:                               # stray bytes (a record is written whole, RS first)
            skipped += 1
            position = len(data)
            break
        skipped += start > position                 # stray bytes before this record
        line_end = data.find(LF, start)
        next_start = data.find(RS, start + 1, line_end if line_end >= 0 else len(data))
        if next_start >= 0:                         # cut short: the next record began before its LF
            skipped += 1
            position = next_start
            continue
        if line_end < 0:
            position = start                        # still being written: read again later
            break
        event = decode(data[start + 1:line_end])
        if event is None:
            skipped += 1
        else:
            events.append(event)
        position = line_end + 1
    return SpoolRead(events, position, skipped)


def decode(line: bytes) -> SpooledEvent | None:
    """One record's content ("crc json"), or None when it fails its check or its shape."""
    checksum, _, body = line.partition(b" ")
    try:
        if int(checksum, 16) != zlib.crc32(body):
            return None
        key, resource, event, payload, order_key, received_at = json.loads(body)
    except (ValueError, TypeError, RecursionError):
        return None
    if not (isinstance(key, str) and isinstance(resource, str) and isinstance(event, str)
            and isinstance(payload, dict) and isinstance(order_key, (str, type(None)))
            and isinstance(received_at, (int, float))):
        return None
    return SpooledEvent(key, resource, event, payload, order_key, float(received_at))
