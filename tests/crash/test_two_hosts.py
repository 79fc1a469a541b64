"""Two hosts on one PostgreSQL: a web and a worker process each, in separate working folders (no shared disk).

Webhooks go to either host's web process, as a load balancer would send them; one web process and one
worker process are killed with SIGKILL mid-stream (the worker while it handles an event). Webex delivers
again what was not acknowledged, to the host still up. At the end every message is answered exactly once,
and every event is done.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.support.processes import ROOT, wait_until, worker_environment

pytestmark = pytest.mark.postgres
MESSAGES = 24


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Host:
    """One "machine": its own working folder, a gunicorn web process and a worker process."""

    def __init__(self, name: str, folder: Path, env: dict[str, str]):
        folder.mkdir()
        env = {**env, "PYTHONPATH": str(ROOT)}
        self.name, self.port = name, free_port()
        # A session of its own: killing the host's web kills gunicorn's master and its workers together.
        self.web = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--workers", "2", "--threads", "2", "--log-level", "warning",
             "--bind", f"127.0.0.1:{self.port}", "bot:create_app()"], cwd=folder, env=env, start_new_session=True)
        self.worker = subprocess.Popen([sys.executable, str(ROOT / "bot.py"), "worker"], cwd=folder, env=env,
                                       stdout=subprocess.DEVNULL)

    def deliver(self, body: bytes, headers: dict[str, str]) -> bool:
        """POST the webhook; True when the host acknowledged it (200)."""
        try:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
            connection.request("POST", "/webhooks/webex", body=body, headers=headers)
            return connection.getresponse().status == 200
        except OSError:
            return False

    def ready(self) -> bool:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
            connection.request("GET", "/healthz")
            return connection.getresponse().status == 200
        except OSError:
            return False

    def kill_web(self) -> None:
        os.killpg(self.web.pid, signal.SIGKILL)
        self.web.wait(10)

    def stop(self) -> None:
        for process in (self.web, self.worker):
            if process.poll() is None:
                process.terminate()
        for process in (self.web, self.worker):
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


def hold_one_message(webex, held_id: str) -> tuple[threading.Event, threading.Event]:
    """The local Webex stalls GET /messages/{held_id} until released: whoever fetches it is mid-event."""
    arrived, release = threading.Event(), threading.Event()
    original = webex._api_messages_get

    def held(caller, request, message_id):
        if message_id == held_id:
            arrived.set()
            release.wait(30)
        return original(caller, request, message_id)
    webex._api_messages_get = held
    return arrived, release


@pytest.mark.parametrize("store_kind", ["postgresql"], indirect=True)
def test_two_hosts_lose_nothing_and_answer_once_when_a_web_and_a_worker_are_killed(chat, tmp_path):
    env = {**worker_environment(chat, lease_seconds=2.0), "DATABASE_URL": "", "ROLLOVER_LOG_LEVEL": "ERROR"}
    storage = chat.services.storage
    ids = [chat.webex.post_as(chat.alice, chat.room, "help")["id"] for _ in range(MESSAGES)]
    held_id = ids[MESSAGES // 2]
    arrived, release = hold_one_message(chat.webex, held_id)
    hosts = [Host("a", tmp_path / "host-a", env), Host("b", tmp_path / "host-b", env)]
    try:
        assert wait_until(lambda: all(h.ready() for h in hosts), timeout=60), "the web processes did not start"
        killed_web = False
        for n, message_id in enumerate(ids):
            body, headers = chat.webex.webhook_event("messages", "created", message_id)
            first = hosts[n % 2]
            if n == MESSAGES // 3 and not killed_web:
                hosts[0].kill_web()                                   # host a's web dies mid-stream
                killed_web = True
            # Webex redelivers what was not acknowledged; the load balancer sends it to the host still up.
            acknowledged = first.deliver(body, headers) or hosts[1].deliver(body, headers)
            assert acknowledged, f"message {n} was acknowledged by neither host"
            if n % 5 == 0:
                assert hosts[1].deliver(body, headers)                # a duplicate delivery, to the other host
            if message_id == held_id:
                assert arrived.wait(30), "no worker fetched the held message"
                # Kill the worker process that holds the held event's lease (its owner id names its pid).
                owner = storage.db.execute("SELECT lease_owner FROM events WHERE key = ?",
                                           [f"messages:{held_id}"]).fetchone()[0]
                victim = next(h for h in hosts if f":{h.worker.pid}:" in owner)
                victim.worker.send_signal(signal.SIGKILL)
                victim.worker.wait(10)
                release.set()
        assert wait_until(lambda: storage.events.count("done") == MESSAGES, timeout=90), \
            f"not every event was handled: {storage.events.backlog(time.time())}"
        time.sleep(3)                                                 # longer than a lease: no late second answer
    finally:
        release.set()
        for host in hosts:
            host.stop()
    replies = chat.webex.sent_by_bot(chat.room)
    assert len(replies) == MESSAGES                                   # nothing lost, nothing answered twice
    assert storage.db.execute("SELECT count(*) FROM events").fetchone() == (MESSAGES,)
    assert storage.events.count("failed") == 0
    held = storage.events.status(f"messages:{held_id}")
    assert held["status"] == "done" and held["attempts"] == 2          # taken over after its worker died
    assert os.listdir(tmp_path / "host-a") == [] and os.listdir(tmp_path / "host-b") == []   # no local state
