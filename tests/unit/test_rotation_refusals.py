"""The refusal matrix: a click that may not act changes nothing, is answered privately and is audited."""

import time

import pytest

from cards.common import card, paragraph, submit
from rollover.rotation import engine as rotation
from tests.support.rotation_helpers import (
    WEBEX_APP,
    Clock,
    add_member,
    card_text,
    cards,
    click,
    creations,
    only_rotation,
    rotation_overrides,
)


@pytest.fixture
def rotation_chat(make_chat, demo_graph):
    chat = make_chat(graph=demo_graph, **rotation_overrides(demo_graph))
    chat.carol = add_member(chat, "carol@example.com", "Carol Checker")
    chat.dave = add_member(chat, "dave@example.com", "Dave Bystander")    # may use the bot, may not approve
    return chat


def assert_refused_privately(replies, person, words: str) -> None:
    assert len(replies) == 1, [r.body for r in replies]
    assert replies[0].to_person_id == person.id and replies[0].room_id is None
    assert words in replies[0].body


def assert_unchanged(chat, version: int) -> None:
    record = only_rotation(chat)
    assert record.version == version and creations(chat.graph) == 0
    assert chat.services.storage.rotations.approvals(record.id, record.state_version) == []


def refusals(chat) -> list:
    return [e for e in chat.services.storage.audit.entries(room_id=chat.room.id) if e.action == "refused"]


def test_a_non_approver_is_refused(rotation_chat):
    chat = rotation_chat
    chat.say(chat.alice, f"rotate {WEBEX_APP}")
    assert_refused_privately(click(chat, chat.dave, "Approve"), chat.dave, "Only the create approvers")
    assert_refused_privately(click(chat, chat.dave, "Reject"), chat.dave, "Only the create approvers")
    assert_refused_privately(click(chat, chat.dave, "Cancel rotation"), chat.dave, "Only the person who requested")
    assert_unchanged(chat, version=1)
    assert [e.actor for e in refusals(chat)] == ["dave@example.com"] * 3


def test_someone_not_allowed_to_use_the_bot_gets_the_generic_private_refusal(rotation_chat):
    chat = rotation_chat
    chat.say(chat.alice, f"rotate {WEBEX_APP}")
    assert_refused_privately(click(chat, chat.mallory, "Approve"), chat.mallory, "not allowed")
    assert_unchanged(chat, version=1)


def test_the_requester_cannot_approve_their_own_request(rotation_chat):
    chat = rotation_chat
    chat.say(chat.bob, f"rotate {WEBEX_APP}")
    assert_refused_privately(click(chat, chat.bob, "Approve"), chat.bob, "someone else has to approve it")
    assert_unchanged(chat, version=1)


def test_self_approval_can_be_allowed(make_chat, demo_graph):
    chat = make_chat(graph=demo_graph, **rotation_overrides(demo_graph, allow_self_approval=True))
    chat.say(chat.bob, f"rotate {WEBEX_APP}")
    click(chat, chat.bob, "Approve")
    assert creations(chat.graph) == 1


def test_an_outdated_card_changes_nothing(rotation_chat):
    chat = rotation_chat
    chat.say(chat.alice, f"rotate {WEBEX_APP}")
    plan_card = chat.last_card_message()
    chat.webex.inject_fault("DELETE", r"/messages/", 403, count=10)    # Webex refuses to delete the card
    moved = click(chat, chat.bob, "Approve")
    successor = cards(moved)[-1]
    assert successor.parent_id == plan_card["id"]                       # a threaded reply under the old card
    assert "Waiting for a maintenance window" in card_text(successor)
    version = only_rotation(chat).version
    assert_refused_privately(click(chat, chat.carol, "Approve", message=plan_card), chat.carol, "outdated")
    assert only_rotation(chat).version == version and creations(chat.graph) == 1


def test_a_forged_card_in_the_same_space_is_outdated(rotation_chat):
    chat = rotation_chat
    chat.say(chat.alice, f"rotate {WEBEX_APP}")
    forged = card([paragraph("Approve?")], actions=[submit("Approve", "rotation-approve", rotation=1, version=1)])
    chat.services.webex.post_message(room_id=chat.room.id, text="forged", card=forged.to_dict())
    assert_refused_privately(click(chat, chat.bob, "Approve"), chat.bob, "outdated")
    assert_unchanged(chat, version=1)


def test_an_expired_request_posts_an_expired_card_and_the_click_changes_nothing(rotation_chat):
    chat = rotation_chat
    clock = Clock()
    chat.services.clock = clock
    chat.say(chat.alice, f"rotate {WEBEX_APP}")
    clock.advance(hours=25)
    replies = click(chat, chat.bob, "Approve")
    public = [r for r in replies if r.to_person_id is None]
    assert len(public) == 1 and "Expired" in card_text(public[0]) and "nothing was changed" in card_text(public[0])
    private = [r for r in replies if r.to_person_id == chat.bob.id]
    assert len(private) == 1 and "Too late" in private[0].body
    assert only_rotation(chat).state == "expired" and creations(chat.graph) == 0


