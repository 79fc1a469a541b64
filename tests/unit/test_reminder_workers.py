"""Reminders from several threads and processes at once: one decision at a time (the lease), each reminder
posted once; the `remind` command line; the APScheduler job."""

import re
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import time_machine

import bot
from rollover import scheduling as scheduler
from rollover.reminders import sweep as reminders
from rollover.storage import ReminderSubscription
from tests.conversation.test_conversation_reminders import BASE, Clock, cards_posted, subscribe, track_file
from tests.support.processes import worker_environment

ROOT = Path(__file__).resolve().parents[2]


def subscribed_space_with_certificates(chat, count: int = 3) -> None:
    chat.services.clock = Clock(BASE)
    subscribe(chat)
    for n in range(count):
        track_file(chat, 5.5 + 10 * n, name=f"c{n}.pem", cn=f"c{n}.example.com")


def test_two_threads_sweeping_at_once_post_each_reminder_once(chat):
    subscribed_space_with_certificates(chat)
    start = threading.Barrier(2)
    reports = []

    def sweep_in_own_process_like_services():
        services = chat.bot.new_services()       # own storage connection and Webex client
        start.wait()
        reports.append(reminders.run_sweep(services, BASE, owner=threading.current_thread().name))
    threads = [threading.Thread(target=sweep_in_own_process_like_services, name=f"sweeper-{n}") for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(cards_posted(chat)) == 3
    assert sum(len(r.sent) for r in reports) == 3
    assert sorted(r.lease_taken for r in reports) in ([False, True], [True, True])   # True, True: one after the other


def test_the_sweep_lease_keeps_a_second_process_out_until_it_runs_out(chat):
    storage = chat.services.storage
    assert storage.leases.acquire("reminder-sweep", "crashed", seconds=60, wall_now=1000.0)
    assert not storage.leases.acquire("reminder-sweep", "other", seconds=60, wall_now=1059.0)
    assert storage.leases.acquire("reminder-sweep", "crashed", seconds=60, wall_now=1059.0)      # its owner renews
    assert storage.leases.acquire("reminder-sweep", "other", seconds=60, wall_now=1120.0)     # ran out: taken over
    storage.leases.release("reminder-sweep", "crashed")                                     # not the owner: no-op
    assert not storage.leases.acquire("reminder-sweep", "crashed", seconds=60, wall_now=1121.0)


def test_a_sweep_finding_the_lease_held_does_nothing(chat):
    subscribed_space_with_certificates(chat, count=1)
    chat.services.storage.leases.acquire("reminder-sweep", "someone-else", seconds=60, wall_now=time.time())
    report = reminders.run_sweep(chat.services, BASE)
    assert not report.lease_taken and "another process is running one" in report.lines()[0]
    assert cards_posted(chat) == [] and chat.services.storage.reminders.all() == []


def test_a_claim_left_by_a_crashed_poster_is_posted_when_it_runs_out(chat):
    subscribed_space_with_certificates(chat, count=1)
    storage = chat.services.storage
    plan = reminders.decide(storage, chat.config, BASE)
    storage.reminders.plan([d.key for d in plan.due], plan.slots, BASE.timestamp())
    claimed = storage.reminders.claim("crashed", now=BASE.timestamp(), wall_now=time.time(), claim_seconds=1.0)
    assert claimed is not None and reminders.run_sweep(chat.services, BASE).sent == []      # still claimed
    time.sleep(1.1)
    assert len(reminders.run_sweep(chat.services, BASE).sent) == 1
    assert not storage.reminders.finish(claimed.id, "crashed", "sent", now=BASE.timestamp())  # it lost the claim


def remind_process(chat, *arguments: str) -> subprocess.Popen:
    env = {**worker_environment(chat, lease_seconds=30.0), "ROLLOVER_LOG_LEVEL": "ERROR"}
    return subprocess.Popen([sys.executable, "bot.py", "remind", *arguments], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_two_remind_processes_at_once_post_each_reminder_once(chat):
    subscribed_space_with_certificates(chat)
    processes = [remind_process(chat, "--now", BASE.isoformat()) for _ in range(2)]
    outputs = [process.communicate(timeout=60) for process in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    assert len(cards_posted(chat)) == 3
    assert sorted(r["status"] for r in chat.services.storage.reminders.all()) == ["sent"] * 3


def test_remind_dry_run_prints_what_would_be_sent_and_records_nothing(chat, monkeypatch, capsys):
    subscribed_space_with_certificates(chat, count=1)
    for name, value in worker_environment(chat, lease_seconds=30.0).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("WEBEX_ACCESS_TOKEN")
    assert bot.main(["remind", "--now", "2026-03-20T10:05+01:00", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "Dry run at 2026-03-20T09:05+00:00" in out and "1 reminder would be sent" in out
    assert "expires in 5 days" in out
    assert chat.services.storage.reminders.all() == [] and cards_posted(chat) == []
    assert chat.services.storage.reminders.subscription(chat.room.id).last_slot is None


def test_the_scheduled_job_sweeps_at_the_current_time(chat):
    subscribed_space_with_certificates(chat, count=1)
    with time_machine.travel(BASE + timedelta(hours=1), tick=False):
        scheduler.scheduled_reminder_sweep(chat.services)
    assert len(cards_posted(chat)) == 1


def test_the_scheduler_sweeps_once_at_start_up(chat):
    subscribed_space_with_certificates(chat, count=1)
    # Real time now: a slot open all day, and a threshold every certificate has reached.
    chat.services.storage.reminders.save_subscription(
        ReminderSubscription(chat.room.id, True, (3650,), "00:00", "UTC", 0.0, "alice@example.com", 0.0))
    running = scheduler.start_scheduler(chat.bot.new_services(), chat.bot.new_services())
    try:
        deadline = time.monotonic() + 20
        while not cards_posted(chat) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        running.shutdown()
    assert any(card["body"][0]["text"].startswith("🔴 ") and " expired " in card["body"][0]["text"]
               for card in cards_posted(chat))


def test_scheduled_sweep_failures_are_logged_not_raised(caplog):
    scheduler.scheduled_reminder_sweep(object())              # not services at all: the sweep fails at once
    assert "reminder sweep failed" in caplog.text


def test_claims_are_exclusive_when_several_posters_race(chat):
    storage = chat.services.storage
    due = [(chat.room.id, f"SHA{n}", "threshold", 7) for n in range(60)]
    storage.reminders.plan(due, {}, BASE.timestamp())
    claimed: dict[str, list[int]] = {}

    def claim_all(owner: str) -> None:
        claimed[owner] = []
        while (row := storage.reminders.claim(owner, now=BASE.timestamp(), wall_now=time.time(),
                                             claim_seconds=60)) is not None:
            claimed[owner].append(row.id)
    threads = [threading.Thread(target=claim_all, args=(f"poster-{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    ids = [i for owner_ids in claimed.values() for i in owner_ids]
    assert sorted(ids) == sorted(set(ids)) and len(ids) == 60


def test_the_demo_fast_forwards_to_a_reminder_and_a_snooze(capsys):
    from fakes import demo
    assert demo.run() == 0
    out = capsys.readouterr().out
    scene = out[out.index("Reminders in the space"):]
    # The story is dated from today: how many days are left depends on the time of day the demo runs.
    assert re.search(r"Webex SP certificate idbroker\.webex\.com expires in 3[23] days", scene)
    assert "Weekly digest" in scene
    assert "alice@example.com snoozed the reminders about **Webex SP certificate" in scene
    quiet = scene[scene.index("The next morning's sweep"):]
    quiet = quiet[:quiet.find("\n── ")] if "\n── " in quiet else quiet     # up to the next scene's first title
    # Only a certificate crossing its next threshold overnight may speak (that depends on the day the demo runs);
    # the snoozed one and the ones already reminded stay quiet.
    assert "Webex SP certificate idbroker" not in quiet and "Weekly digest" not in quiet
    assert "expires in 8 days" not in quiet and "Snoozed now: 1." in quiet


def test_a_reminder_whose_sent_mark_was_lost_is_not_posted_again(chat, monkeypatch):
    """The post went out, then recording it failed (the process died, the disk hiccuped): the reminder is
    claimed again later, and the outbox hands back the message instead of posting it twice."""
    subscribed_space_with_certificates(chat, count=1)
    storage = chat.services.storage
    real_finish = storage.reminders.finish
    lost = []

    def finish_fails_once(reminder_id, owner, status, **kwargs):
        if status == "sent" and not lost:
            lost.append(reminder_id)
            raise RuntimeError("the sent mark was lost")
        return real_finish(reminder_id, owner, status, **kwargs)
    monkeypatch.setattr(storage.reminders, "finish", finish_fails_once)
    with time_machine.travel(BASE + timedelta(hours=1), tick=False):
        scheduler.scheduled_reminder_sweep(chat.services)       # logs the failure; the reminder stays claimed
    assert lost and len(cards_posted(chat)) == 1
    with time_machine.travel(BASE + timedelta(hours=3), tick=False):   # after the claim ran out
        reminders.run_sweep(chat.services, BASE + timedelta(hours=3))
    assert len(cards_posted(chat)) == 1
    assert [r["status"] for r in storage.reminders.all() if r["id"] == lost[0]] == ["sent"]


def test_a_bug_on_one_reminder_does_not_stall_the_sweep(chat, monkeypatch):
    """Many reminders of one space go to one poster thread; a bug on the first must not leave the claiming
    thread waiting for that poster forever, nor keep the others from being posted."""
    subscribed_space_with_certificates(chat, count=5)
    real_post = reminders.post_one
    broken = []

    def post_one(services, planned, *args, **kwargs):
        if not broken:
            broken.append(planned.id)
            raise RuntimeError("a bug in one reminder")
        return real_post(services, planned, *args, **kwargs)
    monkeypatch.setattr(reminders, "post_one", post_one)
    done = threading.Event()
    sweeper = threading.Thread(target=lambda: (reminders.run_sweep(chat.services, BASE + timedelta(hours=1)),
                                               done.set()), daemon=True)
    sweeper.start()
    assert done.wait(60), "the sweep stalled"
    assert broken and len(cards_posted(chat)) == 4
