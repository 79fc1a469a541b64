"""Bot core as conversations: commands, mentions, access control, card actions, Webex failures."""

import types

import pytest

from rollover.pipeline.registry import card_action, command
from rollover.pipeline.webhooks import signature_for


def test_help_answers_with_a_card_generated_from_the_registry(chat):
    replies = chat.say(chat.alice, "help")
    assert len(replies) == 1
    card = replies[0].card
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.3"
    listed = {fact["title"] for block in card["body"] if block["type"] == "FactSet" for fact in block["facts"]}
    assert listed == {spec.usage for spec in chat.services.registry.sorted_commands()}
    assert "help: Show what I can do." in replies[0].text      # fallback for clients without cards


def test_commands_match_exactly_and_case_insensitively(chat):
    assert chat.say(chat.alice, "HeLp")[0].card is not None
    reply = chat.say(chat.alice, "helpful")[0]
    assert reply.card is None and "I don't know the command `helpful`" in reply.body


def test_unknown_command_gets_a_suggestion(chat):
    reply = chat.say(chat.alice, "hlep")[0]
    assert "Did you mean `help`?" in reply.body


def test_group_mention_is_stripped_from_html_and_direct_messages_need_none(chat):
    assert chat.say(chat.alice, "help")[0].card is not None                     # group: "Rollover help"
    assert chat.say(chat.alice, "help", room=chat.direct)[0].card is not None   # direct: "help"


def test_mention_by_display_name_in_text_only_is_stripped_too(chat):
    from rollover.integrations.webex_client import Message
    from rollover.pipeline.dispatcher import command_text
    message = Message(id="M", room_id="R", room_type="group", person_id="P", person_email="a@example.com",
                      text="Rollover   status  now", html="")
    assert command_text(message, "BOT", "Rollover") == "status now"
    direct = Message(id="M", room_id="R", room_type="direct", person_id="P", person_email="a@example.com",
                     text="Rollover status")
    assert command_text(direct, "BOT", "Rollover") == "Rollover status"


def test_an_empty_mention_shows_help(chat):
    assert chat.say(chat.alice, "")[0].card is not None


def test_the_bot_never_answers_its_own_messages(chat):
    own = chat.webex.post_as(chat.bot_person, chat.room, "help", mention_bot=False)
    assert chat.deliver("messages", own["id"]) == []


def test_other_bots_are_ignored_unless_allowed(local_webex, make_chat):
    chat = make_chat()
    other_bot = local_webex.add_person("helper@webex.bot", "Helper Bot", bot=True)
    room = local_webex.add_room("with bots", "group", [chat.alice])   # both bots join
    assert chat.say(other_bot, "help", room=room) == []


def test_other_bots_are_answered_when_allowed(local_webex, make_chat):
    chat = make_chat(allow_bots=True, allowed_people=("helper@webex.bot",))
    other_bot = local_webex.add_person("helper@webex.bot", "Helper Bot", bot=True)
    room = local_webex.add_room("with bots", "group", [chat.alice])   # both bots join
    assert chat.say(other_bot, "help", room=room)[0].card is not None


def test_people_outside_the_allowed_domains_get_one_short_refusal_and_no_data(chat):
    replies = chat.say(chat.mallory, "help")
    assert len(replies) == 1
    assert replies[0].card is None and "not allowed" in replies[0].body
    assert "help:" not in replies[0].body


def test_allowed_people_are_let_in_by_address(make_chat):
    chat = make_chat(allowed_people=("mallory@evil.example",))
    assert chat.say(chat.mallory, "help")[0].card is not None


def test_rooms_outside_the_allowed_rooms_are_refused(local_webex, make_chat):
    restricted = make_chat(allowed_rooms=())
    restricted.config = restricted.services.config = restricted.config.replace(allowed_rooms=(restricted.room.id,))
    other = local_webex.add_room("Elsewhere", "group", [restricted.alice])
    assert restricted.say(restricted.alice, "help", room=restricted.room)[0].card is not None
    refused = restricted.say(restricted.alice, "help", room=other)
    assert len(refused) == 1 and "not allowed" in refused[0].body


