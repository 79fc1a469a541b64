"""Runs recorded webhook events through the dispatcher, after the webhook was acknowledged.

Claiming takes a lease (``rollover.leases``), so several worker processes can share
one database and a crashed worker's event is picked up again when its lease ends.
A ``Retryable`` failure (Webex or Graph rate limiting or failing, a rotation busy
for a moment) reschedules the event with backoff, honouring Retry-After; after
``worker_max_attempts`` it is marked failed and logged (and the dispatcher answers
the person with the failure's sentence on that last attempt).

``run_forever`` handles several events at a time: one thread claims, a pool runs them.
- Order: an event is claimed only when no earlier event of its ordering group is still
  pending (``storage.events``' ``order_key``: one person's messages in a space, a space's
  card clicks), so two clicks on one rotation, or a document and the next command of the
  same person, run one after the other and in order, whichever process claims them.
- The slow lane: ``threads`` events run on the fast lane. An event still running after
  ``SLOW_AFTER_SECONDS`` (a document or URL being read, a Graph write waiting for Entra)
  moves to the slow lane, which holds up to ``slow_threads`` of them, and frees its fast
  place: slow work never starves chat.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from rollover import metrics
from rollover.errors import Retryable
from rollover.leases import backoff_seconds, lease_owner
from rollover.pipeline.dispatcher import Dispatcher
from rollover.storage import Event, Storage

log = logging.getLogger(__name__)

SLOW_AFTER_SECONDS = 0.25      # an event running longer leaves its place on the fast lane to the next one


class Worker:
    def __init__(self, storage: Storage, dispatcher: Dispatcher, *, lease_seconds: float,
                 max_attempts: int, poll_seconds: float = 0.5, owner: str | None = None,
                 clock: Callable[[], float] = time.time, threads: int = 1, slow_threads: int = 0):
        self.storage = storage
        self.dispatcher = dispatcher
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self.poll_seconds = poll_seconds
        self.owner = owner or lease_owner()
        self.clock = clock
        self.threads = max(1, threads)
        self.slow_threads = max(0, slow_threads)
        self.wake = threading.Event()    # set by the webhook view of this process, a wake-up channel, a finished event
        self._claims = itertools.count(1)
        self._running: dict[int, float] = {}   # event seq -> monotonic start, of the events the pool runs
        self._running_lock = threading.Lock()
        self._held: dict[str, str] = {}            # event key -> lease owner, of the events running now
        self._held_lock = threading.Lock()
        self._keeper: threading.Thread | None = None

    def run_once(self) -> bool:
        """Claim and process one ready event in this thread; False when none is ready."""
        claimed = self._claim()
        if claimed is None:
            return False
        self._handle(*claimed)
        return True

    def drain(self, limit: int = 10_000) -> int:
        """Process ready events one by one in this thread until none is left (tests and the demo use this)."""
        processed = 0
        while processed < limit and self.run_once():
            processed += 1
        return processed

    def run_forever(self, stop: threading.Event) -> None:
        """Claim events as places on the lanes free up, until ``stop`` is set; then finish what runs."""
        log.info("worker %s started (%d fast, %d slow)", self.owner, self.threads, self.slow_threads)
        with ThreadPoolExecutor(self.threads + self.slow_threads, thread_name_prefix="rollover-event") as pool:
            while not stop.is_set():
                wait = self._time_until_room()
                if wait > 0:
                    self._sleep(wait)
                    continue
                try:
                    claimed = self._claim()
                except Exception:
                    log.exception("worker loop failed; continuing after a pause")
                    stop.wait(self.poll_seconds)
                    continue
                if claimed is None:
                    self._sleep(self.poll_seconds)
                    continue
                self._start(pool, *claimed)
        log.info("worker %s stopped", self.owner)

    def _sleep(self, seconds: float) -> None:
        self.wake.wait(seconds)
        self.wake.clear()   # before the next claim: a wake-up after it is not lost

    # --- the lanes ----------------------------------------------------------------------------------

    def _time_until_room(self) -> float:
        """0 when a fast place is free; else how long until one frees by its event turning slow (or a poll)."""
        now = time.monotonic()
        with self._running_lock:
            starts = list(self._running.values())
        if len(starts) >= self.threads + self.slow_threads:
            return self.poll_seconds                    # both lanes full: a finishing event wakes us
        fast = sorted(start for start in starts if now - start < SLOW_AFTER_SECONDS)
        if len(fast) < self.threads:
            return 0.0
        if len(starts) - len(fast) >= self.slow_threads:
            return self.poll_seconds                    # the slow lane is full: only a finish frees a place
        return fast[0] + SLOW_AFTER_SECONDS - now       # the oldest fast event turns slow then

    def _start(self, pool: ThreadPoolExecutor, event: Event, owner: str) -> None:
        with self._running_lock:
            self._running[event.seq] = time.monotonic()
        pool.submit(self._run_in_pool, event, owner)

    def _run_in_pool(self, event: Event, owner: str) -> None:
        try:
            self._handle(event, owner)
        except Exception:
            log.exception("event %s: the worker failed around it", event.key)
        finally:
            with self._running_lock:
                self._running.pop(event.seq, None)
            self.wake.set()   # a place is free, and the next event of its group may be claimable now

    # --- one event ----------------------------------------------------------------------------------

    def _claim(self) -> tuple[Event, str] | None:
        # A lease owner per claim: two threads of this process never mistake each other's lease for their own.
        owner = f"{self.owner}#{next(self._claims)}"
        event = self.storage.events.claim(owner, self.lease_seconds, now=self.clock())
        return None if event is None else (event, owner)

    def _handle(self, event: Event, owner: str) -> None:
        if event.taken_over:
            metrics.count("lease_takeovers", work="event")
            log.warning("event %s taken over: the worker holding it stopped while handling it", event.key)
        if event.attempts > self.max_attempts:
            # Claimed again and again without finishing: the process dies while handling it.
            log.error("giving up event %s after %d attempts: the process stopped while handling it",
                      event.key, event.attempts - 1)
            self.storage.events.finish(event.key, owner, "failed", "process stopped while handling it",
                                      now=self.clock())
            metrics.count("events_failed", resource=event.resource)
            return
        self._process(event, owner)

    def _process(self, event: Event, owner: str) -> None:
        # A handler may run longer than a lease (a Graph write waiting for Entra's eventual consistency): the
        # keeper renews the lease while it runs, so no other worker starts it a second time.
        self._keep(event.key, owner)
        try:
            self._dispatch(event, owner)
        finally:
            with self._held_lock:
                self._held.pop(event.key, None)

    def _keep(self, key: str, owner: str) -> None:
        """Hand the lease to the one keeper thread of this worker (started when the first event begins)."""
        with self._held_lock:
            self._held[key] = owner
            if self._keeper is None:
                self._keeper = threading.Thread(target=self._keep_leases, name="rollover-lease", daemon=True)
                self._keeper.start()

    def _keep_leases(self) -> None:
        """Renew every running event's lease each third of a lease; ends once a round finds none running."""
        try:
            while True:
                time.sleep(self.lease_seconds / 3)
                with self._held_lock:
                    held = dict(self._held)
                    if not held:
                        self._keeper = None
                        return
                for key, owner in held.items():
                    self._renew(key, owner)
        finally:
            self.storage.close()   # this thread's connection

    def _renew(self, key: str, owner: str) -> None:
        if self.storage.events.renew(key, owner, self.clock() + self.lease_seconds):
            return
        # The round's list was taken before the renewal: an event that finished (or was put back for a retry)
        # since has released its lease, which is no loss. Only another worker's name means it was taken over.
        if self.storage.events.lease_holder(key) is not None:
            log.warning("lost the lease on event %s to another worker", key)

    def _dispatch(self, event: Event, owner: str) -> None:
        try:
            self.dispatcher.handle(event, last_attempt=event.attempts >= self.max_attempts)
        except Retryable as error:
            self._retry_or_fail(event, owner, error)
            return
        except Exception:
            # The dispatcher turns handler bugs into apologies; reaching here is a bug in the
            # plumbing itself. Retrying would repeat it, so the event is parked as failed.
            log.exception("event %s failed", event.key)
            self.storage.events.finish(event.key, owner, "failed", "internal error (see log)", now=self.clock())
            metrics.count("events_failed", resource=event.resource)
            return
        metrics.count("events_handled", resource=event.resource)
        if not self.storage.events.finish(event.key, owner, now=self.clock()):
            log.warning("lease on event %s expired while it was processed", event.key)

    def _retry_or_fail(self, event: Event, owner: str, error: Retryable) -> None:
        if event.attempts >= self.max_attempts:
            log.error("event %s failed after %d attempts: %s", event.key, event.attempts, error)
            self.storage.events.finish(event.key, owner, "failed", str(error), now=self.clock())
            metrics.count("events_failed", resource=event.resource)
            return
        metrics.count("events_retried", resource=event.resource)
        delay = backoff_seconds(event.attempts, error.retry_after)
        log.warning("event %s will be retried in %.1fs: %s", event.key, delay, error)
        self.storage.events.retry_later(event.key, owner, self.clock() + delay, str(error))
