"""Named migrations, applied in order exactly once, also when several processes start together.

Append only: a name, once released, never changes meaning. ``migrate`` takes the store's migration
lock first (SQLite: the write lock, BEGIN IMMEDIATE; PostgreSQL: an advisory transaction lock) and only
then reads which migrations are applied: a process that started at the same moment waits, then finds
them applied and does nothing. (Checking first and locking later let two processes both decide to
apply, and one failed with "database is locked" or "table already exists".)

Each migration is one text for both stores; only the column types differ (``db.types``: SQLite's
INTEGER PRIMARY KEY and REAL, PostgreSQL's identity BIGINT and DOUBLE PRECISION) and the append-only
audit triggers, which each store writes its own way. Booleans are INTEGER 0/1 on both.
"""

from __future__ import annotations

import json
import time
from typing import Callable

from rollover.storage.connection import Database

Migration = Callable[[Database], None]


def _create_events(db: Database) -> None:
    t = db.types
    # One row per Webex webhook delivery, keyed by resource + data.id so a redelivery is a no-op.
    db.execute(f"""
        CREATE TABLE events (
            seq {t.seq},
            key TEXT NOT NULL UNIQUE,
            resource TEXT NOT NULL,
            event TEXT NOT NULL,
            payload TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending',      -- pending | done | failed
            attempts INTEGER NOT NULL DEFAULT 0,
            available_at {t.float} NOT NULL,                  -- epoch seconds; retries wait until then
            lease_owner TEXT,
            lease_until {t.float},
            received_at {t.float} NOT NULL,
            finished_at {t.float},
            last_error TEXT
        )""")
    db.execute("CREATE INDEX events_ready ON events (status, available_at)")


def _create_outbox(db: Database) -> None:
    t = db.types
    # Every message the bot posts while handling an event, by position: a retried event skips
    # the posts that already went out, so a reply is sent once even when a later post failed.
    db.execute(f"""
        CREATE TABLE outbox (
            event_key TEXT NOT NULL,
            position INTEGER NOT NULL,
            message_id TEXT NOT NULL,
            sent_at {t.float} NOT NULL,
            PRIMARY KEY (event_key, position)
        )""")


def _create_tracking(db: Database) -> None:
    t = db.types
    # A source is something a space asked the bot to watch: a dropped file, a metadata URL, an Entra
    # app. Its certificates are re-derived on every read; ones no longer in the source stay as
    # history with present = 0 (so a rotated-away certificate gets no more reminders).
    db.execute(f"""
        CREATE TABLE sources (
            id {t.id},
            room_id TEXT NOT NULL,
            kind TEXT NOT NULL,                 -- file | url | entra-app
            location TEXT NOT NULL,             -- file name, URL, or service principal id
            label TEXT NOT NULL,
            added_by TEXT NOT NULL,
            added_at {t.float} NOT NULL,
            read_at {t.float},
            error TEXT,
            content {t.bytes},                       -- the document as read (public certificates/metadata only)
            UNIQUE (room_id, kind, location)
        )""")
    db.execute(f"""
        CREATE TABLE tracked_certificates (
            id {t.id},
            source_id {t.ref} NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
            sha1 TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            entity_id TEXT NOT NULL,            -- '' when none (NULLs would defeat the UNIQUE key)
            role TEXT NOT NULL,                 -- idp | sp | ''
            use TEXT NOT NULL,                  -- signing | encryption | ''
            subject TEXT NOT NULL,
            not_before {t.float} NOT NULL,
            not_after {t.float} NOT NULL,
            active INTEGER,                     -- Entra: 1 = the app's active signing certificate
            details TEXT NOT NULL,              -- the health report as JSON
            first_seen {t.float} NOT NULL,
            last_seen {t.float} NOT NULL,
            present INTEGER NOT NULL DEFAULT 1,
            UNIQUE (source_id, sha1, entity_id, role, use)
        )""")
    db.execute("CREATE INDEX tracked_by_expiry ON tracked_certificates (present, not_after)")
    db.execute(f"""
        CREATE TABLE entra_apps (
            sp_id TEXT PRIMARY KEY,
            app_id TEXT NOT NULL,
            display_name TEXT NOT NULL,
            facts TEXT NOT NULL,                -- what the diagnosis and cards need, as JSON
            refreshed_at {t.float} NOT NULL
        )""")


