"""Loopback Webex Mercury for tests, the demo and the benchmark ("local Mercury").

Two real servers on 127.0.0.1 that the unmodified Rollover websocket client talks to:

- HTTP: the u2c service catalog (``GET /u2c/api/v1/catalog?format=hostmap``) and the WDM device
  service (``GET/POST /wdm/api/v1/devices``, ``PUT/DELETE /wdm/api/v1/devices/{id}``);
- websocket: ``/v1/apps/wx2/registrations/{device}/messages`` speaking Mercury: authorization frame,
  ``mercury.buffer_state``, ``conversation.activity`` frames, acks by frame id, ping/pong, close 4000
  when a second connection of the same device replaces the first, 4401 for a bad token.

The shapes follow docs/websocket-protocol.md (Webex JS SDK, Android SDK, webex_bot). Like Mercury it
keeps every frame a device has not acknowledged and sends it again when that device reconnects.

It is told what happened in Webex - ``message_created(...)``, ``attachment_action_created(...)`` (or
``on_message(message_json)`` / ``on_attachment_action(action_json)`` with the JSON the local Webex API
serves) - and emits the frames; the ids it uses decode from the public ids, so a client deriving the
public id back gets exactly the id the local Webex serves (``local_webex.make_id`` builds both the same way).

Faults: ``drop_connections()``, ``drop_after_next_frame()``, ``duplicate_next()``, ``make_stale()``,
``ack_delay`` / ``withhold_acks`` (acks arrive but are applied late / never: frames come again on the
next connection), ``withhold_pongs``. Everything it saw is kept: ``acks``, ``stray_acks``, ``pings``,
``registrations``, ``sent_at`` / ``acked_at`` (for the benchmark).
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http import HTTPStatus
from typing import Any, Callable, Iterable

from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from fakes.server import serve_wsgi

logger = logging.getLogger(__name__)

US_CLUSTER_ID = "urn:TEAM:us-east-2_a"
OTHER_CLUSTERS = ("urn:TEAM:eu-central-1_k",)       # a second region, so cluster ids are exercised
SOCKET_PATH = "/v1/apps/wx2/registrations/{}/messages"
AUTH_TIMEOUT = 10.0


def parse_public_id(public_id: str) -> tuple[str, str, str]:
    """``(cluster, KIND, uuid)`` of a Webex public id (base64url of ``ciscospark://cluster/KIND/uuid``)."""
    try:
        text = base64.urlsafe_b64decode(public_id + "=" * (-len(public_id) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise ValueError(f"not a Webex id: {public_id!r}") from None
    if not text.startswith("ciscospark://") or text.count("/") < 4:
        raise ValueError(f"not a Webex id: {public_id!r}")
    cluster, kind, raw = text[len("ciscospark://"):].rsplit("/", 2)
    return cluster, kind, raw


def conversation_host(cluster: str) -> str:
    """The conversation service host of a cluster (``us`` is ``conv-a``, as in the JS SDK fixtures)."""
    if cluster in ("us", US_CLUSTER_ID):
        return "conv-a.wbx2.com"
    return "conv-" + cluster.split(":")[-1].replace("_", "-").lower() + ".wbx2.com"


def _cluster_id(cluster: str) -> str:
    return US_CLUSTER_ID if cluster == "us" else cluster


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Ack:
    device_id: str
    message_id: str
    received_at: float          # perf_counter


@dataclass
class _Device:
    id: str
    owner: str                  # uuid of the registered user
    body: dict[str, Any]
    created: str
    modified: str
    pending: dict[str, dict[str, Any]] = field(default_factory=dict)   # frame id -> envelope, in order
    session: "_Session | None" = None
    stale: bool = False
    send_lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class _Session:
    device: _Device
    connection: ServerConnection
    sequence: int = 0


class _NoFrameLogger(logging.LoggerAdapter):
    """websockets logs every frame at DEBUG - the client's authorization frame carries its token."""

    def isEnabledFor(self, level: int) -> bool:
        return level > logging.DEBUG and self.logger.isEnabledFor(level)


class WebexMercury:
    """The u2c catalog, WDM and Mercury of the local Webex. See the module docstring."""

    def __init__(self, token_owner: Callable[[str], str | None] | dict[str, str], *, host: str = "127.0.0.1",
                 clusters: Iterable[str] = OTHER_CLUSTERS):
        # token -> owner (a person's public id or uuid); a dict or the local Webex's own lookup.
        self._token_owner = token_owner.get if isinstance(token_owner, dict) else token_owner
        self.host = host
        self.clusters = ["us", *clusters]
        self.ack_delay = 0.0
        self.withhold_acks = False
        self.withhold_pongs = False
        self.acks: list[Ack] = []
        self.stray_acks: list[Ack] = []
        self.pings: list[str] = []
        self.authorization_frames: list[dict[str, Any]] = []
        self.registrations = 0
        self.connections = 0
        self.sent_at: dict[str, float] = {}
        self.acked_at: dict[str, float] = {}
        self._devices: dict[str, _Device] = {}
        self._duplicates = 0
        self._drop_after_frame = False
        self._changed = threading.Condition(threading.RLock())
        self._http = None                       # fakes.server's serving loop: stop() returns at once
        self._ws: Server | None = None
        self._ws_thread: threading.Thread | None = None
        self._url_map = Map([
            Rule("/u2c/api/v1/catalog", methods=["GET"], endpoint="catalog"),
            Rule("/wdm/api/v1/devices", methods=["GET"], endpoint="devices_list"),
            Rule("/wdm/api/v1/devices", methods=["POST"], endpoint="devices_create"),
            Rule("/wdm/api/v1/devices/<device_id>", methods=["PUT"], endpoint="devices_refresh"),
            Rule("/wdm/api/v1/devices/<device_id>", methods=["DELETE"], endpoint="devices_delete"),
        ])

    # ---- lifecycle -----------------------------------------------------------------------------------

    def start(self) -> "WebexMercury":
        if self._http is not None:
            return self
        self._http = serve_wsgi(self._wsgi, self.host, name="local-mercury-http")
        self._ws = serve(self._serve_socket, self.host, 0, process_request=self._check_device,
                         compression=None, ping_interval=None, close_timeout=2,
                         logger=_NoFrameLogger(logging.getLogger("websockets.server"), {}))
        self._ws_thread = threading.Thread(target=self._ws.serve_forever, name="local-mercury-ws", daemon=True)
        self._ws_thread.start()
        return self

    def stop(self) -> None:
        if self._http is None:
            return
        for session in self._sessions():
            session.connection.close(1001, "going away")
        self._ws.shutdown()
        self._ws_thread.join(timeout=5)
        self._http.stop()
        self._http = None

    def __enter__(self) -> "WebexMercury":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def http_base(self) -> str:
        return f"http://{self.host}:{self._http.server.server_port}"

    @property
    def u2c_url(self) -> str:
        """What the client is given instead of ``https://u2c.wbx2.com/u2c/api/v1/catalog``."""
        return f"{self.http_base}/u2c/api/v1/catalog"

    @property
    def ws_port(self) -> int:
        return self._ws.socket.getsockname()[1]

    # ---- what happened in Webex ----------------------------------------------------------------------

    def message_created(self, message_id: str, room_id: str, person_id: str, *, room_type: str = "group",
                        person_email: str | None = None, files: int = 0,
                        recipients: Iterable[str] | None = None) -> list[str]:
        """A person posted a message (``share`` when it carries files); returns the frame ids sent."""
        cluster, _, message = parse_public_id(message_id)
        verb = "share" if files else "post"
        obj: dict[str, Any] = {"objectType": "comment", "displayName": _opaque_ciphertext()}
        if files:
            obj = {"objectType": "content", "contentCategory": "documents", "displayName": _opaque_ciphertext(),
                   "files": {"items": [{"objectType": "file", "displayName": _opaque_ciphertext(),
                                        "malwareQuarantineState": "safe"} for _ in range(files)]}}
        activity = self._activity(verb, message, cluster, room_id, room_type, person_id, person_email, obj)
        return self.emit({"eventType": "conversation.activity", "activity": activity}, recipients)

    def attachment_action_created(self, action_id: str, message_id: str, room_id: str, person_id: str, *,
                                  inputs: dict[str, Any] | None = None, room_type: str = "group",
                                  person_email: str | None = None,
                                  recipients: Iterable[str] | None = None) -> list[str]:
        """A person submitted the card of ``message_id``; returns the frame ids sent."""
        cluster, _, action = parse_public_id(action_id)
        obj = {"objectType": "submit", "inputs": dict(inputs or {})}
        activity = self._activity("cardAction", action, cluster, room_id, room_type, person_id, person_email, obj)
        activity["parent"] = {"id": parse_public_id(message_id)[2]}
        return self.emit({"eventType": "conversation.activity", "activity": activity}, recipients)

    def on_message(self, message: dict[str, Any], recipients: Iterable[str] | None = None) -> list[str]:
        """``message_created`` from the JSON the local Webex serves for ``/messages/{id}``."""
        return self.message_created(message["id"], message["roomId"], message["personId"],
                                    room_type=message.get("roomType", "group"),
                                    person_email=message.get("personEmail"), files=len(message.get("files") or []),
                                    recipients=recipients)

    def on_attachment_action(self, action: dict[str, Any], recipients: Iterable[str] | None = None) -> list[str]:
        """``attachment_action_created`` from the JSON the local Webex serves for ``/attachment/actions/{id}``."""
        return self.attachment_action_created(action["id"], action["messageId"], action["roomId"],
                                              action["personId"], inputs=action.get("inputs"),
                                              recipients=recipients)

    def emit(self, data: dict[str, Any], recipients: Iterable[str] | None = None) -> list[str]:
        """Send any ``data`` (an activity or another event type) to the devices of ``recipients``
        (default: every user with a device). Frames of a disconnected device wait for it."""
        owners = {_uuid_of(r) for r in recipients} if recipients is not None else None
        with self._changed:
            devices = [d for d in self._devices.values() if not d.stale and (owners is None or d.owner in owners)]
        frame_ids = []
        for device in devices:
            envelope = {"id": str(uuid.uuid4()), "data": json.loads(json.dumps(data)),
                        "timestamp": int(time.time() * 1000), "trackingId": f"NA_{uuid.uuid4()}",
                        "alertType": "full", "headers": {}, "filterMessage": False}
            with self._changed:
                device.pending[envelope["id"]] = envelope
            self._deliver(device, envelope)
            frame_ids.append(envelope["id"])
        return frame_ids

    def _activity(self, verb: str, activity_id: str, cluster: str, room_id: str, room_type: str,
                  person_id: str, person_email: str | None, obj: dict[str, Any]) -> dict[str, Any]:
        room_cluster, _, room = parse_public_id(room_id)
        _, _, person = parse_public_id(person_id)
        if room_cluster not in self.clusters:
            self.clusters.append(room_cluster)
        host = conversation_host(room_cluster)
        return {
            "id": activity_id, "objectType": "activity", "verb": verb, "published": _now_iso(),
            "url": f"https://{host}/conversation/api/v1/activities/{activity_id}",
            "actor": {"id": person, "objectType": "person", "entryUUID": person, "type": "PERSON",
                      "emailAddress": person_email or ""},
            "object": obj,
            "target": {"id": room, "objectType": "conversation",
                       "url": f"https://{host}/conversation/api/v1/conversations/{room}",
                       "tags": ["ONE_ON_ONE"] if room_type == "direct" else []},
            "clientTempId": f"tmp-{uuid.uuid4()}",
            "encryptionKeyUrl": f"kms://kms-cisco.wbx2.com/keys/{uuid.uuid4()}",
        }

    # ---- faults --------------------------------------------------------------------------------------

    def drop_connections(self) -> int:
        """Cut every open socket without a close frame (a network loss); returns how many."""
        sessions = self._sessions()
        for session in sessions:
            _cut(session.connection)
        return len(sessions)

    def drop_after_next_frame(self) -> None:
        """Cut the connection right after the next activity frame is sent, before its ack can arrive."""
        with self._changed:
            self._drop_after_frame = True

    def duplicate_next(self, count: int = 1) -> None:
        """Send each of the next ``count`` frames twice (same frame id)."""
        with self._changed:
            self._duplicates += count

    def make_stale(self, device_url: str | None = None) -> None:
        """The device registration is gone (default: every device): its socket and WDM URL answer 404."""
        with self._changed:
            devices = [d for d in self._devices.values() if device_url in (None, self._device_url(d))]
            for device in devices:
                device.stale = True
                self._devices.pop(device.id, None)
            self._changed.notify_all()
        for device in devices:
            if device.session is not None:
                _cut(device.session.connection)

    # ---- inspection ----------------------------------------------------------------------------------

    def devices(self, owner: str | None = None) -> list[dict[str, Any]]:
        with self._changed:
            return [self._device_json(d) for d in self._devices.values()
                    if owner is None or d.owner == _uuid_of(owner)]

    def pending(self) -> list[str]:
        """Frame ids sent (or waiting) and not acknowledged, over all devices."""
        with self._changed:
            return [frame for d in self._devices.values() for frame in d.pending]

    def acked(self, frame_id: str) -> bool:
        with self._changed:
            return any(a.message_id == frame_id for a in self.acks)

    def connected_devices(self) -> int:
        return len(self._sessions())

    def wait_for(self, condition: Callable[[], bool], timeout: float = 10.0) -> bool:
        """Wait until ``condition()`` holds (checked on every change of the fake's state)."""
        with self._changed:
            return self._changed.wait_for(condition, timeout)

    # ---- websocket -----------------------------------------------------------------------------------

    def _check_device(self, connection: ServerConnection, request: Any) -> Any:
        device = self._device_of_path(request.path)
        if device is None:
            return connection.respond(HTTPStatus.NOT_FOUND, "Registration not found\n")
        return None

    def _serve_socket(self, connection: ServerConnection) -> None:
        device = self._device_of_path(connection.request.path)
        if device is None or not self._authorized(connection, device):
            return
        session = self._attach(device, connection)
        try:
            for raw in connection:
                self._on_client_frame(session, raw)
        except ConnectionClosed:
            pass
        finally:
            with self._changed:
                if device.session is session:
                    device.session = None
                self._changed.notify_all()

    def _authorized(self, connection: ServerConnection, device: _Device) -> bool:
        try:
            frame = json.loads(connection.recv(timeout=AUTH_TIMEOUT))
        except TimeoutError:
            connection.close(1008, "authentication did not happen within the timeout window")
            return False
        except (ValueError, ConnectionClosed):
            connection.close(4400, "bad request")
            return False
        with self._changed:
            self.authorization_frames.append(frame)
            self._changed.notify_all()
        token = str((frame.get("data") or {}).get("token", "")) if isinstance(frame, dict) else ""
        scheme, _, value = token.partition(" ")
        owner = self._token_owner(value) if scheme == "Bearer" and frame.get("type") == "authorization" else None
        if owner is None or _uuid_of(owner) != device.owner:
            connection.close(4401, "authentication failed")
            return False
        return True

    def _attach(self, device: _Device, connection: ServerConnection) -> _Session:
        """The new connection replaces the device's old one (close 4000), then gets the buffer state
        and every frame still unacknowledged, in order."""
        session = _Session(device, connection)
        with device.send_lock:
            with self._changed:
                previous, device.session = device.session, session
                self.connections += 1
                backlog = list(device.pending.values())
                self._changed.notify_all()
            if previous is not None:   # closed aside: a dead socket may take close_timeout to give up
                threading.Thread(target=previous.connection.close, args=(4000, "replaced"), daemon=True).start()
            self._send(session, {"id": str(uuid.uuid4()), "data": {"eventType": "mercury.buffer_state"},
                                 "timestamp": int(time.time() * 1000), "trackingId": f"NA_{uuid.uuid4()}"})
            for envelope in backlog:
                self._send(session, envelope)
        return session

    def _deliver(self, device: _Device, envelope: dict[str, Any]) -> None:
        with device.send_lock:
            session = device.session
            if session is None:
                return
            with self._changed:
                copies = 2 if self._duplicates > 0 else 1
                self._duplicates = max(0, self._duplicates - 1)
                drop, self._drop_after_frame = self._drop_after_frame, False
            for _ in range(copies):
                self._send(session, envelope)
            if drop:
                _cut(session.connection)

    def _send(self, session: _Session, envelope: dict[str, Any]) -> None:
        session.sequence += 1
        text = json.dumps({**envelope, "sequenceNumber": session.sequence})
        started = time.perf_counter()
        try:
            session.connection.send(text)
        except ConnectionClosed:
            return   # the frame stays pending and goes out on the next connection
        with self._changed:
            self.sent_at.setdefault(envelope["id"], started)
            self._changed.notify_all()

    def _on_client_frame(self, session: _Session, raw: str | bytes) -> None:
        try:
            frame = json.loads(raw)
        except ValueError:
            session.connection.close(4400, "bad request")
            return
        kind = frame.get("type") if isinstance(frame, dict) else None
        if kind == "ack":
            self._on_ack(session.device, str(frame.get("messageId")))
        elif kind == "ping":
            with self._changed:
                self.pings.append(str(frame.get("id")))
                self._changed.notify_all()
            if not self.withhold_pongs:
                session.connection.send(json.dumps({"id": frame.get("id"), "type": "pong"}))

    def _on_ack(self, device: _Device, message_id: str) -> None:
        ack = Ack(device.id, message_id, time.perf_counter())
        with self._changed:
            known = message_id in self.sent_at        # stray: an id this fake never sent
            (self.acks if known else self.stray_acks).append(ack)
            self.acked_at.setdefault(message_id, ack.received_at)
            self._changed.notify_all()
        if self.withhold_acks or not known:
            return
        if self.ack_delay > 0:
            timer = threading.Timer(self.ack_delay, self._apply_ack, (device, message_id))
            timer.daemon = True
            timer.start()
        else:
            self._apply_ack(device, message_id)

    def _apply_ack(self, device: _Device, message_id: str) -> None:
        with self._changed:
            device.pending.pop(message_id, None)
            self._changed.notify_all()

    def _sessions(self) -> list[_Session]:
        with self._changed:
            return [d.session for d in self._devices.values() if d.session is not None]

    def _device_of_path(self, path: str) -> _Device | None:
        prefix, _, rest = path.partition("?")[0].partition("/registrations/")
        device_id, _, tail = rest.partition("/")
        with self._changed:
            device = self._devices.get(device_id)
        return device if prefix == "/v1/apps/wx2" and tail == "messages" and device and not device.stale else None

    # ---- HTTP: catalog and WDM -----------------------------------------------------------------------

    def _wsgi(self, environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        request = Request(environ)
        try:
            endpoint, args = self._url_map.bind_to_environ(environ).match()
            owner = self._caller(request)
            response = getattr(self, f"_http_{endpoint}")(request, owner, **args) if owner else \
                _error(401, "The request requires a valid access token set in the Authorization request header.")
        except HTTPException as error:
            response = _error(error.code or 500, error.description or "error")
        except Exception:
            logger.exception("local Mercury failed on %s %s", request.method, request.path)
            response = _error(500, "Internal error in the local Mercury server.")
        return response(environ, start_response)

    def _caller(self, request: Request) -> str | None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        owner = self._token_owner(token.strip()) if scheme.lower() == "bearer" else None
        return _uuid_of(owner) if owner else None

    def _http_catalog(self, request: Request, owner: str) -> Response:
        if request.args.get("format") != "hostmap":
            return _error(400, "Only format=hostmap is served here.")
        host_catalog = {conversation_host(c): [{"host": conversation_host(c), "ttl": -1, "priority": 5,
                                                 "id": f"{_cluster_id(c)}:conversation"}] for c in self.clusters}
        wdm_host = f"{self.host}:{self._http.server.server_port}"
        host_catalog[wdm_host] = [{"host": wdm_host, "ttl": -1, "priority": 5, "id": f"{US_CLUSTER_ID}:wdm"}]
        return _json({"serviceLinks": {"wdm": f"{self.http_base}/wdm/api/v1",
                                       "conversation": f"https://{conversation_host('us')}/conversation/api/v1"},
                      "hostCatalog": host_catalog, "format": "hostmap"})

    def _http_devices_list(self, request: Request, owner: str) -> Response:
        return _json({"devices": self.devices(owner)})

    def _http_devices_create(self, request: Request, owner: str) -> Response:
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not body.get("deviceType"):
            return _error(400, "A device needs a name and a deviceType.")
        stamp = _now_iso()
        device = _Device(str(uuid.uuid4()), owner, dict(body), stamp, stamp)
        with self._changed:
            self._devices[device.id] = device
            self.registrations += 1
            self._changed.notify_all()
        return _json(self._device_json(device))

    def _http_devices_refresh(self, request: Request, owner: str, device_id: str) -> Response:
        body = request.get_json(silent=True)
        with self._changed:
            device = self._devices.get(device_id)
            if device is None or device.owner != owner:
                return _error(404, "Device not found.")
            if isinstance(body, dict):
                device.body.update(body)
            device.modified = _now_iso()
            return _json(self._device_json(device))

    def _http_devices_delete(self, request: Request, owner: str, device_id: str) -> Response:
        with self._changed:
            device = self._devices.get(device_id)
            if device is None or device.owner != owner:
                return _error(404, "Device not found.")
            del self._devices[device_id]
            self._changed.notify_all()
        if device.session is not None:
            device.session.connection.close(1000, "device deleted")
        return Response(status=204)

    def _device_url(self, device: _Device) -> str:
        return f"{self.http_base}/wdm/api/v1/devices/{device.id}"

    def _device_json(self, device: _Device) -> dict[str, Any]:
        return {**device.body, "url": self._device_url(device),
                "webSocketUrl": f"ws://{self.host}:{self.ws_port}{SOCKET_PATH.format(device.id)}",
                "userId": device.owner, "creationTime": device.created, "modificationTime": device.modified,
                "services": {"wdmServiceUrl": f"{self.http_base}/wdm/api/v1"}}


def _uuid_of(owner: str) -> str:
    """A person's uuid from its public id (or the uuid itself)."""
    try:
        return parse_public_id(owner)[2]
    except ValueError:
        return owner


def _cut(connection: ServerConnection) -> None:
    """Close the TCP connection without a close frame: the client sees 1006, as on a network loss."""
    try:
        connection.socket.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _opaque_ciphertext() -> str:
    """Message text travels KMS-encrypted (a JWE); bots never read it from the socket."""
    return "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0.." + base64.urlsafe_b64encode(uuid.uuid4().bytes).decode()


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")


def _error(status: int, message: str) -> Response:
    return _json({"message": message, "errors": [{"description": message}],
                  "trackingId": f"ROUTER_{uuid.uuid4()}"}, status)
