"""Hosted files: ``/v1/contents/{id}`` with Webex's anti-malware scan states (423 while scanning, 410 infected,
428 unscannable), and the files posted with messages.
"""

from __future__ import annotations

from werkzeug.wrappers import Request, Response

from fakes.webex.model import (
    SCAN_STATES,
    ApiFailure,
    ContentFile,
    Person,
    Room,
    make_id,
)
from fakes.webex.state import WebexWorld


class FileRoutes(WebexWorld):
    """Files hosted under ``/v1/contents``."""

    def add_file(self, name: str, data: bytes, content_type: str, *, scan_state: str = "clean",
                 scanning_polls: int = 1, retry_after: int = 1) -> ContentFile:
        """Host a file at ``/v1/contents/{id}``.

        ``scan_state="scanning"`` answers 423 + Retry-After for ``scanning_polls`` downloads, then 200.
        """
        if scan_state not in SCAN_STATES:
            raise ValueError(f"scan_state must be one of {sorted(SCAN_STATES)}")
        content = ContentFile(id=make_id("CONTENT"), name=name, data=bytes(data),
                              content_type=content_type, scan_state=scan_state,
                              scanning_polls=scanning_polls, retry_after=retry_after)
        with self._lock:
            self._contents[content.id] = content
        return content

    def content_url(self, content: ContentFile | str) -> str:
        """The URL under which a hosted file is downloaded."""
        content_id = content.id if isinstance(content, ContentFile) else content
        return f"{self.base_url}contents/{content_id}"

    def hosted_file(self, content_id: str) -> ContentFile | None:
        """A hosted file, with the spaces it was posted in (``room_ids``)."""
        with self._lock:
            return self._contents.get(content_id)

    # ---- contents ----------------------------------------------------------------------------

    def _api_contents_get(self, caller: Person, request: Request, content_id: str) -> Response:
        with self._lock:
            content = self._contents.get(content_id)
            visible = content is not None and (
                not content.room_ids
                or any(caller.id in self._rooms[r].member_ids for r in content.room_ids))
            if not visible:
                raise ApiFailure(404, "Content not found.")
            if content.scan_state == "scanning" and content.scanning_polls > 0:
                content.scanning_polls -= 1
                raise ApiFailure(423, "The file is being scanned for malware; retry later.",
                                  {"Retry-After": str(content.retry_after)})
            if content.scan_state == "scanning":
                content.scan_state = "clean"
            if content.scan_state == "infected":
                raise ApiFailure(410, "The file was found to be infected and is no longer available.")
            if content.scan_state == "unscannable" and request.args.get("allow") != "unscannable":
                raise ApiFailure(428, "The file could not be scanned for malware; add "
                                       "?allow=unscannable to download it anyway.")
            data, name, content_type = content.data, content.name, content.content_type
        return Response(data, status=200, headers={
            "Content-Type": content_type,
            "Content-Disposition": f'attachment; filename="{name}"',
            "Content-Length": str(len(data)),
        })

    def _attach_content(self, content: ContentFile, room: Room) -> str:
        self._contents[content.id].room_ids.add(room.id)
        return self.content_url(content)

    def _host_posted_file(self, posted_file: tuple[str, bytes, str], room: Room) -> ContentFile:
        """Host a file posted with a message (Webex re-hosts every posted file under /contents)."""
        name, data, content_type = posted_file
        content = ContentFile(id=make_id("CONTENT"), name=name, data=data, content_type=content_type,
                              scan_state="clean", scanning_polls=0, retry_after=1, room_ids={room.id})
        self._contents[content.id] = content
        return content
