"""Webex events over the websocket (``ROLLOVER_EVENTS=websocket``), into the same durable table as webhooks.

``SocketEvents`` is the websocket's counterpart of ``WebhookReceiver``: the Mercury client
(``rollover.integrations.webex_socket``) calls ``record`` for each message or card action, and only
acknowledges the frame after ``record`` returned. ``record`` commits the event under the webhook's
dedupe key (``resource:id``), so a redelivered frame, a restart, or a space that still also has a
webhook is handled once; then it wakes this process's worker.

Exactly one process holds the connection of a bot token: a second connection of the same device would
replace the first (Mercury close 4000), and two devices would both receive every event. The holder
is whoever holds the named lease ``webex-socket:<hash of the token>`` (``storage.leases``); it renews
it every third of ``websocket_lease_seconds``. Every other ``worker``/``serve`` stands by, trying the
lease on the same rhythm, and starts its client when the holder stopped renewing (killed, hung, cut off
from the database). A holder that cannot renew in time closes its connection before its lease runs out,
so two processes never fight over the device.

The holder reports its connection (connected since, last event, reconnects, the last gap) to
``storage.connections`` on each renewal and within a quarter second of a change; ``connection_status``
reads it for ``/healthz`` and ``about`` in whichever process answers (the holder itself shows its live view).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from datetime import datetime, timezone
from typing import Any, Callable, Protocol

from rollover.leases import lease_owner
from rollover.storage import Storage

log = logging.getLogger(__name__)

LEASE_PREFIX = "webex-socket:"
REPORT_SECONDS = 2.0          # the holder's status report (and lease renewal) comes at least this often
FRESH_SECONDS = 0.25          # ...and within this after its status changed (other processes read the report)

# The SocketEvents holding the connection in this process, by lease: `about` answered here shows the live view.
_holders: dict[str, "SocketEvents"] = {}


class SocketClient(Protocol):
    """What SocketEvents needs of the Mercury client (``MercuryClient``)."""

    def start(self) -> Any: ...

    def stop(self, timeout: float = 10.0) -> None: ...

    def status(self) -> Any: ...


ClientFactory = Callable[[Callable[[str, str, dict[str, Any]], None]], SocketClient]


def lease_name(token: str) -> str:
    """One holder per bot token, named by a hash: the token itself never reaches the database."""
    return LEASE_PREFIX + hashlib.sha256(token.encode()).hexdigest()[:16]


class SocketEvents:
    """Holds the Webex websocket while this process holds the lease; records its events durably."""

    def __init__(self, storage: Storage, token: str, client_factory: ClientFactory, *, lease_seconds: float,
                 wake: Callable[[], Any] = lambda: None, owner: str | None = None,
                 clock: Callable[[], float] = time.time):
        self._storage = storage
        self._lease = lease_name(token)
        self._client_factory = client_factory
        self._lease_seconds = lease_seconds
        self._wake = wake
        self.owner = owner or lease_owner()
        self._clock = clock
        self._client: SocketClient | None = None
        self._held_until: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._reported: dict[str, Any] | None = None

    # ---- the record path (called by the client before it acknowledges) -----------------------------

    def record(self, resource: str, event_id: str, payload: dict[str, Any]) -> None:
        """Commit the event (same table and key as a webhook delivery), then wake the worker.

        Raises when the database refuses: the client then leaves the frame unacknowledged and Webex
        sends it again."""
        if self._storage.events.record(f"{resource}:{event_id}", resource, "created", payload):
            self._wake()

    # ---- holding the lease -------------------------------------------------------------------------

    def start(self) -> "SocketEvents":
        """Try the lease now and then on its rhythm, in a daemon thread; returns self."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="webex-socket-lease", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Close the connection and hand the lease back, so a standby process takes over at once."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        else:
            self._let_go()           # driven by tick() alone (tests): no thread does it

    @property
    def holding(self) -> bool:
        return self._client is not None

    def tick(self) -> bool:
        """Take or renew the lease; start or stop the client to match. True while this process holds it."""
        now = self._clock()
        try:
            held = self._storage.leases.acquire(self._lease, self.owner, seconds=self._lease_seconds, wall_now=now)
        except Exception:
            log.exception("could not take or renew the Webex websocket lease")
            held = False
            # Still ours until it runs out; close before then, so that a taker never finds us connected.
            if self._held_until is not None and now + self._interval() < self._held_until:
                return True
        if held:
            self._held_until = now + self._lease_seconds
            if self._client is None:
                self._open()
            self._report(now)
        elif self._client is not None:
            log.warning("Webex websocket lease lost (another process holds it, or it could not be renewed in "
                        "time): closing this process's connection")
            self._close()
        return held

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self.tick()
                self._until_next_tick()
        finally:
            self._let_go()
            self._storage.close()    # this thread's connection

    def _interval(self) -> float:
        return min(self._lease_seconds / 3, REPORT_SECONDS)

    def _until_next_tick(self) -> None:
        """Wait for the next renewal; meanwhile report again when the connection changed or events came,
        so that other processes (a standby's `about`, a web process's /healthz) are not a whole interval behind."""
        deadline = time.monotonic() + self._interval()
        while not self._stop.wait(max(0.0, min(FRESH_SECONDS, deadline - time.monotonic()))):
            if time.monotonic() >= deadline:
                return
            if self._client is not None and self.status() != self._reported:
                self._report(self._clock())

    def _report(self, now: float) -> None:
        status = self.status()
        try:
            self._storage.connections.report(self._lease, self.owner, status, now)
            self._reported = status
        except Exception:
            log.exception("could not record the Webex websocket's status")

    def _open(self) -> None:
        log.info("holding the Webex websocket (lease %s, owner %s)", self._lease, self.owner)
        with self._lock:
            self._client = self._client_factory(self.record)
            _holders[self._lease] = self
        self._client.start()

    def _close(self) -> None:
        with self._lock:
            client, self._client, self._held_until = self._client, None, None
            if _holders.get(self._lease) is self:
                del _holders[self._lease]
        if client is not None:
            client.stop()

    def _let_go(self) -> None:
        was_holding = self._client is not None
        self._close()
        if was_holding:
            try:
                self._storage.connections.report(self._lease, self.owner, {"mode": "websocket", "state": "stopped"},
                                                 self._clock())
                self._storage.leases.release(self._lease, self.owner)
            except Exception:
                log.exception("could not hand back the Webex websocket lease; it runs out by itself")

    # ---- what /healthz and `about` show ------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """This process's view: ``standby``, or the connection's state, since when, last event, reconnects."""
        with self._lock:
            client = self._client
        if client is None:
            return {"mode": "websocket", "state": "standby" if not self._stop.is_set() else "stopped"}
        status = client.status()
        return {"mode": "websocket", "state": status.state, "holder": self.owner,
                "connected_since": _iso(status.connected_since), "last_event_at": _iso(status.last_event_at),
                "events": status.events, "reconnects": status.reconnects,
                "last_gap_seconds": None if status.last_gap_seconds is None else round(status.last_gap_seconds, 1),
                "last_error": status.last_error}


