"""Guided rotations as conversations: the real bot, the local Webex API and the local Graph, end to end."""

import base64
import json
import sqlite3
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

import bot
from cards.common import card, paragraph, submit
from cards.text import markdown_texts, summarize_card
from rollover.describe import short_thumbprint
from rollover.errors import UserError
from rollover.rotation import engine as rotation
from rollover.rotation.approvals import Approvers, approvers_for
from rollover.rotation.plans import NewRotation
from tests.support.certfactory import make_cert, make_sp_metadata
from tests.support.rotation_helpers import (
    APPROVER_GROUP,
    MEETINGS_APP,
    MEETINGS_APPLICATION_ID,
    WEBEX_APP,
    WEBEX_SP_ID,
    activations,
    active_thumbprint,
    add_member,
    card_text,
    click,
    control_hub_metadata,
    creations,
    drop,
    last_card_text,
    only_rotation,
    rotate_to_sign_in_test,
    rotate_to_window,
    rotation_overrides,
    schedule_window,
    site_admin_metadata,
    use_clock,
)


def first_signing_thumbprint(metadata: bytes) -> str:
    from rollover.certificates.health import thumbprint
    from rollover.certificates.parsing import parse_document
    return thumbprint(parse_document(metadata).certificates[0].der)


@pytest.fixture
def space(make_chat, demo_graph):
    """A space of alice (asks), bob and carol (approve) over the demo tenant."""
    def make(**overrides):
        chat = make_chat(graph=demo_graph, **rotation_overrides(demo_graph, **overrides))
        chat.carol = add_member(chat, "carol@example.com", "Carol Checker")
        return chat
    return make


@pytest.fixture
def rotation_chat(space):
    return space()


# --- entra-signing -----------------------------------------------------------------------------------

def test_an_entra_signing_rotation_from_plan_to_done(rotation_chat):
    chat, graph = rotation_chat, rotation_chat.graph
    before = active_thumbprint(graph)

    plan = chat.say(chat.alice, f"rotate {WEBEX_APP}")
    assert len(plan) == 1
    text = card_text(plan[0])
    assert "Waiting for approval to create the new certificate" in text
    assert "1 Create · 2 Window · 3 Activate · 4 Verify · 5 Done" in text            # the step indicator
    assert f"Current certificate: {short_thumbprint(before)}" in text
    assert "[Approve]  [Reject]  [Cancel rotation]  [Details]  [Graph request]" in text
    assert "addTokenSigningCertificate" not in text and "What will change" not in text  # behind the buttons
    opened = summarize_card(plan[0].card, opened=True)
    assert "What will change" in opened and f"Current certificate: {before}" in opened
    assert "Webex trust: Control Hub (organisation" in opened and "Maintenance window:" in opened
    assert "addTokenSigningCertificate" in opened
    assert graph.write_requests() == []                          # planning only reads

    created = click(chat, chat.bob, "Approve")
    assert creations(graph) == 1
    certificate = [reply for reply in created if reply.file_name]
    assert len(certificate) == 1 and certificate[0].file_name.endswith(".cer")
    assert "Control Hub" in certificate[0].body
    assert "Waiting for a maintenance window" in last_card_text(created)
    assert chat.webex.deleted_messages                            # the plan card made way for its successor

    approval = click(chat, chat.alice, "Now: I'm ready")
    assert "Waiting for approval to activate" in last_card_text(approval)

    activated = click(chat, chat.carol, "Approve")
    new = active_thumbprint(graph)
    assert new != before and len(activations(graph)) == 1
    metadata = [reply for reply in activated if reply.file_name and reply.file_name.endswith(".xml")]
    assert len(metadata) == 1
    assert first_signing_thumbprint(chat.webex.files_posted[-1]["data"]) == new   # what Webex will import
    assert "Waiting for a test sign-in" in last_card_text(activated)

    done = click(chat, chat.alice, "Sign-in works")
    text = last_card_text(done)
    assert "Done" in text and short_thumbprint(new) in text and "[Clean up old certificate]" in text
    record = only_rotation(chat)
    assert record.state == "done" and record.finished_at is not None
    assert creations(graph) == 1 and len(activations(graph)) == 1
    # The space shows one card for the rotation: every earlier one was deleted.
    live = [m for m in chat.webex.sent_by_bot(chat.room) if m.get("attachments")]
    assert len(live) == 1


def test_a_window_in_the_future_is_kept_and_activation_starts_when_it_comes(space):
    chat = space()
    clock = use_clock(chat)
    rotate_to_window(chat)
    scheduled = schedule_window(chat, clock, hours=3)
    assert "Activation scheduled for the maintenance window" in last_card_text(scheduled)
    assert activations(chat.graph) == []
    rotation.sweep(chat.services)
    assert activations(chat.graph) == []                          # not yet
    clock.advance(hours=3, minutes=1)
    mark = len(chat.webex.requests)
    rotation.sweep(chat.services)
    assert len(activations(chat.graph)) == 1
    assert "Waiting for a test sign-in" in last_card_text(chat.posted_since(mark))