def _create_reminders(db: Database) -> None:
    t = db.types
    # A space's reminder subscription. last_slot is the local date whose daily slot was handled last:
    # each local day is decided once, whatever the sweep interval or a daylight-saving change.
    db.execute(f"""
        CREATE TABLE reminder_subscriptions (
            room_id TEXT PRIMARY KEY,
            enabled INTEGER NOT NULL,
            thresholds TEXT NOT NULL,           -- days before expiry, descending, comma-separated
            local_time TEXT NOT NULL,           -- HH:MM in time_zone
            time_zone TEXT NOT NULL,            -- IANA name
            enabled_at {t.float} NOT NULL,
            changed_by TEXT NOT NULL,
            changed_at {t.float} NOT NULL,
            last_slot TEXT                      -- YYYY-MM-DD, local
        )""")
    # Snooze and acknowledgement, per space and certificate (by SHA-1: one certificate listed in two
    # sources, or twice in one metadata document, is one certificate to remind about).
    db.execute(f"""
        CREATE TABLE reminder_marks (
            room_id TEXT NOT NULL,
            sha1 TEXT NOT NULL,
            snoozed_until {t.float},
            snoozed_by TEXT,
            snoozed_from_message TEXT,          -- the card whose button snoozed it (a second click is a no-op)
            acknowledged_by TEXT,
            acknowledged_at {t.float},
            PRIMARY KEY (room_id, sha1)
        )""")
    # The reminder outbox: one row per (space, subject, kind, step), planned, then claimed, then sent.
    # The UNIQUE key is what makes a reminder go out once, whichever process planned it.
    db.execute(f"""
        CREATE TABLE reminders (
            id {t.id},
            room_id TEXT NOT NULL,
            subject TEXT NOT NULL,              -- certificate SHA-1; '' for a digest
            kind TEXT NOT NULL,                 -- threshold | expired | digest
            step INTEGER NOT NULL,              -- threshold: days; expired, digest: local date ordinal
            -- planned | posting | sent | failed | superseded | dropped | cancelled
            status TEXT NOT NULL DEFAULT 'planned',
            attempts INTEGER NOT NULL DEFAULT 0,
            planned_at {t.float} NOT NULL,
            available_at {t.float} NOT NULL,         -- a failed post waits until then
            claimed_by TEXT,
            claimed_until {t.float},                 -- wall-clock epoch; an expired claim is a crashed poster
            message_id TEXT,
            sent_at {t.float},
            last_error TEXT,
            UNIQUE (room_id, subject, kind, step)
        )""")
    db.execute("CREATE INDEX reminders_ready ON reminders (status, available_at)")
    # Named leases: only one process runs a reminder sweep at a time.
    db.execute(f"CREATE TABLE scheduler_leases (name TEXT PRIMARY KEY, owner TEXT NOT NULL, until {t.float} NOT NULL)")


def _index_reminder_candidates(db: Database) -> None:
    # Covers the reminder decision's scan (expiring, present, in use): no table lookup per certificate.
    db.execute("CREATE INDEX tracked_due ON tracked_certificates (present, not_after, active, source_id, sha1)")


