"""The reminder decision as pure functions: thresholds, expired weekly, snooze, acknowledge, slots, digests."""

from datetime import date, datetime, timezone

import pytest

from rollover.reminders.sweep import (
    DAY_SECONDS,
    certificate_reminder,
    certificate_reminders,
    digest_due,
    open_slot,
    smallest_threshold_reached,
)
from rollover.storage import ReminderCandidate, ReminderSubscription

UTC = timezone.utc
THRESHOLDS = (60, 30, 14, 7, 1)
NOW = datetime(2026, 3, 20, 9, 5, tzinfo=UTC).timestamp()
TODAY = date(2026, 3, 20).toordinal()


def candidate(days_left: float, *, sha1="AA", room="room", snoozed_until=None, acknowledged_by=None,
              lowest_planned=None, last_expired=None) -> ReminderCandidate:
    return ReminderCandidate(room, sha1, NOW + days_left * DAY_SECONDS, snoozed_until, acknowledged_by,
                             lowest_planned, last_expired)


def decide_one(c: ReminderCandidate, final_days: int = 7):
    return certificate_reminder(c, THRESHOLDS, TODAY, NOW, final_days)


@pytest.mark.parametrize("days_left, expected", [
    (61, None), (60, 60), (45, 60), (30, 30), (29, 30), (14, 14), (8, 14), (7, 7), (2, 7), (1, 1), (0, 1),
])
def test_the_smallest_threshold_reached_is_the_one_reminded(days_left, expected):
    assert smallest_threshold_reached(days_left, THRESHOLDS) == expected


def test_a_threshold_is_reminded_once_and_a_catch_up_skips_the_ones_in_between():
    assert decide_one(candidate(29.5)).step == 30
    assert decide_one(candidate(29.5, lowest_planned=30)) is None            # same threshold: already sent
    assert decide_one(candidate(20, lowest_planned=30)) is None
    catch_up = decide_one(candidate(5.5, lowest_planned=30))                 # 14 and 7 crossed while down: one card
    assert (catch_up.kind, catch_up.step, catch_up.days_left) == ("threshold", 7, 5)


def test_expired_certificates_get_one_card_then_one_a_week():
    first = decide_one(candidate(-0.1))
    assert (first.kind, first.step) == ("expired", TODAY)
    assert decide_one(candidate(-3, last_expired=TODAY - 3)) is None
    assert decide_one(candidate(-8, last_expired=TODAY - 7)).step == TODAY


def test_snoozed_certificates_wait_until_the_snooze_ends():
    assert decide_one(candidate(10, snoozed_until=NOW + 60)) is None
    assert decide_one(candidate(-10, snoozed_until=NOW + 60)) is None
    assert decide_one(candidate(10, snoozed_until=NOW - 60)).step == 14


def test_acknowledged_certificates_get_only_the_final_thresholds_and_the_expired_card():
    owned = dict(acknowledged_by="bob@example.com")
    assert decide_one(candidate(12, **owned)) is None                     # 14 is not a final threshold
    assert decide_one(candidate(6, lowest_planned=30, **owned)).step == 7
    assert decide_one(candidate(6, **owned), final_days=0) is None
    assert decide_one(candidate(-1, **owned)).kind == "expired"


def test_rows_of_one_certificate_make_one_reminder():
    rows = [candidate(5, sha1="AA"), candidate(5, sha1="AA"), candidate(50, sha1="BB"), candidate(50, room="other")]
    due = certificate_reminders(rows, {"room": THRESHOLDS, "other": THRESHOLDS}, {"room": TODAY, "other": TODAY},
                                NOW, 7)
    assert [(d.room_id, d.subject, d.step) for d in due] == [("room", "AA", 7), ("room", "BB", 60), ("other", "AA", 60)]


# --- the daily slot, in the space's time zone ------------------------------------------------------------

