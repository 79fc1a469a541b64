"""The local Webex server, driven by the real webexpythonsdk (loopback only)."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
from pathlib import Path

import pytest
import requests
from webexpythonsdk import ApiError, RateLimitError, WebexAPI, WebhookEvent
from webexpythonsdk.models.cards import (
    ActionSet,
    AdaptiveCard,
    Submit,
    Text,
    TextBlock,
)
from werkzeug.wrappers import Request, Response

from fakes.server import serve_wsgi
from fakes.webex import CARD_CONTENT_TYPE, DEFAULT_CARD_SCHEMA_PATH, LocalWebex

# Full schema validation needs the official schema file from ../shared (CI has it); without it the
# local Webex does structural checks only, and these tests have nothing to check.
NEEDS_SCHEMA = pytest.mark.skipif(not DEFAULT_CARD_SCHEMA_PATH.is_file(),
                                  reason="the Adaptive Card 1.3 schema file (../shared/reference) is absent")

FIXTURES = Path(__file__).resolve().parents[3] / "shared/fixtures"
CARD_FIXTURES = FIXTURES / "cards"
PEM = b"-----BEGIN CERTIFICATE-----\n"


@pytest.fixture
def webex():
    with LocalWebex() as server:
        yield server


@pytest.fixture
def bot_and_token(webex):
    return webex.add_bot()


@pytest.fixture
def bot(bot_and_token):
    return bot_and_token[0]


@pytest.fixture
def api(webex, bot_and_token):
    return WebexAPI(access_token=bot_and_token[1], base_url=webex.base_url, wait_on_rate_limit=False)


@pytest.fixture
def alice(webex):
    return webex.add_person("alice@example.com", "Alice Admin")


@pytest.fixture
def group(webex, bot, alice):
    return webex.add_room("SSO operations", "group", [alice])


def as_user(webex, person):
    return WebexAPI(access_token=webex.issue_token(person), base_url=webex.base_url,
                    wait_on_rate_limit=False)


def approve_card(extra_actions: int = 0) -> AdaptiveCard:
    actions = [Submit(title="Approve", data={"action": "approve"})]
    actions += [Submit(title=f"Other {i}", data={"action": f"other{i}"}) for i in range(extra_actions)]
    return AdaptiveCard(body=[TextBlock(text="Rotate the signing certificate?"),
                              Text(id="reason", placeholder="Why?"),
                              ActionSet(actions=actions)])


def card_attachment(content: dict) -> dict:
    return {"contentType": CARD_CONTENT_TYPE, "content": content}


def assert_webex_error(error: ApiError, status: int, fragment: str) -> None:
    assert error.status_code == status
    assert set(error.details) == {"message", "errors", "trackingId"}
    assert error.details["errors"] == [{"description": error.details["message"]}]
    assert fragment.lower() in error.message.lower()


# ---- people and auth ---------------------------------------------------------------------------

def test_people_me_get_and_lookup_by_email(api, bot, alice):
    me = api.people.me()
    assert (me.id, me.displayName, me.type, me.emails) == (bot.id, "Rollover", "bot", ["rollover@webex.bot"])
    assert api.people.get(alice.id).displayName == "Alice Admin"
    assert [p.id for p in api.people.list(email="ALICE@example.com")] == [alice.id]


def test_missing_or_unknown_token_is_401_with_error_body(webex, bot):
    response = requests.get(webex.base_url + "people/me", timeout=5)
    assert response.status_code == 401
    assert response.json()["errors"][0]["description"].startswith("The request requires a valid access token")
    with pytest.raises(ApiError) as caught:
        WebexAPI(access_token="wrong", base_url=webex.base_url).people.me()
    assert_webex_error(caught.value, 401, "access token")
    assert caught.value.tracking_id.startswith("ROUTER_")


def test_requests_are_recorded_without_the_token(webex, api, bot_and_token):
    api.people.me()
    recorded = webex.requests[-1]
    assert (recorded.method, recorded.path, recorded.status) == ("GET", "/v1/people/me", 200)
    assert recorded.headers["Authorization"] == "<redacted>"
    assert bot_and_token[1] not in repr(webex.requests)


# ---- messages and cards ------------------------------------------------------------------------

def test_card_message_built_with_sdk_models_is_stored_and_readable(webex, api, group):
    sent = api.messages.create(roomId=group.id, text="Approve rotation?", attachments=[approve_card()])
    assert sent.roomType == "group" and sent.text == "Approve rotation?"
    assert sent.attachments[0]["contentType"] == CARD_CONTENT_TYPE
    assert api.messages.get(sent.id).attachments == sent.attachments
    assert webex.cards_in(group)[0]["body"][0]["text"] == "Rotate the signing certificate?"
    assert [m["id"] for m in webex.sent_by_bot(group)] == [sent.id]


@pytest.mark.parametrize("kwargs, fragment", [
    ({"attachments": [approve_card()]}, "fallback"),
    ({"text": "x", "attachments": [card_attachment(approve_card().to_dict())] * 2}, "only one card"),
    ({"text": "x", "attachments": [{"contentType": "application/json", "content": {}}]}, "contentType"),
    ({"text": "x" * 7440}, "7439 bytes"),
    ({"markdown": "é" * 3720}, "7439 bytes"),
    ({"text": "x", "attachments": [approve_card(extra_actions=5)]}, "at most 5 actions"),
    ({"text": "x", "attachments": [card_attachment({"type": "AdaptiveCard", "version": "1.4", "body": []})]},
     "up to 1.3"),
    pytest.param({"text": "x", "attachments": [card_attachment(
        {"type": "AdaptiveCard", "version": "1.3", "body": [{"type": "TextBlock", "txt": "typo"}]})]},
        "Invalid Adaptive Card 1.3", marks=NEEDS_SCHEMA),
    ({}, "needs text"),
])
def test_invalid_messages_are_rejected_with_400(api, group, kwargs, fragment):
    with pytest.raises(ApiError) as caught:
        api.messages.create(roomId=group.id, **kwargs)
    assert_webex_error(caught.value, 400, fragment)


@NEEDS_SCHEMA
def test_schema_error_names_the_offending_property(api, group):
    card = {"type": "AdaptiveCard", "version": "1.3",
            "body": [{"type": "Container", "items": [{"type": "TextBlock", "text": "x", "colour": "red"}]}]}
    with pytest.raises(ApiError) as caught:
        api.messages.create(roomId=group.id, text="x", attachments=[card_attachment(card)])
    assert "'colour' was unexpected" in caught.value.message
    assert "/body/0/items/0" in caught.value.message


def _fixture_verdicts() -> list[tuple[str, bool]]:
    sources = (FIXTURES / "SOURCES.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (sample_[^ |]+\.json) \|.*\| ([^|]+) \|$", sources, flags=re.MULTILINE)
    return [(name, "INVALID" not in verdict) for name, verdict in rows]


@pytest.mark.skipif(not CARD_FIXTURES.is_dir(), reason="shared card fixtures not present")
def test_card_fixtures_follow_their_schema_verdict(webex, api, group):
    verdicts = _fixture_verdicts()
    assert verdicts and any(valid for _, valid in verdicts) and not all(valid for _, valid in verdicts)
    for name, valid in verdicts:
        card = json.loads((CARD_FIXTURES / name).read_text(encoding="utf-8"))
        if valid:
            api.messages.create(roomId=group.id, text=name, attachments=[card_attachment(card)])
        else:
            with pytest.raises(ApiError) as caught:
                api.messages.create(roomId=group.id, text=name, attachments=[card_attachment(card)])
            assert caught.value.status_code == 400, name


def test_without_schema_file_only_structural_checks_apply(tmp_path, alice):
    with LocalWebex(card_schema_path=tmp_path / "absent.json") as webex:
        _, token = webex.add_bot()
        room = webex.add_room("r", "group", [])
        api = WebexAPI(access_token=token, base_url=webex.base_url, wait_on_rate_limit=False)
        loose = {"type": "AdaptiveCard", "version": "1.3", "style": "emphasis", "body": []}
        api.messages.create(roomId=room.id, text="x", attachments=[card_attachment(loose)])
        with pytest.raises(ApiError) as caught:
            api.messages.create(roomId=room.id, text="x",
                                attachments=[card_attachment({"type": "Card", "version": "1.3"})])
        assert_webex_error(caught.value, 400, "AdaptiveCard")


def test_markdown_mentions_become_mentioned_people_and_html(api, group, alice):
    sent = api.messages.create(roomId=group.id, markdown="Hi <@personEmail:alice@example.com|Alice>, **done**")
    assert sent.mentionedPeople == [alice.id]
    assert sent.text == "Hi Alice, **done**"
    assert f'data-object-id="{alice.id}">Alice</spark-mention>' in sent.html


def test_direct_message_by_email_creates_direct_room(webex, api, alice):
    sent = api.messages.create(toPersonEmail="alice@example.com", text="hello")
    assert sent.roomType == "direct"
    assert [m["text"] for m in webex.messages_in(sent.roomId)] == ["hello"]
    assert [m.id for m in api.messages.list_direct(personEmail="alice@example.com")] == [sent.id]


def test_edit_rules(webex, api, group, alice):
    sent = api.messages.create(roomId=group.id, text="draft")
    edited = api.messages.update(sent.id, roomId=group.id, markdown="**final**")
    assert (edited.markdown, edited.text) == ("**final**", "**final**") and edited.updated
    card = api.messages.create(roomId=group.id, text="fallback", attachments=[approve_card()])
    with pytest.raises(ApiError) as caught:
        api.messages.update(card.id, roomId=group.id, text="changed")
    assert_webex_error(caught.value, 400, "not currently supported")
    for i in range(9):
        api.messages.update(sent.id, roomId=group.id, text=f"edit {i}")
    with pytest.raises(ApiError) as caught:
        api.messages.update(sent.id, roomId=group.id, text="one too many")
    assert_webex_error(caught.value, 400, "at most 10 times")
    with pytest.raises(ApiError) as caught:
        as_user(webex, alice).messages.update(sent.id, roomId=group.id, text="not mine")
    assert caught.value.status_code == 403


def test_delete_then_get_is_404(webex, api, group):
    sent = api.messages.create(roomId=group.id, text="to delete")
    api.messages.delete(sent.id)
    assert webex.deleted_messages[0]["id"] == sent.id
    assert webex.messages_in(group) == []
    with pytest.raises(ApiError) as caught:
        api.messages.get(sent.id)
    assert_webex_error(caught.value, 404, "not found")


def test_message_visibility_follows_membership_and_bot_mentions(webex, api, group, alice):
    outsider = webex.add_person("eve@example.com", "Eve Outsider")
    posted = api.messages.create(roomId=group.id, text="members only")
    with pytest.raises(ApiError) as caught:
        as_user(webex, outsider).messages.get(posted.id)
    assert caught.value.status_code == 404
    chatter = webex.post_as(alice, group, "not for the bot", mention_bot=False)
    assert as_user(webex, alice).messages.get(chatter["id"]).text == "not for the bot"
    with pytest.raises(ApiError):
        api.messages.get(chatter["id"])


def test_bots_list_group_messages_only_with_mentioned_people_me(api, webex, group, alice):
    mention = webex.post_as(alice, group, "status")
    webex.post_as(alice, group, "chatter", mention_bot=False)
    with pytest.raises(ApiError) as caught:
        list(api.messages.list(roomId=group.id))
    assert_webex_error(caught.value, 403, "Failed to get activity")
    assert [m.id for m in api.messages.list(roomId=group.id, mentionedPeople="me")] == [mention["id"]]


def test_post_as_builds_mentions_like_webex(webex, bot, group, alice):
    message = webex.post_as(alice, group, "status please")
    assert message["text"] == "Rollover status please"
    assert message["mentionedPeople"] == [bot.id]
    assert message["html"] == (f'<p><spark-mention data-object-type="person" data-object-id="{bot.id}">'
                               "Rollover</spark-mention> status please</p>")
    direct = webex.add_room("Alice", "direct", [alice])
    plain = webex.post_as(alice, direct, "status")
    assert plain["text"] == "status" and "mentionedPeople" not in plain and "html" not in plain


def test_messages_list_paginates_newest_first(api, webex, alice):
    direct = webex.add_room("Alice", "direct", [alice])
    sent = [webex.post_as(alice, direct, f"m{i}")["id"] for i in range(5)]
    assert [m.id for m in api.messages.list(roomId=direct.id, max=2)] == sent[::-1]


# ---- attachment actions ------------------------------------------------------------------------

def test_click_creates_attachment_action_with_merged_inputs(webex, api, group, alice):
    card = api.messages.create(roomId=group.id, text="fallback", attachments=[approve_card(extra_actions=1)])
    with pytest.raises(ValueError, match="exactly one Action.Submit"):
        webex.click(alice, card.id, {"reason": "expiring"})
    action = webex.click(alice, card.id, {"reason": "expiring"}, button="Approve")
    fetched = api.attachment_actions.get(action["id"])
    assert fetched.type == "submit" and fetched.messageId == card.id
    assert fetched.inputs == {"action": "approve", "reason": "expiring"}
    assert (fetched.personId, fetched.roomId) == (alice.id, group.id)
    with pytest.raises(ValueError, match="no input"):
        webex.click(alice, card.id, {"typo": "x"}, button="Approve")


def test_required_input_left_empty_cannot_be_submitted(webex, api, group, alice):
    card = AdaptiveCard(body=[Text(id="ticket", isRequired=True, errorMessage="Needed", label="Ticket")],
                        actions=[Submit(title="Send")])
    sent = api.messages.create(roomId=group.id, text="fallback", attachments=[card])
    with pytest.raises(ValueError, match="required input"):
        webex.click(alice, sent.id)
    assert webex.click(alice, sent.id, {"ticket": "CHG-1"})["inputs"] == {"ticket": "CHG-1"}


def test_attachment_action_of_another_room_is_404(webex, api, group, alice):
    card = api.messages.create(roomId=group.id, text="fallback", attachments=[approve_card()])
    action = webex.click(alice, card.id)
    outsider = webex.add_person("eve@example.com", "Eve Outsider")
    with pytest.raises(ApiError) as caught:
        as_user(webex, outsider).attachment_actions.get(action["id"])
    assert caught.value.status_code == 404


# ---- webhooks ----------------------------------------------------------------------------------

def test_webhook_crud_and_reactivation(webex, api, alice):
    hook = api.webhooks.create(name="rollover messages", targetUrl="https://bot.example.com/webhook",
                               resource="messages", event="created", filter="mentionedPeople=me",
                               secret="s3cret")
    assert (hook.status, hook.filter, hook.secret, hook.ownedBy) == ("active", "mentionedPeople=me", "s3cret",
                                                                      "creator")
    assert api.webhooks.get(hook.id).createdBy == api.people.me().id
    webex.disable_webhook(hook.id)
    assert api.webhooks.get(hook.id).status == "inactive"
    updated = api.webhooks.update(hook.id, name="renamed", targetUrl="https://bot.example.com/v2",
                                  status="active")
    assert (updated.name, updated.targetUrl, updated.status) == ("renamed", "https://bot.example.com/v2",
                                                                 "active")
    with pytest.raises(ApiError) as caught:
        as_user(webex, alice).webhooks.get(hook.id)
    assert caught.value.status_code == 404
    api.webhooks.delete(hook.id)
    assert list(api.webhooks.list()) == []


def test_webhook_create_validates_against_the_spec(api):
    with pytest.raises(ApiError) as caught:
        api.webhooks.create(name="x", targetUrl="https://bot.example.com", resource="chats", event="created")
    assert_webex_error(caught.value, 400, "resource")


def test_webhook_list_pagination_through_sdk_generator(webex, api):
    names = [f"hook-{i}" for i in range(7)]
    for name in names:
        api.webhooks.create(name=name, targetUrl="https://bot.example.com/w", resource="messages",
                            event="created")
    assert [h.name for h in api.webhooks.list(max=3)] == names
    pages = webex.requests_matching("GET", r"^/v1/webhooks$")
    assert [p.query.get("cursor") for p in pages] == [None, "3", "6"]
    first_page = requests.get(webex.base_url + "webhooks?max=3", timeout=5,
                              headers={"Authorization": "Bearer " + api.access_token})
    assert first_page.links["next"]["url"].startswith(webex.base_url + "webhooks?")


# ---- files -------------------------------------------------------------------------------------

def download(webex, token, url, method="GET"):
    return requests.request(method, url, headers={"Authorization": "Bearer " + token}, timeout=5)


def test_file_download_waits_while_scanning(webex, bot_and_token, group, alice):
    _, token = bot_and_token
    report = webex.add_file("metadata.xml", b"<EntityDescriptor/>", "application/xml", scan_state="scanning",
                            scanning_polls=1)
    message = webex.post_as(alice, group, "check this", files=[report])
    locked = download(webex, token, message["files"][0])
    assert (locked.status_code, locked.headers["Retry-After"]) == (423, "1")
    assert locked.json()["errors"][0]["description"]
    ready = download(webex, token, message["files"][0])
    assert ready.status_code == 200 and ready.content == b"<EntityDescriptor/>"
    assert ready.headers["Content-Disposition"] == 'attachment; filename="metadata.xml"'
    assert ready.headers["Content-Type"] == "application/xml"
    assert ready.headers["Content-Length"] == str(len(b"<EntityDescriptor/>"))
    head = download(webex, token, message["files"][0], method="HEAD")
    assert head.status_code == 200 and head.content == b"" and head.headers["Content-Length"] == "19"


def test_infected_and_unscannable_files(webex, bot_and_token):
    _, token = bot_and_token
    infected = webex.add_file("x.exe", b"MZ", "application/octet-stream", scan_state="infected")
    unscannable = webex.add_file("z.zip", b"PK", "application/zip", scan_state="unscannable")
    assert download(webex, token, webex.content_url(infected)).status_code == 410
    assert download(webex, token, webex.content_url(unscannable)).status_code == 428
    allowed = download(webex, token, webex.content_url(unscannable) + "?allow=unscannable")
    assert allowed.status_code == 200 and allowed.content == b"PK"


def test_files_of_a_room_are_not_served_to_outsiders(webex, group, alice):
    shared = webex.add_file("a.txt", b"a", "text/plain")
    message = webex.post_as(alice, group, "file", files=[shared])
    outsider = webex.add_person("eve@example.com", "Eve Outsider")
    assert download(webex, webex.issue_token(outsider), message["files"][0]).status_code == 404


def test_local_file_posted_by_sdk_as_multipart_is_recorded(webex, api, group, tmp_path, bot_and_token):
    path = tmp_path / "sp-metadata.xml"
    path.write_bytes(b"<md:EntityDescriptor/>")
    sent = api.messages.create(roomId=group.id, markdown="Current metadata", files=[str(path)])
    posted = webex.files_posted
    assert [(f["messageId"], f["name"], f["contentType"], f["data"]) for f in posted] == [
        (sent.id, "sp-metadata.xml", "application/xml", b"<md:EntityDescriptor/>")]
    assert sent.files == [posted[0]["url"]]
    assert webex.requests[-1].form["markdown"] == "Current metadata"
    assert download(webex, bot_and_token[1], sent.files[0]).content == b"<md:EntityDescriptor/>"


def test_file_posted_by_loopback_url_is_rehosted(webex, api, group, site):
    url, _ = site
    sent = api.messages.create(roomId=group.id, text="cert", files=[url + "/cert.pem"])
    assert sent.files[0].startswith(webex.base_url + "contents/")
    assert [(f["name"], f["data"]) for f in webex.files_posted] == [("cert.pem", PEM)]


def test_an_uploaded_file_is_closed_with_its_request_not_left_to_the_collector(webex, api, group, tmp_path):
    """Else its temporary file warns (ResourceWarning) in whatever test the collector happens to run in."""
    local = tmp_path / "cert.pem"
    local.write_bytes(PEM)
    seen = []

    class Recorded(webex.request_class):
        def __init__(self, environ, *args, **kwargs):
            super().__init__(environ, *args, **kwargs)
            seen.append(self)
    webex.request_class = Recorded
    api.messages.create(roomId=group.id, text="cert", files=[str(local)])
    uploads = [upload for request in seen for upload in request.files.values()]
    assert uploads and all(upload.stream.closed for upload in uploads)


def test_file_url_outside_loopback_is_refused(api, group):
    with pytest.raises(ApiError) as caught:
        api.messages.create(roomId=group.id, text="cert", files=["https://example.com/cert.pem"])
    assert_webex_error(caught.value, 400, "loopback")


# ---- fault injection ---------------------------------------------------------------------------

def test_429_surfaces_as_rate_limit_error_with_retry_after(webex, api, group):
    webex.inject_fault("POST", r"/messages$", 429, retry_after=7)
    with pytest.raises(RateLimitError) as caught:
        api.messages.create(roomId=group.id, text="hello")
    assert caught.value.retry_after == 7
    assert api.messages.create(roomId=group.id, text="hello").text == "hello"


def test_5xx_surfaces_as_api_error_with_webex_body(webex, api):
    webex.inject_fault("*", r"/people/me$", 503, count=2, retry_after=3)
    for _ in range(2):
        with pytest.raises(ApiError) as caught:
            api.people.me()
        assert_webex_error(caught.value, 503, "injected")
        assert caught.value.response.headers["Retry-After"] == "3"
    assert api.people.me().displayName == "Rollover"


# ---- webhook payloads and delivery -------------------------------------------------------------

def test_webhook_event_is_signed_with_the_registered_secret(webex, api, bot, group, alice):
    hook = api.webhooks.create(name="m", targetUrl="https://bot.example.com/w", resource="messages",
                               event="created", filter="mentionedPeople=me", secret="s3cret")
    message = webex.post_as(alice, group, "status")
    raw, headers = webex.webhook_event("messages", "created", message["id"])
    expected = hmac.new(b"s3cret", raw, hashlib.sha1).hexdigest()
    assert hmac.compare_digest(headers["X-Spark-Signature"], expected)
    event = WebhookEvent(json.loads(raw))
    assert (event.id, event.resource, event.event, event.actorId) == (hook.id, "messages", "created", alice.id)
    body = json.loads(raw)
    assert body["ownedBy"] == "creator" and body["createdBy"] == bot.id and body["filter"] == "mentionedPeople=me"
    assert body["data"] == {key: message[key] for key in
                            ("id", "roomId", "roomType", "personId", "personEmail", "mentionedPeople", "created")}


def test_webhook_event_without_registration_uses_explicit_secret(webex, api, group, alice):
    card = api.messages.create(roomId=group.id, text="fallback", attachments=[approve_card()])
    action = webex.click(alice, card.id)
    raw, headers = webex.webhook_event("attachmentActions", "created", action["id"], secret="given")
    assert headers["X-Spark-Signature"] == hmac.new(b"given", raw, hashlib.sha1).hexdigest()
    assert json.loads(raw)["data"] == {"id": action["id"], "type": "submit", "messageId": card.id,
                                       "personId": alice.id, "roomId": group.id, "created": action["created"]}
    _, unsigned = webex.webhook_event("attachmentActions", "created", action["id"])
    assert "X-Spark-Signature" not in unsigned


@pytest.fixture
def site():
    """A loopback web site: records the POSTs it receives (webhooks) and serves PEM on GET."""
    received = []

    @Request.application
    def app(request):
        if request.method == "GET":
            return Response(PEM, content_type="application/x-pem-file")
        received.append((request.get_data(), dict(request.headers)))
        return Response("ok")

    serving = serve_wsgi(app)
    yield f"http://127.0.0.1:{serving.server.server_port}", received
    serving.stop()


def test_events_are_delivered_signed_when_enabled(webex, api, bot, group, alice, site):
    url, received = site
    webex.deliver_events = True
    api.webhooks.create(name="m", targetUrl=url + "/webhook", resource="messages", event="created", secret="k")
    api.webhooks.create(name="a", targetUrl=url + "/webhook", resource="attachmentActions", event="created",
                        secret="k")
    webex.post_as(alice, group, "no mention", mention_bot=False)
    message = webex.post_as(alice, group, "status")
    card = api.messages.create(roomId=group.id, text="fallback", attachments=[approve_card()])
    webex.click(alice, card.id)
    deliveries = webex.wait_for_deliveries()
    assert [d["status"] for d in deliveries] == [200, 200]
    bodies = [json.loads(raw) for raw, _ in received]
    # Deliveries run concurrently: they may complete in either order.
    action = next(d["body"]["data"]["id"] for d in deliveries if d["body"]["resource"] == "attachmentActions")
    assert sorted((b["resource"], b["data"]["id"]) for b in bodies) == sorted(
        [("messages", message["id"]), ("attachmentActions", action)])
    for raw, headers in received:
        assert headers["X-Spark-Signature"] == hmac.new(b"k", raw, hashlib.sha1).hexdigest()


def test_a_click_through_the_api_fires_the_attachment_actions_webhook(webex, api, group, alice, site):
    """A Webex client posts to /attachment/actions; Webex then notifies the app that posted the card."""
    url, received = site
    webex.deliver_events = True
    api.webhooks.create(name="a", targetUrl=url + "/webhook", resource="attachmentActions", event="created",
                        secret="k")
    card = api.messages.create(roomId=group.id, text="fallback", attachments=[approve_card()])
    response = requests.post(webex.base_url + "attachment/actions", timeout=5, json={
        "type": "submit", "messageId": card.id, "inputs": {"action": "approve"}},
        headers={"Authorization": "Bearer " + webex.issue_token(alice)})
    assert response.status_code == 202
    assert [d["status"] for d in webex.wait_for_deliveries()] == [200]
    body = json.loads(received[0][0])
    assert (body["resource"], body["data"]["id"], body["actorId"]) == (
        "attachmentActions", response.json()["id"], alice.id)


def test_bot_hears_its_own_direct_messages(webex, api, bot, alice, site):
    url, received = site
    api.webhooks.create(name="m", targetUrl=url + "/webhook", resource="messages", event="created")
    webex.deliver_events = True
    sent = api.messages.create(toPersonEmail=alice.email, text="hello")
    webex.wait_for_deliveries()
    assert [json.loads(raw)["data"]["personId"] for raw, _ in received] == [bot.id]
    assert json.loads(received[0][0])["data"]["id"] == sent.id


def test_concurrent_requests_are_all_served(webex, api, group):
    errors = []

    def post(i):
        try:
            api.messages.create(roomId=group.id, text=f"m{i}")
        except ApiError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(m["text"] for m in webex.messages_in(group)) == sorted(f"m{i}" for i in range(20))


def test_inactive_webhooks_receive_nothing(webex, api, group, alice, site):
    url, received = site
    hook = api.webhooks.create(name="m", targetUrl=url + "/webhook", resource="messages", event="created")
    webex.disable_webhook(hook.id)
    webex.post_as(alice, group, "status", deliver=True)
    assert webex.wait_for_deliveries() == [] and received == []
