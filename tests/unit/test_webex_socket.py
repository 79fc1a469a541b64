"""The Mercury websocket client against the loopback Mercury: events become records before their
frames are acknowledged, through drops, duplicates, stale devices, restarts and failing records."""

from __future__ import annotations

import base64
import json
import logging
import random
import socket
import threading
import time
import uuid

import pytest
import requests

from fakes.webex import CARD_CONTENT_TYPE, LocalWebex
from fakes.webex_mercury import WebexMercury, parse_public_id
from rollover.integrations.webex_socket import (
    Backoff,
    MalformedFrame,
    MercuryClient,
    cluster_name,
    event_from_frame,
    public_id,
)

TOKEN = "bot-token-" + "Zq7" * 12
WAIT = 20.0


def webex_id(kind: str, cluster: str = "us") -> str:
    """A public id as Webex (and local_webex.make_id) builds it."""
    return base64.urlsafe_b64encode(f"ciscospark://{cluster}/{kind}/{uuid.uuid4()}".encode()).decode().rstrip("=")


BOT = webex_id("PEOPLE")
ALICE = webex_id("PEOPLE")
ROOM = webex_id("ROOM")


class Recorder:
    """The record callback: every call, the distinct keys (what a durable table with a dedupe key
    keeps) and when each was recorded. ``fail`` calls raise first, like a locked database."""

    def __init__(self, fail: int = 0):
        self.calls: list[tuple[str, str, dict]] = []
        self.recorded_at: dict[str, float] = {}
        self._fail = fail
        self._changed = threading.Condition()

    def __call__(self, resource: str, event_id: str, payload: dict) -> None:
        with self._changed:
            if self._fail:
                self._fail -= 1
                raise OSError("database is locked")
            self.calls.append((resource, event_id, payload))
            self.recorded_at.setdefault(event_id, time.perf_counter())
            self._changed.notify_all()

    @property
    def keys(self) -> set[str]:
        with self._changed:
            return {f"{resource}:{event_id}" for resource, event_id, _ in self.calls}

    def wait(self, condition, timeout: float = WAIT) -> bool:
        with self._changed:
            return self._changed.wait_for(condition, timeout)


@pytest.fixture
def mercury():
    with WebexMercury({TOKEN: BOT}) as server:
        yield server


@pytest.fixture
def clients():
    started: list[MercuryClient] = []

    def start(server: WebexMercury, record, **options) -> MercuryClient:
        options.setdefault("backoff", Backoff(0.05, 0.5, random.Random(7)))
        client = MercuryClient(options.pop("token", TOKEN), record, u2c_url=server.u2c_url, **options)
        started.append(client.start())
        assert client.wait_connected(WAIT), client.status()
        return client

    yield start
    for client in started:
        client.stop()


def post(server: WebexMercury, **options) -> tuple[str, list[str]]:
    message_id = webex_id("MESSAGE", options.pop("cluster", "us"))
    return message_id, server.message_created(message_id, options.pop("room", ROOM),
                                              options.pop("person", ALICE), **options)


def settled(server: WebexMercury) -> bool:
    return not server.pending()


# --- frames become records -------------------------------------------------------------------------

def test_posts_shares_and_card_actions_are_recorded_then_acknowledged_by_frame_id(mercury, clients):
    recorder = Recorder()
    client = clients(mercury, recorder)
    message_id, (post_frame,) = post(mercury, room_type="direct")
    shared_id, (share_frame,) = post(mercury, files=2)
    card_id, action_id = webex_id("MESSAGE"), webex_id("ATTACHMENT_ACTION")
    (action_frame,) = mercury.attachment_action_created(action_id, card_id, ROOM, ALICE, inputs={"action": "ok"})

    assert recorder.wait(lambda: len(recorder.calls) == 3)
    assert mercury.wait_for(lambda: settled(mercury))
    assert recorder.keys == {f"messages:{message_id}", f"messages:{shared_id}",
                             f"attachmentActions:{action_id}"}
    payloads = {event_id: payload for _, event_id, payload in recorder.calls}
    assert payloads[message_id] == {"resource": "messages", "event": "created", "actorId": ALICE,
                                    "data": {"id": message_id, "roomId": ROOM, "personId": ALICE}}
    assert payloads[action_id]["data"] == {"id": action_id, "roomId": ROOM, "personId": ALICE,
                                           "messageId": card_id}
    # Acknowledged with Mercury's frame ids (not the message ids), each after its record.
    for frame, event_id in ((post_frame, message_id), (share_frame, shared_id), (action_frame, action_id)):
        assert mercury.acked(frame)
        assert recorder.recorded_at[event_id] < mercury.acked_at[frame]
    assert mercury.stray_acks == []
    status = client.status()
    assert (status.state, status.events, status.reconnects) == ("connected", 3, 0)
    assert status.connected_since is not None and status.last_event_at is not None


