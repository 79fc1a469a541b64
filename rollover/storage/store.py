"""The only module that speaks SQL.

SQLite through sqlite-utils: one connection per thread (SQLite connections must
not be shared across threads), WAL so the webhook view and the workers do not
block each other, and named migrations applied in order exactly once.

Durability: a webhook event is acknowledged only after its row is committed.
With WAL and ``synchronous=NORMAL`` a committed transaction survives a killed
process (only a power loss could roll back the last transactions), which is the
guarantee the acknowledgement needs at a fraction of FULL's cost.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, NamedTuple

import sqlite_utils

Migration = Callable[[sqlite_utils.Database], None]
ACK_LOCK_WAIT_SECONDS = 10.0


# --- migrations: append only; a name, once released, never changes meaning -------------------

def _create_events(db: sqlite_utils.Database) -> None:
    # One row per Webex webhook delivery, keyed by resource + data.id so a redelivery is a no-op.
    db.execute("""
        CREATE TABLE events (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            key TEXT NOT NULL UNIQUE,
            resource TEXT NOT NULL,
            event TEXT NOT NULL,
            payload TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending',      -- pending | done | failed
            attempts INTEGER NOT NULL DEFAULT 0,
            available_at REAL NOT NULL,                  -- epoch seconds; retries wait until then
            lease_owner TEXT,
            lease_until REAL,
            received_at REAL NOT NULL,
            finished_at REAL,
            last_error TEXT
        )""")
    db.execute("CREATE INDEX events_ready ON events (status, available_at)")


def _create_outbox(db: sqlite_utils.Database) -> None:
    # Every message the bot posts while handling an event, by position: a retried event skips
    # the posts that already went out, so a reply is sent once even when a later post failed.
    db.execute("""
        CREATE TABLE outbox (
            event_key TEXT NOT NULL,
            position INTEGER NOT NULL,
            message_id TEXT NOT NULL,
            sent_at REAL NOT NULL,
            PRIMARY KEY (event_key, position)
        )""")


def _create_tracking(db: sqlite_utils.Database) -> None:
    # A source is something a space asked the bot to watch: a dropped file, a metadata URL, an Entra
    # app. Its certificates are re-derived on every read; ones no longer in the source stay as
    # history with present = 0 (so a rotated-away certificate gets no more reminders).
    db.execute("""
        CREATE TABLE sources (
            id INTEGER PRIMARY KEY,
            room_id TEXT NOT NULL,
            kind TEXT NOT NULL,                 -- file | url | entra-app
            location TEXT NOT NULL,             -- file name, URL, or service principal id
            label TEXT NOT NULL,
            added_by TEXT NOT NULL,
            added_at REAL NOT NULL,
            read_at REAL,
            error TEXT,
            content BLOB,                       -- the document as read (public certificates/metadata only)
            UNIQUE (room_id, kind, location)
        )""")
    db.execute("""
        CREATE TABLE tracked_certificates (
            id INTEGER PRIMARY KEY,
            source_id INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
            sha1 TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            entity_id TEXT NOT NULL,            -- '' when none (NULLs would defeat the UNIQUE key)
            role TEXT NOT NULL,                 -- idp | sp | ''
            use TEXT NOT NULL,                  -- signing | encryption | ''
            subject TEXT NOT NULL,
            not_before REAL NOT NULL,
            not_after REAL NOT NULL,
            active INTEGER,                     -- Entra: 1 = the app's active signing certificate
            details TEXT NOT NULL,              -- the health report as JSON
            first_seen REAL NOT NULL,
            last_seen REAL NOT NULL,
            present INTEGER NOT NULL DEFAULT 1,
            UNIQUE (source_id, sha1, entity_id, role, use)
        )""")
    db.execute("CREATE INDEX tracked_by_expiry ON tracked_certificates (present, not_after)")
    db.execute("""
        CREATE TABLE entra_apps (
            sp_id TEXT PRIMARY KEY,
            app_id TEXT NOT NULL,
            display_name TEXT NOT NULL,
            facts TEXT NOT NULL,                -- what the diagnosis and cards need, as JSON
            refreshed_at REAL NOT NULL
        )""")


def _create_reminders(db: sqlite_utils.Database) -> None:
    # A space's reminder subscription. last_slot is the local date whose daily slot was handled last:
    # each local day is decided once, whatever the sweep interval or a daylight-saving change.
    db.execute("""
        CREATE TABLE reminder_subscriptions (
            room_id TEXT PRIMARY KEY,
            enabled INTEGER NOT NULL,
            thresholds TEXT NOT NULL,           -- days before expiry, descending, comma-separated
            local_time TEXT NOT NULL,           -- HH:MM in time_zone
            time_zone TEXT NOT NULL,            -- IANA name
            enabled_at REAL NOT NULL,
            changed_by TEXT NOT NULL,
            changed_at REAL NOT NULL,
            last_slot TEXT                      -- YYYY-MM-DD, local
        )""")
    # Snooze and acknowledgement, per space and certificate (by SHA-1: one certificate listed in two
    # sources, or twice in one metadata document, is one certificate to remind about).
    db.execute("""
        CREATE TABLE reminder_marks (
            room_id TEXT NOT NULL,
            sha1 TEXT NOT NULL,
            snoozed_until REAL,
            snoozed_by TEXT,
            snoozed_from_message TEXT,          -- the card whose button snoozed it (a second click is a no-op)
            acknowledged_by TEXT,
            acknowledged_at REAL,
            PRIMARY KEY (room_id, sha1)
        )""")
    # The reminder outbox: one row per (space, subject, kind, step), planned, then claimed, then sent.
    # The UNIQUE key is what makes a reminder go out once, whichever process planned it.
    db.execute("""
        CREATE TABLE reminders (
            id INTEGER PRIMARY KEY,
            room_id TEXT NOT NULL,
            subject TEXT NOT NULL,              -- certificate SHA-1; '' for a digest
            kind TEXT NOT NULL,                 -- threshold | expired | digest
            step INTEGER NOT NULL,              -- threshold: days; expired, digest: local date ordinal
            status TEXT NOT NULL DEFAULT 'planned',  -- planned | posting | sent | failed | superseded | dropped | cancelled
            attempts INTEGER NOT NULL DEFAULT 0,
            planned_at REAL NOT NULL,
            available_at REAL NOT NULL,         -- a failed post waits until then
            claimed_by TEXT,
            claimed_until REAL,                 -- wall-clock epoch; an expired claim is a crashed poster
            message_id TEXT,
            sent_at REAL,
            last_error TEXT,
            UNIQUE (room_id, subject, kind, step)
        )""")
    db.execute("CREATE INDEX reminders_ready ON reminders (status, available_at)")
    # Named leases: only one process runs a reminder sweep at a time.
    db.execute("CREATE TABLE scheduler_leases (name TEXT PRIMARY KEY, owner TEXT NOT NULL, until REAL NOT NULL)")


def _index_reminder_candidates(db: sqlite_utils.Database) -> None:
    # Covers the reminder decision's scan (expiring, present, in use): no table lookup per certificate.
    db.execute("CREATE INDEX tracked_due ON tracked_certificates (present, not_after, active, source_id, sha1)")


def _create_rotations(db: sqlite_utils.Database) -> None:
    # A rotation walks one Entra app through one certificate change (rotation.py declares its states).
    # `version` grows with every change and every card carries it: each transition is a compare-and-set
    # on it. The partial UNIQUE index is the rule "one open rotation per app".
    db.execute("""
        CREATE TABLE rotations (
            id INTEGER PRIMARY KEY,
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
            deadline REAL,                      -- when the current state times out
            card_message_id TEXT,               -- the card that shows the current state
            card_parent_id TEXT,                -- set once cards are threaded replies (a delete failed)
            announced_version INTEGER NOT NULL DEFAULT 0,
            last_event_key TEXT,                -- the event behind the last change: its retries are recognised
            lease_owner TEXT,                   -- the thread working on it now (wall-clock lease)
            lease_until REAL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            finished_at REAL                    -- set on entering a terminal state
        )""")
    db.execute("CREATE UNIQUE INDEX rotations_one_open_per_app ON rotations (app_key) WHERE finished_at IS NULL")
    db.execute("CREATE INDEX rotations_by_room ON rotations (room_id, finished_at)")
    db.execute("""
        CREATE TABLE rotation_approvals (
            rotation_id INTEGER NOT NULL REFERENCES rotations(id),
            state_version INTEGER NOT NULL,     -- approvals count within one entry into an approval state
            approver TEXT NOT NULL,
            approved_at REAL NOT NULL,
            PRIMARY KEY (rotation_id, state_version, approver)
        )""")


def _create_audit(db: sqlite_utils.Database) -> None:
    # Append-only: Storage has no UPDATE or DELETE of it, and these triggers refuse both.
    db.execute("""
        CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at REAL NOT NULL,
            room_id TEXT NOT NULL,
            rotation_id INTEGER,
            app TEXT NOT NULL,
            actor TEXT NOT NULL,                -- an e-mail address, or 'rollover' for the bot's own steps
            action TEXT NOT NULL,
            detail TEXT NOT NULL,
            before TEXT,                        -- JSON: thumbprints before a Graph write
            after TEXT,                         -- JSON: thumbprints after it
            requests TEXT NOT NULL              -- JSON: Graph requests as dry-run descriptions (no keys)
        )""")
    db.execute("CREATE INDEX audit_by_room ON audit_log (room_id, id)")
    for verb in ("UPDATE", "DELETE"):
        db.execute(f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
                   "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END")


def _record_reminder_mark_events(db: sqlite_utils.Database) -> None:
    # The event (click) that set a snooze or an acknowledgement: when that event is retried (its public
    # confirmation met a Webex 429), the mark it set already is recognised as its own.
    db.execute("ALTER TABLE reminder_marks ADD COLUMN snoozed_by_event TEXT")
    db.execute("ALTER TABLE reminder_marks ADD COLUMN acknowledged_by_event TEXT")


MIGRATIONS: list[tuple[str, Migration]] = [
    ("0001_events", _create_events),
    ("0002_outbox", _create_outbox),
    ("0003_tracking", _create_tracking),
    ("0004_rotations", _create_rotations),
    ("0005_audit", _create_audit),
    ("0006_reminders", _create_reminders),
    ("0007_reminder_candidates_index", _index_reminder_candidates),
    ("0008_reminder_mark_events", _record_reminder_mark_events),
]


@dataclass(frozen=True)
class Source:
    id: int
    room_id: str
    kind: str
    location: str
    label: str
    added_by: str
    added_at: float
    read_at: float | None
    error: str | None
    content: bytes | None


@dataclass(frozen=True)
class CertificateRecord:
    """What a source read says about one certificate (input of ``replace_source_certificates``)."""

    sha1: str
    sha256: str
    entity_id: str
    role: str
    use: str
    subject: str
    not_before: float
    not_after: float
    active: bool | None
    details: dict[str, Any]


@dataclass(frozen=True)
class TrackedCertificate(CertificateRecord):
    """A stored certificate with the source it came from; ``present`` is False once it left that source."""

    id: int
    source_id: int
    room_id: str
    source_label: str
    source_kind: str
    present: bool


@dataclass(frozen=True)
class Event:
    seq: int
    key: str
    resource: str
    event: str
    payload: dict[str, Any]
    attempts: int

    @property
    def data_id(self) -> str:
        return self.payload.get("data", {}).get("id", "")


@dataclass(frozen=True)
class RotationRecord:
    """One rotation as stored (``rotation.py`` gives the states their meaning)."""

    id: int
    kind: str
    app_key: str
    app_name: str
    room_id: str
    requested_by: str
    marker: str
    state: str
    version: int
    state_version: int
    plan: dict[str, Any]
    data: dict[str, Any]
    deadline: float | None
    card_message_id: str | None
    card_parent_id: str | None
    announced_version: int
    last_event_key: str | None
    lease_owner: str | None
    lease_until: float | None
    created_at: float
    updated_at: float
    finished_at: float | None


@dataclass(frozen=True)
class RotationChange:
    """What one transition writes; applied only while the rotation is still at the expected version."""

    state: str
    data: dict[str, Any]
    deadline: float | None
    finished: bool
    event_key: str | None        # None keeps the event of the previous change
    now: float
    state_changed: bool = True   # False: same state (a partial approval), its approvals stay


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: float
    room_id: str
    rotation_id: int | None
    app: str
    actor: str
    action: str
    detail: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    requests: list[str]


class Storage:
    """Opens one connection per thread on first use; call ``migrate()`` once at start-up."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()

    @property
    def db(self) -> sqlite_utils.Database:
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = self._connect()
        return db

    @property
    def ack_db(self) -> sqlite_utils.Database:
        """The acknowledgement path's own connection: it waits for locks in fine steps (see record_event)."""
        db = getattr(self._local, "ack_db", None)
        if db is None:
            db = self._local.ack_db = self._connect(busy_timeout=0)
        return db

    def _connect(self, busy_timeout: float = 30) -> sqlite_utils.Database:
        # busy_timeout: wait for another writer's lock instead of failing at once.
        conn = sqlite3.connect(self.path, timeout=busy_timeout)
        db = sqlite_utils.Database(conn, execute_plugins=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA foreign_keys=ON")
        return db

    def close(self) -> None:
        for name in ("db", "ack_db"):
            db = getattr(self._local, name, None)
            if db is not None:
                db.close()
                setattr(self._local, name, None)

    # --- schema ----------------------------------------------------------------------------

    def migrate(self) -> list[str]:
        """Apply pending migrations in order; returns the names applied now."""
        db = self.db
        db.execute("CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at REAL NOT NULL)")
        applied_now = []
        for name, migration in MIGRATIONS:
            with db.atomic():
                # Checked inside the transaction: two processes starting together apply it once.
                if db.execute("SELECT 1 FROM migrations WHERE name = ?", [name]).fetchone():
                    continue
                migration(db)
                db.execute("INSERT INTO migrations (name, applied_at) VALUES (?, ?)", [name, time.time()])
                applied_now.append(name)
        return applied_now

    def transaction(self):
        """A context manager: the writes inside commit together or not at all (a savepoint when nested)."""
        return self.db.atomic()

    def ping(self) -> bool:
        return self.db.execute("SELECT 1").fetchone() == (1,)

    # --- webhook events --------------------------------------------------------------------

    def record_event(self, key: str, resource: str, event: str, payload: dict[str, Any],
                     now: float | None = None) -> bool:
        """Store a delivery durably; False when the same event was already recorded.

        SQLite's own busy handler sleeps 1, 2, 5, 10 … ms when another process holds the
        write lock; the insert itself takes ~0.05 ms, so waiting in 0.2 ms steps keeps the
        acknowledgement's tail latency close to a bare endpoint's.
        """
        now = time.time() if now is None else now
        row = [key, resource, event, json.dumps(payload, separators=(",", ":")), now, now]
        deadline = time.monotonic() + ACK_LOCK_WAIT_SECONDS
        while True:
            try:
                cursor = self.ack_db.execute(
                    "INSERT OR IGNORE INTO events (key, resource, event, payload, available_at, received_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)", row)
                return cursor.rowcount == 1
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(0.0002)

    def claim_event(self, owner: str, lease_seconds: float, now: float | None = None) -> Event | None:
        """Lease the oldest ready event to ``owner``; an expired lease (crashed worker) is reclaimable."""
        now = time.time() if now is None else now
        db = self.db
        with db.atomic():
            row = db.execute(
                "UPDATE events SET lease_owner = ?, lease_until = ?, attempts = attempts + 1 "
                "WHERE seq = (SELECT seq FROM events WHERE status = 'pending' AND available_at <= ? "
                "             AND (lease_until IS NULL OR lease_until < ?) ORDER BY seq LIMIT 1) "
                "RETURNING seq, key, resource, event, payload, attempts",
                [owner, now + lease_seconds, now, now]).fetchone()
        if row is None:
            return None
        seq, key, resource, event, payload, attempts = row
        return Event(seq, key, resource, event, json.loads(payload), attempts)

    def finish_event(self, key: str, owner: str, status: str = "done", error: str | None = None,
                     now: float | None = None) -> bool:
        """Mark done/failed; False if the lease was lost to another worker meanwhile."""
        now = time.time() if now is None else now
        cursor = self.db.execute(
            "UPDATE events SET status = ?, finished_at = ?, last_error = ?, lease_owner = NULL, "
            "lease_until = NULL WHERE key = ? AND lease_owner = ?", [status, now, error, key, owner])
        return cursor.rowcount == 1

    def extend_lease(self, key: str, owner: str, lease_until: float) -> bool:
        """Keep a long-running event ours; False once another worker has taken it over."""
        cursor = self.db.execute("UPDATE events SET lease_until = ? WHERE key = ? AND lease_owner = ?",
                                 [lease_until, key, owner])
        return cursor.rowcount == 1

    def retry_event_later(self, key: str, owner: str, available_at: float, error: str) -> bool:
        cursor = self.db.execute(
            "UPDATE events SET available_at = ?, last_error = ?, lease_owner = NULL, lease_until = NULL "
            "WHERE key = ? AND lease_owner = ?", [available_at, error, key, owner])
        return cursor.rowcount == 1

    def event_status(self, key: str) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT status, attempts, last_error FROM events WHERE key = ?", [key]).fetchone()
        return None if row is None else {"status": row[0], "attempts": row[1], "last_error": row[2]}

    def count_events(self, status: str) -> int:
        return self.db.execute("SELECT count(*) FROM events WHERE status = ?", [status]).fetchone()[0]

    def event_backlog(self, now: float) -> dict[str, Any]:
        """Pending and failed events and the age of the oldest pending one (for /healthz)."""
        pending, failed, oldest = self.db.execute(
            "SELECT sum(status = 'pending'), sum(status = 'failed'), min(CASE WHEN status = 'pending' "
            "THEN received_at END) FROM events").fetchone()
        return {"pending": pending or 0, "failed": failed or 0,
                "oldest_pending_seconds": round(now - oldest, 1) if oldest else 0}

    # --- outbox: exactly-once posting within a retried event ---------------------------------

    def sent_message(self, event_key: str, position: int) -> str | None:
        row = self.db.execute("SELECT message_id FROM outbox WHERE event_key = ? AND position = ?",
                              [event_key, position]).fetchone()
        return None if row is None else row[0]

    def record_sent_message(self, event_key: str, position: int, message_id: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO outbox (event_key, position, message_id, sent_at) "
                        "VALUES (?, ?, ?, ?)", [event_key, position, message_id, time.time()])

    # --- tracked sources and certificates ----------------------------------------------------

    _SOURCE_COLUMNS = "id, room_id, kind, location, label, added_by, added_at, read_at, error, content"
    _TRACKED_COLUMNS = ("c.id, c.source_id, s.room_id, s.label, s.kind, c.sha1, c.sha256, c.entity_id, c.role, "
                        "c.use, c.subject, c.not_before, c.not_after, c.active, c.details, c.present")

    def upsert_source(self, *, room_id: str, kind: str, location: str, label: str, added_by: str,
                      content: bytes | None, now: float, error: str | None = None) -> Source:
        """Create or refresh a source; re-reading the same location updates it instead of duplicating."""
        db = self.db
        with db.atomic():
            db.execute(
                "INSERT INTO sources (room_id, kind, location, label, added_by, added_at, read_at, error, content) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (room_id, kind, location) DO UPDATE SET label = excluded.label, "
                "read_at = excluded.read_at, error = excluded.error, "
                "content = COALESCE(excluded.content, sources.content)",
                [room_id, kind, location, label, added_by, now, now, error, content])
            row = db.execute(f"SELECT {self._SOURCE_COLUMNS} FROM sources WHERE room_id = ? AND kind = ? "
                             "AND location = ?", [room_id, kind, location]).fetchone()
        return Source(*row)

    def record_source_error(self, source_id: int, error: str, now: float) -> None:
        self.db.execute("UPDATE sources SET error = ?, read_at = ? WHERE id = ?", [error, now, source_id])

    def replace_source_certificates(self, source_id: int, records: list[CertificateRecord], now: float) -> None:
        """Make the source's present certificates exactly ``records``; the rest become history."""
        db = self.db
        with db.atomic():
            db.execute("UPDATE tracked_certificates SET present = 0 WHERE source_id = ?", [source_id])
            for r in records:
                db.execute(
                    "INSERT INTO tracked_certificates (source_id, sha1, sha256, entity_id, role, use, subject, "
                    "not_before, not_after, active, details, first_seen, last_seen, present) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1) "
                    "ON CONFLICT (source_id, sha1, entity_id, role, use) DO UPDATE SET "
                    "sha256 = excluded.sha256, subject = excluded.subject, not_before = excluded.not_before, "
                    "not_after = excluded.not_after, active = excluded.active, details = excluded.details, "
                    "last_seen = excluded.last_seen, present = 1",
                    [source_id, r.sha1, r.sha256, r.entity_id, r.role, r.use, r.subject, r.not_before,
                     r.not_after, None if r.active is None else int(r.active),
                     json.dumps(r.details, separators=(",", ":")), now, now])

    def sources(self, room_id: str | None = None, kind: str | None = None) -> list[Source]:
        where, params = _where({"room_id = ?": room_id, "kind = ?": kind})
        return [Source(*row) for row in self.db.execute(
            f"SELECT {self._SOURCE_COLUMNS} FROM sources{where} ORDER BY id", params)]

    def delete_source(self, source_id: int) -> None:
        self.db.execute("DELETE FROM sources WHERE id = ?", [source_id])

    def tracked_certificates(self, *, room_id: str | None = None, present_only: bool = True) -> list[TrackedCertificate]:
        where, params = _where({"s.room_id = ?": room_id, "c.present = 1": present_only or None})
        rows = self.db.execute(
            f"SELECT {self._TRACKED_COLUMNS} FROM tracked_certificates c JOIN sources s ON s.id = c.source_id"
            f"{where} ORDER BY c.not_after, c.id", params)
        return [_tracked(row) for row in rows]

    # --- Entra inventory ---------------------------------------------------------------------

    def save_entra_app(self, *, sp_id: str, app_id: str, display_name: str, facts: dict[str, Any],
                       now: float) -> None:
        self.db.execute(
            "INSERT INTO entra_apps (sp_id, app_id, display_name, facts, refreshed_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (sp_id) DO UPDATE SET app_id = excluded.app_id, display_name = excluded.display_name, "
            "facts = excluded.facts, refreshed_at = excluded.refreshed_at",
            [sp_id, app_id, display_name, json.dumps(facts, separators=(",", ":")), now])

    def entra_apps(self) -> list[dict[str, Any]]:
        return [{"sp_id": r[0], "app_id": r[1], "display_name": r[2], "facts": json.loads(r[3]),
                 "refreshed_at": r[4]}
                for r in self.db.execute("SELECT sp_id, app_id, display_name, facts, refreshed_at FROM entra_apps "
                                         "ORDER BY display_name COLLATE NOCASE")]

    def forget_entra_apps_except(self, sp_ids: list[str]) -> None:
        """Drop apps that left the inventory (deleted, or no longer SAML)."""
        placeholders = ",".join("?" for _ in sp_ids) or "''"
        self.db.execute(f"DELETE FROM entra_apps WHERE sp_id NOT IN ({placeholders})", sp_ids)

    # --- reminders (reminders.py): subscriptions, snooze/acknowledge marks, the outbox, the lease ---

    _SUBSCRIPTION_COLUMNS = ("room_id, enabled, thresholds, local_time, time_zone, enabled_at, changed_by, "
                             "changed_at, last_slot")

    def reminder_subscription(self, room_id: str) -> ReminderSubscription | None:
        row = self.db.execute(f"SELECT {self._SUBSCRIPTION_COLUMNS} FROM reminder_subscriptions WHERE room_id = ?",
                              [room_id]).fetchone()
        return None if row is None else _subscription(row)

    def save_reminder_subscription(self, subscription: ReminderSubscription) -> None:
        """Create or change a space's subscription; the slot already handled today stays handled."""
        s = subscription
        self.db.execute(
            f"INSERT INTO reminder_subscriptions ({self._SUBSCRIPTION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (room_id) DO UPDATE SET enabled = excluded.enabled, thresholds = excluded.thresholds, "
            "local_time = excluded.local_time, time_zone = excluded.time_zone, enabled_at = excluded.enabled_at, "
            "changed_by = excluded.changed_by, changed_at = excluded.changed_at",
            [s.room_id, int(s.enabled), ",".join(str(d) for d in s.thresholds), s.local_time, s.time_zone,
             s.enabled_at, s.changed_by, s.changed_at, s.last_slot])

    def enabled_reminder_subscriptions(self) -> list[ReminderSubscription]:
        """Every enabled subscription, each with the step of its latest digest (one query)."""
        rows = self.db.execute(
            f"SELECT {self._SUBSCRIPTION_COLUMNS}, (SELECT max(r.step) FROM reminders r WHERE r.room_id = "
            "sub.room_id AND r.subject = '' AND r.kind = 'digest') FROM reminder_subscriptions sub "
            "WHERE enabled = 1 ORDER BY room_id")
        return [_subscription(row[:-1], last_digest_step=row[-1]) for row in rows]

    def reminder_candidates(self, room_ids: list[str], expiring_before: float) -> list[ReminderCandidate]:
        """Present, in-use certificates of these spaces expiring before the horizon, with what was sent.

        One row per tracked certificate, by space and expiry, soonest (or expired) first; the caller folds
        rows of the same SHA-1 in a space together (they share expiry, marks and history). Inactive Entra
        certificates (active = 0) sign nothing, so their expiry breaks nothing and they are left out, also
        where another source of the space (Entra's federation metadata URL) lists them without that flag.
        """
        rows = self.db.execute(
            "SELECT s.room_id, c.sha1, c.not_after, m.snoozed_until, m.acknowledged_by, "
            "  (SELECT min(r.step) FROM reminders r WHERE r.room_id = s.room_id AND r.subject = c.sha1 "
            "   AND r.kind = 'threshold'), "
            "  (SELECT max(r.step) FROM reminders r WHERE r.room_id = s.room_id AND r.subject = c.sha1 "
            "   AND r.kind = 'expired') "
            "FROM tracked_certificates c JOIN sources s ON s.id = c.source_id "
            "LEFT JOIN reminder_marks m ON m.room_id = s.room_id AND m.sha1 = c.sha1 "
            "WHERE c.present = 1 AND c.not_after < ? AND (c.active IS NULL OR c.active = 1) "
            "  AND s.room_id IN (SELECT value FROM json_each(?)) "
            # Unary + keeps SQLite off tracked_due here (a scan of every present certificate per row): it
            # looks up the space's Entra-app sources, then (source_id, sha1) in the UNIQUE index.
            "  AND NOT EXISTS (SELECT 1 FROM sources xs JOIN tracked_certificates x ON x.source_id = xs.id "
            "                  WHERE xs.room_id = s.room_id AND xs.kind = 'entra-app' AND x.sha1 = c.sha1 "
            "                  AND +x.present = 1 AND +x.active = 0) "
            "ORDER BY s.room_id, c.not_after",
            [expiring_before, json.dumps(room_ids)])
        return list(map(ReminderCandidate._make, rows))

    def plan_reminders(self, due: list[tuple[str, str, str, int]], slots: dict[str, str], now: float) -> int:
        """Record (room, subject, kind, step) reminders as planned and the spaces' slots as handled, atomically.

        An older reminder about the same subject that is still unsent is superseded: after an outage the
        space gets the current reminder, not a backlog. Returns how many reminders were new.
        """
        db, planned = self.db, 0
        with db.atomic():
            for room_id, subject, kind, step in due:
                db.execute("UPDATE reminders SET status = 'superseded' WHERE room_id = ? AND subject = ? "
                           "AND status = 'planned' AND NOT (kind = ? AND step = ?)", [room_id, subject, kind, step])
                planned += db.execute(
                    "INSERT OR IGNORE INTO reminders (room_id, subject, kind, step, planned_at, available_at) "
                    "VALUES (?, ?, ?, ?, ?, ?)", [room_id, subject, kind, step, now, now]).rowcount
            db.conn.executemany("UPDATE reminder_subscriptions SET last_slot = ? WHERE room_id = ?",
                                [(day, room_id) for room_id, day in slots.items()])
        return planned

    def claim_reminder(self, owner: str, *, now: float, wall_now: float, claim_seconds: float) -> PlannedReminder | None:
        """Claim the oldest reminder ready to post; a claim left by a crashed poster is reclaimable."""
        with self.db.atomic():
            row = self.db.execute(
                "UPDATE reminders SET status = 'posting', claimed_by = ?, claimed_until = ?, attempts = attempts + 1 "
                "WHERE id = (SELECT id FROM reminders WHERE (status = 'planned' AND available_at <= ?) "
                "            OR (status = 'posting' AND claimed_until < ?) ORDER BY id LIMIT 1) "
                "RETURNING id, room_id, subject, kind, step, attempts",
                [owner, wall_now + claim_seconds, now, wall_now]).fetchone()
        return None if row is None else PlannedReminder(*row)

    def finish_reminder(self, reminder_id: int, owner: str, status: str, *, now: float,
                        message_id: str | None = None, error: str | None = None) -> bool:
        """sent / failed / dropped; False when the claim was lost to another poster meanwhile."""
        cursor = self.db.execute(
            "UPDATE reminders SET status = ?, message_id = ?, sent_at = ?, last_error = ?, claimed_by = NULL, "
            "claimed_until = NULL WHERE id = ? AND claimed_by = ? AND status = 'posting'",
            [status, message_id, now if status == "sent" else None, error, reminder_id, owner])
        return cursor.rowcount == 1

    def retry_reminder_later(self, reminder_id: int, owner: str, available_at: float, error: str) -> bool:
        cursor = self.db.execute(
            "UPDATE reminders SET status = 'planned', available_at = ?, last_error = ?, claimed_by = NULL, "
            "claimed_until = NULL WHERE id = ? AND claimed_by = ? AND status = 'posting'",
            [available_at, error, reminder_id, owner])
        return cursor.rowcount == 1

    def cancel_planned_reminders(self, room_id: str) -> int:
        return self.db.execute("UPDATE reminders SET status = 'cancelled' WHERE room_id = ? AND status = 'planned'",
                               [room_id]).rowcount

    def reminders(self, room_id: str | None = None) -> list[dict[str, Any]]:
        """Every reminder row (of a space), oldest first: what was planned and what became of it."""
        where, params = ("WHERE room_id = ?", [room_id]) if room_id is not None else ("", [])
        rows = self.db.execute(
            f"SELECT id, room_id, subject, kind, step, status, attempts, message_id, last_error FROM reminders "
            f"{where} ORDER BY id", params)
        keys = ("id", "room_id", "subject", "kind", "step", "status", "attempts", "message_id", "last_error")
        return [dict(zip(keys, row)) for row in rows]

    def reminder_marks(self, room_id: str) -> dict[str, ReminderMark]:
        rows = self.db.execute("SELECT sha1, snoozed_until, snoozed_by, acknowledged_by, acknowledged_at, "
                               "snoozed_by_event, acknowledged_by_event FROM reminder_marks WHERE room_id = ?",
                               [room_id])
        return {row[0]: ReminderMark(*row[1:]) for row in rows}

    def snooze_reminders(self, room_id: str, sha1: str, *, until: float, by: str, card_message_id: str,
                         event_key: str, now: float) -> bool:
        """Snooze unless already snoozed, or this card already snoozed it once; False = nothing changed."""
        cursor = self.db.execute(
            "INSERT INTO reminder_marks (room_id, sha1, snoozed_until, snoozed_by, snoozed_from_message, "
            "snoozed_by_event) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (room_id, sha1) DO UPDATE SET "
            "snoozed_until = excluded.snoozed_until, snoozed_by = excluded.snoozed_by, "
            "snoozed_from_message = excluded.snoozed_from_message, snoozed_by_event = excluded.snoozed_by_event "
            "WHERE (reminder_marks.snoozed_until IS NULL OR reminder_marks.snoozed_until <= ?) "
            "AND reminder_marks.snoozed_from_message IS NOT excluded.snoozed_from_message",
            [room_id, sha1, until, by, card_message_id, event_key, now])
        return cursor.rowcount == 1

    def acknowledge_reminders(self, room_id: str, sha1: str, *, by: str, event_key: str, now: float) -> bool:
        """Record who owns the certificate, once; False when it was already acknowledged."""
        cursor = self.db.execute(
            "INSERT INTO reminder_marks (room_id, sha1, acknowledged_by, acknowledged_at, acknowledged_by_event) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (room_id, sha1) DO UPDATE SET acknowledged_by = "
            "excluded.acknowledged_by, acknowledged_at = excluded.acknowledged_at, acknowledged_by_event = "
            "excluded.acknowledged_by_event WHERE reminder_marks.acknowledged_by IS NULL",
            [room_id, sha1, by, now, event_key])
        return cursor.rowcount == 1

    def acquire_lease(self, name: str, owner: str, *, seconds: float, wall_now: float) -> bool:
        """Take (or extend, for its owner) a named lease; False while another owner's lease runs."""
        cursor = self.db.execute(
            "INSERT INTO scheduler_leases (name, owner, until) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE "
            "SET owner = excluded.owner, until = excluded.until "
            "WHERE scheduler_leases.owner = excluded.owner OR scheduler_leases.until < ?",
            [name, owner, wall_now + seconds, wall_now])
        return cursor.rowcount == 1

    def release_lease(self, name: str, owner: str) -> None:
        self.db.execute("DELETE FROM scheduler_leases WHERE name = ? AND owner = ?", [name, owner])

    def seed_for_benchmark(self, sources: list[tuple], certificates: list[tuple]) -> None:
        """bench/reminder_sweep.py: bulk-insert sources (id, room_id, kind, location, label) and
        certificates (source_id, sha1, not_after, active) without reading any document."""
        with self.db.atomic():
            self.db.conn.executemany(
                "INSERT INTO sources (id, room_id, kind, location, label, added_by, added_at) "
                "VALUES (?, ?, ?, ?, ?, 'bench', 0)", sources)
            self.db.conn.executemany(
                "INSERT INTO tracked_certificates (source_id, sha1, sha256, entity_id, role, use, subject, "
                "not_before, not_after, active, details, first_seen, last_seen) "
                "VALUES (?, ?, '', '', 'idp', 'signing', 'CN=bench', 0, ?, ?, '{}', 0, 0)", certificates)

    # --- rotations (rotation.py): compare-and-set on the version, leases, approvals ------------------

    _ROTATION_COLUMNS = ("id, kind, app_key, app_name, room_id, requested_by, marker, state, version, "
                         "state_version, plan, data, deadline, card_message_id, card_parent_id, announced_version, "
                         "last_event_key, lease_owner, lease_until, created_at, updated_at, finished_at")
    # Nobody else works on the rotation: no lease, our own, or an expired one (a crashed process).
    _ROTATION_LEASE_FREE = "(lease_owner IS NULL OR lease_owner = ? OR lease_until < ?)"

    def create_rotation(self, *, kind: str, app_key: str, app_name: str, room_id: str, requested_by: str,
                        marker: str, state: str, plan: dict, data: dict, deadline: float | None,
                        event_key: str, now: float) -> int | None:
        """A new rotation; None when the app already has an open one (the partial UNIQUE index)."""
        try:
            cursor = self.db.execute(
                "INSERT INTO rotations (kind, app_key, app_name, room_id, requested_by, marker, state, plan, data, "
                "deadline, last_event_key, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [kind, app_key, app_name, room_id, requested_by, marker, state, json.dumps(plan), json.dumps(data),
                 deadline, event_key, now, now])
        except sqlite3.IntegrityError:
            return None
        return cursor.lastrowid

    def rotation(self, rotation_id: int) -> RotationRecord | None:
        row = self.db.execute(f"SELECT {self._ROTATION_COLUMNS} FROM rotations WHERE id = ?",
                              [rotation_id]).fetchone()
        return None if row is None else _rotation(row)

    def open_rotation_for_app(self, app_key: str) -> RotationRecord | None:
        row = self.db.execute(f"SELECT {self._ROTATION_COLUMNS} FROM rotations WHERE app_key = ? "
                              "AND finished_at IS NULL", [app_key]).fetchone()
        return None if row is None else _rotation(row)

    def rotations(self, *, room_id: str | None = None, open_only: bool = True) -> list[RotationRecord]:
        where, params = _where({"room_id = ?": room_id, "finished_at IS NULL": open_only or None})
        rows = self.db.execute(f"SELECT {self._ROTATION_COLUMNS} FROM rotations{where} ORDER BY id", params)
        return [_rotation(row) for row in rows]

    def rotations_to_sweep(self) -> list[RotationRecord]:
        """Open rotations, and finished ones whose last card has not been posted yet."""
        rows = self.db.execute(f"SELECT {self._ROTATION_COLUMNS} FROM rotations WHERE finished_at IS NULL "
                               "OR announced_version < version ORDER BY id")
        return [_rotation(row) for row in rows]

    def change_rotation(self, rotation_id: int, expected_version: int, change: RotationChange, *,
                        lease_owner: str, lease_until: float, now: float) -> bool:
        """Apply ``change`` only if the rotation is still at ``expected_version`` and nobody else holds its
        lease (compare-and-set); the lease passes to ``lease_owner``. ``now`` is wall-clock time."""
        cursor = self.db.execute(
            # In an UPDATE every expression sees the old row: `version + 1` is the new version.
            "UPDATE rotations SET state = ?, version = version + 1, "
            "state_version = CASE WHEN ? THEN version + 1 ELSE state_version END, data = ?, deadline = ?, "
            "finished_at = ?, last_event_key = COALESCE(?, last_event_key), lease_owner = ?, lease_until = ?, "
            f"updated_at = ? WHERE id = ? AND version = ? AND {self._ROTATION_LEASE_FREE}",
            [change.state, int(change.state_changed), json.dumps(change.data), change.deadline,
             change.now if change.finished else None, change.event_key, lease_owner, lease_until, change.now,
             rotation_id, expected_version, lease_owner, now])
        return cursor.rowcount == 1

    def approve_rotation(self, rotation_id: int, expected_version: int, approver: str, *, required: int,
                         approved: RotationChange, pending: RotationChange, lease_owner: str, lease_until: float,
                         now: float) -> int | None:
        """In one transaction: compare-and-set on the version, record the approval, then move on
        (``approved``) once ``required`` different people approved this step, else stay (``pending``).
        Returns the number of approvals; None when the rotation moved on or this person already approved."""
        db = self.db
        try:
            with db.atomic():
                # The write comes first, so the transaction holds the write lock from its first statement.
                if not self.change_rotation(rotation_id, expected_version, pending, lease_owner=lease_owner,
                                            lease_until=lease_until, now=now):
                    return None
                inserted = db.execute(
                    "INSERT OR IGNORE INTO rotation_approvals (rotation_id, state_version, approver, approved_at) "
                    "SELECT id, state_version, ?, ? FROM rotations WHERE id = ?", [approver, pending.now, rotation_id])
                if inserted.rowcount != 1:
                    raise _NotApplied()
                count = db.execute(
                    "SELECT count(*) FROM rotation_approvals a JOIN rotations r ON r.id = a.rotation_id "
                    "AND r.state_version = a.state_version WHERE r.id = ?", [rotation_id]).fetchone()[0]
                if count >= required:
                    self.change_rotation(rotation_id, expected_version + 1, approved, lease_owner=lease_owner,
                                         lease_until=lease_until, now=now)
                return count
        except _NotApplied:
            return None

    def rotation_approvals(self, rotation_id: int, state_version: int) -> list[tuple[str, float]]:
        return [tuple(row) for row in self.db.execute(
            "SELECT approver, approved_at FROM rotation_approvals WHERE rotation_id = ? AND state_version = ? "
            "ORDER BY approved_at", [rotation_id, state_version])]

    def claim_rotation(self, rotation_id: int, owner: str, lease_until: float, now: float) -> RotationRecord | None:
        """Take the rotation's lease unless another live thread holds it; returns the rotation as claimed."""
        with self.db.atomic():
            row = self.db.execute(
                f"UPDATE rotations SET lease_owner = ?, lease_until = ? WHERE id = ? AND {self._ROTATION_LEASE_FREE} "
                f"RETURNING {self._ROTATION_COLUMNS}", [owner, lease_until, rotation_id, owner, now]).fetchone()
        return None if row is None else _rotation(row)

    def release_rotation(self, rotation_id: int, owner: str) -> None:
        self.db.execute("UPDATE rotations SET lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ?",
                        [rotation_id, owner])

    def postpone_rotation(self, rotation_id: int, owner: str, until: float) -> None:
        """Keep every thread off the rotation until ``until`` (a step Graph could not do now)."""
        self.db.execute("UPDATE rotations SET lease_owner = 'postponed', lease_until = ? WHERE id = ? "
                        "AND lease_owner = ?", [until, rotation_id, owner])

    def save_rotation_data(self, rotation_id: int, owner: str, data: dict) -> bool:
        """Store a step's progress (before its Graph call); only the lease holder may."""
        cursor = self.db.execute("UPDATE rotations SET data = ? WHERE id = ? AND lease_owner = ?",
                                 [json.dumps(data), rotation_id, owner])
        return cursor.rowcount == 1

    def mark_rotation_announced(self, rotation_id: int, version: int, card_message_id: str,
                                card_parent_id: str | None) -> None:
        self.db.execute("UPDATE rotations SET announced_version = ?, card_message_id = ?, card_parent_id = ? "
                        "WHERE id = ? AND version = ?", [version, card_message_id, card_parent_id, rotation_id, version])

    # --- the audit log (audit.py): append-only, there is no update or delete ------------------------

    def append_audit(self, *, at: float, room_id: str, rotation_id: int | None, app: str, actor: str, action: str,
                     detail: str, before: dict | None, after: dict | None, requests: list[str]) -> int:
        cursor = self.db.execute(
            "INSERT INTO audit_log (at, room_id, rotation_id, app, actor, action, detail, before, after, requests) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [at, room_id, rotation_id, app, actor, action, detail, None if before is None else json.dumps(before),
             None if after is None else json.dumps(after), json.dumps(requests)])
        return cursor.lastrowid

    def audit_entries(self, *, room_id: str | None = None, rotation_id: int | None = None,
                      limit: int | None = None) -> list[AuditEntry]:
        """Oldest first; with ``limit``, the latest ``limit`` entries."""
        where, params = _where({"room_id = ?": room_id, "rotation_id = ?": rotation_id})
        rows = self.db.execute(
            "SELECT id, at, room_id, rotation_id, app, actor, action, detail, before, after, requests FROM audit_log"
            f"{where} ORDER BY id DESC LIMIT ?", params + [-1 if limit is None else limit]).fetchall()
        return [_audit_entry(row) for row in reversed(rows)]


