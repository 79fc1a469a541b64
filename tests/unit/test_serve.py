"""`bot.py serve`, the one-process install, end to end: a real HTTP server, signed deliveries, replies."""

import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.support.processes import wait_until, worker_environment

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_acknowledges_signed_webhooks_and_its_worker_thread_replies(chat):
    port = free_port()
    process = subprocess.Popen([sys.executable, "bot.py", "serve", "--host", "127.0.0.1", "--port", str(port)],
                               cwd=ROOT, env=worker_environment(chat, lease_seconds=5.0),
                               stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_until(lambda: _healthy(base)), "serve did not come up"
        assert requests.get(f"{base}/healthz", timeout=5).json()["database"] == "ok"
        message = chat.webex.post_as(chat.alice, chat.room, "help")
        body, headers = chat.webex.webhook_event("messages", "created", message["id"])
        assert requests.post(f"{base}/webhooks/webex", data=body, headers=headers, timeout=5).status_code == 200
        headers["X-Spark-Signature"] = "0" * 40
        assert requests.post(f"{base}/webhooks/webex", data=body, headers=headers, timeout=5).status_code == 401
        assert wait_until(lambda: chat.webex.sent_by_bot(chat.room))
        time.sleep(0.3)
        replies = chat.webex.sent_by_bot(chat.room)
        assert len(replies) == 1 and replies[0]["attachments"]
    finally:
        process.terminate()
        process.wait(10)


def _healthy(base: str) -> bool:
    try:
        return requests.get(f"{base}/healthz", timeout=1).status_code == 200
    except requests.ConnectionError:
        return False
