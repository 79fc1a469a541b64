"""The store's connections: SQLite (the embedded default) or PostgreSQL (``DATABASE_URL``), one SQL text.

The repositories write ``?`` placeholders and the SQL subset SQLite ≥ 3.39 and PostgreSQL ≥ 13 share
(ON CONFLICT, RETURNING, FILTER, IS DISTINCT FROM, partial indexes). ``execute`` returns a ``Result``
whose rows are fetched before it returns, so no cursor outlives a call and a statement outside a
transaction is committed when ``execute`` returns (the webhook is acknowledged only after that).

SQLite through sqlite-utils: one connection per thread (SQLite connections must not be shared across
threads), WAL so the webhook view and the workers do not block each other. Durability: with WAL and
``synchronous=NORMAL`` a committed transaction survives a killed process (only a power loss could roll
back the last transactions), the guarantee the acknowledgement needs at a fraction of FULL's cost.
PostgreSQL: ``rollover/storage/postgresql.py``.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import sqlite_utils

BUSY_TIMEOUT_SECONDS = 30.0
STARTUP_LOCK_WAIT_SECONDS = 60.0
ACK_LOCK_WAIT_SECONDS = 10.0


@dataclass(frozen=True)
class Result:
    """The rows a statement returned (fetched already) and how many rows it changed."""

    rows: list[tuple]
    rowcount: int

    def fetchone(self) -> tuple | None:
        return self.rows[0] if self.rows else None

    def fetchall(self) -> list[tuple]:
        return self.rows

    def __iter__(self) -> Iterator[tuple]:
        return iter(self.rows)


@dataclass(frozen=True)
class ColumnTypes:
    """The column types the migrations write, per store (the rest of the DDL is the same text)."""

    id: str          # an integer primary key the database assigns
    seq: str         # the same, never reusing a value (events)
    ref: str         # a column holding such an id
    float: str       # epoch seconds: a double on both (PostgreSQL's `real` is 4 bytes)
    bytes: str


class Database(ABC):
    """What the repositories need from a store; ``SqliteDatabase`` and ``PostgresDatabase`` provide it."""

    dialect: str
    types: ColumnTypes
    skip_locked = ""                 # appended to a claim's row-picking SELECT where the store has it
    for_update = ""                  # the same for a SELECT whose rows a second writer must wait for

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = (), *, urgent: bool = False) -> Result:
        ...

    @abstractmethod
    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        ...

    @abstractmethod
    def transaction(self):
        """The writes inside commit together or not at all (a savepoint when nested); repositories called
        inside share it, so a change and its audit entry are one transaction."""
        ...

    @abstractmethod
    def migration_lock(self):
        """A transaction that only one process at a time runs (the named migrations)."""
        ...

    @abstractmethod
    def describe(self) -> str:
        """Which store this is, for people: never a password."""
        ...

    def ping(self) -> bool:
        return self.execute("SELECT 1").fetchone() == (1,)

    @abstractmethod
    def close(self) -> None:
        """Close the calling thread's connections (a thread that ends should)."""

    def dispose(self) -> None:
        """Close everything (the process is done with the store)."""
        self.close()


SQLITE_TYPES = ColumnTypes(id="INTEGER PRIMARY KEY", seq="INTEGER PRIMARY KEY AUTOINCREMENT", ref="INTEGER",
                           float="REAL", bytes="BLOB")


