"""The reminder scheduler: APScheduler runs a reminder sweep every few minutes beside the worker.

Every process that runs it (each ``bot.py worker``, or ``bot.py serve``) sweeps on the same
interval; the sweep's lease in SQLite lets one of them do the work at a time, so adding workers
never doubles a reminder. The first sweep runs at start-up, so a bot that was down catches up at once.
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from reminders import run_sweep

log = logging.getLogger(__name__)


def start_reminder_scheduler(services) -> BackgroundScheduler:
    """Start sweeping in a background thread; ``services`` must be this scheduler's own (its clients
    are then used by this thread only)."""
    scheduler = BackgroundScheduler(timezone=timezone.utc)
    scheduler.add_job(scheduled_sweep, IntervalTrigger(minutes=services.config.reminder_sweep_minutes),
                      args=[services], id="reminder-sweep", next_run_time=datetime.now(timezone.utc),
                      max_instances=1, coalesce=True, misfire_grace_time=None)
    scheduler.start()
    log.info("reminder scheduler started: a sweep every %d minute(s)", services.config.reminder_sweep_minutes)
    return scheduler


def scheduled_sweep(services) -> None:
    """One sweep; a failure is logged and the next sweep tries again (planned reminders stay planned)."""
    try:
        report = run_sweep(services)
    except Exception:
        log.exception("reminder sweep failed; the next sweep tries again")
        return
    if report.sent or report.waiting or report.failed or report.refresh_problems:
        for line in report.lines():
            log.info("%s", line)
