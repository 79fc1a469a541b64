"""Fixtures: the local Webex and Graph, and conversations with the bot (``fakes.conversation``)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Iterator

import pytest

from fakes.conversation import SECRET, Conversation, Posted  # noqa: F401  (tests import them from here)
from fakes.webex import LocalWebex

pytest_plugins = ["tests.support.postgres"]     # postgres_cluster, postgres_database, postgres_url
SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(autouse=True)
def restored_logging() -> Iterator[None]:
    """The root logger as it was before the test: ``configure_logging`` (the app, the CLI) binds a handler to the
    test's captured stderr, which pytest closes after the test; a thread of that test logging late (a
    websocket reconnecting as it stops) then printed "--- Logging error ---" into a later test's output."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


@pytest.fixture
def local_webex():
    with LocalWebex(SHARED / "reference" / "adaptive-card-1.3.0.schema.json") as webex:
        yield webex


@pytest.fixture
def chat(make_chat) -> Conversation:
    return make_chat()


# --- the stores: every test that keeps data runs on SQLite and on PostgreSQL ---------------------------

def pytest_addoption(parser):
    parser.addoption("--store", choices=("both", "sqlite", "postgresql"),
                     default=os.environ.get("ROLLOVER_TEST_STORE", "both"),
                     help="which store the storage and conversation tests use (default: both; PostgreSQL from a "
                          "throwaway cluster, skipped where it is not installed, failed under CI=true)")


def pytest_generate_tests(metafunc):
    chosen = any(m.args and m.args[0] == "store_kind" for m in metafunc.definition.iter_markers("parametrize"))
    if "store_kind" in metafunc.fixturenames and not chosen:   # a test may name its store itself
        choice = metafunc.config.getoption("--store")
        stores = [s for s in ("sqlite", "postgresql") if choice in (s, "both")]
        metafunc.parametrize("store_kind", [pytest.param(s, marks=[pytest.mark.postgres] if s == "postgresql"
                                                         else []) for s in stores], indirect=True)


@pytest.fixture
def store_kind(request) -> str:
    return request.param


@pytest.fixture
def store(request, store_kind, tmp_path) -> str:
    """Where the test's data lives: a fresh SQLite file, or a fresh database of the throwaway PostgreSQL."""
    if store_kind == "postgresql":
        return request.getfixturevalue("postgres_database")
    return str(tmp_path / "rollover.sqlite3")


@pytest.fixture
def storage(store):
    """A migrated ``Storage`` on the test's store (a module may define its own ``storage`` instead)."""
    from rollover.storage import Storage
    storage = Storage(store)
    storage.migrate()
    yield storage
    storage.dispose()


@pytest.fixture(scope="session")
def conversation_database(postgres_cluster) -> Iterator[tuple[str, object, str]]:
    """One migrated PostgreSQL database the conversations share, emptied before each (a fresh database per
    test costs a second of createdb and migrations; emptying it costs milliseconds)."""
    import psycopg

    from rollover.storage import Storage
    url = postgres_cluster.create_database("conversations")
    storage = Storage(url)
    storage.migrate()
    storage.dispose()
    with psycopg.connect(url, autocommit=True) as cleaner:
        # The audit log refuses TRUNCATE by trigger; replica mode keeps triggers quiet for this session only.
        cleaner.execute("SET session_replication_role = replica")
        # Every table the migrations made (a table added later is emptied too), not the migrations' own record.
        tables = ", ".join(row[0] for row in cleaner.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename <> 'migrations' "
            "ORDER BY tablename"))
        yield url, cleaner, tables


@pytest.fixture
def chat_store(request, store_kind, tmp_path) -> str:
    """The store of a conversation: a fresh SQLite file, or the emptied shared PostgreSQL database."""
    if store_kind == "sqlite":
        return str(tmp_path / "rollover.sqlite3")
    url, cleaner, tables = request.getfixturevalue("conversation_database")
    cleaner.execute(f"TRUNCATE {tables} RESTART IDENTITY")
    return url


@pytest.fixture
def make_chat(local_webex, tmp_path, chat_store):
    """A conversation with setting overrides, e.g. make_chat(allow_bots=True) or make_chat(graph=graph)."""
    made: list[Conversation] = []

    def make(graph=None, **overrides):
        made.append(Conversation(local_webex, tmp_path, overrides, graph, database=chat_store))
        return made[-1]
    yield make
    for conversation in made:
        conversation.close()


@pytest.fixture
def local_graph():
    """An empty local Graph tenant on 127.0.0.1 (seed it with add_saml_app / add_signing_certificate)."""
    from fakes.graph import LocalGraph
    with LocalGraph() as graph:
        yield graph


@pytest.fixture
def graph(local_graph):
    return local_graph


@pytest.fixture
def client(graph):
    """The real Graph client (msgraph-sdk) against the local Graph; quick retries keep fault tests fast."""
    from rollover.integrations.entra_client import EntraClient
    with EntraClient(graph.base_url, max_retries=2, retry_delay=0) as entra:
        yield entra


@pytest.fixture
def demo_graph():
    """The local Graph seeded with scenarios/demo-tenant.yaml (a Webex app expiring in 20 days, ...)."""
    from fakes.graph import LocalGraph
    scenario = Path(__file__).resolve().parents[1] / "fakes" / "scenarios" / "demo-tenant.yaml"
    with LocalGraph.from_scenario(scenario) as graph:
        yield graph


@pytest.fixture
def graph_chat(make_chat, demo_graph) -> Conversation:
    return make_chat(graph=demo_graph)
