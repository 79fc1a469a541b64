"""Webex events over the Mercury websocket: no public URL, nothing inbound (framework-free).

The protocol, with its sources, is in docs/websocket-protocol.md. In short:

1. ``GET {u2c}?format=hostmap`` -> ``serviceLinks.wdm`` (the region's device service) and ``hostCatalog``.
2. ``GET {wdm}/devices``: reuse the device registered under our name, else ``POST {wdm}/devices``.
3. Open ``device.webSocketUrl``, send ``{"type": "authorization", "data": {"token": "Bearer ..."}}``.
4. Each ``conversation.activity`` frame whose verb is ``post``/``share``/``cardAction`` becomes
   ``(resource, public id)``, the id derived as the Webex JS SDK does; ``record()`` is called, and only
   then is the frame acknowledged with the frame's own id. Every other frame is acknowledged at once.
5. Application pings keep the connection honest; any loss reconnects with backoff and jitter, for ever;
   a handshake 404 (stale device) refreshes or re-registers the device.

``MercuryClient(token, record).start()`` runs all that in a background thread; ``status()`` tells
since when it is connected, the last event, the reconnects and the last gap.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urlencode, urlsplit, urlunsplit

import requests
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException
from websockets.sync.client import ClientConnection, connect

log = logging.getLogger(__name__)

DEFAULT_U2C_URL = "https://u2c.wbx2.com/u2c/api/v1/catalog"
DEFAULT_DEVICE_NAME = "rollover"
# The cluster ids whose public ids say "us" (JS SDK @webex/common constants: backwards compatibility).
US_CLUSTERS = ("urn:TEAM:us-east-2_a", "urn:TEAM:us-east-1_int13")
# What the JS SDK adds to webSocketUrl; bufferStates makes Mercury answer the authorization.
SOCKET_QUERY = {"outboundWireFormat": "text", "bufferStates": "true", "aliasHttpStatus": "true"}
# Activity verb -> (webhook resource, public id type). Everything else is acknowledged and dropped.
VERBS = {"post": ("messages", "MESSAGE"), "share": ("messages", "MESSAGE"),
         "cardAction": ("attachmentActions", "ATTACHMENT_ACTION")}
REPLACED = 4000                           # another connection of the same device took over
TOKEN_CLOSE_CODES = (4400, 4401, 4403)    # bad request / not authorized / not entitled
CATALOG_REFRESH_SECONDS = 60.0            # an unknown conversation host re-reads the catalog at most this often
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")

Record = Callable[[str, str, dict[str, Any]], None]


# --- public ids ---------------------------------------------------------------------------------------

def public_id(kind: str, raw_id: str, cluster: str = "us") -> str:
    """The REST/webhook id of a Mercury uuid: base64url, unpadded, of ``ciscospark://cluster/KIND/uuid``.

    People and organisations always live in ``us`` (JS SDK ``constructHydraId``).
    """
    if kind in ("PEOPLE", "ORGANIZATION"):
        cluster = "us"
    raw = f"ciscospark://{cluster}/{kind}/{raw_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cluster_name(cluster_id: str) -> str:
    """``urn:TEAM:us-east-2_a:conversation`` -> ``us``; ``urn:TEAM:eu-central-1_k:conversation`` ->
    ``urn:TEAM:eu-central-1_k`` (JS SDK ``getHydraClusterString``)."""
    if cluster_id.startswith(US_CLUSTERS):
        return "us"
    parts = cluster_id.split(":")
    if len(parts) < 3:
        raise ValueError(f"not a cluster id: {cluster_id!r}")
    return ":".join(parts[:3])


def host_clusters(hostmap: dict[str, Any]) -> dict[str, str]:
    """Host -> cluster name, from the catalog's ``hostCatalog`` (JS ``findClusterId``: match on ``host``)."""
    clusters: dict[str, str] = {}
    catalog = hostmap.get("hostCatalog")
    for key, entries in (catalog.items() if isinstance(catalog, dict) else ()):
        for entry in entries if isinstance(entries, list) else ():
            if isinstance(entry, dict) and isinstance(entry.get("id"), str):
                try:
                    clusters.setdefault(str(entry.get("host") or key), cluster_name(entry["id"]))
                except ValueError:
                    continue
    return clusters


