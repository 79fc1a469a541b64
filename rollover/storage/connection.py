"""The SQLite connections: one per thread, WAL, transactions.

SQLite through sqlite-utils: one connection per thread (SQLite connections must not be shared
across threads), WAL so the webhook view and the workers do not block each other.

Durability: a webhook event is acknowledged only after its row is committed. With WAL and
``synchronous=NORMAL`` a committed transaction survives a killed process (only a power loss could
roll back the last transactions), which is the guarantee the acknowledgement needs at a fraction
of FULL's cost.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import sqlite_utils

BUSY_TIMEOUT_SECONDS = 30.0
STARTUP_LOCK_WAIT_SECONDS = 60.0


class Database:
    """Opens one connection per thread on first use."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()

    @property
    def db(self) -> sqlite_utils.Database:
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = self._connect()
        return db

    @property
    def ack_db(self) -> sqlite_utils.Database:
        """The acknowledgement path's own connection: it waits for locks in fine steps (events.record)."""
        db = getattr(self._local, "ack_db", None)
        if db is None:
            db = self._local.ack_db = self._connect(busy_timeout=0)
        return db

    def _connect(self, busy_timeout: float = BUSY_TIMEOUT_SECONDS) -> sqlite_utils.Database:
        # busy_timeout: wait for another writer's lock instead of failing at once.
        conn = sqlite3.connect(self.path, timeout=busy_timeout)
        db = sqlite_utils.Database(conn, execute_plugins=False)
        # On a fresh file, processes starting together race to switch it to WAL; SQLite answers the
        # losers "database is locked" without waiting, so the switch is retried (a no-op once done).
        _retry_while_locked(lambda: db.execute("PRAGMA journal_mode=WAL"))
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        return db

    def close(self) -> None:
        """Close this thread's connections (a thread that ends should, or its files stay open)."""
        for name in ("db", "ack_db"):
            db = getattr(self._local, name, None)
            if db is not None:
                db.close()
                setattr(self._local, name, None)

    def transaction(self):
        """A context manager: the writes inside commit together or not at all (a savepoint when nested)."""
        return self.db.atomic()

    @contextmanager
    def exclusive(self) -> Iterator[sqlite_utils.Database]:
        """A transaction that holds the write lock from its start (BEGIN IMMEDIATE): what it reads stays
        true until it commits, even with other processes starting at the same moment."""
        db = self.db
        _retry_while_locked(lambda: db.execute("BEGIN IMMEDIATE"))
        try:
            yield db
        except BaseException:
            db.conn.rollback()
            raise
        db.execute("COMMIT")

    def ping(self) -> bool:
        return self.db.execute("SELECT 1").fetchone() == (1,)


def _retry_while_locked(statement, wait: float = STARTUP_LOCK_WAIT_SECONDS) -> Any:
    """Run ``statement``, retrying for up to ``wait`` seconds while SQLite reports the file locked
    (the cases its busy handler does not cover: the WAL switch, a lock held across a schema change)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return statement()
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


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