def test_the_derived_ids_are_the_ids_the_local_webex_serves(mercury, clients):
    recorder = Recorder()
    with LocalWebex(card_schema_path=None) as webex:
        bot, token = webex.add_bot()
        alice = webex.add_person("alice@example.com", "Alice Admin")
        room = webex.add_room("SSO team", "group", [alice])
        message = webex.post_as(alice, room, "status")
        card = requests.post(f"{webex.base_url}messages", headers={"Authorization": f"Bearer {token}"}, json={
            "roomId": room.id, "text": "approve?", "attachments": [{"contentType": CARD_CONTENT_TYPE, "content": {
                "type": "AdaptiveCard", "version": "1.3", "body": [{"type": "TextBlock", "text": "Approve?"}],
                "actions": [{"type": "Action.Submit", "title": "Approve", "data": {"action": "approve"}}]}}]},
            timeout=10).json()
        action = webex.click(alice, card["id"])
    with WebexMercury({token: bot.id}) as server:
        clients(server, recorder, token=token)
        server.on_message(message)
        server.on_attachment_action(action)
        assert recorder.wait(lambda: len(recorder.calls) == 2)
    (_, message_event, message_payload), (_, action_event, action_payload) = recorder.calls
    assert message_event == message["id"]
    assert message_payload["data"] == {"id": message["id"], "roomId": room.id, "personId": alice.id}
    assert action_event == action["id"]
    assert action_payload["data"] == {"id": action["id"], "roomId": room.id, "personId": alice.id,
                                      "messageId": card["id"]}


def test_a_region_missing_from_the_catalog_is_read_again_before_the_id_is_built(clients):
    recorder = Recorder()
    with WebexMercury({TOKEN: BOT}, clusters=()) as server:    # the catalog knows only "us" at start
        clients(server, recorder)
        eu = "urn:TEAM:eu-central-1_k"
        message_id, _ = post(server, cluster=eu, room=webex_id("ROOM", eu))
        assert recorder.wait(lambda: len(recorder.calls) == 1)
    assert recorder.calls[0][1] == message_id
    assert parse_public_id(message_id)[0] == eu


# --- duplicates, drops, keepalive --------------------------------------------------------------------

def test_duplicated_frames_reach_record_twice_under_one_key(mercury, clients):
    recorder = Recorder()
    clients(mercury, recorder)
    mercury.duplicate_next(2)
    first, _ = post(mercury)
    second, _ = post(mercury)
    assert recorder.wait(lambda: len(recorder.calls) == 4)
    assert recorder.keys == {f"messages:{first}", f"messages:{second}"}
    assert mercury.wait_for(lambda: settled(mercury))


def test_connections_killed_mid_stream_lose_nothing(mercury, clients):
    recorder = Recorder()
    client = clients(mercury, recorder)
    sent = [post(mercury)[0] for _ in range(10)]
    mercury.drop_connections()                          # a network loss between two frames
    sent += [post(mercury)[0] for _ in range(10)]       # during the outage: Mercury keeps them
    assert mercury.wait_for(lambda: mercury.connections >= 2)
    mercury.drop_after_next_frame()                     # a loss right after a frame, before its ack
    sent += [post(mercury)[0] for _ in range(10)]
    assert recorder.wait(lambda: recorder.keys == {f"messages:{m}" for m in sent})
    assert mercury.wait_for(lambda: settled(mercury))
    status = client.status()
    assert status.reconnects >= 2 and status.state == "connected"
    assert status.last_gap_seconds is not None and status.last_gap_seconds >= 0


def test_a_silent_connection_is_detected_by_the_missing_pong(mercury, clients):
    recorder = Recorder()
    mercury.withhold_pongs = True
    client = clients(mercury, recorder, ping_interval=0.1, pong_timeout=0.2)
    assert mercury.wait_for(lambda: mercury.connections >= 2)
    assert "no pong" in client.status().last_error
    mercury.withhold_pongs = False
    message_id, _ = post(mercury)
    assert recorder.wait(lambda: recorder.keys == {f"messages:{message_id}"})
    assert mercury.pings and all(uuid.UUID(ping) for ping in mercury.pings)


# --- devices -----------------------------------------------------------------------------------------