def test_a_duplicate_delivery_is_answered_once(chat):
    message = chat.webex.post_as(chat.alice, chat.room, "help")
    first = chat.deliver("messages", message["id"])
    second = chat.deliver("messages", message["id"])
    assert len(first) == 1 and second == []


def test_a_replayed_body_with_a_forged_signature_is_refused(chat):
    message = chat.webex.post_as(chat.alice, chat.room, "help")
    body, headers = chat.webex.webhook_event("messages", "created", message["id"])
    headers["X-Spark-Signature"] = signature_for("guessed-secret", body)
    assert chat.client.post("/webhooks/webex", data=body, headers=headers).status_code == 401
    assert chat.worker.drain() == 0


# --- card actions ------------------------------------------------------------------------------------

test_handlers = types.ModuleType("test_handlers")


@command("ask", button="Ask")
def ask(ctx):
    """Post a card with a button (test command)."""
    from cards.common import card, paragraph, submit
    ctx.reply("Pick one", card=card([paragraph("Pick one")], actions=[submit("Yes", "test-answer", answer="yes")]))


@card_action("test-answer")
def answer(ctx):
    ctx.reply(f"{ctx.person_email} answered {ctx.inputs['answer']}")


ask.__module__ = answer.__module__ = test_handlers.__name__
test_handlers.ask, test_handlers.answer = ask, answer


@pytest.fixture
def card_chat(chat):
    chat.services.registry.add_module(test_handlers)
    return chat


def test_a_card_action_is_routed_by_the_action_id_in_the_submit_data(card_chat):
    chat = card_chat
    card_message = chat.say(chat.alice, "ask") and chat.last_card_message()
    replies = chat.click(chat.bob, card_message["id"])
    assert [r.body for r in replies] == ["bob@example.com answered yes"]


def test_help_card_buttons_run_quick_commands(card_chat):
    chat = card_chat
    chat.say(chat.alice, "help")
    help_message = chat.last_card_message()
    replies = chat.click(chat.alice, help_message["id"], button="Ask")
    assert replies[0].card is not None and replies[0].body == "Pick one"


def test_a_card_action_by_an_unauthorized_person_is_refused_privately(card_chat):
    chat = card_chat
    chat.say(chat.alice, "ask")
    replies = chat.click(chat.mallory, chat.last_card_message()["id"])
    assert len(replies) == 1
    assert replies[0].to_person_id == chat.mallory.id and replies[0].room_id is None
    assert "not allowed" in replies[0].body


def test_card_actions_are_authorized_from_the_fetched_action_not_the_webhook_body(card_chat):
    chat = card_chat
    chat.say(chat.alice, "ask")
    action = chat.webex.click(chat.mallory, chat.last_card_message()["id"])
    # A forged-looking envelope that claims Alice clicked: the bot must ask Webex who really did.
    mark = len(chat.webex.requests)
    body, headers = chat.webex.webhook_event("attachmentActions", "created", action["id"], actor=chat.alice)
    chat.client.post("/webhooks/webex", data=body, headers=headers)
    chat.worker.drain()
    replies = chat.posted_since(mark)
    assert len(replies) == 1 and replies[0].to_person_id == chat.mallory.id


def test_an_unknown_action_id_is_answered_privately(card_chat):
    chat = card_chat
    from cards.common import card, paragraph, submit
    old_card = card([paragraph("old")], actions=[submit("Old", "retired-action")]).to_dict()
    chat.services.webex.post_message(room_id=chat.room.id, text="old card", card=old_card)
    replies = chat.click(chat.alice, chat.last_card_message()["id"])
    assert replies[0].to_person_id == chat.alice.id and "older version" in replies[0].body


# --- failures ---------------------------------------------------------------------------------------

class FakeClock:
    """The worker's clock: real time plus an offset moved by hand (events are recorded at real time)."""

    def __init__(self):
        self.offset = 0.0

    def advance(self, seconds):
        self.offset += seconds

    def __call__(self):
        import time
        return time.time() + self.offset