# --- frames -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SocketEvent:
    """One event to record: the same key and payload shape as a webhook delivery."""

    resource: str
    event_id: str
    payload: dict[str, Any]

    @property
    def key(self) -> str:
        return f"{self.resource}:{self.event_id}"


class MalformedFrame(ValueError):
    """A conversation activity Rollover would act on, but without a usable id."""


def event_from_frame(envelope: dict[str, Any], cluster_of: Callable[[str], str],
                     own_user_id: str | None = None) -> SocketEvent | None:
    """The event a frame carries, or None for every kind Rollover does not act on.

    Raises MalformedFrame when a post/share/cardAction activity has no valid uuid.
    """
    data = envelope.get("data")
    if not isinstance(data, dict) or data.get("eventType") != "conversation.activity":
        return None
    activity = data.get("activity")
    if not isinstance(activity, dict) or activity.get("verb") not in VERBS:
        return None
    resource, kind = VERBS[activity["verb"]]
    activity_id = _uuid_or_none(activity.get("id"))
    if activity_id is None:
        raise MalformedFrame(f"a {activity['verb']} activity without a valid id")
    actor = _uuid_or_none(_field(activity, "actor", "entryUUID") or _field(activity, "actor", "id"))
    if own_user_id and actor and actor.lower() == own_user_id.lower():
        return None   # our own post: the dispatcher would drop it anyway, after a REST call
    target_url = _field(activity, "target", "url")
    cluster = cluster_of(target_url) if isinstance(target_url, str) else "us"
    room = _uuid_or_none(_field(activity, "target", "id"))
    person = public_id("PEOPLE", actor) if actor else None
    data_out: dict[str, Any] = {"id": public_id(kind, activity_id, cluster),
                                "roomId": public_id("ROOM", room, cluster) if room else None,
                                "personId": person}
    if resource == "attachmentActions":
        parent = _uuid_or_none(_field(activity, "parent", "id"))
        data_out["messageId"] = public_id("MESSAGE", parent, cluster) if parent else None
    payload = {"resource": resource, "event": "created", "actorId": person, "data": data_out}
    return SocketEvent(resource, data_out["id"], payload)


def _field(node: dict[str, Any], name: str, key: str) -> Any:
    child = node.get(name)
    return child.get(key) if isinstance(child, dict) else None


def _uuid_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and _UUID.fullmatch(value) else None