def test_a_stale_device_is_registered_again_and_events_flow(mercury, clients):
    recorder = Recorder()
    client = clients(mercury, recorder)
    (old,) = mercury.devices()
    mercury.make_stale()
    assert mercury.wait_for(lambda: mercury.registrations == 2 and mercury.connected_devices() == 1)
    (new,) = mercury.devices(BOT)
    assert new["url"] != old["url"] and new["name"] == "rollover"
    message_id, _ = post(mercury)
    assert recorder.wait(lambda: recorder.keys == {f"messages:{message_id}"})
    assert client.wait_connected(WAIT)


def test_a_restart_reuses_the_device_and_gets_what_it_had_not_acknowledged(mercury, clients):
    first = Recorder()
    client = clients(mercury, first)
    before, _ = post(mercury)
    assert first.wait(lambda: len(first.calls) == 1) and mercury.wait_for(lambda: settled(mercury))
    client.stop()
    while_down, _ = post(mercury)                     # Mercury keeps it for the device

    second = Recorder()
    clients(mercury, second)
    assert second.wait(lambda: second.keys == {f"messages:{while_down}"})
    assert mercury.wait_for(lambda: settled(mercury))
    assert mercury.registrations == 1 and len(mercury.devices()) == 1
    assert f"messages:{before}" not in second.keys    # acknowledged frames do not come again


def test_a_second_connection_of_the_device_replaces_the_first(mercury, clients):
    first = clients(mercury, Recorder())
    clients(mercury, Recorder())
    assert mercury.wait_for(lambda: mercury.connections >= 2)
    deadline = time.monotonic() + WAIT
    while "replaced" not in (first.status().last_error or "") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "replaced" in first.status().last_error
    assert mercury.registrations == 1


# --- what is not an event ----------------------------------------------------------------------------

def activity(verb: str, **fields) -> dict:
    body = {"id": str(uuid.uuid4()), "verb": verb, "actor": {"entryUUID": parse_public_id(ALICE)[2]},
            "target": {"id": parse_public_id(ROOM)[2], "url": f"https://conv-a.wbx2.com/conversation/api/v1/"
                                                             f"conversations/{parse_public_id(ROOM)[2]}"}}
    return {"eventType": "conversation.activity", "activity": {**body, **fields}}


def test_other_frames_are_acknowledged_and_never_recorded(mercury, clients, caplog):
    recorder = Recorder()
    clients(mercury, recorder)
    for data in (activity("acknowledge"), activity("update"), activity("delete"), activity("add"),
                 activity("post", id="not-a-uuid"),                     # malformed: cannot name a message
                 {"eventType": "status.start_typing", "actor": {"id": str(uuid.uuid4())}},
                 {"eventType": "conversation.highlight"}, {"eventType": "mercury.registration_status"}):
        mercury.emit(data)
    post(mercury, person=BOT)                       # the bot's own post
    message_id, _ = post(mercury)                    # the only event
    assert recorder.wait(lambda: len(recorder.calls) == 1)
    assert mercury.wait_for(lambda: settled(mercury))
    assert recorder.keys == {f"messages:{message_id}"}
    assert any("malformed" in r.getMessage() for r in caplog.records)


# --- acknowledgement after record --------------------------------------------------------------------

def test_a_failing_record_leaves_the_frame_unacknowledged_until_it_comes_again(mercury, clients):
    recorder = Recorder(fail=1)
    client = clients(mercury, recorder)
    message_id, (frame,) = post(mercury)
    assert recorder.wait(lambda: len(recorder.calls) == 1)
    assert mercury.wait_for(lambda: settled(mercury))
    assert mercury.connections >= 2                          # redelivered on a new connection
    assert [a.message_id for a in mercury.acks] .count(frame) == 1    # only after the record that worked
    assert recorder.calls[0][1] == message_id
    assert client.wait_connected(WAIT) and "record() failed" in client.status().last_error


@pytest.mark.parametrize("fault", ["withhold_acks", "ack_delay"])
def test_an_ack_lost_on_the_way_means_one_more_delivery_and_still_one_key(mercury, clients, fault):
    recorder = Recorder()
    clients(mercury, recorder)
    if fault == "withhold_acks":
        mercury.withhold_acks = True
    else:
        mercury.ack_delay = 60.0                      # the connection dies before the ack takes effect
    message_id, (frame,) = post(mercury)
    assert mercury.wait_for(lambda: mercury.acked(frame))
    mercury.withhold_acks, mercury.ack_delay = False, 0.0
    mercury.drop_connections()
    assert recorder.wait(lambda: len(recorder.calls) == 2)
    assert mercury.wait_for(lambda: settled(mercury))
    assert recorder.keys == {f"messages:{message_id}"}


# --- secrets and proxies -----------------------------------------------------------------------------

