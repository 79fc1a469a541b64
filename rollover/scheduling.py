"""The one scheduler of background work: APScheduler runs the rotation sweep, the reminder sweep and, hourly,
the deletion of events past their retention.

Every process that runs it (each ``bot.py worker``, or ``bot.py serve``) sweeps on the same intervals;
leases in the database let one of them do each item at a time, so adding workers never doubles a
reminder or a Graph write. Both sweeps run once at start-up: a rotation a killed process left half
done resumes at once, and a bot that was down catches up on its reminders.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from typing import Callable

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from rollover.describe import plural
from rollover.integrations.webex_client import WebexError
from rollover.pipeline.retention import prune_finished_events
from rollover.reminders.sweep import run_sweep
from rollover.rotation.engine import sweep as sweep_rotations
from rollover.services import Services

log = logging.getLogger(__name__)

EVENT_PRUNING_SECONDS = 3600


def start_scheduler(rotation_services: Services, reminder_services: Services) -> BackgroundScheduler:
    """Start both sweeps in APScheduler's background threads. Each sweep gets its own ``Services`` (its own
    Webex and Graph clients; storage connections are per thread); a sweep never overlaps itself
    (max_instances=1: a sweep still running when the next is due skips that turn)."""
    scheduler = BackgroundScheduler(timezone=timezone.utc)
    now = datetime.now(timezone.utc)
    _every(scheduler, "rotation-sweep", scheduled_rotation_sweep, rotation_services,
           seconds=rotation_services.config.rotation_sweep_seconds, first=now)
    _every(scheduler, "reminder-sweep", scheduled_reminder_sweep, reminder_services,
           seconds=reminder_services.config.reminder_sweep_minutes * 60, first=now)
    _every(scheduler, "event-retention", scheduled_event_pruning, reminder_services,
           seconds=EVENT_PRUNING_SECONDS, first=now)
    scheduler.start()
    log.info("scheduler started: rotations every %s s, reminders every %s",
             rotation_services.config.rotation_sweep_seconds,
             plural(reminder_services.config.reminder_sweep_minutes, "minute"))
    return scheduler


def _every(scheduler: BackgroundScheduler, job_id: str, job: Callable[[Services], None], services: Services,
           *, seconds: float, first: datetime) -> None:
    scheduler.add_job(job, IntervalTrigger(seconds=seconds), args=[services], id=job_id, next_run_time=first,
                      max_instances=1, coalesce=True, misfire_grace_time=None)


def scheduled_rotation_sweep(services: Services) -> None:
    """Expire overdue approvals, start due activations, resume interrupted work; a failure waits for the next."""
    try:
        sweep_rotations(services)
    except WebexError as error:
        log.warning("rotation sweep: Webex failed (%s); trying again at the next sweep", error)
    except Exception:
        log.exception("rotation sweep failed; trying again at the next sweep")


def scheduled_reminder_sweep(services: Services) -> None:
    """One sweep; a failure is logged and the next sweep tries again (planned reminders stay planned)."""
    try:
        report = run_sweep(services)
    except Exception:
        log.exception("reminder sweep failed; the next sweep tries again")
        return
    if report.sent or report.waiting or report.failed or report.refresh_problems:
        for line in report.lines():
            log.info("%s", line)


def scheduled_event_pruning(services: Services) -> None:
    """Delete the events past ROLLOVER_EVENT_RETENTION_DAYS; a failure is logged and the next hour tries again.
    Workers running it at once delete disjoint or already-deleted rows: no lease is needed."""
    try:
        deleted = prune_finished_events(services.storage, time.time(), services.config.event_retention_days)
    except Exception:
        log.exception("deleting old events failed; the next run tries again")
        return
    if deleted:
        log.info("deleted %s finished more than %s ago", plural(deleted, "event"),
                 plural(services.config.event_retention_days, "day"))
