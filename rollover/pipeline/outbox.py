"""The outbox: every post the bot makes on behalf of one piece of work, sent once even when the work is retried.

The n-th post of a work item (a webhook event, a rotation card version, a reminder) is recorded with the
message id Webex gave it; when the item runs again after a 429/5xx or a crash, the posts that already went
out are not sent again. Chat handlers post through their ``Context``; rotations and reminders use a
``Poster`` directly: they answer no chat message.
"""

from __future__ import annotations

import logging
from typing import Any

from rollover.integrations.webex_client import WebexClient, WebexError, WebexUnavailable
from rollover.storage import Storage

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 7439          # Webex's limit for text/markdown


class Poster:
    """Posts into one room for one work item (``key``), each position once."""

    def __init__(self, storage: Storage, webex: WebexClient, key: str, room_id: str):
        self.storage, self.webex, self.key, self.room_id = storage, webex, key, room_id
        self._posts = 0

    def reply(self, text: str | None = None, *, markdown: str | None = None, card: Any = None,
              file: tuple[str, bytes] | None = None, parent_id: str | None = None,
              to_person_id: str | None = None) -> str:
        """Post to the room (or privately to ``to_person_id``); once per position, even on retries."""
        if card is not None and not (text or markdown):
            raise ValueError("a card needs fallback text or markdown")
        position = self._posts
        self._posts += 1
        already = self.storage.outbox.sent(self.key, position)
        if already:
            return already
        message_id = self.webex.post_message(
            room_id=None if to_person_id else self.room_id, to_person_id=to_person_id,
            text=fit(text), markdown=fit(markdown), card=card_dict(card), parent_id=parent_id, file=file)
        self.storage.outbox.record(self.key, position, message_id)
        return message_id

    def delete_message(self, message_id: str) -> bool:
        """Delete a message; False when Webex refused (the caller then replies in a thread instead)."""
        try:
            self.webex.delete_message(message_id)
            return True
        except WebexUnavailable:
            raise
        except WebexError as error:
            if error.status_code == 404:
                return True   # already gone: a retried item deleted it before
            log.warning("could not delete message: %s", error)
            return False


def card_dict(card: Any) -> dict | None:
    if card is None or isinstance(card, dict):
        return card
    return card.to_dict()


def fit(text: str | None) -> str | None:
    """Keep within Webex's 7439-byte limit, cutting at a character boundary."""
    if text is None or len(text.encode()) <= MAX_MESSAGE_BYTES:
        return text
    marker = "\n… (cut: too long for one Webex message)"
    budget = MAX_MESSAGE_BYTES - len(marker.encode())
    return text.encode()[:budget].decode(errors="ignore") + marker
