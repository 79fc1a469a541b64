"""Websocket mode (ROLLOVER_EVENTS=websocket): the real bot receives its events from the local Mercury,
records them in the events table a webhook uses, and answers each once - duplicated frames and a space
that also still has a webhook included. One process holds the connection; another takes over its lease."""

from __future__ import annotations

import time

import pytest

from fakes.webex_mercury import WebexMercury
from rollover.app import start_socket_events
from rollover.integrations.webex_socket import MercuryClient
from rollover.pipeline.socket_events import SocketEvents, connection_sentence, lease_name
from rollover.storage import Storage

WAIT = 20.0


@pytest.fixture
def mercury(local_webex):
    # The local Mercury knows the local Webex's tokens: the bot authorizes with the token it uses for REST.
    with WebexMercury(local_webex.token_owner) as server:
        yield server


@pytest.fixture
def socket_source(make_chat, mercury):
    """A conversation whose events arrive over the websocket, through the same start-up as `bot.py worker`,
    and its event source."""
    chat = make_chat(events_mode="websocket", webex_catalog_url=mercury.u2c_url, websocket_lease_seconds=3.0)
    source = start_socket_events(chat.config, chat.services.storage, chat.worker.wake.set)
    assert wait(lambda: source.holding and mercury.connected_devices() == 1), source.status()
    yield chat, source
    source.stop()


@pytest.fixture
def socket_chat(socket_source):
    return socket_source[0]