def _create_rotations(db: Database) -> None:
    t = db.types
    # A rotation walks one Entra app through one certificate change (rotation.py declares its states).
    # `version` grows with every change and every card carries it: each transition is a compare-and-set
    # on it. The partial UNIQUE index is the rule "one open rotation per app".
    db.execute(f"""
        CREATE TABLE rotations (
            id {t.id},
            kind TEXT NOT NULL,                 -- entra-signing | webex-sp | entra-cleanup
            app_key TEXT NOT NULL,              -- the enterprise app's service principal id
            app_name TEXT NOT NULL,
            room_id TEXT NOT NULL,
            requested_by TEXT NOT NULL,         -- e-mail of the person who asked
            marker TEXT NOT NULL UNIQUE,        -- idempotency marker of its Graph writes
            state TEXT NOT NULL,
            version INTEGER NOT NULL DEFAULT 1,
            state_version INTEGER NOT NULL DEFAULT 1,   -- the version at which the state was entered
            plan TEXT NOT NULL,                 -- JSON, decided before the first approval
            data TEXT NOT NULL,                 -- JSON, what the steps found out and did
            deadline {t.float},                      -- when the current state times out
            card_message_id TEXT,               -- the card that shows the current state
            card_parent_id TEXT,                -- set once cards are threaded replies (a delete failed)
            announced_version INTEGER NOT NULL DEFAULT 0,
            last_event_key TEXT,                -- the event behind the last change: its retries are recognised
            lease_owner TEXT,                   -- the thread working on it now (wall-clock lease)
            lease_until {t.float},
            created_at {t.float} NOT NULL,
            updated_at {t.float} NOT NULL,
            finished_at {t.float}                    -- set on entering a terminal state
        )""")
    db.execute("CREATE UNIQUE INDEX rotations_one_open_per_app ON rotations (app_key) WHERE finished_at IS NULL")
    db.execute("CREATE INDEX rotations_by_room ON rotations (room_id, finished_at)")
    db.execute(f"""
        CREATE TABLE rotation_approvals (
            rotation_id {t.ref} NOT NULL REFERENCES rotations(id),
            state_version INTEGER NOT NULL,     -- approvals count within one entry into an approval state
            approver TEXT NOT NULL,
            approved_at {t.float} NOT NULL,
            PRIMARY KEY (rotation_id, state_version, approver)
        )""")


def _create_audit(db: Database) -> None:
    t = db.types
    # Append-only: Storage has no UPDATE or DELETE of it, and these triggers refuse both (and TRUNCATE).
    db.execute(f"""
        CREATE TABLE audit_log (
            id {t.seq},
            at {t.float} NOT NULL,
            room_id TEXT NOT NULL,
            rotation_id {t.ref},
            app TEXT NOT NULL,
            actor TEXT NOT NULL,                -- an e-mail address, or 'rollover' for the bot's own steps
            action TEXT NOT NULL,
            detail TEXT NOT NULL,
            before TEXT,                        -- JSON: thumbprints before a Graph write
            after TEXT,                         -- JSON: thumbprints after it
            requests TEXT NOT NULL              -- JSON: Graph requests as dry-run descriptions (no keys)
        )""")
    db.execute("CREATE INDEX audit_by_room ON audit_log (room_id, id)")
    if db.dialect == "postgresql":
        db.execute("CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS "
                   "$$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$")
        db.execute("CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log "
                   "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()")
        return
    for verb in ("UPDATE", "DELETE"):
        db.execute(f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
                   "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END")


def _record_reminder_mark_events(db: Database) -> None:
    # The event (click) that set a snooze or an acknowledgement: when that event is retried (its public
    # confirmation met a Webex 429), the mark it set already is recognised as its own.
    db.execute("ALTER TABLE reminder_marks ADD COLUMN snoozed_by_event TEXT")
    db.execute("ALTER TABLE reminder_marks ADD COLUMN acknowledged_by_event TEXT")


def _create_connection_status(db: Database) -> None:
    # The websocket holder's last report (connected since, last event, reconnects), for /healthz and about.
    db.execute(f"CREATE TABLE connection_status (name TEXT PRIMARY KEY, owner TEXT NOT NULL, status TEXT NOT NULL, "
               f"updated_at {db.types.float} NOT NULL)")


