"""Several processes starting together on a fresh database file: the migrations are applied once, nobody fails.

Web and worker processes of one install start at the same moment (a Procfile, a container restart). Each
round here starts from a fresh file; the processes wait at a barrier, then all migrate at once.
"""

import multiprocessing
import sqlite3
import traceback

from rollover.storage import MIGRATIONS

PROCESSES = 3
ROUNDS = 25


def migrate_rounds(folder: str, barrier, results) -> None:
    from rollover.storage import Storage
    for round_number in range(ROUNDS):
        barrier.wait(60)
        storage = Storage(f"{folder}/round-{round_number}.sqlite3")
        try:
            outcome = ("applied", storage.migrate())
            storage.events.record(f"messages:{round_number}:{multiprocessing.current_process().name}",
                                  "messages", "created", {"data": {"id": "M"}})
        except Exception:
            outcome = ("failed", traceback.format_exc())
        finally:
            storage.close()
        results.put((round_number, outcome))


def test_processes_starting_together_on_a_fresh_file_apply_each_migration_once(tmp_path):
    spawn = multiprocessing.get_context("spawn")      # real new interpreters, as separate processes are
    barrier, results = spawn.Barrier(PROCESSES), spawn.Queue()
    workers = [spawn.Process(target=migrate_rounds, args=(str(tmp_path), barrier, results), name=f"p{n}")
               for n in range(PROCESSES)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in range(PROCESSES * ROUNDS)]
    for worker in workers:
        worker.join(30)
    failures = [detail for _, (kind, detail) in outcomes if kind == "failed"]
    assert failures == []
    everything = [name for name, _ in MIGRATIONS]
    for round_number in range(ROUNDS):
        applied = sorted((names for n, (_, names) in outcomes if n == round_number), key=len)
        assert applied == [[]] * (PROCESSES - 1) + [everything], f"round {round_number}"
        with sqlite3.connect(tmp_path / f"round-{round_number}.sqlite3") as db:
            assert db.execute("SELECT count(*), count(DISTINCT name) FROM migrations").fetchone() == \
                (len(everything), len(everything))
            assert db.execute("SELECT count(*) FROM events").fetchone() == (PROCESSES,)
