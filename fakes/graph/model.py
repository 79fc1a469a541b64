"""The local Graph's constants, error bodies and OData query subset ($filter, $select)."""

from __future__ import annotations

import base64
import datetime as dt
import re
import uuid
from typing import Callable, Optional

UTC = dt.timezone.utc
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 999
MAX_TOKEN_SIGNING_YEARS = 3

READ_APP_PERMISSIONS = frozenset({
    "Application.Read.All", "Application.ReadWrite.OwnedBy", "Application.ReadWrite.All",
    "Directory.Read.All", "Directory.ReadWrite.All",
})
WRITE_ANY_APP_PERMISSIONS = frozenset({"Application.ReadWrite.All", "Directory.ReadWrite.All"})
WRITE_OWNED_APP_PERMISSION = "Application.ReadWrite.OwnedBy"
READ_GROUP_PERMISSIONS = frozenset({
    "GroupMember.Read.All", "Group.Read.All", "Directory.Read.All", "Directory.ReadWrite.All",
})
DEFAULT_PERMISSIONS = ("Application.ReadWrite.All", "GroupMember.Read.All")

SSO_CERT_CN = "CN=Microsoft Azure Federated SSO Certificate"


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --------------------------------------------------------------------------- errors


class GraphHttpError(Exception):
    """Raised inside a handler; becomes a Graph-shaped JSON error response."""

    def __init__(self, status: int, code: str, message: str, headers: Optional[dict] = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


def error_body(code: str, message: str) -> dict:
    """The exact shape of the recorded Graph error (azure-cli cassette)."""
    request_id = str(uuid.uuid4())
    return {"error": {"code": code, "message": message, "innerError": {
        "date": dt.datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "request-id": request_id, "client-request-id": request_id}}}


def permission_denied() -> GraphHttpError:
    return GraphHttpError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")


def not_found(resource: str) -> GraphHttpError:
    return GraphHttpError(404, "Request_ResourceNotFound",
                          f"Resource '{resource}' does not exist or one of its queried reference-property "
                          "objects are not present.")


def bad_request(message: str) -> GraphHttpError:
    return GraphHttpError(400, "Request_BadRequest", message)



# --------------------------------------------------------------------------- query helpers

_FILTER_EQ = re.compile(r"^(\w+)\s+eq\s+'((?:[^']|'')*)'$", re.IGNORECASE)
_FILTER_IN = re.compile(r"^(\w+)\s+in\s+\((.*)\)$", re.IGNORECASE)
_FILTER_STARTSWITH = re.compile(r"^startswith\(\s*(\w+)\s*,\s*'((?:[^']|'')*)'\s*\)$", re.IGNORECASE)
_QUOTED = re.compile(r"'((?:[^']|'')*)'")


def _unescape(value: str) -> str:
    return value.replace("''", "'")


def compile_filter(expression: Optional[str]) -> Callable[[dict], bool]:
    """A predicate for the small OData subset the bot uses; anything else is a 400 like Graph's."""
    if not expression:
        return lambda _obj: True
    predicates = [_compile_clause(clause.strip()) for clause in re.split(r"\s+and\s+", expression)]
    if len(predicates) == 1:
        return predicates[0]
    return lambda obj: all(predicate(obj) for predicate in predicates)


def _compile_clause(clause: str) -> Callable[[dict], bool]:
    # Directory string comparisons are case-insensitive.
    if match := _FILTER_EQ.match(clause):
        prop, value = match.group(1), _unescape(match.group(2)).casefold()
        return lambda obj: str(obj.get(prop) or "").casefold() == value
    if match := _FILTER_IN.match(clause):
        prop = match.group(1)
        values = {_unescape(v).casefold() for v in _QUOTED.findall(match.group(2))}
        return lambda obj: str(obj.get(prop) or "").casefold() in values
    if match := _FILTER_STARTSWITH.match(clause):
        prop, prefix = match.group(1), _unescape(match.group(2)).casefold()
        return lambda obj: str(obj.get(prop) or "").casefold().startswith(prefix)
    raise GraphHttpError(400, "Request_UnsupportedQuery", f"Unsupported or invalid query filter clause: {clause}")


def selected(query: dict) -> Optional[list[str]]:
    raw = query.get("$select")
    return [name.strip() for name in raw.split(",") if name.strip()] if raw else None


def project(obj: dict, select: Optional[list[str]]) -> dict:
    if select is None:
        return dict(obj)
    return {"id": obj["id"], **{name: obj.get(name) for name in select if name != "id"}}