def test_an_activation_approved_after_its_window_passed_asks_for_a_new_window(space):
    chat = space()
    clock = use_clock(chat)
    rotate_to_window(chat)
    click(chat, chat.alice, "Now: I'm ready")                     # alice is ready now ...
    clock.advance(hours=23)                                       # ... carol approves the next day
    late = click(chat, chat.carol, "Approve")
    assert activations(chat.graph) == []
    text = last_card_text(late)
    assert "Waiting for a maintenance window" in text and "had passed" in text and "nothing was activated" in text
    assert only_rotation(chat).state == "awaiting-window"
    click(chat, chat.alice, "Now: I'm ready")
    clock.advance(minutes=59)                                     # within ROLLOVER_WINDOW_GRACE_MINUTES (60)
    click(chat, chat.carol, "Approve")
    assert len(activations(chat.graph)) == 1


def test_a_scheduled_activation_reached_long_after_its_window_does_not_run(space):
    chat = space()
    clock = use_clock(chat)
    rotate_to_window(chat)
    schedule_window(chat, clock, hours=1)
    clock.advance(hours=5)                                        # the worker was down through the window
    late = click(chat, chat.alice, "Cancel rotation")             # a click reaches the deadline before a sweep
    assert late[-1].to_person_id == chat.alice.id and "had passed" in late[-1].body
    assert activations(chat.graph) == [] and only_rotation(chat).state == "awaiting-window"


def test_a_space_with_a_reminder_time_zone_chooses_and_reads_its_window_in_that_zone(space):
    chat = space()
    clock = use_clock(chat)
    chat.say(chat.alice, "remind time 09:00 Europe/Stockholm")
    rotate_to_window(chat)
    text = summarize_card(chat.last_card_message()["attachments"][0]["content"])
    assert "<Window start date (Europe/Stockholm)>" in text and "<Window start time (Europe/Stockholm, 24 h)>" in text
    assert "Choose when to activate it (Europe/Stockholm)" in text
    stockholm = ZoneInfo("Europe/Stockholm")
    day = (clock() + timedelta(days=2)).astimezone(stockholm).date()
    chosen = click(chat, chat.alice, "Schedule this window", {"window_date": day.isoformat(), "window_time": "22:00"})
    start = datetime.combine(day, time(22, 0), stockholm).astimezone(timezone.utc)
    assert only_rotation(chat).data["window_start"] == start.isoformat()
    assert f"{day} 22:00 Europe/Stockholm ({start:%Y-%m-%d %H:%M} UTC)" in last_card_text(chosen)


def test_a_window_in_the_past_or_after_the_expiry_is_refused_privately(rotation_chat):
    chat = rotation_chat
    rotate_to_window(chat)
    past = click(chat, chat.alice, "Schedule this window", {"window_date": "2020-01-01", "window_time": "10:00"})
    assert past[0].to_person_id == chat.alice.id and "in the past" in past[0].body
    late = click(chat, chat.alice, "Schedule this window", {"window_date": "2099-01-01", "window_time": "10:00"})
    assert late[0].to_person_id == chat.alice.id and "before that window" in late[0].body
    assert only_rotation(chat).state == "awaiting-window"


def test_roll_back_reactivates_the_previous_certificate_after_an_approval(rotation_chat):
    chat, graph = rotation_chat, rotation_chat.graph
    before = active_thumbprint(graph)
    rotate_to_sign_in_test(chat)
    request = click(chat, chat.alice, "Roll back")
    assert "Waiting for approval to roll back" in last_card_text(request)
    assert "[Approve]  [Reject]" in last_card_text(request)
    rolled_back = click(chat, chat.carol, "Approve")
    assert active_thumbprint(graph) == before and len(activations(graph)) == 2
    assert any(reply.file_name and reply.file_name.endswith(".xml") for reply in rolled_back)
    text = last_card_text(rolled_back)
    assert "Rolled back" in text and f"Entra signs with {short_thumbprint(before)} again" in text
    assert only_rotation(chat).state == "rolled-back"


def test_a_rejected_roll_back_keeps_the_new_certificate(rotation_chat):
    chat = rotation_chat
    rotate_to_sign_in_test(chat)
    new = active_thumbprint(chat.graph)
    click(chat, chat.alice, "Roll back")
    kept = click(chat, chat.bob, "Reject")
    assert "Waiting for a test sign-in" in last_card_text(kept)
    assert active_thumbprint(chat.graph) == new


def test_a_roll_back_graph_refuses_ends_failed_with_what_to_do(rotation_chat):
    chat, graph = rotation_chat, rotation_chat.graph
    previous = active_thumbprint(graph)
    rotate_to_sign_in_test(chat)
    new = active_thumbprint(graph)
    click(chat, chat.alice, "Roll back")
    gone = base64.b64encode(bytes.fromhex(previous)).decode()      # someone deleted it in Entra meanwhile
    sp = graph.service_principals[WEBEX_SP_ID]
    sp["keyCredentials"] = [kc for kc in sp["keyCredentials"] if kc["customKeyIdentifier"] != gone]
    refused = click(chat, chat.carol, "Approve")
    text = last_card_text(refused)
    assert "Roll back refused" in text and f"Entra still signs with {short_thumbprint(new)}" in text
    assert f"Enterprise applications › {WEBEX_APP} › Single sign-on › SAML Certificates make another valid" in text
    assert f"“rotate {WEBEX_APP}” starts again." in text
    assert only_rotation(chat).state == "failed" and active_thumbprint(graph) == new