def subscription(local_time="09:00", zone="Europe/Stockholm", last_slot=None, enabled_at=0.0, last_digest=None):
    return ReminderSubscription("room", True, THRESHOLDS, local_time, zone, enabled_at, "a@example.com", 0.0,
                                last_slot, last_digest)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@pytest.mark.parametrize("moment, expected", [
    ("2026-03-27T07:59+00:00", None),               # Friday, CET (UTC+1): 08:59 local
    ("2026-03-27T08:00+00:00", "2026-03-27"),       # 09:00 local
    ("2026-03-30T06:59+00:00", None),               # Monday after the spring change, CEST (UTC+2): 08:59
    ("2026-03-30T07:00+00:00", "2026-03-30"),       # 09:00 local, an hour earlier in UTC
    ("2026-10-26T07:59+00:00", None),               # Monday after the autumn change, CET again: 08:59
    ("2026-10-26T08:00+00:00", "2026-10-26"),
])
def test_the_daily_slot_opens_at_local_time_on_both_sides_of_daylight_saving(moment, expected):
    assert open_slot(subscription(), at(moment)) == expected


def test_the_slot_belongs_to_the_local_date_not_the_utc_one():
    assert open_slot(subscription("00:15"), at("2026-03-20T23:30+00:00")) == "2026-03-21"   # 00:30 local
    assert open_slot(subscription("18:00", "America/Los_Angeles"), at("2026-03-21T01:00+00:00")) == "2026-03-20"


def test_a_slot_is_handled_once_per_local_date():
    assert open_slot(subscription(last_slot="2026-03-27"), at("2026-03-27T15:00+00:00")) is None
    assert open_slot(subscription(last_slot="2026-03-27"), at("2026-03-28T08:00+00:00")) == "2026-03-28"
    # A sweep fast-forwarded into the future (bot.py remind --now) does not block today's slot.
    assert open_slot(subscription(last_slot="2026-12-24"), at("2026-03-28T08:00+00:00")) == "2026-03-28"


def test_a_time_in_the_skipped_spring_hour_opens_at_the_first_sweep_after_the_jump():
    # 2026-03-29: Stockholm clocks jump from 02:00 to 03:00; 02:30 never happens that night.
    assert open_slot(subscription("02:30"), at("2026-03-29T00:55+00:00")) is None      # 01:55 CET
    assert open_slot(subscription("02:30"), at("2026-03-29T01:00+00:00")) == "2026-03-29"   # 03:00 CEST


def test_a_time_in_the_repeated_autumn_hour_counts_once():
    # 2026-10-25: 03:00 CEST goes back to 02:00 CET; 02:30 happens at 00:30 and at 01:30 UTC.
    assert open_slot(subscription("02:30"), at("2026-10-25T00:30+00:00")) == "2026-10-25"
    assert open_slot(subscription("02:30", last_slot="2026-10-25"), at("2026-10-25T01:30+00:00")) is None


# --- the weekly digest -------------------------------------------------------------------------------------

def test_the_digest_is_due_from_its_weekday_on_once_per_week():
    monday, wednesday = date(2026, 3, 23), date(2026, 3, 25)
    assert digest_due(subscription(), monday, "monday").step == monday.toordinal()
    assert digest_due(subscription(), wednesday, "monday").step == monday.toordinal()   # the bot was down on Monday
    assert digest_due(subscription(last_digest=monday.toordinal()), wednesday, "monday") is None
    assert digest_due(subscription(), date(2026, 3, 22), "monday").step == date(2026, 3, 16).toordinal()


def test_no_digest_for_a_week_that_began_before_the_space_subscribed():
    enabled_wednesday = datetime(2026, 3, 25, 12, tzinfo=UTC).timestamp()
    assert digest_due(subscription(enabled_at=enabled_wednesday), date(2026, 3, 26), "monday") is None
    assert digest_due(subscription(enabled_at=enabled_wednesday), date(2026, 3, 30), "monday") is not None
