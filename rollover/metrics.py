"""``/metrics`` in Prometheus' text format: what operations teams alert on, from the monitoring they already run.

Off by default. ``ROLLOVER_METRICS_TOKEN`` serves ``GET /metrics`` on the webhook service behind that bearer
token; ``ROLLOVER_METRICS_PORT`` serves it on a port of its own (``ROLLOVER_METRICS_HOST``, loopback by
default) from ``worker`` or ``serve``. Every process of a host adds to the same figures: counters go to
prometheus_client's multiprocess files in a folder beside the database (``.<database file>.metrics/``), so
gunicorn's web workers, ``bot.py worker`` and ``serve`` report one sum, whichever process is scraped.
What the database knows (the backlog, rotations by state, the tracked certificates' days left) is read at
scrape time.

No secret reaches a metric: labels are resources, statuses, space ids, SHA-1 thumbprints and source
labels, with URLs shown without their query and user info.

Counting costs nothing while metrics are off: ``count`` finds no counter and returns.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from rollover.pipeline.wakeup import is_private_folder
from rollover.settings import redact_url

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# name -> (help, label names): every counter a process may add to.
COUNTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "events_received": ("Webhook deliveries by resource and outcome (accepted, duplicate, ignored, refused).",
                        ("resource", "outcome")),
    "events_handled": ("Events handled to the end, by resource.", ("resource",)),
    "events_failed": ("Events given up (failed for good), by resource.", ("resource",)),
    "events_retried": ("Events put back for a later attempt (rate limits, outages, a busy rotation).", ("resource",)),
    "lease_takeovers": ("Work taken over from a worker that stopped while holding its lease.", ("work",)),
    "reminders_posted": ("Reminders and digests posted.", ()),
    "reminders_failed": ("Reminders and digests that failed for good.", ()),
    "webex_requests": ("Webex API responses by status (2xx, or the error code: 429 is rate limiting; "
                       "'network' when no answer came).", ("status",)),
    "graph_requests": ("Microsoft Graph responses by status, retries included (429 is throttling).", ("status",)),
}

RESOURCES = ("messages", "attachmentActions")
SHOWN_AT_ZERO = ([(name, {"resource": r}) for name in ("events_handled", "events_failed", "events_retried")
                  for r in RESOURCES]
                 + [("events_received", {"resource": r, "outcome": "accepted"}) for r in RESOURCES]
                 + [("lease_takeovers", {"work": "event"}), ("webex_requests", {"status": "429"}),
                    ("graph_requests", {"status": "429"})])

_counters: dict[str, Any] = {}
_folder: Path | None = None
_lock = threading.Lock()


def enabled(config) -> bool:
    return bool(config.metrics_token or config.metrics_port)


def metrics_folder(database_path: str) -> Path:
    """Beside the database file; for a database server, a folder of this host named after its URL."""
    if "://" in database_path:       # named without the URL's password: every user of the host sees the name
        digest = hashlib.sha256(redact_url(database_path).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"rollover-metrics-{digest}"
    database = Path(database_path).resolve()
    return database.parent / f".{database.name}.metrics"


def enable(config) -> bool:
    """Start counting in this process (into the folder of the configured database); False when metrics are off."""
    global _folder
    if not enabled(config):
        return False
    folder = metrics_folder(config.database_path)
    with _lock:
        if folder == _folder:
            return True
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not is_private_folder(folder):   # a symlink or another user's folder in the shared /tmp
            log.warning("metrics are off: %s is not a private folder of this user", folder)
            return False
        # prometheus_client picks its value files by this variable: set before its first import, and anew
        # when one process (the tests) switches databases.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)
        from prometheus_client import Counter, values
        values.ValueClass = values.MultiProcessValue()
        _counters.clear()
        for name, (help_text, labels) in COUNTERS.items():
            _counters[name] = Counter(f"rollover_{name}", help_text, labels, registry=None)
        for name, labels in SHOWN_AT_ZERO:   # a series that exists from the start: alerts see 0, not nothing
            _counters[name].labels(**labels)
        _folder = folder
    return True


def count(name: str, amount: float = 1.0, **labels: str) -> None:
    """Add to a counter of ``COUNTERS``; nothing when metrics are off."""
    counter = _counters.get(name)
    if counter is None:
        return
    (counter.labels(**labels) if labels else counter).inc(amount)


def status_label(status: int | None) -> str:
    """A response status as a label: 2xx together, each error code on its own, 'network' without an answer."""
    if status is None:
        return "network"
    return "2xx" if 200 <= status < 300 else str(status)


# --- scraping -----------------------------------------------------------------------------------------

def render(storage, config, now: float | None = None) -> bytes:
    """The exposition text: every process's counters of this host, and what the database knows now."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector
    registry = CollectorRegistry()
    if enable(config):
        MultiProcessCollector(registry, path=str(_folder))
    registry.register(_DatabaseCollector(storage, config, time.time() if now is None else now))
    return generate_latest(registry)


