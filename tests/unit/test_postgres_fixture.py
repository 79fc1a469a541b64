"""The throwaway PostgreSQL cluster works, and the PostgreSQL features the stores will rely on do what
the design says: SKIP LOCKED claims never hand one row to two workers, a notification reaches a
listener only when the transaction that sent it commits, and the migrations' advisory lock excludes.
"""

from __future__ import annotations

import threading

import psycopg
import pytest

pytestmark = pytest.mark.postgres

# The claim the event, reminder and rotation repositories will use on PostgreSQL.
CLAIM = ("UPDATE jobs SET owner = %s, attempts = attempts + 1 "
         "WHERE id = (SELECT id FROM jobs WHERE owner IS NULL ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED) "
         "RETURNING id")


def connect(url: str) -> psycopg.Connection:
    # A lock wait fails after 5 s instead of hanging the run (should a claim ever wait for a lock).
    return psycopg.connect(url, autocommit=True, options="-c lock_timeout=5s")


def create_jobs(url: str, count: int) -> None:
    with connect(url) as conn:
        conn.execute("CREATE TABLE jobs (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
                     "owner TEXT, attempts INTEGER NOT NULL DEFAULT 0)")
        conn.execute("INSERT INTO jobs (owner) SELECT NULL FROM generate_series(1, %s)", [count])


def test_the_cluster_is_a_real_local_postgresql(postgres_cluster, postgres_database):
    assert postgres_database.startswith(f"postgresql://rollover@127.0.0.1:{postgres_cluster.port}/")
    with connect(postgres_database) as conn:
        version = conn.execute("SHOW server_version_num").fetchone()[0]
        fsync = conn.execute("SHOW fsync").fetchone()[0]
        conn.execute("CREATE TABLE t (id BIGINT GENERATED ALWAYS AS IDENTITY, body BYTEA)")
        row = conn.execute("INSERT INTO t (body) VALUES (%s) RETURNING id, body", [b"\x00\xff"]).fetchone()
    assert int(version) >= 130000 and fsync == "off"
    assert row == (1, b"\x00\xff")


def test_each_test_gets_an_empty_database(postgres_database):
    with connect(postgres_database) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0]
    assert tables == 0      # the previous test's table is in another database


def test_a_row_locked_by_one_claim_is_skipped_by_the_other(postgres_database):
    create_jobs(postgres_database, 3)
    with connect(postgres_database) as first, connect(postgres_database) as second:
        with first.transaction():
            taken_first = first.execute(CLAIM, ["first"]).fetchone()[0]
            # The first transaction is still open: its row stays locked, and the second skips it.
            with second.transaction():
                taken_second = second.execute(CLAIM, ["second"]).fetchone()[0]
            # Without SKIP LOCKED the second would wait for that lock (here: give up at once).
            with pytest.raises(psycopg.errors.LockNotAvailable):
                with second.transaction():
                    second.execute("SET LOCAL lock_timeout = '50ms'")
                    second.execute("SELECT id FROM jobs WHERE id = %s FOR UPDATE", [taken_first])
        owners = dict(second.execute("SELECT id, owner FROM jobs WHERE owner IS NOT NULL").fetchall())
    assert (taken_first, taken_second) == (1, 2)
    assert owners == {1: "first", 2: "second"}


def test_two_workers_claiming_concurrently_never_take_the_same_row(postgres_database):
    create_jobs(postgres_database, 400)
    claimed: dict[str, list[int]] = {"a": [], "b": []}
    start = threading.Barrier(2)

    def work(name: str) -> None:
        with connect(postgres_database) as conn:
            start.wait()
            while (row := conn.execute(CLAIM, [name]).fetchone()) is not None:
                claimed[name].append(row[0])

    workers = [threading.Thread(target=work, args=(name,)) for name in claimed]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    with connect(postgres_database) as conn:
        rows = conn.execute("SELECT id, owner, attempts FROM jobs ORDER BY id").fetchall()

    assert not set(claimed["a"]) & set(claimed["b"])
    assert sorted(claimed["a"] + claimed["b"]) == list(range(1, 401))
    assert all(attempts == 1 for _, _, attempts in rows)                  # nobody claimed a row twice
    assert all(id_ in claimed[owner] for id_, owner, _ in rows)            # the row says who took it
    assert claimed["a"] and claimed["b"]                                   # both really competed


def test_a_notification_arrives_when_its_transaction_commits_and_never_after_a_rollback(postgres_database):
    create_jobs(postgres_database, 0)
    with connect(postgres_database) as listener, connect(postgres_database) as sender:
        listener.execute("LISTEN rollover_events")

        with pytest.raises(RuntimeError):
            with sender.transaction():
                sender.execute("SELECT pg_notify('rollover_events', 'rolled-back')")
                raise RuntimeError("the webhook's row was not stored")
        with sender.transaction():
            sender.execute("INSERT INTO jobs (owner) VALUES (NULL)")
            sender.execute("SELECT pg_notify('rollover_events', 'event-1')")
            # Not before the commit: a woken worker always finds the row it was woken for.
            assert list(listener.notifies(timeout=0.2)) == []
        received = list(listener.notifies(timeout=5, stop_after=1))
        # The listener's own connection sees the committed row.
        count = listener.execute("SELECT count(*) FROM jobs").fetchone()[0]

    assert [(n.channel, n.payload) for n in received] == [("rollover_events", "event-1")]
    assert count == 1


def test_the_migration_lock_lets_one_transaction_in_at_a_time(postgres_database):
    key = 0x526F6C6C6F766572   # "Rollover" in ASCII: the migrations' lock key (postgres-design.md)
    with connect(postgres_database) as first, connect(postgres_database) as second:
        with first.transaction():
            first.execute("SELECT pg_advisory_xact_lock(%s)", [key])
            with second.transaction():
                assert second.execute("SELECT pg_try_advisory_xact_lock(%s)", [key]).fetchone()[0] is False
        # Released with the first transaction's commit, without any unlock call.
        with second.transaction():
            assert second.execute("SELECT pg_try_advisory_xact_lock(%s)", [key]).fetchone()[0] is True
