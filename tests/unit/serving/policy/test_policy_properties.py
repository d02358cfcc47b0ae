"""Properties over random times, time zones, daylight-saving changes and holidays (hypothesis).

Example counts come from the "policy" settings profile (conftest.py): modest by
default, ``NIGHTDESK_HYPOTHESIS_EXAMPLES`` for a deeper search.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays
from hypothesis import given, settings
from hypothesis import strategies as st
from policy_helpers import make_policy, prediction

from serving.policy import ACTIONS, decide
from serving.policy.calendar import shift_at
from serving.policy.decide import deadlines
from serving.policy.spec import WEEKDAYS, weekly_ranges
from serving.schemas import Routing, TicketIn

PROFILE = settings.get_profile("policy")

ZONES = ("UTC", "Europe/Dublin", "Europe/Berlin", "America/New_York", "America/Los_Angeles", "America/Sao_Paulo",
         "Australia/Sydney", "Asia/Singapore", "Asia/Kolkata", "Asia/Kathmandu", "Pacific/Auckland",
         "America/St_Johns")
COUNTRIES = (None, "US", "IE", "SG", "DE", "AU", "GB", "IN")
# Moments when clocks change (UTC): the US, the EU and Australia, spring and autumn.
TRANSITIONS = tuple(datetime(*args, tzinfo=UTC) for args in [
    (2026, 3, 8, 7), (2026, 11, 1, 6), (2026, 3, 29, 1), (2026, 10, 25, 1), (2026, 4, 4, 16), (2026, 10, 3, 16),
    (2027, 3, 14, 7), (2025, 10, 26, 1)])
HOLIDAY_NOONS = tuple(datetime(d.year, d.month, d.day, 12, tzinfo=UTC)
                      for country in ("US", "IE", "SG") for d in holidays.country_holidays(country, years=2026))

any_instant = st.datetimes(datetime(2020, 1, 1), datetime(2030, 12, 31), timezones=st.just(UTC))
near_change_or_holiday = st.builds(lambda base, minutes: base + timedelta(minutes=minutes),
                                   st.sampled_from(TRANSITIONS + HOLIDAY_NOONS), st.integers(-3 * 1440, 3 * 1440))
instants = st.one_of(any_instant, near_change_or_holiday)


def probabilities(labels: tuple[str, ...]):
    return st.lists(st.integers(0, 100), min_size=len(labels), max_size=len(labels)).filter(sum).map(
        lambda weights: {label: w / sum(weights) for label, w in zip(labels, weights)})


URGENCY = ("critical", "high", "medium", "low")


def critical_probabilities():
    """Urgency probabilities with P(critical) >= 0.5, built directly (a filter rejects
    most draws and trips Hypothesis's health check now and then)."""
    rest = st.lists(st.integers(0, 100), min_size=len(URGENCY) - 1, max_size=len(URGENCY) - 1)
    return st.builds(_with_critical_share, st.integers(50, 100), rest)


def _with_critical_share(critical_percent: int, rest: list[int]) -> dict[str, float]:
    left, total = 1 - critical_percent / 100, sum(rest)
    others = [left * w / total for w in rest] if total else [left / len(rest)] * len(rest)
    return {"critical": critical_percent / 100, **dict(zip(URGENCY[1:], others))}


CATEGORIES = ("billing", "technical", "account", "security", "shipping", "feature_request", "how_to", "spam")
TEXTS = ("Where is my invoice?", "The site is down for everyone", "My account was hacked",
         "Payment failed twice", "We lost all our data", "Thanks, all good now", "")


@st.composite
def tickets(draw):
    return TicketIn(id="T-1", subject=draw(st.sampled_from(TEXTS)), body=draw(st.sampled_from(TEXTS)) or "help",
                    customer_tier=draw(st.sampled_from((None, "free", "standard", "enterprise", "Premium", "gold"))),
                    customer_timezone=draw(st.sampled_from((None, *ZONES))))


@st.composite
def predictions(draw, urgency=None):
    chosen = {}
    if urgency is not None or draw(st.booleans()):
        chosen["urgency"] = prediction(urgency or draw(probabilities(URGENCY)))
    if draw(st.booleans()):
        chosen["category"] = prediction(draw(probabilities(CATEGORIES)))
    if draw(st.booleans()):
        chosen["sentiment"] = prediction(draw(probabilities(("negative", "neutral", "positive"))))
    return chosen


def policies(example_raw):
    single_region = dict(teams={"americas": example_raw["teams"]["americas"]},
                         follow_the_sun={"order": ["americas"], "handoff_minutes": 30},
                         queues={**example_raw["queues"], "product": {"title": "your product feedback"}})
    return (make_policy(example_raw), make_policy(example_raw, **single_region))


@given(data=st.data())
@settings(PROFILE)
def test_every_ticket_gets_exactly_one_consistent_action(example_raw, data):
    policy = data.draw(st.sampled_from(policies(example_raw)))
    now = data.draw(instants)
    waited = timedelta(minutes=data.draw(st.integers(0, 14 * 1440)))
    decision = decide(policy, data.draw(tickets()), data.draw(predictions()), now, received_at=now - waited,
                      escalate=data.draw(st.booleans()))

    assert decision.action in ACTIONS
    Routing.model_validate(decision.model_dump())  # a complete, valid answer
    on_shift = shift_at(policy.team_coverages[decision.team], now) is not None
    assert decision.team_on_shift is on_shift
    if on_shift:
        assert decision.action in ("assign_now", "human_review")
    else:
        assert decision.action != "assign_now" and decision.team_available_at > now
    assert (decision.acknowledgement is not None) == (decision.action in ("auto_acknowledge", "queue_for_next_shift"))
    assert bool(decision.escalation) == (decision.action == "page_on_call")
    sla = decision.sla
    assert sla.received_at <= sla.first_response.due_utc <= sla.resolution.due_utc
    # Same instant (compared as UTC: Python never equates a repeated local hour with another zone's time).
    assert sla.first_response.due_local.astimezone(UTC) == sla.first_response.due_utc


@given(data=st.data())
@settings(PROFILE)
def test_a_critical_ticket_never_waits_for_the_next_shift_while_someone_is_on_call(example_raw, data):
    policy = data.draw(st.sampled_from(policies(example_raw)))
    assert policy.spec.on_call.chain
    critical = data.draw(critical_probabilities())
    now = data.draw(instants)
    waited = timedelta(minutes=data.draw(st.integers(0, 3 * 1440)))
    decision = decide(policy, data.draw(tickets()), data.draw(predictions(urgency=critical)), now,
                      received_at=now - waited)
    assert decision.priority == "P1"
    assert decision.action in ("page_on_call", "assign_now")


# ---- the business-hours clock against an independent wall-clock oracle

QUARTER = timedelta(minutes=15)


def _change_days(zone_name: str) -> tuple[datetime, ...]:
    """Noon (UTC) of each day in 2025-2027 on which ``zone_name`` changes its UTC offset."""
    zone, noon = ZoneInfo(zone_name), datetime(2025, 1, 1, 12, tzinfo=UTC)
    days = []
    for _ in range(3 * 366):
        if noon.astimezone(zone).utcoffset() != (noon + timedelta(days=1)).astimezone(zone).utcoffset():
            days.append(noon)
        noon += timedelta(days=1)
    return tuple(days) or (datetime(2026, 3, 29, 12, tzinfo=UTC),)


CHANGE_DAYS = {name: _change_days(name) for name in ZONES}


def instants_for(zone_name: str, country: str | None):
    """Any instant, or one within a day of a clock change of ``zone_name`` or a holiday of ``country``."""
    bases = CHANGE_DAYS[zone_name] + tuple(datetime(d.year, d.month, d.day, 12, tzinfo=UTC)
                                           for d in (holidays.country_holidays(country, years=2026) if country else ()))
    near = st.builds(lambda base, minutes: base + timedelta(minutes=minutes),
                     st.sampled_from(bases), st.integers(-1440, 1440))
    return st.one_of(any_instant, near, near)
# Range ends on whole quarters between 05:00 and 23:45: clocks change between midnight
# and 04:00, where a wall time can be missing or ambiguous (a nonexistent start has
# no single right answer); shifts still run across those hours overnight.
quarters = st.integers(20, 95)


@st.composite
def weekly_hours(draw) -> dict[str, list[str]]:
    hours = {}
    for day in WEEKDAYS:
        if not draw(st.booleans()):
            continue
        start, end = draw(quarters), draw(quarters)
        if start != end:
            hours[day] = [f"{start // 4:02d}:{start % 4 * 15:02d}-{end // 4:02d}:{end % 4 * 15:02d}"]
    if not hours:
        hours["wed"] = ["09:00-17:00"]
    return hours


def working(u: datetime, zone: ZoneInfo, weekly, is_holiday) -> bool:
    """Is the instant ``u`` inside a shift? Read from the local wall clock, without the calendar code."""
    local = u.astimezone(zone)
    wall = local.hour * 60 + local.minute
    today, yesterday = local.date(), local.date() - timedelta(days=1)
    if not is_holiday(today) and any(s <= wall < e for s, e in weekly[today.weekday()]):
        return True
    return not is_holiday(yesterday) and any(e > 1440 and wall + 1440 < e for _, e in weekly[yesterday.weekday()])


@given(data=st.data())
@settings(PROFILE)
def test_a_business_hours_sla_clock_never_runs_outside_business_hours(example_raw, data):
    zone_name, country = data.draw(st.sampled_from(ZONES)), data.draw(st.sampled_from(COUNTRIES))
    hours = data.draw(weekly_hours())
    team = {"timezone": zone_name, "hours": hours, **({"holidays": {"country": country}} if country else {})}
    minutes = 15 * data.draw(st.integers(1, 40))
    sla = {tier: {p: {"first_response": minutes, "resolution": minutes * 2, "clock": "business"}
                  for p in ("P1", "P2", "P3", "P4")} for tier in example_raw["tiers"]}
    policy = make_policy(example_raw, teams={"solo": team}, follow_the_sun={"order": ["solo"]},
                         queues={q: {"title": v["title"]} for q, v in example_raw["queues"].items()}, sla=sla)
    start = data.draw(instants_for(zone_name, country)).replace(second=0, microsecond=0)
    start -= timedelta(minutes=start.minute % 15)

    due = deadlines(policy, "billing", "standard", "P3", start, "UTC").first_response.due_utc

    zone, weekly = ZoneInfo(zone_name), weekly_ranges(hours)
    public = holidays.country_holidays(country) if country else {}
    is_holiday = lambda day: day in public  # noqa: E731
    counted, u = 0, start
    while u < due:
        counted += working(u, zone, weekly, is_holiday)
        u += QUARTER
    assert counted * 15 == minutes  # only working quarters were counted, and all of them
    assert working(due - QUARTER, zone, weekly, is_holiday)  # the clock stopped as soon as it reached the target


def test_the_oracle_itself_sees_the_short_spring_night():
    zone, weekly = ZoneInfo("Europe/Berlin"), weekly_ranges({"sat": ["22:00-06:00"]})
    night = datetime(2026, 3, 28, 21, tzinfo=UTC)  # 22:00 in Berlin, the night clocks go forward
    quarters_worked = sum(working(night + i * QUARTER, zone, weekly, lambda d: False) for i in range(48))
    assert quarters_worked == 7 * 4 and date(2026, 3, 28).weekday() == 5