@pytest.mark.parametrize("status", [429, 503])
def test_webex_failing_a_reply_is_retried_later_and_answered_once(chat, status):
    clock = FakeClock()
    chat.worker.clock = clock
    chat.webex.inject_fault("POST", r"/messages$", status, count=1, retry_after=3 if status == 429 else None)
    assert chat.say(chat.alice, "help") == []
    assert chat.services.storage.events.count("pending") == 1
    clock.advance(0.5)
    assert chat.worker.drain() == 0                 # not due yet (Retry-After 3 s / 1 s backoff)
    clock.advance(5.0)
    mark = len(chat.webex.requests)
    assert chat.worker.drain() == 1
    replies = chat.posted_since(mark)
    assert len(replies) == 1 and replies[0].card is not None
    assert chat.services.storage.events.count("done") == 1


def test_posts_that_went_out_are_not_repeated_when_a_later_post_fails(card_chat):
    chat = card_chat
    clock = FakeClock()
    chat.worker.clock = clock

    @command("twice")
    def twice(ctx):
        """Post two messages (test command)."""
        ctx.reply("first")
        ctx.reply("second")
    chat.services.registry.commands["twice"] = twice._rollover_command

    original = chat.services.webex.post_message
    calls = []

    def fail_second_post(**kwargs):
        calls.append(kwargs.get("text"))
        if len(calls) == 2:
            chat.webex.inject_fault("POST", r"/messages$", 503)
        return original(**kwargs)
    chat.services.webex.post_message = fail_second_post
    first_round = chat.say(chat.alice, "twice")
    assert [r.body for r in first_round] == ["first"]
    clock.advance(10)
    mark = len(chat.webex.requests)
    chat.worker.drain()
    assert [r.body for r in chat.posted_since(mark)] == ["second"]


def test_an_event_is_given_up_after_the_configured_attempts(make_chat):
    chat = make_chat(worker_max_attempts=2)
    clock = FakeClock()
    chat.worker.clock = clock
    chat.webex.inject_fault("GET", r"/messages/", 503, count=10)
    chat.say(chat.alice, "help")
    clock.advance(60)
    chat.worker.drain()
    assert chat.services.storage.events.count("failed") == 1


def test_a_bug_in_a_handler_is_logged_and_answered_with_an_incident_id(card_chat, caplog):
    chat = card_chat

    @command("boom")
    def boom(ctx):
        """Fail (test command)."""
        raise RuntimeError("secret-internal-detail")
    chat.services.registry.commands["boom"] = boom._rollover_command
    reply = chat.say(chat.alice, "boom")[0]
    assert "something went wrong" in reply.body and "incident" in reply.body
    assert "secret-internal-detail" not in reply.body
    assert any("incident" in r.getMessage() and r.exc_info for r in caplog.records)


def test_a_handler_running_longer_than_the_lease_keeps_its_event(card_chat):
    import threading
    import time
    chat = card_chat
    chat.worker.lease_seconds = 0.3
    started, second_claim = threading.Event(), []

    @command("slow")
    def slow(ctx):
        """Take longer than a lease (test command)."""
        started.set()
        time.sleep(1.2)
        ctx.reply("finally")
    chat.services.registry.commands["slow"] = slow._rollover_command

    def competing_worker():
        started.wait(5)
        time.sleep(0.8)                    # well past the first 0.3 s lease
        second_claim.append(chat.services.storage.events.claim("other-worker", lease_seconds=0.3))
        chat.services.storage.close()
    competitor = threading.Thread(target=competing_worker)
    competitor.start()
    replies = chat.say(chat.alice, "slow")
    competitor.join()
    assert second_claim == [None]
    assert [r.body for r in replies] == ["finally"]


def test_an_unknown_command_is_echoed_without_links_mentions_or_formatting(chat):
    reply = chat.say(chat.alice, "x`[Re-login](https://evil.example)<@all>")[0]
    assert "https://" not in reply.body and "<@" not in reply.body and "](" not in reply.body
    assert reply.body.startswith("I don't know the command `xRe-loginhttpsevil.exampleall`.")


def test_a_refused_click_is_answered_privately(card_chat):
    from rollover.errors import UserError
    chat = card_chat

    @card_action("test-refuse")
    def refuse(ctx):
        raise UserError("Not now.")
    chat.services.registry.actions["test-refuse"] = refuse._rollover_action
    from cards.common import card, paragraph, submit
    chat.services.webex.post_message(room_id=chat.room.id, text="pick",
                                     card=card([paragraph("pick")], actions=[submit("Go", "test-refuse")]).to_dict())
    replies = chat.click(chat.bob, chat.last_card_message()["id"])
    assert [(r.to_person_id, r.room_id, r.body) for r in replies] == [(chat.bob.id, None, "Not now.")]


