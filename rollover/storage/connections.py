"""The state of the process-held connections (the Webex websocket), as its holder last reported it.

The holder of a connection writes a snapshot every few seconds; any process (``/healthz`` of the web
process, ``about`` answered by any worker) reads it. An old snapshot means nobody holds the connection.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rollover.storage.connection import Database


@dataclass(frozen=True)
class ConnectionReport:
    name: str
    owner: str
    status: dict[str, Any]
    updated_at: float          # epoch seconds


class Connections:
    def __init__(self, database: Database):
        self.database = database

    def report(self, name: str, owner: str, status: dict[str, Any], now: float) -> None:
        self.database.execute(
            "INSERT INTO connection_status (name, owner, status, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, status = excluded.status, "
            "updated_at = excluded.updated_at", [name, owner, json.dumps(status), now])

    def latest(self, name: str) -> ConnectionReport | None:
        row = self.database.execute("SELECT owner, status, updated_at FROM connection_status WHERE name = ?",
                                    [name]).fetchone()
        return None if row is None else ConnectionReport(name, row[0], json.loads(row[1]), row[2])
