"""What one sweep knows about each space, read once: its sources, tracked certificates and trust diagnosis.

A space with ten reminders due used to re-read its sources, query its certificates twice and parse its
stored documents again for each of them. A sweep builds a space's facts at its first reminder and reuses
them for the others and for the digest. Snoozes and acknowledgements are not kept here: each reminder
reads them afresh, so a click during the sweep still counts.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from rollover.tracking import CertificateView, room_diagnosis, view_of


class SpaceFacts:
    """The per-space reads of one sweep (``now`` fixed), safe to share between its posting threads."""

    def __init__(self, services, now: datetime):
        self.services, self.now = services, now
        self._spaces: dict[str, dict[str, Any]] = {}
        self._entra_apps: list[dict[str, Any]] | None = None
        self._lock = threading.Lock()

    def _space(self, room_id: str) -> dict[str, Any]:
        with self._lock:
            return self._spaces.setdefault(room_id, {})

    def _once(self, room_id: str, name: str, read):
        space = self._space(room_id)
        if name not in space:
            space[name] = read()
        return space[name]

    def sources(self, room_id: str) -> list:
        return self._once(room_id, "sources", lambda: self.services.storage.tracking.sources(room_id=room_id))

    def certificates(self, room_id: str) -> list:
        return self._once(room_id, "certificates",
                          lambda: self.services.storage.tracking.certificates(room_id=room_id))

    def views(self, room_id: str) -> list[CertificateView]:
        """Every certificate the space tracks, worst first (as ``tracking.room_certificates``)."""
        return self._once(room_id, "views", lambda: sorted(
            (view_of(c, self.now, self.services.config) for c in self.certificates(room_id)),
            key=lambda view: view.sort_key))

    def diagnosis(self, room_id: str):
        return self._once(room_id, "diagnosis", lambda: room_diagnosis(self.services, room_id))

    def entra_apps(self) -> list[dict[str, Any]]:
        if self._entra_apps is None:
            self._entra_apps = self.services.storage.tracking.entra_apps()
        return self._entra_apps