def serve_port(config, storage) -> Callable[[], None]:
    """``ROLLOVER_METRICS_PORT``: /metrics on its own port (``worker``, ``serve``); returns the function that
    stops it. When another process of this host serves the port already (a second worker), this one does
    not: any process reports the figures of all."""
    if not config.metrics_port:
        return lambda: None
    from werkzeug.serving import make_server

    def application(environ, start_response):
        status, headers, body = answer(config, storage, environ.get("PATH_INFO", ""),
                                       environ.get("HTTP_AUTHORIZATION"), token_required=bool(config.metrics_token))
        start_response(status, headers)
        return [body]
    try:
        server = make_server(config.metrics_host, config.metrics_port, application, threaded=False)
    except OSError as error:
        log.info("metrics: %s:%s is served by another process (%s)", config.metrics_host, config.metrics_port,
                 error.strerror)
        return lambda: None
    threading.Thread(target=server.serve_forever, name="rollover-metrics", daemon=True).start()
    log.info("metrics on http://%s:%d/metrics", config.metrics_host, config.metrics_port)
    return server.shutdown


def answer(config, storage, path: str, authorization: str | None, *, token_required: bool
           ) -> tuple[str, list[tuple[str, str]], bytes]:
    """The HTTP answer to a metrics request: 404 off the path, 401 without the token, else the figures."""
    if path != "/metrics":
        return "404 Not Found", [("Content-Type", "text/plain")], b"not found\n"
    if token_required and not token_matches(config, authorization):
        return ("401 Unauthorized", [("Content-Type", "text/plain"), ("WWW-Authenticate", "Bearer")],
                b"a bearer token is required\n")
    return "200 OK", [("Content-Type", CONTENT_TYPE)], render(storage, config)


def token_matches(config, authorization: str | None) -> bool:
    """The request's ``Authorization: Bearer …`` against ROLLOVER_METRICS_TOKEN, in constant time."""
    expected = f"Bearer {config.metrics_token}".encode()
    return bool(config.metrics_token) and hmac.compare_digest(expected, (authorization or "").strip().encode())


class _DatabaseCollector:
    """Gauges read from the database at each scrape (any process may serve them)."""

    def __init__(self, storage, config, now: float):
        self.storage, self.config, self.now = storage, config, now

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import GaugeMetricFamily
        backlog = self.storage.events.backlog(self.now)
        yield _gauge(GaugeMetricFamily, "rollover_events_pending", "Events recorded and not handled yet.",
                     backlog["pending"])
        yield _gauge(GaugeMetricFamily, "rollover_events_failed_stored", "Events failed for good, as stored.",
                     backlog["failed"])
        yield _gauge(GaugeMetricFamily, "rollover_events_oldest_pending_seconds",
                     "Age of the oldest pending event (0 when none): a growing value means no worker runs.",
                     backlog["oldest_pending_seconds"])
        rotations = GaugeMetricFamily("rollover_rotations", "Rotations by state (open ones and finished ones).",
                                      labels=["state"])
        for state, number in self._rotations_by_state():
            rotations.add_metric([state], number)
        yield rotations
        yield self._certificates(GaugeMetricFamily)

    def _rotations_by_state(self) -> list[tuple[str, int]]:
        counts: dict[str, int] = {}
        for record in self.storage.rotations.all(open_only=False):
            counts[record.state] = counts.get(record.state, 0) + 1
        return sorted(counts.items())

    def _certificates(self, family):
        from rollover.certificates.sources import redact
        gauge = family("rollover_certificate_days_left",
                       "Days until each tracked certificate expires (negative once expired), by space, source, "
                       "role and SHA-1.", labels=["space", "source", "role", "sha1"])
        seen = set()
        for certificate in self.storage.tracking.certificates():
            label = certificate.source_label
            labels = (certificate.room_id, redact(label) if "://" in label else label, certificate.role or "none",
                      certificate.sha1)
            if labels in seen:
                continue   # one certificate listed twice in one document (signing and encryption)
            seen.add(labels)
            gauge.add_metric(list(labels), round((certificate.not_after - self.now) / 86400, 2))
        return gauge


def _gauge(family, name: str, help_text: str, value: float):
    metric = family(name, help_text)
    metric.add_metric([], value)
    return metric
