"""Fixtures: the local Webex and Graph, and conversations with the bot (``fakes.conversation``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fakes.conversation import SECRET, Conversation, Posted  # noqa: F401  (tests import them from here)
from fakes.webex import LocalWebex
from tests.support.postgres import postgres_cluster, postgres_database, postgres_url  # noqa: F401  (fixtures)

SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture
def local_webex():
    with LocalWebex(SHARED / "reference" / "adaptive-card-1.3.0.schema.json") as webex:
        yield webex


@pytest.fixture
def chat(make_chat) -> Conversation:
    return make_chat()


@pytest.fixture
def make_chat(local_webex, tmp_path):
    """A conversation with setting overrides, e.g. make_chat(allow_bots=True) or make_chat(graph=graph)."""
    made: list[Conversation] = []

    def make(graph=None, **overrides):
        made.append(Conversation(local_webex, tmp_path, overrides, graph))
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
