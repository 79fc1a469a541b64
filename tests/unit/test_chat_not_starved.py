"""Replies in the production shapes: the Procfile's worker is woken across processes, and a document being read
never holds up another person's `help` (in `serve` and in the Procfile's worker)."""

import os
import subprocess
import sys
import threading

import pytest
import requests

from rollover.pipeline.wakeup import TARGETS_TTL, wake_folder
from tests.support.processes import ROOT, start_worker, wait_until, worker_environment
from tests.unit.test_serve import _healthy, free_port


def hold_downloads(webex):
    """Make the local Webex stall file downloads until released: a document is being read meanwhile."""
    arrived, release = threading.Event(), threading.Event()
    original = webex._api_contents_get

    def held(caller, request, content_id):
        arrived.set()
        release.wait(60)
        return original(caller, request, content_id)
    webex._api_contents_get = held
    return arrived, release


def listening(chat) -> bool:
    """A worker process listens for wake-ups: its socket beside the SQLite file, or its PostgreSQL LISTEN."""
    database = chat.config.database_path
    if database.startswith("postgresql://"):
        import psycopg
        with psycopg.connect(database, autocommit=True) as connection:
            return connection.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                      "AND query LIKE 'LISTEN %'").fetchone()[0] > 0
    folder = wake_folder(database)
    return folder.is_dir() and any(name.endswith(".sock") for name in os.listdir(folder))


def test_the_web_process_wakes_the_worker_process_without_waiting_for_its_poll(chat):
    env = {**worker_environment(chat, lease_seconds=30.0), "ROLLOVER_WORKER_POLL_SECONDS": "600"}
    worker = start_worker(env)
    try:
        assert wait_until(lambda: listening(chat)), "the worker never listened for wake-ups"
        # Past its first (start-up) look for events, and past the web app's last look for listening workers.
        wait_until(lambda: False, timeout=max(0.5, TARGETS_TTL + 0.1))
        chat.say(chat.alice, "help", process=False)          # recorded by the web app, which pokes the worker
        # Its next poll is ten minutes away: only the poke can bring the answer within this wait.
        assert wait_until(lambda: chat.webex.sent_by_bot(chat.room), timeout=60)
    finally:
        worker.terminate()
        worker.wait(10)
    assert wait_until(lambda: not listening(chat))           # a stopped worker removes its socket (or LISTEN)


def say_with_a_document(chat, deliver):
    content = chat.webex.add_file("idp.pem", b"not read yet", "application/x-pem-file")
    arrived, release = hold_downloads(chat.webex)
    try:
        deliver(chat.webex.post_as(chat.alice, chat.room, "", files=[content]))
        assert arrived.wait(30), "the document was never fetched"
        deliver(chat.webex.post_as(chat.bob, chat.room, "help"))
        # Bob's answer comes while Alice's document is still being read.
        assert wait_until(lambda: chat.webex.sent_by_bot(chat.room), timeout=30)
        assert not release.is_set()
        assert len(chat.webex.sent_by_bot(chat.room)) == 1
    finally:
        release.set()
    assert wait_until(lambda: len(chat.webex.sent_by_bot(chat.room)) == 2, timeout=30)


@pytest.mark.parametrize("threads", ["1", "4"])
def test_help_is_answered_while_a_document_is_read_by_the_procfile_worker(chat, threads):
    env = {**worker_environment(chat, lease_seconds=30.0), "ROLLOVER_WORKER_THREADS": threads}
    worker = start_worker(env)
    try:
        say_with_a_document(chat, lambda message: chat.deliver("messages", message["id"], process=False))
    finally:
        worker.terminate()
        worker.wait(10)


def test_help_is_answered_while_a_document_is_read_in_serve(chat):
    port = free_port()
    process = subprocess.Popen([sys.executable, "bot.py", "serve", "--host", "127.0.0.1", "--port", str(port)],
                               cwd=ROOT, env=worker_environment(chat, lease_seconds=30.0), stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"

    def deliver(message):
        body, headers = chat.webex.webhook_event("messages", "created", message["id"])
        assert requests.post(f"{base}/webhooks/webex", data=body, headers=headers, timeout=10).status_code == 200
    try:
        assert wait_until(lambda: _healthy(base)), "serve did not come up"
        say_with_a_document(chat, deliver)
    finally:
        process.terminate()
        process.wait(10)