class SqliteDatabase(Database):
    """One SQLite file; opens one connection per thread on first use."""

    dialect = "sqlite"
    types = SQLITE_TYPES
    IntegrityError = sqlite3.IntegrityError

    def __init__(self, path: str | Path):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        # One acknowledgement at a time per process: this process's threads queue here in order (a lock hands
        # over in microseconds), and only another process's writer is waited out in retries.
        self._ack_lock = threading.Lock()

    @property
    def db(self) -> sqlite_utils.Database:
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = self._connect()
        return db

    @property
    def ack_db(self) -> sqlite_utils.Database:
        """The acknowledgement path's own connection: it waits for locks in fine steps (``urgent``)."""
        db = getattr(self._local, "ack_db", None)
        if db is None:
            db = self._local.ack_db = self._connect(busy_timeout=0)
            # Autocommit: the statement commits inside its own step, one call into SQLite instead of a
            # statement and a commit; each call lets go of the interpreter lock and must wait to take it back.
            db.conn.isolation_level = None
            # The commit that crosses the WAL's checkpoint size copies the WAL into the database and syncs it:
            # ~1 ms an acknowledgement should not pay. The workers' connections checkpoint instead.
            db.execute("PRAGMA wal_autocheckpoint=0")
        return db

    def _connect(self, busy_timeout: float = BUSY_TIMEOUT_SECONDS) -> sqlite_utils.Database:
        # busy_timeout: wait for another writer's lock instead of failing at once.
        conn = sqlite3.connect(self.path, timeout=busy_timeout)
        db = sqlite_utils.Database(conn, execute_plugins=False)
        # On a fresh file, processes starting together race to switch it to WAL; SQLite answers the
        # losers "database is locked" without waiting, so the switch is retried (a no-op once done).
        _retry_while_locked(lambda: db.execute("PRAGMA journal_mode=WAL"), STARTUP_LOCK_WAIT_SECONDS)
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        return db

    def execute(self, sql: str, params: Sequence[Any] = (), *, urgent: bool = False) -> Result:
        """Run one statement; outside a transaction it is committed before this returns. ``urgent`` (the
        webhook acknowledgement): SQLite's busy handler sleeps 1, 2, 5, 10 … ms while another process
        writes; the insert itself takes ~0.05 ms, so waiting in 0.2 ms steps keeps the acknowledgement's
        tail latency close to a bare endpoint's."""
        if urgent:
            with self._ack_lock:
                return _retry_while_locked(lambda: self._execute(self.ack_db.conn, sql, params),
                                           ACK_LOCK_WAIT_SECONDS, pause=0.0002)
        return self._execute(self.db.conn, sql, params)

    @staticmethod
    def _execute(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> Result:
        in_transaction = conn.in_transaction
        try:
            cursor = conn.execute(sql, params)
            rows = cursor.fetchall() if cursor.description else []
        except BaseException:
            if not in_transaction and conn.in_transaction:
                conn.rollback()          # the failed statement's implicit transaction
            raise
        if not in_transaction and conn.in_transaction:
            conn.commit()                # sqlite3 opened one implicitly: the statement stands alone
        return Result(rows, cursor.rowcount)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self.transaction():
            self.db.conn.executemany(sql, rows)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        db = self.db
        if db.conn.in_transaction:
            with db.atomic():            # a savepoint
                yield
            return
        # BEGIN IMMEDIATE: the write lock from the start. Every transaction here writes; a deferred BEGIN
        # that read first could not become a writer once another process committed (SQLITE_BUSY_SNAPSHOT,
        # which no busy handler waits out).
        db.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            db.conn.rollback()
            raise
        db.conn.commit()

    def migration_lock(self):
        # SQLite has one writer: the transaction's write lock is the lock.
        return self.transaction()

    def describe(self) -> str:
        return f"SQLite {Path(self.path).resolve()}"

    def close(self) -> None:
        for name in ("db", "ack_db"):
            db = getattr(self._local, name, None)
            if db is not None:
                db.close()
                setattr(self._local, name, None)


def _retry_while_locked(statement, wait: float, pause: float = 0.01) -> Any:
    """Run ``statement``, retrying for up to ``wait`` seconds while SQLite reports the file locked
    (the cases its busy handler does not cover: the WAL switch; the acknowledgement's own short waits)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return statement()
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(pause)


def is_database_url(location: str) -> bool:
    return location.startswith(("postgresql://", "postgres://"))


def where_clause(conditions: dict[str, Any]) -> tuple[str, list[Any]]:
    """" WHERE …" of the conditions whose value is not None; a clause with "?" takes the value as parameter."""
    clauses, params = [], []
    for clause, value in conditions.items():
        if value is None:
            continue
        clauses.append(clause)
        if "?" in clause:
            params.append(value)
    return (f" WHERE {' AND '.join(clauses)}" if clauses else ""), params


def placeholders(values: Sequence[Any], empty: str = "NULL") -> str:
    """"?, ?, ?" for an IN list; SQL has no empty list, so ``empty`` stands in (NULL: IN matches nothing)."""
    return ", ".join("?" for _ in values) or empty