def socket_url(web_socket_url: str) -> str:
    """``webSocketUrl`` with the JS SDK's query parameters added."""
    parts = urlsplit(web_socket_url)
    query = "&".join(q for q in (parts.query, urlencode(SOCKET_QUERY)) if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


# --- errors -------------------------------------------------------------------------------------------

class TokenRejected(Exception):
    """Webex refused the bot token (401, or a 44xx close): retried slowly, it may be rotated."""


class StaleDevice(Exception):
    """The websocket handshake answered 404: the device registration is gone."""


class Replaced(Exception):
    """Mercury closed the socket with 4000: another connection of our device took over."""


class KeepaliveLost(Exception):
    """No pong in time (or a pong for another ping): the connection is dead or confused."""


class RecordFailed(Exception):
    """record() raised: the frame stays unacknowledged and Mercury delivers it again."""


class UnexpectedAnswer(Exception):
    """The catalog or WDM answered something other than what the protocol promises."""


# --- catalog and devices (REST) -----------------------------------------------------------------------

class DeviceRegistry:
    """The u2c catalog and the WDM devices of one bot token. Never logs the token."""

    def __init__(self, token: str, *, u2c_url: str = DEFAULT_U2C_URL, device_name: str = DEFAULT_DEVICE_NAME,
                 session: requests.Session | None = None, timeout: float = 15.0,
                 clock: Callable[[], float] = time.monotonic):
        self._headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                         "trackingid": f"rollover_{uuid.uuid4()}"}
        self._u2c_url = u2c_url
        self.device_name = device_name
        # requests honours HTTPS_PROXY / NO_PROXY by default (trust_env).
        self._session = session or requests.Session()
        self._timeout = timeout
        self._clock = clock
        self._clusters: dict[str, str] = {}
        self._wdm_url: str | None = None
        self._refreshed_for: dict[str, float] = {}
        self._lock = threading.Lock()

    def device_body(self) -> dict[str, str]:
        """What webex_bot registers (``DESKTOP``), under our own name."""
        return {"deviceName": self.device_name, "deviceType": "DESKTOP", "localizedModel": "python",
                "model": "python", "name": self.device_name, "systemName": self.device_name,
                "systemVersion": "1.0"}

    def read_catalog(self) -> None:
        hostmap = self._call("GET", self._u2c_url, params={"format": "hostmap"})
        wdm = hostmap.get("serviceLinks", {}).get("wdm") if isinstance(hostmap, dict) else None
        if not isinstance(wdm, str) or not wdm:
            raise UnexpectedAnswer("the Webex service catalog has no wdm service link")
        with self._lock:
            self._wdm_url = wdm.rstrip("/")
            self._clusters = host_clusters(hostmap)

    @property
    def wdm_url(self) -> str:
        if self._wdm_url is None:
            self.read_catalog()
        return self._wdm_url

    def find_or_register(self) -> dict[str, Any]:
        """Our newest device, registering one only when none carries our name."""
        listing = self._call("GET", f"{self.wdm_url}/devices")
        devices = listing.get("devices") if isinstance(listing, dict) else None
        mine = [d for d in devices or [] if isinstance(d, dict) and d.get("name") == self.device_name
                and d.get("url") and d.get("webSocketUrl")]
        if mine:
            device = max(mine, key=lambda d: str(d.get("modificationTime") or ""))
            log.info("reusing Webex device %s", device_label(device))
            return device
        return self.register()

    def register(self) -> dict[str, Any]:
        device = self._device_answer(self._call("POST", f"{self.wdm_url}/devices", json=self.device_body()))
        log.info("registered Webex device %s", device_label(device))
        return device

    def refresh(self, device: dict[str, Any]) -> dict[str, Any]:
        """PUT the device (JS ``device.refresh``); WDM's 404 means gone: register a new one."""
        try:
            return self._device_answer(self._call("PUT", device["url"], json=self.device_body()))
        except _NotFound:
            log.info("Webex device %s is gone; registering a new one", device_label(device))
            return self.register()

    def replace(self, device: dict[str, Any]) -> dict[str, Any]:
        """Delete a device whose socket keeps answering 404, then register a new one."""
        try:
            self._call("DELETE", device["url"], expect=(200, 204))
        except _NotFound:
            pass
        return self.register()

    def cluster_of(self, url: str) -> str:
        """The public-id cluster of a conversation URL. An unknown host re-reads the catalog (once a
        minute per host at most: a new region may have appeared), then falls back to ``us`` with a warning."""
        host = urlsplit(url).hostname or ""
        with self._lock:
            cluster = self._clusters.get(host)
            last = self._refreshed_for.get(host)
            refresh = cluster is None and (last is None or self._clock() - last > CATALOG_REFRESH_SECONDS)
            if refresh:
                self._refreshed_for[host] = self._clock()
        if refresh:
            try:
                self.read_catalog()
            except (requests.RequestException, UnexpectedAnswer, TokenRejected) as error:
                log.warning("could not re-read the Webex service catalog: %s", error)
            with self._lock:
                cluster = self._clusters.get(host)
        if cluster is None:
            log.warning("conversation host %s is not in the Webex service catalog; using cluster 'us'", host)
            return "us"
        return cluster

    def _device_answer(self, answer: Any) -> dict[str, Any]:
        if not isinstance(answer, dict) or not answer.get("url") or not answer.get("webSocketUrl"):
            raise UnexpectedAnswer("Webex answered a device without url or webSocketUrl")
        return answer

    def _call(self, method: str, url: str, *, expect: tuple[int, ...] = (200, 201), **kwargs: Any) -> Any:
        response = self._session.request(method, url, headers=self._headers, timeout=self._timeout, **kwargs)
        service = urlsplit(url).path
        if response.status_code == 401:
            raise TokenRejected(f"Webex refused the bot token ({method} {service} answered 401)")
        if response.status_code == 404:
            raise _NotFound(f"{method} {service} answered 404")
        if response.status_code not in expect:
            raise UnexpectedAnswer(f"{method} {service} answered {response.status_code}")
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise UnexpectedAnswer(f"{method} {service} answered something that is not JSON") from None