def test_file_urls_outside_the_webex_api_host_never_get_the_token(chat):
    from rollover.errors import UserError
    webex = chat.services.webex
    base = chat.webex.base_url.rstrip("/")
    for url in (base.replace("127.0.0.1", "127.0.0.1.evil.example") + "/contents/x",
                base.replace("http://", "http://127.0.0.1@")
                    .replace("127.0.0.1@127.0.0.1", "evil@127.0.0.1") + "/contents/x",
                "https://evil.example/v1/contents/x"):
        with pytest.raises(UserError, match="not hosted by Webex"):
            webex.download(url, 1000)


def test_a_refused_token_keeps_the_event_for_later_instead_of_dropping_it(chat):
    clock = FakeClock()
    chat.worker.clock = clock
    chat.webex.inject_fault("GET", r"/messages/", 401, count=1)
    assert chat.say(chat.alice, "help") == []
    assert chat.services.storage.events.status(next(iter(_event_keys(chat))))["status"] == "pending"
    clock.advance(301)
    mark = len(chat.webex.requests)
    chat.worker.drain()
    assert len(chat.posted_since(mark)) == 1


def test_an_event_that_keeps_killing_its_worker_is_given_up(make_chat):
    chat = make_chat(worker_max_attempts=2)
    message = chat.webex.post_as(chat.alice, chat.room, "help")
    chat.deliver("messages", message["id"], process=False)
    storage = chat.services.storage
    for _ in range(2):                                # two workers died holding it (leases ran out)
        assert storage.events.claim("dead-worker", lease_seconds=-1) is not None
    assert chat.worker.drain() == 1
    assert storage.events.count("failed") == 1 and chat.webex.sent_by_bot(chat.room) == []


def _event_keys(chat):
    return [row[0] for row in chat.services.storage.db.execute("SELECT key FROM events")]


# --- "try again later" (errors.Retryable) from Microsoft Graph ---------------------------------------------

def graph_unavailable_for(chat, monkeypatch, attempts: int) -> None:
    """Graph answers the inventory with 503 (after the SDK's own retries) for the next ``attempts`` reads."""
    from rollover.integrations.entra_client import GraphUnavailableError
    entra, left = chat.services.entra, [attempts]
    original = entra.inventory

    def unavailable(*args, **kwargs):
        if left[0] > 0:
            left[0] -= 1
            raise GraphUnavailableError("Microsoft Graph is unavailable (HTTP 503) for the service principals "
                                        "after retries. Try again later.")
        return original(*args, **kwargs)
    monkeypatch.setattr(entra, "inventory", unavailable)


def test_graph_unavailable_retries_the_command_later_and_answers_once_graph_is_back(graph_chat, monkeypatch):
    chat = graph_chat
    clock = FakeClock()
    chat.worker.clock = clock
    graph_unavailable_for(chat, monkeypatch, attempts=1)
    assert chat.say(chat.alice, "apps") == []                       # nothing said yet: Graph is asked again later
    assert chat.services.storage.events.count("pending") == 1
    clock.advance(5)
    mark = len(chat.webex.requests)
    assert chat.worker.drain() == 1
    replies = chat.posted_since(mark)
    assert len(replies) == 1 and replies[0].card is not None         # the apps, answered once
    assert chat.services.storage.events.count("done") == 1


def test_graph_still_unavailable_on_the_last_attempt_is_answered_with_its_sentence(make_chat, demo_graph,
                                                                                     monkeypatch):
    chat = make_chat(graph=demo_graph, worker_max_attempts=2)
    clock = FakeClock()
    chat.worker.clock = clock
    graph_unavailable_for(chat, monkeypatch, attempts=100)
    assert chat.say(chat.alice, "apps") == []
    clock.advance(5)
    mark = len(chat.webex.requests)
    chat.worker.drain()
    replies = chat.posted_since(mark)
    assert len(replies) == 1
    assert "Microsoft Graph is unavailable (HTTP 503)" in replies[0].body and "Try again later" in replies[0].body
    assert chat.services.storage.events.count("done") == 1
