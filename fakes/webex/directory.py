"""``/v1/people`` and ``/v1/rooms/{id}``: who is who in the local organisation.
"""

from __future__ import annotations

from werkzeug.wrappers import Request, Response

from fakes.webex.model import (
    ApiFailure,
    Person,
    json_response,
)
from fakes.webex.state import WebexWorld


class DirectoryRoutes(WebexWorld):
    """``/v1/people`` and ``/v1/rooms``."""

    # ---- people ------------------------------------------------------------------------------

    def _api_people_me(self, caller: Person, request: Request) -> Response:
        return json_response(caller.to_json())

    def _api_people_get(self, caller: Person, request: Request, person_id: str) -> Response:
        with self._lock:
            person = self._people.get(person_id)
        if person is None:
            raise ApiFailure(404, "Person not found.")
        return json_response(person.to_json())

    def _api_people_list(self, caller: Person, request: Request) -> Response:
        email = request.args.get("email", "").lower()
        ids = set(filter(None, request.args.get("id", "").split(",")))
        name = request.args.get("displayName", "").lower()
        if not (email or ids or name):
            raise ApiFailure(400, "Specify email, displayName or id.")
        with self._lock:
            people = [p.to_json() for p in self._people.values()
                      if (not email or p.email.lower() == email)
                      and (not ids or p.id in ids)
                      and (not name or p.display_name.lower().startswith(name))]
        return self._page(request, people, default_max=100)

    # ---- rooms -------------------------------------------------------------------------------

    def _api_rooms_get(self, caller: Person, request: Request, room_id: str) -> Response:
        """A space's details, for its members only (Webex answers others with 404)."""
        with self._lock:
            room = self._member_room(caller, room_id)
            return json_response({"id": room.id, "title": room.title, "type": room.type, "isLocked": False,
                          "lastActivity": room.created, "created": room.created})
