"""Storage: the only package that speaks SQL. ``Storage`` is the front over the per-domain repositories."""

from rollover.storage.store import (
    MIGRATIONS,
    AuditEntry,
    CertificateRecord,
    Event,
    PlannedReminder,
    ReminderCandidate,
    ReminderMark,
    ReminderSubscription,
    RotationChange,
    RotationRecord,
    Source,
    Storage,
    TrackedCertificate,
)

__all__ = ["MIGRATIONS", "AuditEntry", "CertificateRecord", "Event", "PlannedReminder", "ReminderCandidate",
           "ReminderMark", "ReminderSubscription", "RotationChange", "RotationRecord", "Source", "Storage",
           "TrackedCertificate"]