class _NotApplied(Exception):
    """Rolls back an approval that could not be recorded (the person already approved this step)."""


def _rotation(row: tuple) -> RotationRecord:
    values = list(row)
    values[10], values[11] = json.loads(values[10]), json.loads(values[11])   # plan, data
    return RotationRecord(*values)


def _audit_entry(row: tuple) -> AuditEntry:
    id_, at, room_id, rotation_id, app, actor, action, detail, before, after, requests = row
    return AuditEntry(id_, at, room_id, rotation_id, app, actor, action, detail,
                      None if before is None else json.loads(before), None if after is None else json.loads(after),
                      json.loads(requests))


def _where(conditions: dict[str, Any]) -> tuple[str, list[Any]]:
    """" WHERE …" of the conditions whose value is not None; a clause with "?" takes the value as parameter."""
    clauses, params = [], []
    for clause, value in conditions.items():
        if value is None:
            continue
        clauses.append(clause)
        if "?" in clause:
            params.append(value)
    return (f" WHERE {' AND '.join(clauses)}" if clauses else ""), params


def _tracked(row: tuple) -> TrackedCertificate:
    (id_, source_id, room_id, label, kind, sha1, sha256, entity_id, role, use, subject, not_before, not_after,
     active, details, present) = row
    return TrackedCertificate(
        sha1=sha1, sha256=sha256, entity_id=entity_id, role=role, use=use, subject=subject, not_before=not_before,
        not_after=not_after, active=None if active is None else bool(active), details=json.loads(details),
        id=id_, source_id=source_id, room_id=room_id, source_label=label, source_kind=kind, present=bool(present))


