"""Runs recorded webhook events through the dispatcher, after the webhook was acknowledged.

Claiming takes a lease (``rollover.leases``), so several worker processes can share
one database and a crashed worker's event is picked up again when its lease ends.
A ``Retryable`` failure (Webex or Graph rate limiting or failing, a rotation busy
for a moment) reschedules the event with backoff, honouring Retry-After; after
``worker_max_attempts`` it is marked failed and logged (and the dispatcher answers
the person with the failure's sentence on that last attempt).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from rollover.errors import Retryable
from rollover.leases import backoff_seconds, lease_owner
from rollover.pipeline.dispatcher import Dispatcher
from rollover.storage import Event, Storage

log = logging.getLogger(__name__)

class Worker:
    def __init__(self, storage: Storage, dispatcher: Dispatcher, *, lease_seconds: float,
                 max_attempts: int, poll_seconds: float = 0.5, owner: str | None = None,
                 clock: Callable[[], float] = time.time):
        self.storage = storage
        self.dispatcher = dispatcher
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self.poll_seconds = poll_seconds
        self.owner = owner or lease_owner()
        self.clock = clock
        self.wake = threading.Event()    # set by the webhook view of the same process

    def run_once(self) -> bool:
        """Claim and process one ready event; False when none is ready."""
        event = self.storage.events.claim(self.owner, self.lease_seconds, now=self.clock())
        if event is None:
            return False
        if event.attempts > self.max_attempts:
            # Claimed again and again without finishing: the process dies while handling it.
            log.error("giving up event %s after %d attempts: the process stopped while handling it",
                      event.key, event.attempts - 1)
            self.storage.events.finish(event.key, self.owner, "failed", "process stopped while handling it",
                                      now=self.clock())
            return True
        self._process(event)
        return True

    def drain(self, limit: int = 10_000) -> int:
        """Process ready events until none is left (tests and the demo use this)."""
        processed = 0
        while processed < limit and self.run_once():
            processed += 1
        return processed

    def run_forever(self, stop: threading.Event) -> None:
        log.info("worker %s started", self.owner)
        while not stop.is_set():
            try:
                busy = self.run_once()
            except Exception:
                log.exception("worker loop failed; continuing after a pause")
                busy = False
                stop.wait(self.poll_seconds)
            if not busy:
                self.wake.wait(self.poll_seconds)
                self.wake.clear()
        log.info("worker %s stopped", self.owner)

    def _process(self, event: Event) -> None:
        # A handler may run longer than a lease (a Graph write waiting for Entra's eventual
        # consistency): renew the lease while it runs, so no other worker starts it a second time.
        stop_renewing = threading.Event()
        renewer = threading.Thread(target=self._renew_lease, args=(event, stop_renewing),
                                   name="rollover-lease", daemon=True)
        renewer.start()
        try:
            self._dispatch(event)
        finally:
            stop_renewing.set()
            renewer.join()

    def _renew_lease(self, event: Event, stop: threading.Event) -> None:
        try:
            while not stop.wait(self.lease_seconds / 3):
                if not self.storage.events.renew(event.key, self.owner, self.clock() + self.lease_seconds):
                    log.warning("lost the lease on event %s", event.key)
                    return
        finally:
            self.storage.close()   # this thread's connection, if it opened one

    def _dispatch(self, event: Event) -> None:
        try:
            self.dispatcher.handle(event, last_attempt=event.attempts >= self.max_attempts)
        except Retryable as error:
            self._retry_or_fail(event, error)
            return
        except Exception:
            # The dispatcher turns handler bugs into apologies; reaching here is a bug in the
            # plumbing itself. Retrying would repeat it, so the event is parked as failed.
            log.exception("event %s failed", event.key)
            self.storage.events.finish(event.key, self.owner, "failed", "internal error (see log)",
                                      now=self.clock())
            return
        if not self.storage.events.finish(event.key, self.owner, now=self.clock()):
            log.warning("lease on event %s expired while it was processed", event.key)

    def _retry_or_fail(self, event: Event, error: Retryable) -> None:
        if event.attempts >= self.max_attempts:
            log.error("event %s failed after %d attempts: %s", event.key, event.attempts, error)
            self.storage.events.finish(event.key, self.owner, "failed", str(error), now=self.clock())
            return
        delay = backoff_seconds(event.attempts, error.retry_after)
        log.warning("event %s will be retried in %.1fs: %s", event.key, delay, error)
        self.storage.events.retry_later(event.key, self.owner, self.clock() + delay, str(error))