def test_a_failed_activation_names_what_is_left_and_how_to_go_on(rotation_chat):
    chat, graph = rotation_chat, rotation_chat.graph
    previous = active_thumbprint(graph)
    rotate_to_window(chat)
    new = only_rotation(chat).data["new_thumbprint"]
    click(chat, chat.alice, "Now: I'm ready")
    graph.inject_fault("PATCH", r"servicePrincipals", status=403, count=10)   # the bot lost its write permission
    text = last_card_text(click(chat, chat.carol, "Approve"))
    assert only_rotation(chat).state == "failed" and "Failed:" in text
    assert f"The new certificate {short_thumbprint(new)} stays in Entra, inactive" in text
    assert f"“rotate {WEBEX_APP}” starts again." in text
    assert (f"in the Entra admin center › Enterprise applications › {WEBEX_APP} › Single sign-on › SAML "
            f"Certificates make the previous certificate {short_thumbprint(previous)} active, then import the app's "
            "federation metadata into Control Hub") in text


def test_a_roll_back_is_not_approved_once_the_previous_certificate_expired(space):
    chat = space(approval_hours=24 * 30)
    clock = use_clock(chat)
    rotate_to_sign_in_test(chat)
    click(chat, chat.alice, "Roll back")
    clock.advance(days=21)                                        # the previous certificate expired (demo: 20 days)
    refused = click(chat, chat.carol, "Approve")
    assert len(refused) == 1 and refused[0].to_person_id == chat.carol.id and "expired" in refused[0].body
    assert only_rotation(chat).state == "awaiting-rollback-approval" and len(activations(chat.graph)) == 1


def test_whoever_asks_for_the_roll_back_cannot_approve_it(rotation_chat):
    chat = rotation_chat
    rotate_to_sign_in_test(chat)
    click(chat, chat.bob, "Roll back")                            # bob is an approver, but asked for it himself
    refused = click(chat, chat.bob, "Approve")
    assert len(refused) == 1 and refused[0].to_person_id == chat.bob.id and "someone else" in refused[0].body
    assert only_rotation(chat).state == "awaiting-rollback-approval" and len(activations(chat.graph)) == 1
    click(chat, chat.carol, "Approve")
    assert only_rotation(chat).state == "rolled-back"


def test_a_roll_back_not_approved_returns_to_the_failed_verification_it_came_from(space, demo_graph):
    chat = space()
    clock = use_clock(chat)
    rotate_to_window(chat)
    click(chat, chat.alice, "Now: I'm ready")
    demo_graph.federation_metadata = lambda app_id: None          # verification fails
    click(chat, chat.carol, "Approve")
    click(chat, chat.alice, "Roll back")
    rejected = click(chat, chat.bob, "Reject")
    text = last_card_text(rejected)
    assert "Verification failed" in text and "[Verify again]  [Roll back]" in text and "Sign-in works" not in text
    assert only_rotation(chat).state == "verification-failed"
    click(chat, chat.alice, "Roll back")
    clock.advance(hours=24, minutes=1)
    rotation.sweep(chat.services)                                 # nobody decided: back where it came from
    assert only_rotation(chat).state == "verification-failed"


def test_clean_up_removes_the_old_certificate_only_after_it_expired(rotation_chat):
    chat, graph = rotation_chat, rotation_chat.graph
    clock = use_clock(chat)
    old = active_thumbprint(graph)
    rotate_to_sign_in_test(chat)
    click(chat, chat.alice, "Sign-in works")
    too_early = click(chat, chat.alice, "Clean up old certificate")
    assert "clean-up is possible only after it expired" in too_early[0].body
    clock.advance(days=21)                                       # the old certificate expired (demo: 20 days)
    plan = click(chat, chat.alice, "Clean up old certificate")
    text = last_card_text(plan)
    assert "Waiting for approval to remove the old certificate" in text and short_thumbprint(old) in text
    done = click(chat, chat.bob, "Approve")
    assert "Done: the expired certificate" in last_card_text(done)
    assert old not in graph.verify_thumbprints(WEBEX_SP_ID)
    assert active_thumbprint(graph) != old and len(graph.verify_thumbprints(WEBEX_SP_ID)) == 1


def test_verification_failure_offers_verify_again_and_roll_back(space, demo_graph):
    chat = space()
    rotate_to_window(chat)
    click(chat, chat.alice, "Now: I'm ready")
    original = demo_graph.federation_metadata
    demo_graph.federation_metadata = lambda app_id: None          # the metadata URL answers 404 for a while
    failed = click(chat, chat.carol, "Approve")
    text = last_card_text(failed)
    assert "Verification failed" in text and "[Verify again]  [Roll back]" in text
    demo_graph.federation_metadata = original
    verified = click(chat, chat.alice, "Verify again")
    assert "Waiting for a test sign-in" in last_card_text(verified)