# --- reminders ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class ReminderSubscription:
    """A space's reminder settings; ``last_digest_step`` is filled by ``enabled_reminder_subscriptions``."""

    room_id: str
    enabled: bool
    thresholds: tuple[int, ...]
    local_time: str
    time_zone: str
    enabled_at: float
    changed_by: str
    changed_at: float
    last_slot: str | None = None
    last_digest_step: int | None = None


@dataclass(frozen=True)
class ReminderMark:
    snoozed_until: float | None
    snoozed_by: str | None
    acknowledged_by: str | None
    acknowledged_at: float | None
    snoozed_by_event: str | None = None          # the click (event key) that set the snooze
    acknowledged_by_event: str | None = None     # the click that set the acknowledgement


class ReminderCandidate(NamedTuple):
    room_id: str
    sha1: str
    not_after: float
    snoozed_until: float | None
    acknowledged_by: str | None
    # The smallest threshold ever planned for it in the space, whatever became of that reminder (sent, failed,
    # dropped, superseded, cancelled): each threshold is decided once (the reminders' UNIQUE key).
    lowest_threshold_planned: int | None
    last_expired_step: int | None


@dataclass(frozen=True)
class PlannedReminder:
    id: int
    room_id: str
    subject: str
    kind: str
    step: int
    attempts: int


def _subscription(row: tuple, last_digest_step: int | None = None) -> ReminderSubscription:
    room_id, enabled, thresholds, local_time, time_zone, enabled_at, changed_by, changed_at, last_slot = row
    return ReminderSubscription(room_id, bool(enabled), tuple(int(d) for d in thresholds.split(",")), local_time,
                                time_zone, enabled_at, changed_by, changed_at, last_slot, last_digest_step)
