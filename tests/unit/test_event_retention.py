"""Events finished longer ago than ROLLOVER_EVENT_RETENTION_DAYS are deleted with their outbox rows; nothing
pending, recent or belonging to a reminder is touched (both stores)."""

import logging

import pytest

from rollover import scheduling
from rollover.pipeline.retention import DAY_SECONDS, prune_finished_events
from rollover.settings import load_config
from rollover.storage import Storage

NOW = 1_800_000_000.0


def handled(storage, name, *, finished_days_ago, status="done"):
    key = f"messages:{name}"
    storage.events.record(key, "messages", "created", {"data": {"id": name}}, now=NOW - 60 * DAY_SECONDS)
    event = storage.events.claim("w", 30, now=NOW - 60 * DAY_SECONDS)
    assert event.key == key
    storage.outbox.record(key, 0, f"reply-to-{name}")
    storage.events.finish(key, "w", status, now=NOW - finished_days_ago * DAY_SECONDS)
    return key


def keys(storage):
    return sorted(row[0] for row in storage.db.execute("SELECT key FROM events UNION ALL SELECT key FROM event_inbox"))


def test_only_events_finished_before_the_retention_go_and_their_posts_with_them(storage):
    old_done = handled(storage, "old-done", finished_days_ago=31)
    old_failed = handled(storage, "old-failed", finished_days_ago=45, status="failed")
    recent = handled(storage, "recent", finished_days_ago=29)
    for name in ("running", "waiting"):
        storage.events.record(f"messages:{name}", "messages", "created", {"data": {"id": name}},
                              now=NOW - 50 * DAY_SECONDS)
    assert storage.events.claim("w", 30, now=NOW).key == "messages:running"   # old, but still being handled
    storage.outbox.record("reminder:7", 0, "a reminder card")              # not an event's post
    assert prune_finished_events(storage, NOW, retention_days=30) == 2
    assert keys(storage) == ["messages:recent", "messages:running", "messages:waiting"]
    assert storage.outbox.sent(old_done, 0) is None and storage.outbox.sent(old_failed, 0) is None
    assert storage.outbox.sent(recent, 0) == "reply-to-recent" and storage.outbox.sent("reminder:7", 0)
    assert storage.events.backlog(NOW)["failed"] == 0                      # an old failure no longer counts
    storage.events.record(recent, "messages", "created", {})               # a redelivery within the retention
    storage.events.admit_all()
    assert keys(storage) == ["messages:recent", "messages:running", "messages:waiting"]   # still a duplicate
    assert prune_finished_events(storage, NOW, retention_days=30) == 0


def test_a_large_backlog_goes_in_batches(storage):
    for n in range(7):
        handled(storage, f"m{n}", finished_days_ago=60)
    transactions = []
    real = storage.transaction
    storage.transaction = lambda: transactions.append(1) or real()
    assert prune_finished_events(storage, NOW, retention_days=30, batch=3) == 7
    assert len(transactions) == 3 and keys(storage) == []


def test_the_retention_is_a_setting_of_whole_days():
    assert load_config({}).event_retention_days == 30
    assert load_config({"ROLLOVER_EVENT_RETENTION_DAYS": "7"}).event_retention_days == 7
    with pytest.raises(Exception, match="ROLLOVER_EVENT_RETENTION_DAYS"):
        load_config({"ROLLOVER_EVENT_RETENTION_DAYS": "0"})


def test_the_hourly_job_logs_what_it_deleted_and_survives_a_failure(tmp_path, caplog):
    storage = Storage(tmp_path / "bot.sqlite3")
    storage.migrate()
    handled(storage, "old", finished_days_ago=400)

    class Services:
        config = load_config({})
    Services.storage = storage
    with caplog.at_level(logging.INFO):
        scheduling.scheduled_event_pruning(Services)
    assert "deleted 1 event finished more than 30 days ago" in caplog.text
    scheduling.scheduled_event_pruning(object())                  # not services at all: logged, not raised
    assert "deleting old events failed" in caplog.text
