"""Reminders and digests in a space, on a fixed clock: sweeps are run with an explicit ``now``, and the
handlers read the same clock, so every date below is exact."""

import time
from datetime import datetime, timedelta, timezone

import pytest

from cards.text import markdown_texts, summarize_card
from handlers import actions as action_ids
from rollover import tracking
from rollover.describe import short_thumbprint
from rollover.reminders import sweep as reminders
from tests.support.certfactory import make_cert, make_sp_metadata, pem_of

UTC = timezone.utc
BASE = datetime(2026, 3, 20, 9, 5, tzinfo=UTC)        # a Friday, five minutes after the default 09:00 UTC slot
ORG = "7f9e2c4a-0000-4000-8000-0000000000e1"


class Clock:
    """The conversation's clock: handlers (ctx.now) and sweeps read it."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(chat) -> Clock:
    chat.services.clock = clock = Clock(BASE)
    return clock


def track_file(chat, days_left: float, name: str = "sp.pem", cn: str = "sso.example.com") -> str:
    """Track a certificate file expiring ``days_left`` days after BASE; returns its SHA-1."""
    not_after = BASE + timedelta(days=days_left)
    cert, _ = make_cert(cn, not_after - timedelta(days=700), not_after)
    reading = tracking.track_document(chat.services, room_id=chat.room.id, kind="file", location=name,
                                      added_by="alice@example.com", data=pem_of(cert))
    return reading.reports[0].sha1


def track_control_hub_metadata(chat, days_left: float) -> str:
    not_after = BASE + timedelta(days=days_left)
    cert, _ = make_cert("idbroker.webex.com", not_after - timedelta(days=700), not_after)
    data = make_sp_metadata(f"https://idbroker.webex.com/{ORG}", [cert], [cert],
                            [f"https://idbroker.webex.com/idb/Consumer/metaAlias/{ORG}/sp"])
    reading = tracking.track_document(chat.services, room_id=chat.room.id, kind="file", location="idb-meta.xml",
                                      added_by="alice@example.com", data=data)
    return reading.reports[0].sha1


def sweep(chat, now: datetime, clock: Clock | None = None) -> reminders.SweepReport:
    if clock is not None:
        clock.now = now
    return reminders.run_sweep(chat.services, now)


def cards_posted(chat) -> list[dict]:
    return [m["attachments"][0]["content"] for m in chat.webex.sent_by_bot(chat.room) if m.get("attachments")]


def headlines(chat) -> list[str]:
    return [card["body"][0]["text"] for card in cards_posted(chat)]


def sent(chat, kind: str | None = None) -> list[tuple[str, int]]:
    return [(r["kind"], r["step"]) for r in chat.services.storage.reminders.all(chat.room.id)
            if r["status"] == "sent" and kind in (None, r["kind"])]


def subscribe(chat, *commands: str) -> None:
    for text in ("remind on", *commands):
        chat.say(chat.alice, text)


def first_reminder_card(chat, clock: Clock, days_left: float) -> str:
    """Subscribe, track a certificate, sweep at BASE; the id of the reminder card posted."""
    subscribe(chat)
    track_file(chat, days_left)
    sweep(chat, BASE, clock)
    return chat.last_card_message()["id"]


# --- the remind command --------------------------------------------------------------------------------

def test_remind_shows_changes_and_turns_off_the_subscription(chat, clock):
    assert "Reminders are **off**" in chat.say(chat.alice, "remind")[0].body
    assert "**on**" in chat.say(chat.alice, "remind on")[0].body
    assert "30, 7 and 1 days" in chat.say(chat.alice, "remind at 30, 7,1")[0].body
    reply = chat.say(chat.alice, "remind time 8:30 Europe/Stockholm")[0].body
    assert "daily at 08:30 (Europe/Stockholm)" in reply and "weekly digest on Mondays" in reply
    assert "daily at 16:00 (Europe/Stockholm)" in chat.say(chat.alice, "remind time 16:00")[0].body
    subscription = chat.services.storage.reminders.subscription(chat.room.id)
    assert (subscription.enabled, subscription.thresholds, subscription.local_time, subscription.time_zone) == \
        (True, (30, 7, 1), "16:00", "Europe/Stockholm")
    assert "**off**" in chat.say(chat.alice, "remind off")[0].body
    assert not chat.services.storage.reminders.subscription(chat.room.id).enabled


@pytest.mark.parametrize("text, expected", [
    ("remind at", "Which days?"),
    ("remind at soon", "“soon” is not a list of days"),
    ("remind at 30,-7", "is not a list of days"),
    ("remind at 1,2,3,4,5,6,7,8,9,10,11", "at most 10 reminder days"),
    ("remind at 9999", "3650 or fewer"),
    ("remind time", "Which time?"),
    ("remind time 25:00", "“25:00” is not a time of day"),
    ("remind time 9am", "“9am” is not a time of day"),
    ("remind time 09:00 Mars/Olympus", "I don't know the time zone “Mars/Olympus”"),
    ("remind time 09:00 Europe/Stockholm extra", "Which time?"),
    ("remind sometimes", "I don't know “remind sometimes”"),
    ("remind on please", "“remind on” takes nothing after it"),
])
def test_remind_explains_bad_input_and_changes_nothing(chat, clock, text, expected):
    chat.say(chat.alice, "remind on")
    before = chat.services.storage.reminders.subscription(chat.room.id)
    assert expected in chat.say(chat.alice, text)[0].body
    assert chat.services.storage.reminders.subscription(chat.room.id) == before


def test_an_unsubscribed_space_gets_nothing(chat, clock):
    track_file(chat, 3)
    assert sweep(chat, BASE).planned == 0
    assert cards_posted(chat) == []


# --- thresholds, expiry, catch-up ----------------------------------------------------------------------

def test_each_threshold_is_reminded_once_then_expired_weekly_until_rotated(chat, clock):
    subscribe(chat)
    track_file(chat, 40.5)
    for day in range(0, 56):
        for minutes in (0, 5, 185):              # several sweeps a day: the slot still fires once
            sweep(chat, BASE + timedelta(days=day, minutes=minutes), clock)
    expired_days = [step - BASE.date().toordinal() for kind, step in sent(chat, "expired")]
    assert sent(chat, "threshold") == [("threshold", 60), ("threshold", 30), ("threshold", 14), ("threshold", 7),
                                       ("threshold", 1)]
    assert expired_days == [41, 48, 55]
    assert headlines(chat)[0] == "🟡 Certificate sso.example.com expires in 40 days"
    assert any(h == "🔴 Certificate sso.example.com expired 1 day ago" for h in headlines(chat))
    track_file(chat, 900)                          # the file is replaced: the old certificate is history
    sweep(chat, BASE + timedelta(days=62), clock)
    assert len(sent(chat, "expired")) == 3


@pytest.mark.parametrize("mondays, utc_hours", [
    (("2026-03-23", "2026-03-30"), (8, 7)),      # CET, then CEST after Sunday 29 March
    (("2026-10-19", "2026-10-26"), (7, 8)),      # CEST, then CET after Sunday 25 October
])
def test_the_daily_slot_follows_stockholm_time_across_daylight_saving(chat, clock, mondays, utc_hours):
    chat.say(chat.alice, "remind time 09:00 Europe/Stockholm")
    clock.now = datetime.fromisoformat(mondays[0] + "T00:00+00:00") - timedelta(days=1)
    subscribe(chat, "remind at 1")
    track_file(chat, 400)                                            # tracked, nothing due: only digests
    posted_at = []
    for monday in mondays:
        start = datetime.fromisoformat(monday + "T05:00+00:00")
        for quarter in range(20):                                     # every 15 minutes, 05:00 to 09:45 UTC
            moment = start + timedelta(minutes=15 * quarter)
            if sweep(chat, moment, clock).sent:
                posted_at.append(moment)
    assert [(m.date().isoformat(), m.hour, m.minute) for m in posted_at] == \
        [(monday, hour, 0) for monday, hour in zip(mondays, utc_hours, strict=True)]


def test_two_weeks_of_downtime_end_with_one_catch_up_card_per_certificate(chat, clock):
    subscribe(chat)
    track_file(chat, 35.5, name="a.pem", cn="a.example.com")
    track_file(chat, 16.5, name="b.pem", cn="b.example.com")
    sweep(chat, BASE, clock)
    assert sorted(step for _, step in sent(chat, "threshold")) == [30, 60]
    sweep(chat, BASE + timedelta(days=29), clock)                 # down from day 1 to day 28
    catch_up = [r for r in chat.services.storage.reminders.all(chat.room.id) if r["kind"] != "digest"][2:]
    assert sorted((r["kind"], r["step"]) for r in catch_up) == [("expired", BASE.date().toordinal() + 29),
                                                                 ("threshold", 7)]
    assert len(sent(chat, "digest")) == 1                          # one digest for the week, not one per week missed


def test_a_certificate_in_two_sources_or_listed_twice_is_one_reminder(chat, clock):
    subscribe(chat)
    sha1 = track_control_hub_metadata(chat, 20.5)                  # signing and encryption: the same certificate
    assert len(chat.services.storage.tracking.certificates(room_id=chat.room.id)) == 2
    sweep(chat, BASE, clock)
    assert sent(chat, "threshold") == [("threshold", 30)]
    text = summarize_card(cards_posted(chat)[0])
    assert text.startswith("🟡 Webex SP certificate ") and "(signing, encryption)" in text
    assert f"SHA-1: {short_thumbprint(sha1)}" in text and "[Snooze 7 days]  [Acknowledge]  [Details]" in text
    assert "Upload it to Azure first? Not known yet" in text     # a Webex certificate: the Webex question
    behind = summarize_card(cards_posted(chat)[0], opened=True)
    assert "Trust: Webex Control Hub SSO (organisation " + ORG + ")" in behind
    assert f"SHA-1: {sha1}" in behind and "It reached this space's 30-day reminder." in behind


def test_a_certificate_replaced_by_rotation_gets_no_reminder_even_if_one_was_waiting(chat, clock):
    subscribe(chat)
    track_file(chat, 10.5)
    chat.webex.inject_fault("POST", r"/messages$", 503)
    sweep(chat, BASE, clock)                                       # planned, Webex failed: waiting for a retry
    track_file(chat, 400)                                          # rotated: the new certificate replaces it
    sweep(chat, BASE + timedelta(minutes=10), clock)
    assert cards_posted(chat) == []
    assert [r["status"] for r in chat.services.storage.reminders.all(chat.room.id)] == ["dropped"]
    sweep(chat, BASE + timedelta(days=8), clock)
    assert sent(chat, "threshold") == sent(chat, "expired") == []     # only Monday's digest went out


def test_a_space_no_longer_among_the_allowed_rooms_gets_no_more_reminders(chat, clock):
    subscribe(chat)
    track_file(chat, 10.5)
    chat.webex.inject_fault("POST", r"/messages$", 503)
    sweep(chat, BASE, clock)                                       # planned, Webex failed: waiting for a retry
    chat.services.config = chat.services.config.replace(allowed_rooms=(chat.direct.id,))
    sweep(chat, BASE + timedelta(minutes=10), clock)
    sweep(chat, BASE + timedelta(days=8), clock)                   # later thresholds and the digest neither
    assert cards_posted(chat) == []
    assert [r["status"] for r in chat.services.storage.reminders.all(chat.room.id)] == ["dropped"]


# --- buttons ------------------------------------------------------------------------------------------

def test_snooze_silences_a_certificate_for_seven_days_and_a_second_click_changes_nothing(chat, clock):
    card_id = first_reminder_card(chat, clock, 15.5)
    reply = chat.click(chat.bob, card_id, button="Snooze 7 days")[0]
    assert "bob@example.com snoozed the reminders" in reply.body and "until 2026-03-27" in reply.body
    again = chat.click(chat.alice, card_id, button="Snooze 7 days")[0]
    assert again.to_person_id == chat.alice.id and "Already snoozed by bob@example.com" in again.body
    for day in range(1, 7):                                        # the 14-day threshold passes while snoozed
        sweep(chat, BASE + timedelta(days=day), clock)
    assert sent(chat, "threshold") == [("threshold", 30)]
    sweep(chat, BASE + timedelta(days=7), clock)                   # the snooze ended: the smallest reached
    assert sent(chat, "threshold") == [("threshold", 30), ("threshold", 14)]
    stale = chat.click(chat.bob, card_id, button="Snooze 7 days")[0]
    assert "snooze was used already" in stale.body
    assert chat.services.storage.reminders.marks(chat.room.id)[chat.services.storage.reminders.all()[0]["subject"]] \
        .snoozed_until == (BASE + timedelta(days=7)).timestamp()


def test_names_from_files_and_certificates_are_shown_literally_not_as_markdown(chat, clock):
    subscribe(chat)
    track_file(chat, 15.5, name="[click](evil.example).pem", cn="<@all> *urgent* `x`")
    sweep(chat, BASE, clock)
    card = "\n".join(markdown_texts(cards_posted(chat)[-1]))
    assert r"\[click\](evil.example)" in card and r"\*urgent\* \`x\`" in card and "<@all" not in card
    reply = chat.click(chat.bob, chat.last_card_message()["id"], button="Snooze 7 days")[0]
    assert r"\*urgent\* \`x\`" in reply.body and "<@all" not in reply.body
    assert not chat.webex.messages_in(chat.room)[-1].get("mentionedGroups")


def test_acknowledge_records_the_owner_and_leaves_only_the_final_reminders(chat, clock):
    card_id = first_reminder_card(chat, clock, 30.5)
    reply = chat.click(chat.bob, card_id, button="Acknowledge")[0]
    assert "bob@example.com owns" in reply.body and "final reminders (7 days or fewer)" in reply.body
    assert "Already acknowledged by bob@example.com" in chat.click(chat.alice, card_id, button="Acknowledge")[0].body
    for day in range(1, 31):
        sweep(chat, BASE + timedelta(days=day), clock)
    assert [step for _, step in sent(chat, "threshold")] == [30, 7, 1]
    owned = [c for c in cards_posted(chat) if "7 days" in c["body"][0]["text"]][0]
    assert "Acknowledged by bob@example.com" in summarize_card(owned)
    assert "[Acknowledge]" not in summarize_card(owned)
    assert "Acknowledged (only reminders at 7 days or fewer): 1" in chat.say(chat.alice, "remind")[0].body


@pytest.mark.parametrize("button, words", [("Snooze 7 days", "bob@example.com snoozed the reminders"),
                                           ("Acknowledge", "bob@example.com owns")])
def test_a_click_retried_after_its_confirmation_met_a_429_still_tells_the_space(chat, clock, button, words):
    card_id = first_reminder_card(chat, clock, 15.5)
    chat.webex.inject_fault("POST", r"/messages$", 429, retry_after=1)
    assert chat.click(chat.bob, card_id, button=button) == []      # the mark is set, the confirmation waits
    chat.worker.clock = lambda: time.time() + 5                    # the retry's backoff has passed
    mark = len(chat.webex.requests)
    chat.worker.drain()
    replies = chat.posted_since(mark)
    assert len(replies) == 1 and replies[0].to_person_id is None and words in replies[0].body


def test_a_button_about_a_certificate_no_longer_tracked_explains_and_changes_nothing(chat, clock):
    card_id = first_reminder_card(chat, clock, 10.5)
    chat.say(chat.alice, "forget 1")
    assert "no longer tracked in this space" in chat.click(chat.bob, card_id, button="Acknowledge")[0].body
    assert chat.services.storage.reminders.marks(chat.room.id) == {}


# --- the weekly digest -----------------------------------------------------------------------------------

def test_the_digest_goes_out_once_a_week_on_its_day_worst_first(chat, clock):
    subscribe(chat, "remind at 1")
    track_file(chat, 3.5, name="a.pem", cn="soon.example.com")
    track_file(chat, 300, name="b.pem", cn="fine.example.com")
    for hour in range(0, 24 * 17, 3):                                # every three hours for 17 days
        sweep(chat, BASE + timedelta(hours=hour), clock)
    mondays = [(BASE + timedelta(days=d)).date().toordinal() for d in (3, 10, 17)]
    assert [step for _, step in sent(chat, "digest")] == mondays[:2]
    digest = [c for c in cards_posted(chat) if "Weekly digest" in c["body"][0]["text"]][0]
    text = summarize_card(digest)
    assert text.index("soon.example.com") < text.index("fine.example.com")
    assert "2 certificates: 1 expiring very soon. The first: the Certificate soon.example.com" in text
    assert "[Explain]  [Details]" in text


# --- Webex failing --------------------------------------------------------------------------------------

@pytest.mark.parametrize("status", [429, 500, 503])
def test_a_webex_failure_while_posting_is_retried_later_and_sent_once(chat, clock, status):
    subscribe(chat)
    track_file(chat, 5.5, name="a.pem", cn="a.example.com")
    track_file(chat, 25.5, name="b.pem", cn="b.example.com")
    chat.webex.inject_fault("POST", r"/messages$", status, retry_after=30 if status == 429 else None)
    first = sweep(chat, BASE, clock)
    assert first.sent == [] and len(first.waiting) == 1              # the sweep stops at the outage
    assert cards_posted(chat) == []
    early = sweep(chat, BASE + timedelta(seconds=10), clock)          # after the 1 s backoff, before Retry-After
    assert len(early.sent) == (1 if status == 429 else 2)
    sweep(chat, BASE + timedelta(minutes=5), clock)
    sweep(chat, BASE + timedelta(minutes=10), clock)
    assert len(cards_posted(chat)) == 2
    assert sorted(r["status"] for r in chat.services.storage.reminders.all(chat.room.id)) == ["sent", "sent"]


def test_a_card_that_fails_to_build_is_tried_again_a_few_times_then_failed(chat, clock, monkeypatch):
    subscribe(chat)
    cured = track_file(chat, 5.5, name="a.pem", cn="a.example.com")      # the bug goes away after two attempts
    broken = track_file(chat, 25.5, name="b.pem", cn="b.example.com")    # the bug stays
    compose, attempts = reminders.compose, {cured: 0, broken: 0}

    def compose_with_a_bug(services, planned, now, **options):
        attempts[planned.subject] += 1
        if planned.subject == broken or attempts[planned.subject] <= 2:
            raise KeyError("a bug building the card")
        return compose(services, planned, now, **options)
    monkeypatch.setattr(reminders, "compose", compose_with_a_bug)
    for minutes in (0, 5, 10, 15, 20):
        sweep(chat, BASE + timedelta(minutes=minutes), clock)
    assert attempts == {cured: 3, broken: 3}
    statuses = {r["subject"]: r["status"] for r in chat.services.storage.reminders.all(chat.room.id)}
    assert statuses == {cured: "sent", broken: "failed"} and len(cards_posted(chat)) == 1


def test_a_long_outage_ends_with_the_current_card_not_a_backlog(chat, clock):
    subscribe(chat)
    track_file(chat, 8.5)
    chat.webex.inject_fault("POST", r"/messages$", 503, count=2)
    sweep(chat, BASE, clock)                                          # 14-day reminder planned, not posted
    sweep(chat, BASE + timedelta(days=2), clock)                      # now the 7-day one: it supersedes it
    sweep(chat, BASE + timedelta(days=2, minutes=5), clock)           # Webex is back
    assert headlines(chat) == ["🟠 Certificate sso.example.com expires in 6 days"]
    assert [r["status"] for r in chat.services.storage.reminders.all(chat.room.id)] == ["superseded", "sent"]


# --- Entra apps ----------------------------------------------------------------------------------------

@pytest.fixture
def entra_chat(make_chat, local_graph):
    """A space watching an Entra app whose active signing certificate expires 12 days after BASE."""
    sp = local_graph.add_saml_app("Contoso Webex", bot_is_owner=True)
    local_graph.add_signing_certificate(sp["id"], not_before=BASE - timedelta(days=1000),
                                        not_after=BASE + timedelta(days=12, hours=1), active=True)
    local_graph.add_signing_certificate(sp["id"], not_before=BASE - timedelta(days=2000),
                                        not_after=BASE + timedelta(days=3), display_name="CN=old leftover")
    chat = make_chat(graph=local_graph)
    chat.services.clock = chat.clock = Clock(BASE)
    chat.sp_id = sp["id"]
    subscribe(chat, "watch Contoso Webex")
    return chat


def test_an_entra_app_reminder_offers_rotation(entra_chat):
    chat = entra_chat
    sweep(chat, BASE, chat.clock)
    text = summarize_card(cards_posted(chat)[0])
    assert len(cards_posted(chat)) == 1                               # the inactive leftover signs nothing
    assert text.startswith("🟠 Entra signing certificate of Contoso Webex expires in 12 days")
    assert "Seen in: #1 Entra app Contoso Webex (active)" in text and "Upload it to Azure" not in text
    assert "Trust: Entra app Contoso Webex" in summarize_card(cards_posted(chat)[0], opened=True)

    sweep(chat, BASE + timedelta(days=7), chat.clock)
    card = [c for c in cards_posted(chat) if "expires in 5 days" in c["body"][0]["text"]][0]
    assert [a["title"] for a in card["actions"]] == ["Start rotation", "Snooze 7 days", "Acknowledge", "Details"]
    assert card["actions"][0]["data"] == {"action": action_ids.ROTATION_START, "app": "Contoso Webex"}
    assert chat.services.registry.actions[action_ids.ROTATION_START]   # the button has its handler


def track_federation_metadata(chat, graph) -> None:
    """Track Entra's federation metadata of the app as its URL serves it: every signing certificate, the
    inactive ones too. Dropped as a file: the sweep re-reads URLs, and the local URL leaves out certificates
    expired in real time (these are dated from BASE)."""
    from fakes.graph import render_federation_metadata
    keys = [kc["key"] for kc in graph.service_principals[chat.sp_id]["keyCredentials"] if kc["usage"] == "Verify"]
    metadata = render_federation_metadata(graph.tenant_id, keys).encode()
    tracking.track_document(chat.services, room_id=chat.room.id, kind="file", location="federationmetadata.xml",
                            added_by="alice@example.com", data=metadata)


def test_a_certificate_the_watched_app_marks_inactive_gets_no_reminder_from_other_sources(entra_chat, local_graph):
    chat = entra_chat
    track_federation_metadata(chat, local_graph)                  # lists the inactive leftover (3 days) too
    sweep(chat, BASE, chat.clock)
    active = local_graph.service_principals[chat.sp_id]["preferredTokenSigningKeyThumbprint"]
    reminded = [(r["subject"], r["step"]) for r in chat.services.storage.reminders.all(chat.room.id)
                if r["kind"] == "threshold"]
    assert reminded == [(active, 14)] and len(cards_posted(chat)) == 1


def test_a_graph_failure_does_not_stop_the_reminders_and_is_shown_on_the_card(entra_chat, local_graph):
    chat = entra_chat
    local_graph.inject_fault("GET", r"servicePrincipals", status=403, count=100)
    report = sweep(chat, BASE, chat.clock)
    assert report.refresh_problems and report.refresh_problems[0].startswith("Microsoft Graph:")
    text = summarize_card(cards_posted(chat)[0])
    assert "expires in 12 days" in text and "⚠️ Graph could not be read at the last refresh" in text
