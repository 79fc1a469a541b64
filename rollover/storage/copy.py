"""Moving an install's data from its SQLite file into PostgreSQL (``bot.py copy-database``).

Every table is copied row by row with its ids, in the order the foreign keys need, inside one
transaction of the target: a failure leaves the target as it was. The counts of every table are then
compared inside that same transaction, so the copy commits only when they all match. The target must
hold no data yet (its migrations are applied first): a copy never merges into a store in use.
Named leases (``scheduler_leases``) are not copied: they belong to the processes of the old host.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from rollover.errors import UserError
from rollover.storage.store import Storage

# Parents before children; each with the column PostgreSQL's identity sequence must continue after.
TABLES: tuple[tuple[str, str | None], ...] = (
    ("events", "seq"), ("event_inbox", "seq"), ("outbox", None), ("sources", "id"), ("tracked_certificates", "id"),
    ("entra_apps", None),
    ("reminder_subscriptions", None), ("reminder_marks", None), ("reminders", "id"), ("rotations", "id"),
    ("rotation_approvals", None), ("audit_log", "id"),
)
BATCH_ROWS = 1000


@dataclass(frozen=True)
class CopiedTable:
    name: str
    source_rows: int
    target_rows: int


def copy_store(source: Storage, target: Storage, progress: Callable[[str], None] = lambda _: None
               ) -> list[CopiedTable]:
    """Copy every table of ``source`` into the empty ``target``; returns the verified counts per table."""
    source.migrate()
    source.events.admit_all()   # an SQLite file's spooled deliveries join its tables first: they are copied too
    target.migrate()
    not_empty = [name for name, _ in TABLES if count(target, name)]
    if not_empty:
        raise UserError(f"{target.describe()} already holds data (tables {', '.join(not_empty)}): the copy goes "
                        "into an empty database only, so nothing of a store in use is overwritten.")
    copied = []
    with target.transaction():
        for name, identity in TABLES:
            rows = copy_table(source, target, name, identity)
            copied.append(CopiedTable(name, count(source, name), count(target, name)))
            progress(f"{name}: {rows} rows")
        wrong = [t for t in copied if t.source_rows != t.target_rows]
        if wrong:   # raised inside the transaction: nothing is committed
            raise UserError("The copy was rolled back: the counts differ for "
                            + ", ".join(f"{t.name} ({t.source_rows} in the file, {t.target_rows} copied)"
                                        for t in wrong) + ".")
    return copied


def copy_table(source: Storage, target: Storage, name: str, identity: str | None) -> int:
    """Copy one table in batches (by SQLite's rowid, so a large table is never held in memory at once)."""
    columns = [row[1] for row in source.db.execute(f"PRAGMA table_info({name})")]
    select = f"SELECT rowid, {', '.join(columns)} FROM {name} WHERE rowid > ? ORDER BY rowid LIMIT {BATCH_ROWS}"
    insert = f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})"
    copied, last = 0, -1
    while rows := source.db.execute(select, [last]).fetchall():
        target.db.executemany(insert, [row[1:] for row in rows])
        copied, last = copied + len(rows), rows[-1][0]
    if identity and target.dialect == "postgresql" and copied:
        # Ids were inserted as they were: the identity continues after the largest, not at 1.
        target.db.execute(f"SELECT setval(pg_get_serial_sequence('{name}', '{identity}'), "
                          f"(SELECT max({identity}) FROM {name}))")
    return copied


def count(storage: Storage, table: str) -> int:
    return storage.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