# --- the sweeper ------------------------------------------------------------------------------------------

def remove_bot(chat, room) -> None:
    """Someone removed the bot from ``room``: Webex answers 404 to its posts there."""
    room.member_ids.remove(chat.bot_person.id)


def test_a_space_the_bot_was_removed_from_does_not_stop_the_sweep_of_other_rotations(space):
    chat = space()
    clock = use_clock(chat)
    other = chat.webex.add_room("Meetings team", "group", [chat.alice, chat.bob, chat.carol])
    chat.say(chat.alice, f"rotate {WEBEX_APP}")                     # rotation #1, in the first space
    chat.say(chat.alice, f"rotate {MEETINGS_APP}", room=other)      # rotation #2, in the second
    remove_bot(chat, chat.room)
    clock.advance(hours=24, minutes=1)
    rotation.sweep(chat.services)
    storage = chat.services.storage
    assert [r.state for r in storage.rotations.all(open_only=False)] == ["expired", "expired"]
    assert "Expired" in summarize_card(chat.last_card_message(other)["attachments"][0]["content"])
    assert [e.action for e in storage.audit.entries(rotation_id=1)][-1] == "space-unreachable"
    assert storage.rotations.to_sweep() == []                       # nothing left over for the next sweep


def test_a_scheduled_activation_runs_though_its_space_is_unreachable(space):
    chat = space()
    clock = use_clock(chat)
    rotate_to_window(chat)
    schedule_window(chat, clock, hours=1)
    remove_bot(chat, chat.room)
    clock.advance(hours=1, minutes=1)
    rotation.sweep(chat.services)
    assert len(activations(chat.graph)) == 1 and only_rotation(chat).state == "awaiting-sign-in-test"
    actions = [e.action for e in chat.services.storage.audit.entries(rotation_id=1)]
    assert actions.count("space-unreachable") == 3                  # activating, verifying, sign-in test


def test_a_rotation_of_a_space_no_longer_allowed_waits_and_none_starts_there(space):
    chat = space()
    clock = use_clock(chat)
    chat.say(chat.alice, f"rotate {WEBEX_APP}")
    chat.services.config = chat.services.config.replace(allowed_rooms=(chat.direct.id,))
    clock.advance(hours=24, minutes=1)
    mark = len(chat.webex.requests)
    rotation.sweep(chat.services)
    rotation.sweep(chat.services)
    assert chat.posted_since(mark) == [] and only_rotation(chat).state == "awaiting-create-approval"
    actions = [e.action for e in chat.services.storage.audit.entries(rotation_id=1)]
    assert actions.count("room-not-allowed") == 1                   # audited once, not at every sweep
    new = NewRotation("entra-signing", "sp-2", "Other app", "rollover-test", "awaiting-create-approval", {})
    with pytest.raises(UserError, match="ROLLOVER_ALLOWED_ROOMS"):
        rotation.start(chat.services, new, room_id=chat.room.id, requester="alice@example.com", event_key="e")
    assert len(chat.services.storage.rotations.all()) == 1


# --- webex-sp ------------------------------------------------------------------------------------------

def test_a_webex_sp_rotation_adds_the_certificate_where_entra_requires_it(rotation_chat):
    chat, graph = rotation_chat, rotation_chat.graph
    drop(chat, "Webex_SP_saml2_metadata.xml", site_admin_metadata(days_left=365))
    before = {kc["keyId"] for kc in graph.applications[MEETINGS_APPLICATION_ID]["keyCredentials"]}
    plan = chat.say(chat.alice, f"rotate webex-sp {MEETINGS_APP}")
    text = card_text(plan[0])
    assert "1 Add to Entra · 2 Activate in Webex · 3 Done" in text
    assert "Entra needs it: yes" in text and "[Approve]" in text
    opened = summarize_card(plan[0].card, opened=True)
    assert "Webex trust: Site Administration (site contoso)" in opened and "PATCH" in opened

    uploaded = click(chat, chat.bob, "Approve")
    after = graph.applications[MEETINGS_APPLICATION_ID]["keyCredentials"]
    assert before < {kc["keyId"] for kc in after} and len(after) == len(before) + 1   # every credential kept
    text = last_card_text(uploaded)
    assert "Waiting for the new certificate to be activated in Webex" in text and "Site SP Certificate Manager" in text

    done = click(chat, chat.alice, "Activated in Webex")
    assert "Done: Webex uses its new certificate and Entra knows it" in last_card_text(done)
    assert len(graph.write_requests()) == 1


class Killed(BaseException):
    """The process dies: nothing after this point runs (not even the step's own error handling)."""