def _order_events(db: Database) -> None:
    # The ordering group of an event (``events.event_order_key``): workers handle several events at a time,
    # but never two of one group, and a group's events in the order they came.
    from rollover.storage.events import event_order_key
    db.execute("ALTER TABLE events ADD COLUMN order_key TEXT")
    pending = db.execute("SELECT key, resource, payload FROM events WHERE status = 'pending'").fetchall()
    db.executemany("UPDATE events SET order_key = ? WHERE key = ?",
                   [(event_order_key(resource, json.loads(payload)), key) for key, resource, payload in pending])
    # The claim walks the pending events in order and looks up each one's group: both stay small indexes.
    db.execute("CREATE INDEX events_pending ON events (seq) WHERE status = 'pending'")
    db.execute("CREATE INDEX events_pending_by_group ON events (order_key, seq) WHERE status = 'pending'")


def _mark_event_takeovers(db: Database) -> None:
    # Whether the latest claim of an event took it over from a worker whose lease ran out (metrics, diagnosis).
    db.execute("ALTER TABLE events ADD COLUMN taken_over INTEGER NOT NULL DEFAULT 0")


def _create_event_inbox(db: Database) -> None:
    # Where the acknowledgement records a delivery: a narrow table with only its unique key indexed, so the
    # commit a webhook waits for writes two pages, not the six of an insert into ``events`` (its sequence,
    # key and three claim indexes). Workers move its rows into ``events`` before they claim.
    t = db.types
    db.execute(f"CREATE TABLE event_inbox (seq {t.id}, key TEXT NOT NULL UNIQUE, resource TEXT NOT NULL, "
               f"event TEXT NOT NULL, payload TEXT NOT NULL, order_key TEXT, received_at {t.float} NOT NULL)")


def _index_claimable_reminders(db: Database) -> None:
    # A claim walks the reminders that can be claimed in id order and takes the first one due: without this,
    # each claim sorted every planned reminder, so a sweep's claims grew with the square of its reminders.
    # (reminders.CLAIMABLE_REMINDERS repeats the condition: a claim names it so SQLite sees the index applies.)
    db.execute("CREATE INDEX reminders_claimable ON reminders (id) WHERE status IN ('planned', 'posting')")


def _create_event_spool(db: Database) -> None:
    # How far the workers have read an SQLite store's acknowledgement spool (storage.spool): one row, naming
    # the file by its inode and the bytes before the position, so a file emptied or replaced under the store
    # is read from its start. Unused on PostgreSQL, whose acknowledgements go into event_inbox.
    db.execute(f"CREATE TABLE event_spool (id INTEGER PRIMARY KEY CHECK (id = 1), inode BIGINT NOT NULL, "
               f"read_to BIGINT NOT NULL, tail {db.types.bytes} NOT NULL)")


MIGRATIONS: list[tuple[str, Migration]] = [
    ("0001_events", _create_events),
    ("0002_outbox", _create_outbox),
    ("0003_tracking", _create_tracking),
    ("0004_rotations", _create_rotations),
    ("0005_audit", _create_audit),
    ("0006_reminders", _create_reminders),
    ("0007_reminder_candidates_index", _index_reminder_candidates),
    ("0008_reminder_mark_events", _record_reminder_mark_events),
    ("0009_connection_status", _create_connection_status),
    ("0010_event_order", _order_events),
    ("0011_event_takeovers", _mark_event_takeovers),
    ("0012_event_inbox", _create_event_inbox),
    ("0013_reminders_claimable", _index_claimable_reminders),
    ("0014_event_spool", _create_event_spool),
]


def migrate(database: Database) -> list[str]:
    """Apply pending migrations in order, all in one transaction under the migration lock; returns the
    names applied now."""
    db = database
    with database.migration_lock():
        db.execute(f"CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at {db.types.float} "
                   "NOT NULL)")
        applied = {row[0] for row in db.execute("SELECT name FROM migrations")}
        applied_now = []
        for name, migration in MIGRATIONS:
            if name in applied:
                continue
            migration(db)
            db.execute("INSERT INTO migrations (name, applied_at) VALUES (?, ?)", [name, time.time()])
            applied_now.append(name)
    return applied_now