def test_the_token_goes_in_the_authorization_frame_and_never_in_a_log(mercury, clients, caplog):
    caplog.set_level(logging.DEBUG)
    recorder = Recorder()
    clients(mercury, recorder, ping_interval=0.05)
    post(mercury)
    mercury.drop_connections()
    post(mercury)
    assert recorder.wait(lambda: len(recorder.keys) == 2)
    assert mercury.wait_for(lambda: len(mercury.pings) >= 2)
    frame = mercury.authorization_frames[0]
    assert frame["type"] == "authorization" and frame["data"] == {"token": f"Bearer {TOKEN}"}
    assert uuid.UUID(frame["id"])
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    assert TOKEN not in logged and "Webex websocket connected" in logged


def test_a_wrong_token_is_refused_and_retried_slowly(mercury):
    client = MercuryClient("not-the-token", Recorder(), u2c_url=mercury.u2c_url,
                           backoff=Backoff(0.05, 0.5, random.Random(1))).start()
    try:
        deadline = time.monotonic() + WAIT
        while not client.status().last_error and time.monotonic() < deadline:
            time.sleep(0.02)
        assert "401" in client.status().last_error and client.status().state != "connected"
        assert mercury.registrations == 0
    finally:
        client.stop()


class ConnectProxy:
    """A minimal HTTP CONNECT proxy: records each target, then pipes bytes both ways."""

    def __init__(self):
        self.targets: list[str] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.getsockname()[1]}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._tunnel, args=(client,), daemon=True).start()

    def _tunnel(self, client: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            head += client.recv(4096)
        method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ")
        assert method == "CONNECT"
        self.targets.append(target)
        host, port = target.rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)))
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        for source, sink in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pipe, args=(source, sink), daemon=True).start()

    def close(self) -> None:
        self._server.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def test_the_websocket_goes_through_the_proxy_named_in_the_environment(mercury, clients, monkeypatch):
    proxy = ConnectProxy()
    monkeypatch.setenv("ws_proxy", proxy.url)          # websockets: ws_proxy for ws://, wss_proxy for wss://
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    try:
        recorder = Recorder()
        clients(mercury, recorder)
        message_id, _ = post(mercury)
        assert recorder.wait(lambda: recorder.keys == {f"messages:{message_id}"})
        assert proxy.targets == [f"127.0.0.1:{mercury.ws_port}"]
    finally:
        proxy.close()


# --- pure parts --------------------------------------------------------------------------------------

def test_public_ids_follow_the_js_sdk():
    raw = "92db3be0-43bd-11e6-8ae9-dd5b3dfc565d"
    assert public_id("MESSAGE", raw) == ("Y2lzY29zcGFyazovL3VzL01FU1NBR0Uv"   # ciscospark://us/MESSAGE/
                                         "OTJkYjNiZTAtNDNiZC0xMWU2LThhZTktZGQ1YjNkZmM1NjVk")
    assert "=" not in public_id("ATTACHMENT_ACTION", raw)              # 70 bytes: padding is stripped
    assert parse_public_id(public_id("PEOPLE", raw, "urn:TEAM:eu-central-1_k"))[0] == "us"
    assert cluster_name("urn:TEAM:us-east-2_a:conversation") == "us"
    assert cluster_name("urn:TEAM:eu-central-1_k:conversation") == "urn:TEAM:eu-central-1_k"


def test_event_from_frame_names_the_problem_of_a_malformed_activity():
    def us(url: str) -> str:
        return "us"

    with pytest.raises(MalformedFrame, match="without a valid id"):
        event_from_frame({"data": activity("cardAction", id="../../etc")}, us)
    assert event_from_frame({"data": activity("post")}, us, own_user_id=parse_public_id(ALICE)[2]) is None
    assert event_from_frame({"data": "nonsense"}, us) is None
    assert event_from_frame({"data": {"eventType": "conversation.activity", "activity": []}}, us) is None
    event = event_from_frame({"data": activity("post", target={"id": "x"})}, us)
    assert event.payload["data"]["roomId"] is None and event.key.startswith("messages:")


def test_backoff_grows_to_its_ceiling_with_jitter():
    backoff = Backoff(1.0, 32.0, random.Random(3))
    for attempt, step in enumerate([1, 2, 4, 8, 16, 32, 32, 32]):
        delays = {backoff.delay(attempt) for _ in range(20)}
        assert all(step / 2 <= d <= step for d in delays) and len(delays) > 1
    assert json.dumps(backoff.delay(10_000))      # huge attempt counts stay finite


def test_proxy_credentials_never_reach_the_status_or_the_log():
    from rollover.integrations.webex_socket import _describe
    text = _describe(ValueError("http://bob:s3cret@proxy.example:3128 isn't a valid proxy"))
    assert "s3cret" not in text and "bob" not in text and "proxy.example:3128" in text