def test_an_upload_resumed_after_a_crash_adds_the_webex_certificate_once(space, demo_graph, monkeypatch):
    chat = space(graph_consistency_seconds=3)
    drop(chat, "Webex_SP_saml2_metadata.xml", site_admin_metadata(days_left=365))
    chat.say(chat.alice, f"rotate webex-sp {MEETINGS_APP}")
    keys_before = len(demo_graph.applications[MEETINGS_APPLICATION_ID]["keyCredentials"])
    demo_graph.credential_visibility_delay = 1.0                  # Graph shows a new key a while after the PATCH
    entra, execute = chat.services.entra, chat.services.entra.execute

    def execute_then_die(request):
        execute(request)
        raise Killed()                                            # killed before Graph's answer arrived
    monkeypatch.setattr(entra, "execute", execute_then_die)
    with pytest.raises(Killed):
        click(chat, chat.bob, "Approve")
    monkeypatch.setattr(entra, "execute", execute)
    rotation.sweep(chat.services)                                 # the restarted worker resumes the step
    assert only_rotation(chat).state == "awaiting-webex-activation"
    assert len(demo_graph.requests_matching("PATCH", r"/applications/")) == 1
    assert len(demo_graph.applications[MEETINGS_APPLICATION_ID]["keyCredentials"]) == keys_before + 1


def test_a_certificate_subject_is_shown_literally_in_cards_and_posts(space):
    chat = space(report_only=True)
    now = datetime.now(timezone.utc)
    cert, _ = make_cert("[click](https://evil.example) <@all>", now - timedelta(days=5), now + timedelta(days=365),
                        key_index=2)
    drop(chat, "Webex_SP_saml2_metadata.xml", make_sp_metadata("https://contoso.webex.com", [cert], [], [
        "https://contoso.webex.com/dispatcher/SAML2AuthService?siteurl=contoso"]))
    plan = chat.say(chat.alice, f"rotate webex-sp {MEETINGS_APP}")
    text = "\n".join(markdown_texts(plan[0].card))
    assert r"CN=\[click\](https://evil.example)" in text and "[click](" not in text and "<@all" not in text
    assert "[click](" in plan[0].text                                # the plain-text fallback stays as it is
    dry_run = [reply for reply in click(chat, chat.bob, "Approve") if "were NOT sent" in reply.body]
    assert len(dry_run) == 1 and "[click](" not in dry_run[0].body and "<@all>" not in dry_run[0].body


def test_a_webex_sp_rotation_without_an_entra_change_only_guides_webex(rotation_chat):
    chat, graph = rotation_chat, rotation_chat.graph
    drop(chat, "idb-meta-SP.xml", control_hub_metadata(days_left=365))
    plan = chat.say(chat.alice, f"rotate webex-sp {WEBEX_APP}")
    text = card_text(plan[0])
    assert "Entra needs it: no" in text and "does not need Webex's new certificate" in text
    assert "[Activated in Webex]" in text
    done = click(chat, chat.alice, "Activated in Webex")
    assert "Done: Webex uses its new certificate." in last_card_text(done)
    assert graph.write_requests() == []


def test_a_webex_sp_rotation_asks_for_the_metadata_first(rotation_chat):
    reply = rotation_chat.say(rotation_chat.alice, f"rotate webex-sp {MEETINGS_APP}")[0]
    assert "Drop the new Webex SP metadata into this space first" in reply.body


# --- report-only ---------------------------------------------------------------------------------------

def test_report_only_runs_the_whole_rotation_and_sends_no_graph_write(space):
    chat = space(report_only=True)
    plan = chat.say(chat.alice, f"rotate {WEBEX_APP}")
    assert "REPORT ONLY" in card_text(plan[0])
    created = click(chat, chat.bob, "Approve")
    assert any("were NOT sent" in reply.body and "addTokenSigningCertificate" in reply.body for reply in created)
    click(chat, chat.alice, "Now: I'm ready")
    done = click(chat, chat.carol, "Approve")
    assert any("were NOT sent" in reply.body and "preferredTokenSigningKeyThumbprint" in reply.body
               for reply in done)
    assert "Finished in report-only mode" in last_card_text(done)
    assert chat.graph.write_requests() == []
    actions = [entry.action for entry in chat.services.storage.audit.entries(room_id=chat.room.id)]
    assert actions.count("graph-dry-run") == 2 and "graph-result" not in actions


def test_report_only_turned_on_mid_rotation_stops_every_later_write(rotation_chat):
    chat = rotation_chat
    rotate_to_window(chat)                                        # a real rotation: the certificate exists
    chat.services.config = chat.services.config.replace(report_only=True)
    click(chat, chat.alice, "Now: I'm ready")
    done = click(chat, chat.carol, "Approve")
    assert activations(chat.graph) == [] and "REPORT ONLY" in last_card_text(done)


# --- approvals -----------------------------------------------------------------------------------------

def test_the_two_person_rule_needs_two_different_approvers(space):
    chat = space(required_approvals=2)
    chat.say(chat.alice, f"rotate {WEBEX_APP}")
    first = click(chat, chat.bob, "Approve")
    text = last_card_text(first)
    assert "Approvals: 1 of 2 (bob@example.com)" in text and creations(chat.graph) == 0
    again = click(chat, chat.bob, "Approve")
    assert again[0].to_person_id == chat.bob.id and "already approved" in again[0].body
    click(chat, chat.carol, "Approve")
    assert creations(chat.graph) == 1


