"""Keeping the event store from growing forever: events finished longer ago than the retention are deleted.

Each webhook delivery (or websocket frame) stays in ``events`` after it is handled so that a redelivery of
it is recognised and not handled twice. Webex redelivers for hours at most, so after
``ROLLOVER_EVENT_RETENTION_DAYS`` a finished event (done, or failed for good) and its record of posts in the
outbox are deleted: the table, ``/healthz``'s counts and the failed-events gauge then cover that window only.
"""

from __future__ import annotations

import logging

from rollover.storage import Storage

log = logging.getLogger(__name__)

DAY_SECONDS = 86400
PRUNE_BATCH = 1000   # events deleted per transaction: an acknowledgement waits for the write lock meanwhile


def prune_finished_events(storage: Storage, now: float, retention_days: int, batch: int = PRUNE_BATCH) -> int:
    """Delete the events finished before ``now`` minus the retention, ``batch`` at a time (each batch with its
    outbox rows in one transaction, so acknowledgements are never kept waiting long); the number deleted."""
    cutoff, deleted = now - retention_days * DAY_SECONDS, 0
    while True:
        with storage.transaction():
            keys = storage.events.prune(cutoff, batch)
            storage.outbox.forget(keys)
        deleted += len(keys)
        if len(keys) < batch:
            return deleted
