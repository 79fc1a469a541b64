"""The acknowledgement spool of an SQLite store: deliveries appended to one file beside the database.

A webhook's acknowledgement waits for its record. An insert into SQLite is ten system calls (the WAL's
locks, its frame headers and pages): ~0.15 ms on an idle server, ~0.3 ms at p99. An append here is four
(a shared ``flock``, the ``write``, the unlock, an ``fstat``). Both reach the page cache and neither is synced
(the store runs ``synchronous=NORMAL``), so an acknowledged delivery survives a killed process as it did in
the WAL.

**Format.** Each record is RS (0x1e), its JSON (ASCII: no newline, no RS), a space, the CRC-32 of the JSON in
8 hex digits, LF. A write cut short (its process killed inside it, a full disk) leaves a record without its
LF; the next record's RS starts afresh, and the cut one is skipped (it was never acknowledged).

**Order.** Every process appends to the same file, opened ``O_APPEND``: on a local Linux file system (not NFS)
each ``write`` lands whole, one after another, so the file's order is the order the acknowledgements were
given. An appender that finds its file unlinked after a write (deleted, or replaced by a rename) opens the
path again and appends the record there too; the move drops the second copy if both are read.

**Reading.** Workers read, under a shared ``flock``, the records past the position stored in the database
(``event_spool``) and insert them into ``events`` in the transaction that stores the new position: each record
lands once, and a redelivery is dropped there by the events' unique key. A position names its file by inode
and by the 16 bytes that end it: a file emptied, replaced, or created again under a reused inode number does
not have those bytes there, and is read from its start.

**Emptying.** Once read through and past ``EMPTY_AFTER_BYTES``, the file is truncated under an exclusive
``flock`` (appenders and readers hold a shared one, so none is inside it), if its size is still the stored
position. Nothing is committed with it: the stored position no longer fits the file, so the next read starts
at 0, and a crash around the truncation leaves either the read records (the position still fits and skips
them) or none.
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
EMPTY_AFTER_BYTES = 1 << 20     # the file is emptied once read through and this large (~3,000 records)
READ_BYTES = 1 << 20            # read per pass; doubled while one record does not fit
TAIL_BYTES = 16                 # the bytes before a stored position that show it is this file's
EXCLUSIVE_WAIT_SECONDS = 0.02   # emptying waits this long for the appenders' shared locks, else tries later


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
class Position:
    """How far the workers have read a spool, as stored in the database."""
    inode: int
    read_to: int
    tail: bytes          # the TAIL_BYTES before read_to

    @classmethod
    def from_row(cls, inode: int | None, read_to: int | None, tail: bytes | None) -> Position | None:
        """From the ``event_spool`` row's columns (None: nothing was read yet)."""
        return None if inode is None else cls(inode, read_to, bytes(tail))


@dataclass(frozen=True)
class SpoolRead:
    events: list[SpooledEvent]
    position: Position   # just past the last whole record read
    skipped: int         # records cut short or failing their check


def spool_path(database_path: str) -> Path:
    """Beside the database, as SQLite's own ``-wal`` and ``-shm`` files: the three travel together."""
    return Path(f"{database_path}-inbox")


# One encoder for every record: json.dumps with separators builds a new one per call, on the acknowledgement's path.
_compact_json = json.JSONEncoder(separators=(",", ":")).encode


def encode(event: SpooledEvent) -> bytes:
    body = _compact_json([event.key, event.resource, event.event, event.payload, event.order_key,
                          event.received_at]).encode("ascii")
    return b"%b%b %08x%b" % (RS, body, zlib.crc32(body), LF)


