"""`bot.py demo` with DATABASE_URL set plays the whole demo on that PostgreSQL, in a schema of its own that is
dropped afterwards: the database's own tables are never touched."""

import psycopg
import pytest

import bot

pytestmark = pytest.mark.postgres


def test_the_demo_runs_on_database_url_and_leaves_the_database_as_it_was(postgres_database, monkeypatch, capsys):
    with psycopg.connect(postgres_database, autocommit=True) as connection:
        connection.execute("CREATE TABLE events (mine TEXT)")           # the user's own table of that name
    monkeypatch.delenv("ROLLOVER_DATABASE", raising=False)
    monkeypatch.setenv("DATABASE_URL", postgres_database)
    assert bot.main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "database PostgreSQL rollover@127.0.0.1:" in out.splitlines()[0]
    assert "Database: PostgreSQL" in out                                     # `about` names the store
    assert "the PostgreSQL event queue and the worker" in out
    with psycopg.connect(postgres_database) as connection:
        schemas = connection.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE 'rollover_demo%'")
        assert schemas.fetchall() == []
        assert connection.execute("SELECT count(*) FROM events").fetchone() == (0,)