def test_create_and_activate_can_have_different_approvers(space):
    chat = space(approvers=(), create_approvers=("bob@example.com",), activate_approvers=("carol@example.com",))
    chat.say(chat.alice, f"rotate {WEBEX_APP}")
    refused = click(chat, chat.carol, "Approve")
    assert refused[0].to_person_id == chat.carol.id and "Only the create approvers" in refused[0].body
    click(chat, chat.bob, "Approve")
    click(chat, chat.alice, "Now: I'm ready")
    refused = click(chat, chat.bob, "Approve")
    assert "Only the activate approvers" in refused[0].body and activations(chat.graph) == []
    click(chat, chat.carol, "Approve")
    assert len(activations(chat.graph)) == 1


def test_a_stage_with_its_own_approvers_inherits_neither_general_setting(space, demo_graph):
    chat = space(approver_group=APPROVER_GROUP, activate_approvers=("carol@example.com",))
    dave = add_member(chat, "dave@example.com", "Dave Delegate")
    user = demo_graph.add_user("dave@contoso.example", mail="dave@example.com")
    demo_graph.groups[APPROVER_GROUP]["members"].append(user["id"])
    chat.say(chat.alice, f"rotate {WEBEX_APP}")
    click(chat, dave, "Approve")                                  # the general group approves the create stage
    assert creations(demo_graph) == 1
    click(chat, chat.alice, "Now: I'm ready")
    refused = click(chat, dave, "Approve")
    assert refused[0].to_person_id == dave.id and "Only the activate approvers" in refused[0].body
    assert activations(demo_graph) == []
    config = chat.config.replace(approvers=("bob@example.com",), activate_approvers=(),
                                 activate_approver_group=APPROVER_GROUP)
    assert approvers_for(config, "activate") == Approvers((), APPROVER_GROUP)
    assert approvers_for(config, "create") == Approvers(("bob@example.com",), APPROVER_GROUP)


def test_members_of_the_entra_approver_group_approve_checked_at_the_click(space, demo_graph):
    chat = space(approvers=(), approver_group=APPROVER_GROUP)
    dave = add_member(chat, "dave@example.com", "Dave Delegate")
    user = demo_graph.add_user("dave@contoso.example", mail="dave@example.com")
    chat.say(chat.alice, f"rotate {WEBEX_APP}")
    refused = click(chat, dave, "Approve")
    assert "Only the create approvers" in refused[0].body and creations(demo_graph) == 0
    demo_graph.groups[APPROVER_GROUP]["members"].append(user["id"])   # added to the group in Entra meanwhile
    click(chat, dave, "Approve")
    assert creations(demo_graph) == 1
    assert demo_graph.requests_matching("POST", r"/checkMemberGroups$")


def test_no_approvers_configured_means_no_rotation(space):
    chat = space(approvers=())
    reply = chat.say(chat.alice, f"rotate {WEBEX_APP}")[0]
    assert "Nobody may approve" in reply.body and chat.services.storage.rotations.all() == []


def test_without_approvers_only_a_rotation_that_changes_nothing_in_entra_starts_as_the_setting_says(space):
    from rollover.settings import SETTINGS_BY_KEY
    chat = space(approvers=())
    drop(chat, "idb-meta-SP.xml", control_hub_metadata(days_left=365))
    plan = chat.say(chat.alice, f"rotate webex-sp {WEBEX_APP}")
    assert "Entra needs it: no" in card_text(plan[0]) and "[Activated in Webex]" in card_text(plan[0])
    assert "**1 Activate in Webex** · 2 Done" in plan[0].card["body"][2]["text"]   # no Entra step to show
    meaning = SETTINGS_BY_KEY["approvers"].help
    assert "no rotation that changes Entra starts" in meaning and "needs no approver" in meaning


# --- chat: rotations, cancel, one per app, the Start rotation button, audit -----------------------------

def test_rotations_lists_open_ones_and_cancel_ends_one(rotation_chat):
    chat = rotation_chat
    assert "No rotation is open" in chat.say(chat.alice, "rotations")[0].body
    chat.say(chat.alice, f"rotate {WEBEX_APP}")
    listing = card_text(chat.say(chat.bob, "rotations")[0])
    assert "#1" in listing and "Waiting for approval to create the new certificate" in listing
    refused = chat.say(chat.mallory, "cancel 1")
    assert refused[0].to_person_id is None and "not allowed" in refused[0].body   # not even allowed to talk
    cancelled = chat.say(chat.alice, "cancel 1")
    assert "Cancelled by alice@example.com" in last_card_text(cancelled)
    assert "No rotation is open" in chat.say(chat.alice, "rotations")[0].body
    assert "no rotation #7" in chat.say(chat.alice, "cancel 7")[0].body
    assert "Which Entra app?" in chat.say(chat.alice, "rotate")[0].body


