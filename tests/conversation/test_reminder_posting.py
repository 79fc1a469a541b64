"""A sweep over many spaces: each space's facts are read once, cards go out several at a time, a space's cards
in the order they were planned, and a Webex outage stops the sweep without leaving anything claimed."""

import threading
from datetime import timedelta

import pytest

from rollover.reminders import spaces as space_facts
from tests.conversation.test_conversation_reminders import BASE, Clock, sweep, track_file


@pytest.fixture
def clock(chat) -> Clock:
    chat.services.clock = clock = Clock(BASE)
    return clock


def spaces_with_reminders(chat, count: int) -> list:
    rooms = []
    for n in range(count):
        room = chat.webex.add_room(f"SSO team {n}", "group", [chat.alice])
        chat.say(chat.alice, "remind on", room=room)
        for days, name in ((5.5, "a"), (25.5, "b"), (55.5, "c")):
            track_file_in(chat, room, days, f"{name}{n}.pem", f"{name}{n}.example.com")
        rooms.append(room)
    return rooms


def track_file_in(chat, room, days, name, cn):
    original = chat.room
    chat.room = room
    try:
        track_file(chat, days, name=name, cn=cn)
    finally:
        chat.room = original


def test_cards_go_out_several_at_a_time_each_space_in_its_planned_order_its_facts_read_once(chat, clock,
                                                                                             monkeypatch):
    rooms = spaces_with_reminders(chat, 12)
    posters, diagnoses = set(), []
    post = chat.services.webex.post_message

    def posting(**fields):
        posters.add(threading.current_thread().name)
        return post(**fields)
    diagnose = space_facts.room_diagnosis

    def diagnosing(services, room_id):
        diagnoses.append(room_id)
        return diagnose(services, room_id)
    monkeypatch.setattr(chat.services.webex, "post_message", posting)
    monkeypatch.setattr(space_facts, "room_diagnosis", diagnosing)
    report = sweep(chat, BASE, clock)
    assert len(report.sent) == 36 and not report.waiting and not report.failed
    assert len(posters) > 1 and all(name.startswith("rollover-reminders-") for name in posters)
    assert sorted(diagnoses) == sorted(room.id for room in rooms)           # once per space, not per card
    for room in rooms:
        planned = [r["message_id"] for r in chat.services.storage.reminders.all(room.id)]
        posted = [m["id"] for m in chat.webex.sent_by_bot(room) if m["id"] in planned]
        assert posted == planned and len(planned) == 3                      # in the order they were planned


def test_an_outage_stops_the_sweep_and_every_card_is_posted_once_later(chat, clock):
    rooms = spaces_with_reminders(chat, 6)
    chat.webex.inject_fault("POST", r"/messages$", 503)
    first = sweep(chat, BASE, clock)
    assert len(first.waiting) == 1 and len(first.sent) < 18
    statuses = [r["status"] for room in rooms for r in chat.services.storage.reminders.all(room.id)]
    assert "posting" not in statuses                                         # nothing left claimed
    sweep(chat, BASE + timedelta(minutes=5), clock)
    for room in rooms:
        assert [r["status"] for r in chat.services.storage.reminders.all(room.id)] == ["sent"] * 3
        assert len([m for m in chat.webex.sent_by_bot(room) if m.get("attachments")]) == 3