class Spool:
    """One store's spool file. Appending is safe from any thread and process; reading is for workers."""

    def __init__(self, path: Path, mode_of: Path | None = None):
        self.path = path
        self._mode_of = mode_of             # the database file: the spool is created with its permissions
        self._lock = threading.Lock()       # this process's appenders share one open file (and its flock)
        self._fd: int | None = None
        self._pid: int | None = None

    # --- the acknowledgement side -------------------------------------------------------------------

    def append(self, event: SpooledEvent) -> None:
        """Write the record whole or raise ``OSError`` (the delivery is then not acknowledged)."""
        record = encode(event)
        with self._lock:
            self._write(record)
            if os.fstat(self._fd).st_nlink == 0:   # the file was deleted or replaced under us: write it anew
                self._reopen()
                self._write(record)

    def _write(self, record: bytes) -> None:
        if self._fd is None or self._pid != os.getpid():   # opened after a fork (gunicorn's workers), not before
            self._reopen()
        fcntl.flock(self._fd, fcntl.LOCK_SH)
        try:
            written = os.write(self._fd, record)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        if written != len(record):   # a full disk: the cut record is skipped by its reader
            raise OSError(f"the event spool took {written} of {len(record)} bytes (is the disk full?)")

    def _reopen(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, self._mode())
        self._pid = os.getpid()

    def _mode(self) -> int:
        """The database file's permissions, as SQLite gives its -wal and -shm files (so a web and a worker
        process of different users sharing the store by group can both use it); else owner only."""
        try:
            return os.stat(self._mode_of).st_mode & 0o666 if self._mode_of else 0o600
        except FileNotFoundError:
            return 0o600

    def close(self) -> None:
        with self._lock:
            if self._fd is not None and self._pid == os.getpid():
                os.close(self._fd)
            self._fd = None

    # --- the workers' side ----------------------------------------------------------------------------

    def size_hint(self) -> tuple[int, int] | None:
        """(inode, size) without a lock, for a quick look whether anything is new; None while there is no file."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return None
        return stat.st_ino, stat.st_size

    @contextmanager
    def reading(self) -> Iterator[SpoolFile | None]:
        """The file under a shared lock (an emptying holds it exclusively); None while there is no file."""
        with _opened(self.path, os.O_RDONLY) as fd:
            if fd is None:
                yield None
                return
            fcntl.flock(fd, fcntl.LOCK_SH)       # released with the descriptor
            yield SpoolFile(fd)

    @contextmanager
    def exclusive(self) -> Iterator[SpoolFile | None]:
        """The file held against appenders and readers, to empty it; None when there is no file or their locks
        did not clear within ``EXCLUSIVE_WAIT_SECONDS`` (emptying waits for the next pass)."""
        with _opened(self.path, os.O_RDWR) as fd:
            deadline = time.monotonic() + EXCLUSIVE_WAIT_SECONDS
            while fd is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        fd = None
                    else:
                        time.sleep(0.0005)
            yield None if fd is None else SpoolFile(fd)


class SpoolFile:
    """The spool opened and locked by ``Spool.reading`` or ``Spool.exclusive``."""

    def __init__(self, fd: int):
        self.fd = fd
        stat = os.fstat(fd)
        self.inode, self.size = stat.st_ino, stat.st_size

    def start(self, stored: Position | None) -> int:
        """Where reading goes on: the stored position if it is this file's, else the file's start."""
        if stored is None or stored.inode != self.inode or stored.read_to > self.size:
            return 0
        return stored.read_to if self._tail(stored.read_to) == stored.tail else 0

    def _tail(self, end: int) -> bytes:
        length = min(TAIL_BYTES, end)
        return os.pread(self.fd, length, end - length)

    def read(self, offset: int, limit: int | None) -> SpoolRead:
        """Up to ``limit`` whole records from ``offset``; a record still being written is left for later."""
        size = READ_BYTES
        while True:
            data = os.pread(self.fd, size, offset)
            read, end = parse(data, limit)
            # Nothing whole in a full read: one record is larger than the read; read more of it.
            if end or len(data) < size:
                return SpoolRead(read.events, Position(self.inode, offset + end, self._tail(offset + end)),
                                 read.skipped)
            size *= 2

    def pending(self, offset: int) -> tuple[int, float | None]:
        """How many whole records lie past ``offset``, and when the first was received (for the health counts).
        Counts line ends, so a backlog of any size costs one pass over the bytes, not a parse."""
        count, oldest = 0, None
        while data := os.pread(self.fd, READ_BYTES, offset):
            if oldest is None:
                first, _ = parse(data, 1)
                oldest = first.events[0].received_at if first.events else None
            count += data.count(LF)
            offset += len(data)
        return count, oldest

    def find(self, key: str, offset: int) -> bool:
        """Whether a whole record past ``offset`` carries ``key`` (a delivery not yet read by a worker)."""
        while offset < self.size:
            read = self.read(offset, limit=None)
            if any(event.key == key for event in read.events):
                return True
            if read.position.read_to == offset:
                return False
            offset = read.position.read_to
        return False

    def truncate(self) -> None:
        os.ftruncate(self.fd, 0)


@contextmanager
def _opened(path: Path, flags: int) -> Iterator[int | None]:
    try:
        fd = os.open(path, flags | os.O_CLOEXEC)
    except FileNotFoundError:
        yield None
        return
    try:
        yield fd
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Parsed:
    events: list[SpooledEvent]
    skipped: int


def parse(data: bytes, limit: int | None) -> tuple[Parsed, int]:
    """The whole records of ``data`` (at most ``limit``) and the offset just past the last one, in one pass:
    each byte is looked at a bounded number of times (the line end found for a record cut short is kept for
    the next). The end stops before a record without its LF at the end of the data (still being written)."""
    events: list[SpooledEvent] = []
    position, skipped, line_end = 0, 0, -1
    while position < len(data) and (limit is None or len(events) < limit):
        start = data.find(RS, position)
        if start < 0:                               # stray bytes (a record is written whole, RS first)
            skipped += 1
            position = len(data)
            break
        skipped += start > position                 # stray bytes before this record
        if line_end < start:
            line_end = data.find(LF, start)
            if line_end < 0:
                line_end = len(data)                # no LF in the rest of the data
        next_start = data.find(RS, start + 1, line_end)
        if next_start >= 0:                         # cut short: the next record began before its LF
            skipped += 1
            position = next_start
            continue
        if line_end == len(data):
            position = start                        # still being written: read again later
            break
        event = decode(data[start + 1:line_end])
        if event is None:
            skipped += 1
        else:
            events.append(event)
        position = line_end + 1
    return Parsed(events, skipped), position


def decode(line: bytes) -> SpooledEvent | None:
    """One record's content ("json crc"), or None when it fails its check or its shape."""
    body, _, checksum = line.rpartition(b" ")
    try:
        if len(checksum) != 8 or int(checksum, 16) != zlib.crc32(body):
            return None
        key, resource, event, payload, order_key, received_at = json.loads(body)
    except (ValueError, TypeError, RecursionError):
        return None
    if not (isinstance(key, str) and isinstance(resource, str) and isinstance(event, str)
            and isinstance(payload, dict) and isinstance(order_key, (str, type(None)))
            and isinstance(received_at, (int, float))):
        return None
    return SpooledEvent(key, resource, event, payload, order_key, float(received_at))