class _NotFound(UnexpectedAnswer):
    pass


def device_label(device: dict[str, Any]) -> str:
    """A device named by the tail of its URL: enough to tell devices apart in logs."""
    return "…" + str(device.get("url", "")).rstrip("/")[-8:]


# --- reconnect policy ---------------------------------------------------------------------------------

@dataclass
class Backoff:
    """Exponential backoff with "equal jitter": half the step fixed, half random, so that many bots
    restarting together do not reconnect in step. JS SDK bounds: 1 s up to 32 s."""

    initial: float = 1.0
    maximum: float = 32.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int) -> float:
        step = min(self.maximum, self.initial * (2 ** min(attempt, 30)))
        return step / 2 + self.rng.uniform(0, step / 2)


# --- status -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SocketStatus:
    """What /healthz and ``about`` show. Times are epoch seconds."""

    state: str                          # connecting | connected | reconnecting | stopped
    connected_since: float | None
    last_event_at: float | None
    events: int
    reconnects: int                     # successful connections after the first
    last_gap_seconds: float | None      # from losing a connection to the next one being up
    last_error: str | None
    device: str | None


@dataclass
class _Ping:
    """The ping in flight: Mercury must answer with a pong of the same id in time."""

    interval: float
    timeout: float
    next_at: float
    pending_id: str | None = None
    deadline: float | None = None

    def wait(self, now: float) -> float:
        return max(0.0, (self.deadline if self.pending_id else self.next_at) - now)


class _QuietWireLogger(logging.LoggerAdapter):
    """websockets logs every frame at DEBUG, the authorization frame included: never let it."""

    def isEnabledFor(self, level: int) -> bool:
        return level > logging.DEBUG and self.logger.isEnabledFor(level)


# --- the client ---------------------------------------------------------------------------------------

