"""Nothing acknowledged is lost: a worker process killed mid-event, then restarted, still answers once."""

import signal
import threading
import time

from tests.support.processes import start_worker, wait_until, worker_environment


def hold_message_reads(webex):
    """Make the local Webex stall GET /messages/{id} until released: the worker is then mid-event."""
    arrived, release = threading.Event(), threading.Event()
    original = webex._api_messages_get

    def held(caller, request, message_id):
        arrived.set()
        release.wait(30)
        return original(caller, request, message_id)
    webex._api_messages_get = held
    return arrived, release


def test_a_worker_killed_between_acknowledgement_and_reply_answers_after_restart(chat):
    message = chat.webex.post_as(chat.alice, chat.room, "help")
    chat.deliver("messages", message["id"], process=False)          # 200 sent to Webex: it won't resend
    env = worker_environment(chat, lease_seconds=1.0)
    arrived, release = hold_message_reads(chat.webex)

    first = start_worker(env)
    try:
        assert arrived.wait(20), "the worker never fetched the message"
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        first.kill()
    del chat.webex._api_messages_get                                 # Webex answers normally again
    release.set()
    assert chat.webex.sent_by_bot(chat.room) == []
    assert chat.services.storage.events.status(f"messages:{message['id']}")["status"] == "pending"

    second = start_worker(env)
    try:
        assert wait_until(lambda: chat.webex.sent_by_bot(chat.room)), "no reply after restart"
        time.sleep(1.5)                                              # longer than a lease: no second answer
    finally:
        second.terminate()
        second.wait(10)
    replies = chat.webex.sent_by_bot(chat.room)
    assert len(replies) == 1 and replies[0]["attachments"]
    status = chat.services.storage.events.status(f"messages:{message['id']}")
    assert status["status"] == "done" and status["attempts"] == 2


def test_two_workers_racing_answer_each_event_once(chat):
    ids = [chat.webex.post_as(chat.alice, chat.room, "help")["id"] for _ in range(6)]
    for message_id in ids:
        chat.deliver("messages", message_id, process=False)
    env = worker_environment(chat, lease_seconds=30.0)
    workers = [start_worker(env), start_worker(env)]
    try:
        assert wait_until(lambda: len(chat.webex.sent_by_bot(chat.room)) >= len(ids))
        time.sleep(0.5)
    finally:
        for process in workers:
            process.terminate()
            process.wait(10)
    assert len(chat.webex.sent_by_bot(chat.room)) == len(ids)
    assert chat.services.storage.events.count("done") == len(ids)
