"""Storage: the only package that speaks SQL. ``Storage`` is the front over the per-domain repositories
(events, outbox, tracking, reminders, rotations, audit), which share one connection per thread."""

from rollover.storage.audit import AuditEntry
from rollover.storage.connection import is_database_url
from rollover.storage.events import Event
from rollover.storage.migrations import MIGRATIONS
from rollover.storage.reminders import PlannedReminder, ReminderCandidate, ReminderMark, ReminderSubscription
from rollover.storage.rotations import RotationChange, RotationRecord
from rollover.storage.store import Storage
from rollover.storage.tracking import CertificateRecord, Source, TrackedCertificate

__all__ = ["MIGRATIONS", "AuditEntry", "CertificateRecord", "Event", "PlannedReminder", "ReminderCandidate",
           "ReminderMark", "ReminderSubscription", "RotationChange", "RotationRecord", "Source", "Storage",
           "TrackedCertificate", "is_database_url"]
