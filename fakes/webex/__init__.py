"""The local Webex API (a loopback server the real webexpythonsdk talks to) and its simulated organisation.

Run it standalone with ``python -m fakes.webex --port 8090`` (see ``fakes/webex/__main__.py``).
"""

from fakes.webex.local import LocalWebex
from fakes.webex.model import (
    CARD_CONTENT_TYPE,
    DEFAULT_CARD_SCHEMA_PATH,
    ApiFailure,
    ContentFile,
    Person,
    Room,
    make_id,
    sign_body,
)

__all__ = ["CARD_CONTENT_TYPE", "DEFAULT_CARD_SCHEMA_PATH", "ApiFailure", "ContentFile", "LocalWebex", "Person",
           "Room", "make_id", "sign_body"]
