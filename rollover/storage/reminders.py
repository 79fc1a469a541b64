"""Reminders: subscriptions, snooze/acknowledge marks, and the reminder outbox (planned, claimed, sent)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from rollover.leases import Lease
from rollover.storage.connection import Database, placeholders

# The reminders a claim may take: the condition of the index it walks (migration 0013_reminders_claimable),
# word for word, so SQLite sees that the index applies.
CLAIMABLE_REMINDERS = "status IN ('planned', 'posting')"
LEASE = Lease("reminders", "id", owner="claimed_by", until="claimed_until", index="reminders_claimable")


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


class Reminders:
    def __init__(self, database: Database):
        self.database = database

    @property
    def db(self) -> Database:
        return self.database

    _SUBSCRIPTION_COLUMNS = ("room_id, enabled, thresholds, local_time, time_zone, enabled_at, changed_by, "
                             "changed_at, last_slot")

    def subscription(self, room_id: str) -> ReminderSubscription | None:
        row = self.db.execute(f"SELECT {self._SUBSCRIPTION_COLUMNS} FROM reminder_subscriptions WHERE room_id = ?",
                              [room_id]).fetchone()
        return None if row is None else _subscription(row)

    def save_subscription(self, subscription: ReminderSubscription) -> None:
        """Create or change a space's subscription; the slot already handled today stays handled."""
        s = subscription
        self.db.execute(
            f"INSERT INTO reminder_subscriptions ({self._SUBSCRIPTION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (room_id) DO UPDATE SET enabled = excluded.enabled, thresholds = excluded.thresholds, "
            "local_time = excluded.local_time, time_zone = excluded.time_zone, enabled_at = excluded.enabled_at, "
            "changed_by = excluded.changed_by, changed_at = excluded.changed_at",
            [s.room_id, int(s.enabled), ",".join(str(d) for d in s.thresholds), s.local_time, s.time_zone,
             s.enabled_at, s.changed_by, s.changed_at, s.last_slot])

    def enabled_subscriptions(self) -> list[ReminderSubscription]:
        """Every enabled subscription, each with the step of its latest digest (one query)."""
        rows = self.db.execute(
            f"SELECT {self._SUBSCRIPTION_COLUMNS}, (SELECT max(r.step) FROM reminders r WHERE r.room_id = "
            "sub.room_id AND r.subject = '' AND r.kind = 'digest') FROM reminder_subscriptions sub "
            "WHERE enabled = 1 ORDER BY room_id")
        return [_subscription(row[:-1], last_digest_step=row[-1]) for row in rows]

    def candidates(self, room_ids: list[str], expiring_before: float) -> list[ReminderCandidate]:
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
            f"  AND s.room_id IN ({placeholders(room_ids)}) "
            # Unary + keeps SQLite off tracked_due here (a scan of every present certificate per row): it
            # looks up the space's Entra-app sources, then (source_id, sha1) in the UNIQUE index.
            "  AND NOT EXISTS (SELECT 1 FROM sources xs JOIN tracked_certificates x ON x.source_id = xs.id "
            "                  WHERE xs.room_id = s.room_id AND xs.kind = 'entra-app' AND x.sha1 = c.sha1 "
            "                  AND +x.present = 1 AND +x.active = 0) "
            "ORDER BY s.room_id, c.not_after",
            [expiring_before, *room_ids])
        return list(map(ReminderCandidate._make, rows))

    def plan(self, due: list[tuple[str, str, str, int]], slots: dict[str, str], now: float) -> int:
        """Record (room, subject, kind, step) reminders as planned and the spaces' slots as handled, atomically.

        An older reminder about the same subject that is still unsent is superseded: after an outage the
        space gets the current reminder, not a backlog. Returns how many reminders were new.
        """
        db, planned = self.db, 0
        with db.transaction():
            for room_id, subject, kind, step in due:
                # By the (room_id, subject, …) key, not the status index ("|| ''" keeps the planner off it): that
                # walked every planned reminder for each due one.
                db.execute("UPDATE reminders SET status = 'superseded' WHERE room_id = ? AND subject = ? "
                           "AND status || '' = 'planned' AND NOT (kind = ? AND step = ?)",
                           [room_id, subject, kind, step])
                planned += db.execute(
                    "INSERT INTO reminders (room_id, subject, kind, step, planned_at, available_at) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    [room_id, subject, kind, step, now, now]).rowcount
            db.executemany("UPDATE reminder_subscriptions SET last_slot = ? WHERE room_id = ?",
                           [(day, room_id) for room_id, day in slots.items()])
        return planned

    def claim(self, owner: str, *, now: float, wall_now: float, claim_seconds: float) -> PlannedReminder | None:
        """Claim the oldest reminder ready to post; a claim left by a crashed poster is reclaimable (a planned
        reminder has no claim; a posting one whose claim ran out is a crashed poster's)."""
        row = LEASE.claim_next(self.db, ready=f"{CLAIMABLE_REMINDERS} AND ((status = 'planned' AND available_at <= ?) "
                                              "OR status = 'posting')",
                               params=[now], owner=owner, until=wall_now + claim_seconds, now=wall_now,
                               returning="id, room_id, subject, kind, step, attempts", also_set=", status = 'posting'")
        return None if row is None else PlannedReminder(*row)

    def finish(self, reminder_id: int, owner: str, status: str, *, now: float,
               message_id: str | None = None, error: str | None = None) -> bool:
        """sent / failed / dropped; False when the claim was lost to another poster meanwhile."""
        return LEASE.update_held(self.db, reminder_id, owner,
                                 {"status": status, "message_id": message_id,
                                  "sent_at": now if status == "sent" else None, "last_error": error},
                                 release=True, condition="status = 'posting'")

    def retry_later(self, reminder_id: int, owner: str, available_at: float, error: str) -> bool:
        return LEASE.update_held(self.db, reminder_id, owner,
                                 {"status": "planned", "available_at": available_at, "last_error": error},
                                 release=True, condition="status = 'posting'")

    def cancel_planned(self, room_id: str) -> int:
        return self.db.execute("UPDATE reminders SET status = 'cancelled' WHERE room_id = ? AND status = 'planned'",
                               [room_id]).rowcount

    def all(self, room_id: str | None = None) -> list[dict[str, Any]]:
        """Every reminder row (of a space), oldest first: what was planned and what became of it."""
        where, params = ("WHERE room_id = ?", [room_id]) if room_id is not None else ("", [])
        rows = self.db.execute(
            f"SELECT id, room_id, subject, kind, step, status, attempts, message_id, last_error FROM reminders "
            f"{where} ORDER BY id", params)
        keys = ("id", "room_id", "subject", "kind", "step", "status", "attempts", "message_id", "last_error")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    def marks(self, room_id: str) -> dict[str, ReminderMark]:
        rows = self.db.execute("SELECT sha1, snoozed_until, snoozed_by, acknowledged_by, acknowledged_at, "
                               "snoozed_by_event, acknowledged_by_event FROM reminder_marks WHERE room_id = ?",
                               [room_id])
        return {row[0]: ReminderMark(*row[1:]) for row in rows}

    def snooze(self, room_id: str, sha1: str, *, until: float, by: str, card_message_id: str,
                         event_key: str, now: float) -> bool:
        """Snooze unless already snoozed, or this card already snoozed it once; False = nothing changed."""
        cursor = self.db.execute(
            "INSERT INTO reminder_marks (room_id, sha1, snoozed_until, snoozed_by, snoozed_from_message, "
            "snoozed_by_event) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (room_id, sha1) DO UPDATE SET "
            "snoozed_until = excluded.snoozed_until, snoozed_by = excluded.snoozed_by, "
            "snoozed_from_message = excluded.snoozed_from_message, snoozed_by_event = excluded.snoozed_by_event "
            "WHERE (reminder_marks.snoozed_until IS NULL OR reminder_marks.snoozed_until <= ?) "
            "AND reminder_marks.snoozed_from_message IS DISTINCT FROM excluded.snoozed_from_message",
            [room_id, sha1, until, by, card_message_id, event_key, now])
        return cursor.rowcount == 1

    def acknowledge(self, room_id: str, sha1: str, *, by: str, event_key: str, now: float) -> bool:
        """Record who owns the certificate, once; False when it was already acknowledged."""
        cursor = self.db.execute(
            "INSERT INTO reminder_marks (room_id, sha1, acknowledged_by, acknowledged_at, acknowledged_by_event) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (room_id, sha1) DO UPDATE SET acknowledged_by = "
            "excluded.acknowledged_by, acknowledged_at = excluded.acknowledged_at, acknowledged_by_event = "
            "excluded.acknowledged_by_event WHERE reminder_marks.acknowledged_by IS NULL",
            [room_id, sha1, by, now, event_key])
        return cursor.rowcount == 1
