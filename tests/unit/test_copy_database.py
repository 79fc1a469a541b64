"""`bot.py copy-database`: an SQLite install's data moves into PostgreSQL, every table, verified by counts."""

import pytest

import bot
from rollover.storage import CertificateRecord, ReminderSubscription, RotationChange, Storage
from rollover.storage.copy import TABLES

pytestmark = pytest.mark.postgres


def old_install(path) -> Storage:
    """An SQLite install with something in every table."""
    storage = Storage(path)
    storage.migrate()
    for n in range(4):
        storage.events.record(f"messages:M{n}", "messages", "created", {"data": {"id": f"M{n}"}}, now=100 + n)
        if n < 3:
            storage.events.admit_received()   # M3 stays in the spool (acknowledged, no worker came yet)
    storage.outbox.record("messages:M0", 0, "REPLY-1")
    source = storage.tracking.upsert_source(room_id="room", kind="file", location="idp.xml", label="IdP",
                                            added_by="alice@example.com", content=b"<xml/>\x00\xff", now=100)
    storage.tracking.replace_certificates(source.id, [CertificateRecord(
        sha1="AB" * 20, sha256="CD" * 32, entity_id="https://idp", role="idp", use="signing", subject="CN=idp",
        not_before=0.5, not_after=1767225600.123456, active=None, details={"status": "ok"})], now=100)
    storage.tracking.save_entra_app(sp_id="sp-1", app_id="app-1", display_name="Webex", facts={"a": 1}, now=100)
    storage.reminders.save_subscription(ReminderSubscription("room", True, (30, 7), "09:00", "UTC", 1.0, "alice", 1.0))
    storage.reminders.plan([("room", "AB" * 20, "threshold", 30)], {"room": "2026-01-01"}, now=100)
    storage.reminders.snooze("room", "AB" * 20, until=200, by="bob", card_message_id="C1", event_key="e", now=100)
    rotation_id = storage.rotations.create(kind="entra-signing", app_key="sp-1", app_name="Webex", room_id="room",
                                           requested_by="alice@example.com", marker="m1",
                                           state="awaiting-create-approval", plan={"p": 1}, data={}, deadline=None,
                                           event_key="e1", now=100.0)
    pending = RotationChange(state="awaiting-create-approval", data={}, deadline=None, finished=False,
                             event_key="e2", now=101.0, state_changed=False)
    storage.rotations.approve(rotation_id, 1, "bob@example.com", required=2, approved=pending, pending=pending,
                              lease_owner="x", lease_until=0, now=0)
    storage.audit.append(at=1.0, room_id="room", rotation_id=rotation_id, app="Webex", actor="alice@example.com",
                         action="requested", detail="d", before=None, after={"active": "AB"}, requests=["POST x"])
    return storage


def test_every_table_is_copied_with_its_ids_and_the_counts_are_checked(tmp_path, postgres_database, capsys):
    old = old_install(tmp_path / "old.sqlite3")
    assert bot.main(["copy-database", str(tmp_path / "old.sqlite3"), "--to", postgres_database]) == 0
    output = capsys.readouterr().out
    assert "the counts of every table match" in output
    assert "events: 4 rows" in output    # the spooled M3 joined the file's events before the copy
    new = Storage(postgres_database)
    for table, _ in TABLES:
        assert new.db.execute(f"SELECT count(*) FROM {table}").fetchone() == \
            old.db.execute(f"SELECT count(*) FROM {table}").fetchone(), table
    assert new.tracking.sources() == old.tracking.sources()                  # bytes, NUL included
    assert new.tracking.certificates() == old.tracking.certificates()        # epoch seconds to the microsecond
    assert new.rotations.all() == old.rotations.all()
    assert new.rotations.approvals(1, 1) == old.rotations.approvals(1, 1)
    assert new.audit.entries() == old.audit.entries()
    assert new.reminders.marks("room") == old.reminders.marks("room")
    assert new.events.claim("w", 30, now=1000).key == "messages:M0"   # and M3 is among the events behind it
    # The identities go on after the copied ids.
    assert new.audit.append(at=2.0, room_id="room", rotation_id=None, app="", actor="a", action="refused",
                            detail="", before=None, after=None, requests=[]) == 2
    assert new.db.execute("SELECT max(seq) FROM events").fetchone() == (4,)
    assert new.events.record("messages:M9", "messages", "created", {"data": {"id": "M9"}})
    assert new.db.execute("SELECT key FROM event_inbox").fetchall() == [("messages:M9",)]
    new.dispose()


def test_the_copy_goes_into_an_empty_database_only(tmp_path, postgres_database, capsys):
    old_install(tmp_path / "old.sqlite3")
    target = Storage(postgres_database)
    target.migrate()
    target.events.record("messages:LIVE", "messages", "created", {"data": {"id": "LIVE"}})
    assert bot.main(["copy-database", str(tmp_path / "old.sqlite3"), "--to", postgres_database]) == 1
    assert "already holds data (tables event_inbox)" in capsys.readouterr().err
    assert target.events.count("pending") == 1
    target.dispose()


def test_a_copy_whose_counts_differ_is_rolled_back(tmp_path, postgres_database, monkeypatch):
    from rollover.errors import UserError
    from rollover.storage import copy
    old = old_install(tmp_path / "old.sqlite3")
    real_count = copy.count
    monkeypatch.setattr(copy, "count", lambda storage, table: real_count(storage, table)
                        + (1 if storage is old and table == "audit_log" else 0))
    target = Storage(postgres_database)
    with pytest.raises(UserError, match=r"rolled back: the counts differ for audit_log \(2 in the file, 1 copied\)"):
        copy.copy_store(old, target)
    assert target.db.execute("SELECT count(*) FROM events").fetchone() == (0,)
    target.dispose()
