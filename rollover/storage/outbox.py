"""The outbox's record: which post of a work item went out, with the id Webex gave it."""

from __future__ import annotations

import time

from rollover.storage.connection import Database, placeholders


class Outbox:
    def __init__(self, database: Database):
        self.database = database

    @property
    def db(self) -> Database:
        return self.database

    def sent(self, event_key: str, position: int) -> str | None:
        row = self.db.execute("SELECT message_id FROM outbox WHERE event_key = ? AND position = ?",
                              [event_key, position]).fetchone()
        return None if row is None else row[0]

    def record(self, event_key: str, position: int, message_id: str) -> None:
        self.db.execute("INSERT INTO outbox (event_key, position, message_id, sent_at) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT (event_key, position) DO UPDATE SET message_id = excluded.message_id, "
                        "sent_at = excluded.sent_at", [event_key, position, message_id, time.time()])

    def forget(self, event_keys: list[str]) -> None:
        """Drop the posts of work items that are gone (events deleted after their retention)."""
        if event_keys:
            self.db.execute(f"DELETE FROM outbox WHERE event_key IN ({placeholders(event_keys)})", event_keys)