@pytest.mark.parametrize("number", ["²", "99999999999999999999999", "-1", "1.0"])
def test_a_rotation_number_that_is_not_one_gets_a_clear_answer(rotation_chat, number):
    chat = rotation_chat
    for command in ("cancel", "cleanup"):
        reply = chat.say(chat.alice, f"{command} {number}")
        assert len(reply) == 1 and "Which rotation? Give its number" in reply[0].body, reply[0].body


def test_a_card_naming_an_impossible_rotation_number_is_refused(rotation_chat):
    chat = rotation_chat
    forged = card([paragraph("?")], actions=[submit("Cancel", "rotation-cancel", rotation=10**30, version=1)])
    chat.services.webex.post_message(room_id=chat.room.id, text="?", card=forged.to_dict())
    replies = click(chat, chat.alice, "Cancel")
    assert len(replies) == 1 and replies[0].to_person_id == chat.alice.id
    assert "does not exist" in replies[0].body


def test_a_rotation_cannot_be_cancelled_once_the_new_certificate_is_active(rotation_chat):
    chat = rotation_chat
    rotate_to_sign_in_test(chat)
    reply = chat.say(chat.alice, "cancel 1")[0]
    assert "cannot be cancelled" in reply.body and "roll back" in reply.body


def test_one_rotation_per_app_at_a_time(rotation_chat):
    chat = rotation_chat
    chat.say(chat.alice, f"rotate {WEBEX_APP}")
    second = chat.say(chat.bob, f"rotate {WEBEX_APP}")[0]
    assert "Rotation #1 of Cisco Webex is still open" in second.body
    assert len(chat.services.storage.rotations.all()) == 1


def test_a_rotation_open_in_another_space_is_named_and_an_operator_can_cancel_it(rotation_chat, monkeypatch,
                                                                                    capsys):
    chat = rotation_chat
    other = chat.webex.add_room("Meetings team", "group", [chat.alice, chat.bob, chat.carol])
    chat.say(chat.bob, f"rotate {WEBEX_APP}", room=other)
    refused = chat.say(chat.alice, f"rotate {WEBEX_APP}")[0].body
    assert "Rotation #1 of Cisco Webex is still open in the space “Meetings team”" in refused
    assert "“python bot.py rotations --cancel 1”" in refused
    monkeypatch.setenv("ROLLOVER_DATABASE", chat.config.database_path)
    assert bot.main(["rotations"]) == 0
    listed = capsys.readouterr().out
    assert listed.startswith("#1  Cisco Webex") and "Waiting for approval" in listed and "can be cancelled" in listed
    assert other.id in listed and "bob@example.com" in listed
    monkeypatch.setenv("WEBEX_ACCESS_TOKEN", chat.token)
    monkeypatch.setenv("WEBEX_BASE_URL", chat.webex.base_url)
    assert bot.main(["rotations", "--cancel", "1"]) == 0
    assert "is cancelled" in capsys.readouterr().out
    assert chat.services.storage.rotations.get(1).state == "cancelled"
    entry = chat.services.storage.audit.entries(rotation_id=1)[-1]
    assert (entry.action, entry.actor) == ("cancelled", "operator (command line)")
    cancelled_card = chat.last_card_message(other)["attachments"][0]["content"]
    assert "Cancelled by operator (command line)" in summarize_card(cancelled_card)
    assert "Waiting for approval" in card_text(chat.say(chat.alice, f"rotate {WEBEX_APP}")[0])


def test_the_command_line_does_not_cancel_a_rotation_that_activated_its_certificate(rotation_chat, monkeypatch,
                                                                                     capsys):
    chat = rotation_chat
    rotate_to_sign_in_test(chat)
    monkeypatch.setenv("ROLLOVER_DATABASE", chat.config.database_path)
    monkeypatch.setenv("WEBEX_ACCESS_TOKEN", chat.token)
    monkeypatch.setenv("WEBEX_BASE_URL", chat.webex.base_url)
    assert bot.main(["rotations", "--cancel", "1"]) == 1
    assert "cannot be cancelled" in capsys.readouterr().err
    assert chat.services.storage.rotations.get(1).state == "awaiting-sign-in-test"


def test_after_a_rotation_status_shows_the_new_certificate_active_and_offers_no_new_rotation(rotation_chat):
    chat = rotation_chat
    old = active_thumbprint(chat.graph)
    chat.say(chat.alice, f"watch {WEBEX_APP}")
    rotate_to_sign_in_test(chat)
    new = active_thumbprint(chat.graph)
    click(chat, chat.alice, "Sign-in works")
    tracked = {c.sha1: c.active for c in chat.services.storage.tracking.certificates(room_id=chat.room.id)}
    assert tracked == {old: False, new: True}
    status = chat.say(chat.alice, "status")[0]
    rows = status.body.splitlines()        # the fallback text: one line per certificate, full thumbprints
    assert any(f"Entra app {WEBEX_APP} (active)" in row and new in row for row in rows)
    assert any(f"Entra app {WEBEX_APP} (inactive)" in row and old in row for row in rows)
    assert "Start rotation" not in card_text(status)


