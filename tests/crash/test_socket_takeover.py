"""Websocket mode with real processes: two `bot.py worker`s, one holds the Webex websocket; after a
`kill -9` of the holder the other takes the connection over, and nothing is lost or answered twice."""

from __future__ import annotations

import os
import signal
import socket as sockets
import subprocess
import sys
import time

import pytest
import requests

from fakes.webex_mercury import WebexMercury
from rollover.pipeline.socket_events import lease_name
from tests.support.processes import ROOT, start_worker, wait_until, worker_environment

LEASE_SECONDS = 1.5


@pytest.fixture
def mercury(local_webex):
    with WebexMercury(local_webex.token_owner) as server:
        yield server


def socket_environment(chat, mercury) -> dict[str, str]:
    env = worker_environment(chat, lease_seconds=5.0)
    del env["ROLLOVER_WEBHOOK_SECRET"]           # websocket mode needs none
    return {**env, "ROLLOVER_EVENTS": "websocket", "ROLLOVER_WEBEX_CATALOG_URL": mercury.u2c_url,
            "ROLLOVER_WEBSOCKET_LEASE_SECONDS": str(LEASE_SECONDS)}


def holder_pid(chat) -> int | None:
    row = chat.services.storage.db.execute("SELECT owner, until FROM scheduler_leases WHERE name = ?",
                                           [lease_name(chat.token)]).fetchone()
    if row is None or row[1] < time.time():
        return None
    return int(row[0].rsplit(":", 3)[1])       # lease owner: host:pid:random:thread


def test_a_standby_worker_takes_the_websocket_over_after_the_holder_is_killed(chat, mercury):
    env = socket_environment(chat, mercury)
    workers = {process.pid: process for process in (start_worker(env), start_worker(env))}
    try:
        assert wait_until(lambda: holder_pid(chat) in workers and mercury.connected_devices() == 1)
        first = chat.webex.post_as(chat.alice, chat.room, "help")
        mercury.on_message(first)
        done = f"messages:{first['id']}"            # finished before the kill: this test is about the connection
        assert wait_until(lambda: (chat.services.storage.events.status(done) or {}).get("status") == "done"), \
            "the holder did not answer"
        assert len(chat.webex.sent_by_bot(chat.room)) == 1
        assert mercury.connected_devices() == 1                     # the standby never connected

        killed = holder_pid(chat)
        os.kill(killed, signal.SIGKILL)
        workers.pop(killed).wait(10)
        during = chat.webex.post_as(chat.alice, chat.room, "help")    # while nobody holds the connection
        mercury.on_message(during)
        (survivor,) = workers
        assert wait_until(lambda: holder_pid(chat) == survivor, timeout=LEASE_SECONDS * 4 + 10), \
            "the standby did not take the lease over"
        assert wait_until(lambda: len(chat.webex.sent_by_bot(chat.room)) == 2), "the message sent meanwhile was lost"
        time.sleep(1.0)
        assert len(chat.webex.sent_by_bot(chat.room)) == 2
        assert mercury.registrations == 1 and not mercury.pending()
    finally:
        for process in workers.values():
            process.terminate()
            process.wait(10)


def test_serve_in_websocket_mode_answers_over_the_websocket_and_shows_it_in_healthz(chat, mercury):
    with sockets.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "bot.py", "serve", "--host", "127.0.0.1", "--port", str(port)],
                               cwd=ROOT, env=socket_environment(chat, mercury), stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"

    def websocket_health() -> dict:
        try:
            return requests.get(f"{base}/healthz", timeout=1).json()
        except requests.ConnectionError:
            return {}
    try:
        assert wait_until(lambda: websocket_health().get("status") == "ok"), websocket_health()
        mercury.on_message(chat.webex.post_as(chat.alice, chat.room, "help"))
        assert wait_until(lambda: len(chat.webex.sent_by_bot(chat.room)) == 1), "serve did not answer"
        assert wait_until(lambda: websocket_health()["websocket"]["last_event_at"] is not None)
        health = websocket_health()
        assert health["websocket"]["state"] == "connected" and health["websocket"]["events"] == 1
        # No secret is configured: a webhook delivery is refused, never recorded.
        body, headers = chat.webex.webhook_event("messages", "created", chat.webex.post_as(
            chat.alice, chat.room, "help")["id"])
        assert requests.post(f"{base}/webhooks/webex", data=body, headers=headers, timeout=5).status_code == 401
    finally:
        process.terminate()
        process.wait(10)


def test_a_holder_killed_after_recording_but_before_webex_had_its_ack_loses_nothing_and_answers_once(chat, mercury):
    env = socket_environment(chat, mercury)
    mercury.withhold_acks = True                  # the acks never take effect: as if the process died before them
    first = start_worker(env)
    second = None
    try:
        assert wait_until(lambda: holder_pid(chat) == first.pid and mercury.connected_devices() == 1)
        message = chat.webex.post_as(chat.alice, chat.room, "help")
        (frame,) = mercury.on_message(message)
        key = f"messages:{message['id']}"
        assert wait_until(lambda: (chat.services.storage.events.status(key) or {}).get("status") == "done"), \
            "the holder did not answer"
        assert len(chat.webex.sent_by_bot(chat.room)) == 1
        assert frame in mercury.pending()          # recorded and answered, but Webex will send it again
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
        mercury.withhold_acks = False

        second = start_worker(env)                 # the restart: Webex delivers the frame again
        assert wait_until(lambda: not mercury.pending(), timeout=LEASE_SECONDS * 4 + 10), "the frame was not acked"
        assert len([ack for ack in mercury.acks if ack.message_id == frame]) == 2    # delivered to both
        time.sleep(1.0)
        assert len(chat.webex.sent_by_bot(chat.room)) == 1
        status = chat.services.storage.events.status(key)
        assert status["status"] == "done" and status["attempts"] == 1
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(10)
