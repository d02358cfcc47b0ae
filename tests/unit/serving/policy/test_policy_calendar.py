"""Business-hours calendar math: shifts, next shift start, adding business time, DST days and holidays."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from serving.policy.calendar import (
    Coverage,
    TeamCalendar,
    add_business_minutes,
    business_minutes_between,
    is_on_shift,
    next_shift_start,
    shift_at,
)
from serving.policy.spec import weekly_ranges


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def coverage(zone: str, hours: dict, holidays: set[date] = frozenset()) -> Coverage:
    return Coverage([TeamCalendar("t", ZoneInfo(zone), weekly_ranges(hours), lambda d: d in holidays)])


OFFICE = {"mon-fri": ["08:00-17:00"]}


@pytest.mark.parametrize(("zone", "before", "after"), [
    # Europe moves its clocks on the last Sunday of March: 08:00 in Dublin is 08:00 UTC, then 07:00 UTC.
    ("Europe/Dublin", utc(2026, 3, 27, 8), utc(2026, 3, 30, 7)),
    ("Europe/Berlin", utc(2026, 3, 27, 7), utc(2026, 3, 30, 6)),
    # The US on the second Sunday of March: 08:00 in New York is 13:00 UTC, then 12:00 UTC.
    ("America/New_York", utc(2026, 3, 6, 13), utc(2026, 3, 9, 12)),
])
def test_a_shift_keeps_its_local_start_across_the_spring_change(zone, before, after):
    office = coverage(zone, OFFICE)
    assert next_shift_start(office, before - timedelta(hours=3)) == before
    assert next_shift_start(office, after - timedelta(hours=3)) == after
    assert before.astimezone(ZoneInfo(zone)).hour == after.astimezone(ZoneInfo(zone)).hour == 8


@pytest.mark.parametrize(("zone", "friday", "monday"), [
    ("Europe/Dublin", utc(2026, 10, 23, 7), utc(2026, 10, 26, 8)),
    ("America/New_York", utc(2026, 10, 30, 12), utc(2026, 11, 2, 13)),
])
def test_a_shift_keeps_its_local_start_across_the_autumn_change(zone, friday, monday):
    office = coverage(zone, OFFICE)
    assert next_shift_start(office, friday - timedelta(minutes=1)) == friday
    assert next_shift_start(office, friday + timedelta(hours=10)) == monday


@pytest.mark.parametrize(("night", "hours"), [
    (date(2026, 3, 28), 7),   # Berlin springs forward at 02:00: the night shift is an hour short
    (date(2026, 10, 24), 9),  # and falls back at 03:00: an hour long
    (date(2026, 5, 2), 8),
])
def test_a_night_shift_across_a_dst_change_counts_real_hours(night, hours):
    nights = coverage("Europe/Berlin", {"mon-sun": ["22:00-06:00"]})
    start = datetime(night.year, night.month, night.day, 22, tzinfo=ZoneInfo("Europe/Berlin")).astimezone(UTC)
    shift = shift_at(nights, start)
    assert shift is not None and shift[0] == start
    assert shift[1] - shift[0] == timedelta(hours=hours)
    assert business_minutes_between(nights, start, start + timedelta(hours=12)) == hours * 60


def test_a_public_holiday_is_off_and_the_next_shift_is_the_day_after(example):
    emea = example.team_coverages["emea"]
    patricks_day = utc(2026, 3, 17, 10)  # a Tuesday, Ireland's national holiday
    assert not is_on_shift(emea, patricks_day)
    assert next_shift_start(emea, patricks_day) == utc(2026, 3, 18, 8)
    americas = example.team_coverages["americas"]
    thanksgiving = datetime(2026, 11, 26, 10, tzinfo=ZoneInfo("America/New_York"))
    assert not is_on_shift(americas, thanksgiving)
    assert is_on_shift(americas, thanksgiving + timedelta(days=1))
    assert is_on_shift(example.team_coverages["emea"], utc(2026, 11, 26, 10))  # not Ireland's holiday


def test_company_days_off_are_holidays_too(example_raw):
    from policy_helpers import make_policy

    raw = dict(example_raw)
    teams = {**raw["teams"], "emea": {**raw["teams"]["emea"],
                                      "holidays": {"country": "IE", "extra_dates": ["2026-06-05"]}}}
    policy = make_policy(raw, teams=teams)
    assert not is_on_shift(policy.team_coverages["emea"], utc(2026, 6, 5, 10))
    assert is_on_shift(policy.team_coverages["emea"], utc(2026, 6, 4, 10))


def test_adding_business_hours_skips_the_night_and_the_weekend():
    office = coverage("Europe/Dublin", OFFICE)
    friday_afternoon = utc(2026, 1, 16, 16)  # one hour before the end of Friday's shift
    assert add_business_minutes(office, friday_afternoon, 120) == utc(2026, 1, 19, 9)
    saturday = utc(2026, 1, 17, 12)
    assert add_business_minutes(office, saturday, 30) == utc(2026, 1, 19, 8, 30)
    assert add_business_minutes(office, utc(2026, 1, 19, 8), 9 * 60) == utc(2026, 1, 19, 17)  # ends with the shift


def test_follow_the_sun_coverage_joins_the_regions(example):
    coverage_all = example.coverages["billing"]  # APAC, EMEA and the Americas
    tuesday = utc(2026, 1, 20, 0)  # 08:00 in Singapore
    # Singapore 00:00-09:00, Dublin 08:00-17:00, New York 13:00-23:00 UTC overlap into one day.
    assert shift_at(coverage_all, tuesday) == (utc(2026, 1, 20, 0), utc(2026, 1, 20, 23))
    assert add_business_minutes(coverage_all, utc(2026, 1, 20, 22), 120) == utc(2026, 1, 21, 1)
    # On Martin Luther King Jr. Day New York is off: the day ends with Dublin's shift.
    assert shift_at(coverage_all, utc(2026, 1, 19, 0)) == (utc(2026, 1, 19, 0), utc(2026, 1, 19, 17))


def test_business_time_between_two_moments():
    office = coverage("America/New_York", OFFICE)
    assert business_minutes_between(office, utc(2026, 1, 16, 20), utc(2026, 1, 19, 15)) == 120 + 120
    assert business_minutes_between(office, utc(2026, 1, 19, 15), utc(2026, 1, 19, 14)) == 0


def test_a_long_target_on_a_thin_schedule_walks_as_many_weeks_as_it_needs():
    # 15 minutes of work a week: 870 business minutes are 58 weeks away (found by the SLA property test).
    thin = coverage("UTC", {"sat": ["05:00-05:15"]})
    start = utc(2026, 3, 29, 12)  # a Sunday, after the week's shift
    due = add_business_minutes(thin, start, 870)
    assert due == utc(2026, 4, 4, 5, 15) + timedelta(weeks=57)
    assert business_minutes_between(thin, start, due) == 870


def test_a_calendar_without_working_time_left_is_reported_not_walked_forever():
    never = Coverage([TeamCalendar("t", ZoneInfo("UTC"), weekly_ranges(OFFICE), lambda d: True)])
    with pytest.raises(ValueError, match="horizon"):
        add_business_minutes(never, utc(2026, 1, 5, 9), 60)