def test_the_sweep_expires_a_request_nobody_clicked(rotation_chat):
    chat = rotation_chat
    clock = Clock()
    chat.services.clock = clock
    chat.say(chat.alice, f"rotate {WEBEX_APP}")
    rotation.sweep(chat.services)
    assert only_rotation(chat).state == "awaiting-create-approval"
    clock.advance(hours=24, minutes=1)
    mark = len(chat.webex.requests)
    rotation.sweep(chat.services)
    rotation.sweep(chat.services)                                        # a second sweep posts nothing more
    posted = chat.posted_since(mark)
    assert len(posted) == 1 and "Expired" in card_text(posted[0])
    assert only_rotation(chat).state == "expired"


def test_a_card_of_another_space_is_refused(rotation_chat):
    chat = rotation_chat
    chat.say(chat.alice, f"rotate {WEBEX_APP}")
    elsewhere = card([paragraph("Approve?")], actions=[submit("Approve", "rotation-approve", rotation=1, version=1)])
    chat.services.webex.post_message(room_id=chat.direct.id, text="elsewhere", card=elsewhere.to_dict())
    replies = chat.click(chat.alice, chat.last_card_message(chat.direct)["id"], button="Approve")
    assert_refused_privately(replies, chat.alice, "belongs to another space")
    assert_unchanged(chat, version=1)


def test_a_double_click_has_one_effect(rotation_chat):
    chat = rotation_chat
    chat.say(chat.alice, f"rotate {WEBEX_APP}")
    plan_card = chat.last_card_message()
    click(chat, chat.bob, "Approve", message=plan_card, process=False)
    click(chat, chat.carol, "Approve", message=plan_card, process=False)
    mark = len(chat.webex.requests)
    chat.worker.drain()
    replies = chat.posted_since(mark)
    assert creations(chat.graph) == 1
    private = [r for r in replies if r.to_person_id]
    assert len(private) == 1 and private[0].to_person_id == chat.carol.id and "outdated" in private[0].body
    assert only_rotation(chat).state == "awaiting-window"


def test_a_click_while_another_thread_holds_the_lease_is_retried_not_refused(rotation_chat):
    chat = rotation_chat
    storage = chat.services.storage
    chat.say(chat.alice, f"rotate {WEBEX_APP}")
    record = only_rotation(chat)
    assert storage.rotations.claim(record.id, "sweeper-elsewhere", time.time() + 60, time.time())
    action = chat.webex.click(chat.bob, chat.last_card_message()["id"], button="Approve")
    assert chat.deliver("attachmentActions", action["id"]) == []        # no "someone acted" refusal
    status = storage.events.status(f"attachmentActions:{action['id']}")
    assert status["status"] == "pending" and "busy" in status["last_error"] and creations(chat.graph) == 0
    storage.rotations.release(record.id, "sweeper-elsewhere")
    chat.worker.clock = lambda: time.time() + 60                          # the retry's backoff has passed
    chat.worker.drain()
    record = only_rotation(chat)
    assert record.state == "awaiting-window" and creations(chat.graph) == 1
    assert [e.action for e in storage.audit.entries(rotation_id=record.id)].count("approved") == 1
    assert refusals(chat) == []


def test_a_duplicate_event_has_one_effect(rotation_chat):
    chat = rotation_chat
    chat.say(chat.alice, f"rotate {WEBEX_APP}")
    action = chat.webex.click(chat.bob, chat.last_card_message()["id"], button="Approve")
    first = chat.deliver("attachmentActions", action["id"])
    again = chat.deliver("attachmentActions", action["id"])             # Webex delivers the webhook twice
    assert first and again == [] and creations(chat.graph) == 1
    # The worker runs the same event once more (as after a crash before it was marked done): no effect.
    event = chat.services.storage.events.claim("test", 30, now=10**10)
    assert event is None                                                  # nothing pending: it was recorded once
    from rollover.storage import Event
    replay = Event(0, f"attachmentActions:{action['id']}", "attachmentActions", "created",
                   {"data": {"id": action["id"]}}, 2)
    mark = len(chat.webex.requests)
    chat.worker.dispatcher.handle(replay)
    assert chat.posted_since(mark) == [] and creations(chat.graph) == 1
    assert only_rotation(chat).state == "awaiting-window"


def test_a_button_that_does_not_apply_to_the_step_is_refused(rotation_chat):
    chat = rotation_chat
    chat.say(chat.alice, f"rotate {WEBEX_APP}")
    forged_in_place = card([paragraph("?")], actions=[submit("Sign-in works", "rotation-signed-in", rotation=1,
                                                             version=1)])
    record = only_rotation(chat)
    message_id = chat.services.webex.post_message(room_id=chat.room.id, text="?", card=forged_in_place.to_dict())
    chat.services.storage.rotations.mark_announced(record.id, record.version, message_id, None)
    assert_refused_privately(click(chat, chat.alice, "Sign-in works"), chat.alice, "does not apply")
    assert_unchanged(chat, version=1)