class MercuryClient:
    """Receives Webex events over the Mercury websocket and hands each one to ``record`` before
    acknowledging its frame. One instance per process; the caller makes sure one process holds it."""

    def __init__(self, token: str, record: Record, *, u2c_url: str = DEFAULT_U2C_URL,
                 device_name: str = DEFAULT_DEVICE_NAME, backoff: Backoff | None = None,
                 ping_interval: float = 15.0, pong_timeout: float = 14.0, open_timeout: float = 10.0,
                 proxy: str | bool | None = True, session: requests.Session | None = None,
                 clock: Callable[[], float] = time.time):
        self._token = token
        self._record = record
        self.devices = DeviceRegistry(token, u2c_url=u2c_url, device_name=device_name, session=session)
        self._backoff = backoff or Backoff()
        self._ping_interval, self._pong_timeout = ping_interval, pong_timeout
        self._open_timeout = open_timeout
        self._proxy = proxy          # True: websockets reads wss_proxy / https_proxy / no_proxy itself
        self._clock = clock
        self._wire_logger = _QuietWireLogger(logging.getLogger("websockets.client"), {})
        self._stopping = threading.Event()
        self._connected = threading.Condition()
        self._thread: threading.Thread | None = None
        self._socket: ClientConnection | None = None
        self._device: dict[str, Any] | None = None
        self._stale_strikes = 0
        self._reached_connected = False
        self._state = "connecting"
        self._connected_since: float | None = None
        self._lost_at: float | None = None          # monotonic time the last connection was lost
        self._last_event_at: float | None = None
        self._events = 0
        self._connections = 0
        self._last_gap: float | None = None
        self._last_error: str | None = None

    # ---- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> "MercuryClient":
        """Run in a daemon thread; returns self."""
        if self._thread is None:
            self._thread = threading.Thread(target=self.run, name="webex-socket", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Close the connection and wait for the thread. Unacknowledged frames come again next time."""
        self._stopping.set()
        socket = self._socket
        if socket is not None:
            socket.close()
        if self._thread is not None:
            self._thread.join(timeout)
        self._set_state("stopped")

    def wait_connected(self, timeout: float) -> bool:
        """True once a connection is up (for callers and tests that must not race the start)."""
        with self._connected:
            return self._connected.wait_for(lambda: self._state == "connected", timeout)

    def status(self) -> SocketStatus:
        with self._connected:
            return SocketStatus(self._state, self._connected_since, self._last_event_at, self._events,
                                max(0, self._connections - 1), self._last_gap, self._last_error,
                                device_label(self._device) if self._device else None)

    # ---- the loop ----------------------------------------------------------------------------------

    def run(self) -> None:
        """Connect, listen, reconnect - until stop(). Never raises: every failure is retried."""
        attempt = 0
        while not self._stopping.is_set():
            delay = self._listen_and_classify()
            if self._stopping.is_set():
                break
            if self._reached_connected:
                attempt = 0          # the first retry after a lost connection comes within a second
            self._mark_down()
            wait = self._backoff.delay(attempt) if delay is None else delay
            attempt += 1
            log.warning("Webex websocket down (%s); reconnecting in %.1f s", self._last_error, wait)
            self._stopping.wait(wait)
        self._set_state("stopped")

    def _listen_and_classify(self) -> float | None:
        """One connection, start to end; returns the delay its failure asks for (None: backoff)."""
        try:
            self._listen_once()
        except StaleDevice:
            return self._recover_stale_device()
        except (TokenRejected, Replaced) as error:
            return self._failed(error, self._backoff.maximum)
        except RecordFailed as error:
            log.error("recording a websocket event failed; its frame stays unacknowledged and comes again",
                      exc_info=error.__cause__)
            return self._failed(error, None)
        except (OSError, WebSocketException, requests.RequestException, UnexpectedAnswer,
                KeepaliveLost) as error:
            return self._failed(error, None)
        except Exception as error:  # a bug: keep the bot listening, but say so loudly
            log.exception("unexpected failure in the Webex websocket client")
            return self._failed(error, None)
        return None

    def _listen_once(self) -> None:
        self._reached_connected = False
        if self._device is None:
            self._device = self.devices.find_or_register()
        try:
            socket = connect(socket_url(self._device["webSocketUrl"]), proxy=self._proxy,
                             open_timeout=self._open_timeout, ping_interval=None, close_timeout=2,
                             logger=self._wire_logger, user_agent_header="rollover-webex-socket")
        except InvalidStatus as error:
            status = error.response.status_code
            if status == 404:
                raise StaleDevice() from None
            if status == 401:
                raise TokenRejected("the Webex websocket refused the bot token (401)") from None
            raise UnexpectedAnswer(f"the Webex websocket handshake answered {status}") from None
        self._socket = socket
        try:
            with socket:
                self._authorize(socket)
                self._receive(socket)
        except ConnectionClosed as error:
            if self._stopping.is_set():
                return
            raise _closed_error(error) from None
        finally:
            self._socket = None

    def _authorize(self, socket: ClientConnection) -> None:
        socket.send(json.dumps({"id": str(uuid.uuid4()), "type": "authorization",
                                "data": {"token": f"Bearer {self._token}"}}))

    def _receive(self, socket: ClientConnection) -> None:
        ping = _Ping(self._ping_interval, self._pong_timeout, time.monotonic() + self._ping_interval)
        while not self._stopping.is_set():
            try:
                raw = socket.recv(timeout=ping.wait(time.monotonic()))
            except TimeoutError:
                self._keep_alive(socket, ping)
                continue
            self._on_frame(socket, raw, ping)

    def _keep_alive(self, socket: ClientConnection, ping: _Ping) -> None:
        now = time.monotonic()
        if ping.pending_id is not None:
            if now >= ping.deadline:
                raise KeepaliveLost(f"no pong within {ping.timeout:g} s")
            return
        ping.pending_id, ping.deadline = str(uuid.uuid4()), now + ping.timeout
        socket.send(json.dumps({"id": ping.pending_id, "type": "ping"}))

    def _on_frame(self, socket: ClientConnection, raw: str | bytes, ping: _Ping) -> None:
        try:
            envelope = json.loads(raw)
        except ValueError:
            log.warning("ignored a websocket frame that is not JSON")
            return
        if not isinstance(envelope, dict):
            log.warning("ignored a websocket frame that is not a JSON object")
            return
        self._mark_connected()          # any answer to our authorization means the socket is live
        if envelope.get("type") == "pong":
            self._on_pong(envelope, ping)
            return
        try:
            event = event_from_frame(envelope, self.devices.cluster_of, self._own_user_id())
        except MalformedFrame as reason:
            log.warning("ignored a malformed Webex activity frame: %s", reason)
            event = None
        if event is not None:
            try:
                self._record(event.resource, event.event_id, event.payload)
            except Exception as error:
                raise RecordFailed(f"record() failed for {event.key}") from error
            self._mark_event()
        frame_id = envelope.get("id")
        if isinstance(frame_id, str) and frame_id:
            socket.send(json.dumps({"type": "ack", "messageId": frame_id}))

    def _on_pong(self, envelope: dict[str, Any], ping: _Ping) -> None:
        if ping.pending_id is None or envelope.get("id") != ping.pending_id:
            raise KeepaliveLost("pong for another ping")
        ping.pending_id, ping.deadline = None, None
        ping.next_at = time.monotonic() + ping.interval

    def _own_user_id(self) -> str | None:
        user = (self._device or {}).get("userId")
        return user if isinstance(user, str) else None

    # ---- failures ----------------------------------------------------------------------------------

    def _recover_stale_device(self) -> float | None:
        """404 on the handshake: refresh the device; a second 404 in a row deletes and re-registers it."""
        self._stale_strikes += 1
        self._last_error = "the Webex device went stale (404)"
        log.warning("Webex websocket answered 404 for device %s", device_label(self._device or {}))
        try:
            if self._stale_strikes == 1:
                self._device = self.devices.refresh(self._device)
            else:
                self._device = self.devices.replace(self._device)
        except (OSError, requests.RequestException, UnexpectedAnswer, TokenRejected) as error:
            return self._failed(error, None)
        # A third strike and beyond waits like any failure, so a broken service is not hammered.
        return 0.0 if self._stale_strikes <= 2 else None

    def _failed(self, error: BaseException, delay: float | None) -> float | None:
        self._last_error = _describe(error)
        return delay

    # ---- status bookkeeping ------------------------------------------------------------------------

    def _mark_connected(self) -> None:
        if self._state == "connected":
            return
        now = time.monotonic()
        with self._connected:
            self._connections += 1
            self._connected_since = self._clock()
            self._reached_connected = True
            self._stale_strikes = 0
            if self._lost_at is not None:
                self._last_gap, self._lost_at = now - self._lost_at, None
            self._state = "connected"
            self._connected.notify_all()
        if self._connections == 1:
            log.info("Webex websocket connected (device %s)", device_label(self._device or {}))
        else:
            log.info("Webex websocket reconnected after a %.1f s gap (reconnect #%d)",
                     self._last_gap or 0.0, self._connections - 1)

    def _mark_down(self) -> None:
        with self._connected:
            if self._state == "connected":
                self._lost_at = time.monotonic()
                self._state = "reconnecting"
            self._connected_since = None

    def _mark_event(self) -> None:
        with self._connected:
            self._events += 1
            self._last_event_at = self._clock()

    def _set_state(self, state: str) -> None:
        with self._connected:
            self._state = state
            self._connected.notify_all()


def _closed_error(error: ConnectionClosed) -> Exception:
    """Turn Mercury's close codes into the failure they mean (JS SDK ``_onclose``)."""
    code = error.rcvd.code if error.rcvd is not None else None
    if code == REPLACED:
        return Replaced("another connection of this Webex device replaced ours (close 4000)")
    if code in TOKEN_CLOSE_CODES:
        return TokenRejected(f"Webex closed the websocket with {code} ({error.rcvd.reason or 'no reason'})")
    return error


# The scheme is bounded (as URL schemes are short): an unbounded one made a long run of "a." quadratic.
_URL_CREDENTIALS = re.compile(r"(\b[a-z][a-z0-9+.-]{0,31}://)[^/@\s]{0,256}@", re.I)


def _describe(error: BaseException) -> str:
    # An InvalidProxy names the proxy URL, which may carry user:password from HTTPS_PROXY: never keep those.
    text = _URL_CREDENTIALS.sub(r"\1***@", str(error) or type(error).__name__)
    return text if isinstance(error, (TokenRejected, Replaced, KeepaliveLost, RecordFailed, UnexpectedAnswer)) \
        else f"{type(error).__name__}: {text}"