def wait(condition, timeout: float = WAIT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def event_row(chat, key: str):
    return chat.services.storage.events.status(key)


def test_a_message_over_the_websocket_is_recorded_before_its_ack_and_answered_once(socket_chat, mercury):
    chat = socket_chat
    message = chat.webex.post_as(chat.alice, chat.room, "help")
    (frame,) = mercury.on_message(message)
    key = f"messages:{message['id']}"
    assert mercury.wait_for(lambda: mercury.acked(frame), WAIT)
    assert event_row(chat, key) is not None           # committed before the ack was sent
    assert chat.worker.drain() == 1
    replies = chat.webex.sent_by_bot(chat.room)
    assert len(replies) == 1 and replies[0]["attachments"]
    assert event_row(chat, key)["status"] == "done"


def test_a_duplicated_frame_is_answered_once(socket_chat, mercury):
    chat = socket_chat
    message = chat.webex.post_as(chat.alice, chat.room, "help")
    mercury.duplicate_next()
    (frame,) = mercury.on_message(message)
    assert mercury.wait_for(lambda: len([a for a in mercury.acks if a.message_id == frame]) == 2, WAIT)
    chat.worker.drain()
    assert len(chat.webex.sent_by_bot(chat.room)) == 1
    assert chat.services.storage.events.count("done") == 1


def test_a_space_that_also_has_a_webhook_is_answered_once(socket_chat, mercury):
    chat = socket_chat
    message = chat.webex.post_as(chat.alice, chat.room, "help")
    body, headers = chat.webex.webhook_event("messages", "created", message["id"])
    # The webhook comes first (the secret is still set), then the same message over the websocket.
    assert chat.client.post("/webhooks/webex", data=body, headers=headers).json["status"] == "accepted"
    (frame,) = mercury.on_message(message)
    assert mercury.wait_for(lambda: mercury.acked(frame), WAIT)
    chat.worker.drain()
    # And the other way round: the websocket first, a late webhook afterwards.
    second = chat.webex.post_as(chat.alice, chat.room, "help")
    (frame,) = mercury.on_message(second)
    assert mercury.wait_for(lambda: mercury.acked(frame), WAIT)
    body, headers = chat.webex.webhook_event("messages", "created", second["id"])
    replayed = {"sqlite": "accepted", "postgresql": "duplicate"}[chat.services.storage.dialect]   # see the spool
    assert chat.client.post("/webhooks/webex", data=body, headers=headers).json["status"] == replayed
    chat.worker.drain()
    assert len(chat.webex.sent_by_bot(chat.room)) == 2
    assert chat.services.storage.events.count("done") == 2


def test_a_card_click_over_the_websocket_reaches_its_handler(socket_chat, mercury):
    chat = socket_chat
    (frame,) = mercury.on_message(chat.webex.post_as(chat.alice, chat.room, "help"))
    assert mercury.wait_for(lambda: mercury.acked(frame), WAIT)
    chat.worker.drain()
    card = chat.last_card_message()
    action = chat.webex.click(chat.alice, card["id"], button=_first_button(card))
    mark = len(chat.webex.requests)
    (frame,) = mercury.on_attachment_action(action)
    assert mercury.wait_for(lambda: mercury.acked(frame), WAIT)
    chat.worker.drain()
    assert event_row(chat, f"attachmentActions:{action['id']}")["status"] == "done"
    assert any(entry.path.startswith("/v1/attachment/actions/") for entry in chat.webex.requests[mark:])
    assert chat.posted_since(mark), "the click was not answered"


def _first_button(card: dict) -> str:
    actions = card["attachments"][0]["content"].get("actions") or []
    submits = [a for a in actions if a.get("type") == "Action.Submit"]
    assert submits, "the help card has no button"
    return submits[0].get("title") or submits[0]["id"]


# --- one holder per bot token -------------------------------------------------------------------------

class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_one_process_holds_the_connection_and_a_standby_takes_over_when_it_stops_renewing(chat, mercury):
    # Two "processes": their own Storage on the one database file, their own lease owner and client.
    path, token, url = chat.config.database_path, chat.token, mercury.u2c_url
    clock = Clock(time.time())
    woken = []

    def source(owner: str) -> SocketEvents:
        factory = lambda record: MercuryClient(token, record, u2c_url=url)   # noqa: E731
        return SocketEvents(Storage(path), token, factory, lease_seconds=30.0, owner=owner, clock=clock,
                            wake=lambda: woken.append(owner))

    first, second = source("first"), source("second")
    try:
        assert first.tick() and not second.tick()
        assert wait(lambda: mercury.connected_devices() == 1 and first.status()["state"] == "connected")
        assert second.status() == {"mode": "websocket", "state": "standby"}
        assert not second.holding
        message = chat.webex.post_as(chat.alice, chat.room, "help")
        (frame,) = mercury.on_message(message)
        assert mercury.wait_for(lambda: mercury.acked(frame), WAIT) and woken == ["first"]

        clock.now += 20.0                             # the holder renews in time: still its own
        assert first.tick() and not second.tick()
        clock.now += 31.0                             # ... then it hangs: its lease runs out
        assert second.tick() and second.holding
        assert wait(lambda: second.status().get("state") == "connected")
        assert not first.tick() and not first.holding          # it wakes up, finds the lease gone, lets go
        assert mercury.registrations == 1                      # the one device changed hands

        later = chat.webex.post_as(chat.alice, chat.room, "help")
        (frame,) = mercury.on_message(later)
        assert mercury.wait_for(lambda: mercury.acked(frame), WAIT)
        assert woken == ["first", "second"]
        storage = Storage(path)
        assert storage.events.status(f"messages:{later['id']}")["status"] == "pending"
        holder = storage.db.execute("SELECT owner FROM scheduler_leases WHERE name = ?",
                                    [lease_name(token)]).fetchone()
        assert holder == ("second",)
        assert token not in lease_name(token)
    finally:
        first.stop()
        second.stop()


def test_stopping_the_holder_hands_the_lease_back(chat, mercury):
    path, token, url = chat.config.database_path, chat.token, mercury.u2c_url
    factory = lambda record: MercuryClient(token, record, u2c_url=url)   # noqa: E731
    first = SocketEvents(Storage(path), token, factory, lease_seconds=3.0, owner="first").start()
    second = SocketEvents(Storage(path), token, factory, lease_seconds=3.0, owner="second")
    try:
        assert wait(lambda: first.holding)
        assert not second.tick()
        first.stop()                                  # an orderly stop releases the lease at once
        assert second.tick() and second.holding
        assert wait(lambda: second.status().get("state") == "connected")
    finally:
        first.stop()
        second.stop()


# --- what /healthz and about show ---------------------------------------------------------------------

def reported(chat, condition) -> bool:
    """Wait for the holder's next status report (every second here) to satisfy ``condition``."""
    def check():
        report = chat.services.storage.connections.latest(lease_name(chat.token))
        return report is not None and condition(report.status)
    return wait(check)


def test_healthz_and_about_show_the_connection_its_last_event_and_its_reconnects(socket_source, mercury):
    chat, source = socket_source
    assert reported(chat, lambda s: s["state"] == "connected")
    health = chat.client.get("/healthz").json
    assert health["status"] == "ok" and health["websocket"]["state"] == "connected"
    assert health["websocket"]["connected_since"] and health["websocket"]["reconnects"] == 0

    (frame,) = mercury.on_message(chat.webex.post_as(chat.alice, chat.room, "help"))
    assert mercury.wait_for(lambda: mercury.acked(frame), WAIT)
    chat.worker.drain()
    mercury.drop_connections()                                # a network loss: reconnected within seconds
    assert reported(chat, lambda s: s["reconnects"] == 1 and s["state"] == "connected" and s["last_event_at"])
    websocket = chat.client.get("/healthz").json["websocket"]
    assert websocket["last_gap_seconds"] is not None and websocket["events"] == 1

    mark = len(chat.webex.requests)
    (frame,) = mercury.on_message(chat.webex.post_as(chat.alice, chat.room, "about"))
    assert mercury.wait_for(lambda: mercury.acked(frame), WAIT)
    chat.worker.drain()
    (reply,) = chat.posted_since(mark)
    line = next(line for line in reply.text.splitlines() if line.startswith("- Webex events:"))
    assert "websocket: connected since" in line and "last event" in line and "1 reconnect (last gap" in line
    assert chat.token not in reply.text

    source.stop()                                             # nobody holds the connection any more
    health = chat.client.get("/healthz").json
    assert health["status"] == "degraded" and health["websocket"]["state"] == "no holder"


def test_about_in_webhook_mode_says_webhooks(chat):
    (reply,) = chat.say(chat.alice, "about")
    assert "- Webex events: webhooks (POST /webhooks/webex)" in reply.text
    assert "websocket" not in chat.client.get("/healthz").json


def test_the_connection_sentence_says_what_is_wrong():
    assert connection_sentence({"state": "no holder", "last_report_at": "2026-12-02T07:20:05+00:00"}) == (
        "websocket: no process holds the connection since 2026-12-02 07:20:05 UTC; events wait at Webex until a "
        "`worker` or `serve` runs")
    assert connection_sentence({"state": "reconnecting", "reconnects": 3, "last_gap_seconds": 1.5,
                                "last_error": "ConnectionClosedError: no close frame received or sent"}) == (
        "websocket: reconnecting; no event yet; 3 reconnects (last gap 1.5 s); "
        "last error: ConnectionClosedError: no close frame received or sent")