def test_the_start_rotation_button_of_the_status_card(rotation_chat):
    chat = rotation_chat
    chat.say(chat.alice, f"watch {WEBEX_APP}")
    chat.say(chat.alice, "status")
    plan = click(chat, chat.alice, f"Start rotation: {WEBEX_APP}")
    assert "Waiting for approval to create the new certificate" in last_card_text(plan)


def fail_audit_of(chat, monkeypatch, action: str) -> None:
    """Writing the audit entry of ``action`` fails (as a crash between two commits would lose it)."""
    audit = chat.services.storage.audit
    append = audit.append

    def append_or_fail(**entry):
        if entry["action"] == action:
            raise sqlite3.OperationalError("disk I/O error")
        return append(**entry)
    monkeypatch.setattr(audit, "append", append_or_fail)


def test_a_change_whose_audit_entry_cannot_be_written_does_not_happen(rotation_chat, monkeypatch):
    chat = rotation_chat
    storage = chat.services.storage
    chat.say(chat.alice, f"rotate {WEBEX_APP}")
    fail_audit_of(chat, monkeypatch, "approved")
    click(chat, chat.bob, "Approve")
    fail_audit_of(chat, monkeypatch, "cancelled")
    click(chat, chat.alice, "Cancel rotation")
    record = only_rotation(chat)
    assert (record.state, record.version) == ("awaiting-create-approval", 1) and creations(chat.graph) == 0
    assert storage.rotations.approvals(record.id, record.state_version) == []
    monkeypatch.undo()
    click(chat, chat.alice, "Cancel rotation")
    assert only_rotation(chat).state == "cancelled"
    assert [e.action for e in storage.audit.entries(rotation_id=record.id)] == ["requested", "cancelled"]


def test_audit_tells_the_story_and_exports_it_as_json(rotation_chat, monkeypatch, capsys):
    chat = rotation_chat
    rotate_to_sign_in_test(chat)
    click(chat, chat.alice, "Sign-in works")
    reply = chat.say(chat.alice, "audit")[0]
    for action in ("requested", "approved", "graph-request", "graph-result", "created", "window-chosen",
                   "activated", "verified", "sign-in-confirmed"):
        assert f"**{action}**" in reply.body, action
    monkeypatch.setenv("ROLLOVER_DATABASE", chat.config.database_path)
    assert bot.main(["audit", "--json"]) == 0
    exported = json.loads(capsys.readouterr().out)
    result = next(entry for entry in exported if entry["action"] == "graph-result" and entry["thumbprints_after"]
                  and entry["thumbprints_after"]["active"] != entry["thumbprints_before"]["active"])
    assert result["rotation_id"] == 1 and result["app"] == WEBEX_APP
    assert "preferredTokenSigningKeyThumbprint" in result["graph_requests"][0]
    text = json.dumps(exported)
    assert "PRIVATE KEY" not in text and chat.token not in text and "BEGIN CERTIFICATE" not in text


def sign_in_test_card(chat, app: str) -> str:
    """The card of the sign-in test, once ``app``'s new certificate is active and verified."""
    rotate_to_window(chat, app)
    click(chat, chat.alice, "Now: I'm ready")
    return last_card_text(click(chat, chat.carol, "Approve"))


def test_the_steps_of_a_non_webex_apps_rotation_name_its_relying_party_not_webex(space, demo_graph):
    """An Entra signing rotation serves any SAML app: its steps name the app the plan says trusts Entra."""
    chat = space()
    salesforce = next(sp for sp in demo_graph.service_principals.values() if sp["displayName"] == "Salesforce")
    demo_graph.owned_object_ids.add(salesforce["id"])             # the bot may change it, as it may Webex's
    card = sign_in_test_card(chat, "Salesforce")
    assert "Waiting for a test sign-in to Salesforce" in card and "Webex" not in card
    sign_in = chat.last_card_message()                           # before `rotations` posts its own card
    details = json.dumps(sign_in["attachments"])                 # Details included (behind Action.ShowCard)
    assert '"Trusted by"' in details and '"Webex trust"' not in details
    listing = card_text(chat.say(chat.alice, "rotations")[0])
    assert "Waiting for a test sign-in to Salesforce" in listing and "Webex" not in listing
    refused = chat.say(chat.alice, "cancel 1")[0].body
    assert "“Waiting for a test sign-in to Salesforce”" in refused and "Webex" not in refused
    click(chat, chat.alice, "Sign-in works", message=sign_in)
    story = chat.say(chat.alice, "audit")[0].body
    assert "Confirmed a test sign-in to Salesforce." in story and "sign-in to Webex" not in story


def test_the_steps_of_a_webex_apps_rotation_still_name_webex(rotation_chat):
    chat = rotation_chat
    assert "Waiting for a test sign-in to Webex" in sign_in_test_card(chat, WEBEX_APP)
    assert '"Webex trust"' in json.dumps(chat.last_card_message()["attachments"])
    listing = card_text(chat.say(chat.alice, "rotations")[0])
    assert "Waiting for a test sign-in to Webex" in listing