def connection_status(storage: Storage, token: str, *, lease_seconds: float, now: float,
                      local: SocketEvents | None = None) -> dict[str, Any]:
    """The websocket as its holder last reported it (this process's own live view when it holds it: ``local``,
    or else whichever SocketEvents of this process holds it).

    ``state`` is ``connected``, ``connecting``, ``reconnecting``, or ``no holder`` when no process has
    reported within a lease (none running, or all cut off from the database)."""
    local = local if local is not None else _holders.get(lease_name(token))
    if local is not None and local.holding:
        return local.status()
    report = storage.connections.latest(lease_name(token))
    if report is None or report.status.get("state") in ("stopped", "standby") \
            or now - report.updated_at > lease_seconds + REPORT_SECONDS:
        return {"mode": "websocket", "state": "no holder",
                "last_report_at": None if report is None else _iso(report.updated_at)}
    return {**report.status, "reported_seconds_ago": round(max(0.0, now - report.updated_at), 1)}


def connection_sentence(status: dict[str, Any]) -> str:
    """One line for people (``about``): the state, since when, the last event, the reconnects."""
    state = status.get("state")
    if state == "no holder":
        since = f" since {_short(status['last_report_at'])}" if status.get("last_report_at") else ""
        return (f"websocket: no process holds the connection{since}; events wait at Webex until a "
                "`worker` or `serve` runs")
    parts = [f"websocket: {state}"]
    if status.get("connected_since"):
        parts[0] += f" since {_short(status['connected_since'])}"
    parts.append(f"last event {_short(status['last_event_at'])}" if status.get("last_event_at") else "no event yet")
    reconnects = status.get("reconnects") or 0
    if reconnects:
        gap = status.get("last_gap_seconds")
        parts.append(f"{reconnects} reconnect{'s' if reconnects != 1 else ''}"
                     + (f" (last gap {gap:g} s)" if gap is not None else ""))
    if state != "connected" and status.get("last_error"):
        parts.append(f"last error: {status['last_error']}")
    return "; ".join(parts)


def _short(iso: str) -> str:
    """``2026-12-02T07:20:05+00:00`` -> ``2026-12-02 07:20:05 UTC``."""
    return iso.replace("T", " ").replace("+00:00", " UTC")


def _iso(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="seconds")
