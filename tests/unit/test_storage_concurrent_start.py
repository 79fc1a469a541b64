"""Several processes starting together on a fresh store: the migrations are applied once, nobody fails.

Web and worker processes of one install start at the same moment (a Procfile, a container restart, two
hosts). Each round starts from a fresh SQLite file or a fresh PostgreSQL database; the processes wait at
a barrier, then all migrate at once, then each records an event.
"""

import multiprocessing
import traceback

from rollover.storage import MIGRATIONS, Storage

PROCESSES = 3
ROUNDS = {"sqlite": 25, "postgresql": 10}


def migrate_rounds(locations: list[str], barrier, results) -> None:
    for round_number, location in enumerate(locations):
        barrier.wait(60)
        storage = Storage(location)
        try:
            outcome = ("applied", storage.migrate())
            storage.events.record(f"messages:{round_number}:{multiprocessing.current_process().name}",
                                  "messages", "created", {"data": {"id": "M"}})
        except Exception:
            outcome = ("failed", traceback.format_exc())
        finally:
            storage.dispose()
        results.put((round_number, outcome))


def fresh_locations(request, store: str, tmp_path) -> list[str]:
    rounds = ROUNDS["postgresql" if store.startswith("postgresql://") else "sqlite"]
    if store.startswith("postgresql://"):
        cluster = request.getfixturevalue("postgres_cluster")
        return [store] + [cluster.create_database(f"{store.rsplit('/', 1)[1]}_r{n}") for n in range(1, rounds)]
    return [str(tmp_path / f"round-{n}.sqlite3") for n in range(rounds)]


def test_processes_starting_together_on_a_fresh_store_apply_each_migration_once(request, store, tmp_path):
    locations = fresh_locations(request, store, tmp_path)
    spawn = multiprocessing.get_context("spawn")      # real new interpreters, as separate processes are
    barrier, results = spawn.Barrier(PROCESSES), spawn.Queue()
    workers = [spawn.Process(target=migrate_rounds, args=(locations, barrier, results), name=f"p{n}")
               for n in range(PROCESSES)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=180) for _ in range(PROCESSES * len(locations))]
    for worker in workers:
        worker.join(30)
    failures = [detail for _, (kind, detail) in outcomes if kind == "failed"]
    assert failures == []
    everything = [name for name, _ in MIGRATIONS]
    for round_number, location in enumerate(locations):
        applied = sorted((names for n, (_, names) in outcomes if n == round_number), key=len)
        assert applied == [[]] * (PROCESSES - 1) + [everything], f"round {round_number}"
        storage = Storage(location)
        assert storage.db.execute("SELECT count(*), count(DISTINCT name) FROM migrations").fetchone() == \
            (len(everything), len(everything))
        assert storage.events.count("pending") == PROCESSES   # each process recorded one delivery
        storage.dispose()
