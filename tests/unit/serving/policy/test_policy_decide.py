"""The decision on the example policy: team, priority, SLA, the one action, acknowledgements and reassessment.

Times are in January 2026 (winter): APAC works 00:00-09:00 UTC, EMEA 08:00-17:00,
the Americas 13:00-23:00; nobody works 23:00-00:00 UTC and at weekends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from policy_helpers import category, make_policy, prediction, urgency

from serving.policy import decide, reassess
from serving.schemas import TicketIn

TUESDAY_10 = datetime(2026, 1, 20, 10, tzinfo=UTC)
TUESDAY_GAP = datetime(2026, 1, 20, 23, 30, tzinfo=UTC)
SATURDAY = datetime(2026, 1, 24, 12, tzinfo=UTC)


def ticket(subject="Invoice question", body="Where can I download last month's invoice?", **fields) -> TicketIn:
    return TicketIn(id="T-7", subject=subject, body=body, **fields)


ROUTINE = {"urgency": urgency(medium=0.2), "category": category("billing", 0.9)}  # P4, confident billing
CRITICAL = {"urgency": urgency(critical=0.8, high=0.1), "category": category("technical", 0.9)}


def test_on_shift_a_ticket_is_assigned_to_the_team_on_shift(example):
    decision = decide(example, ticket(), ROUTINE, TUESDAY_10)
    assert (decision.action, decision.team, decision.team_on_shift) == ("assign_now", "emea", True)
    assert decision.queue == "billing" and decision.priority == "P4"
    assert decision.acknowledgement is None and decision.escalation == []


@pytest.mark.parametrize(("hour", "minute", "team"), [
    (14, 0, "emea"),       # both on shift: the team that came on first keeps the queue
    (16, 45, "americas"),  # EMEA's last 30 minutes: handed over to the Americas
    (23, 0, "apac"),       # nobody: the next to start
])
def test_follow_the_sun_hands_over_in_the_overlap(example, hour, minute, team):
    decision = decide(example, ticket(), ROUTINE, datetime(2026, 1, 20, hour, minute, tzinfo=UTC))
    assert decision.team == team


def test_a_critical_ticket_at_night_pages_the_on_call_chain(example):
    decision = decide(example, ticket(), CRITICAL, TUESDAY_GAP)
    assert decision.action == "page_on_call" and decision.priority == "P1"
    assert decision.team == "apac" and decision.team_available_at == datetime(2026, 1, 21, 0, tzinfo=UTC)
    steps = [(s.contact, s.page_at.minute) for s in decision.escalation]
    assert steps == [("primary-on-call", 30), ("secondary-on-call", 45), ("support-duty-manager", 0)]
    assert decision.sla.first_response.clock == "calendar"
    assert decision.sla.first_response.due_utc == datetime(2026, 1, 21, 0, 30, tzinfo=UTC)


def test_without_an_on_call_engineer_a_critical_ticket_waits_and_says_why(example_raw):
    policy = make_policy(example_raw, on_call={"page_priorities": ["P1"], "chain": []})
    decision = decide(policy, ticket(), CRITICAL, TUESDAY_GAP)
    assert decision.action == "queue_for_next_shift"
    assert any("names no on-call engineer" in reason for reason in decision.reasons)


def test_an_uncertain_category_goes_to_human_review_in_the_triage_queue(example):
    unsure = prediction({"billing": 0.3, "technical": 0.25, "account": 0.25, "shipping": 0.2})
    decision = decide(example, ticket(), {"urgency": urgency(medium=0.2), "category": unsure}, SATURDAY)
    assert (decision.action, decision.queue) == ("human_review", "triage")
    assert decision.confidence_levels["category"] == "review"


@dataclass
class Hit:
    title: str
    url: str
    score: float


def test_a_confident_routine_ticket_off_shift_is_acknowledged_in_the_customers_time(example):
    searched = []

    def search(text):
        searched.append(text)
        return [Hit(f"Article {i}", f"https://help.example/{i}", 0.9 - i / 10) for i in range(4)]

    decision = decide(example, ticket(customer_timezone="America/Chicago"), ROUTINE, SATURDAY, search=search)
    assert decision.action == "auto_acknowledge"
    ack = decision.acknowledgement
    assert ack.send is True and len(ack.articles) == 3 and "Invoice question" in searched[0]
    # P4 standard: 16 business hours from Monday 00:00 UTC (APAC's start) -> 16:00 UTC = 10:00 in Chicago.
    assert decision.sla.first_response.due_utc == datetime(2026, 1, 26, 16, tzinfo=UTC)
    assert ack.reply_by_local == decision.sla.first_response.due_local
    assert ack.reply_by_local.utcoffset() == ZoneInfo("America/Chicago").utcoffset(ack.reply_by_local.replace(tzinfo=None))
    assert 'your billing question ("Invoice question")' in ack.text
    assert "Monday 26 January, 10:00" in ack.text and "America/Chicago" in ack.text
    assert "https://help.example/0" in ack.text and "https://help.example/3" not in ack.text


def test_a_less_confident_ticket_off_shift_is_queued_with_a_draft_for_the_agent(example):
    decision = decide(example, ticket(), {"urgency": urgency(medium=0.2), "category": category("billing", 0.7)},
                      SATURDAY)
    assert decision.action == "queue_for_next_shift"
    assert decision.acknowledgement.send is False and decision.acknowledgement.articles == []
    assert "help articles" not in decision.acknowledgement.text  # no empty list when nothing matched


@pytest.mark.parametrize(("probabilities", "priority"), [
    ({"critical": 0.35, "high": 0.55, "medium": 0.05}, "P1"),  # top label high, but P(critical+high) = 0.90
    ({"critical": 0.05, "high": 0.50, "medium": 0.30}, "P2"),
    ({"critical": 0.05, "high": 0.20, "medium": 0.30}, "P3"),
    ({"critical": 0.05, "high": 0.10, "medium": 0.20}, "P4"),
])
def test_priority_uses_the_urgency_probabilities_not_only_the_top_label(example, probabilities, priority):
    predictions = {"urgency": urgency(**probabilities), "category": category("billing", 0.9)}
    assert decide(example, ticket(), predictions, TUESDAY_10).priority == priority


def test_signals_anger_and_tier_raise_the_priority(example):
    hacked = decide(example, ticket("Account hacked", "Someone hacked my account last night"), ROUTINE, TUESDAY_10)
    assert hacked.queue == "security" and hacked.priority == "P2" and hacked.signals == ["security"]
    angry = {**ROUTINE, "sentiment": prediction({"negative": 0.9, "neutral": 0.05, "positive": 0.05})}
    assert decide(example, ticket(), angry, TUESDAY_10).priority == "P3"
    premium = decide(example, ticket(customer_tier="Enterprise"), angry, TUESDAY_10)
    assert premium.priority == "P2" and premium.tier == "premium"
    assert premium.sla.first_response.target_minutes == 60  # premium P2: 1h, business clock


def test_no_models_at_all_still_gives_a_decision(example):
    decision = decide(example, ticket(), {}, SATURDAY)
    assert decision.queue == "triage" and decision.priority == "P3" and decision.action == "queue_for_next_shift"


def test_reassessment_raises_near_the_deadline_and_escalates_past_it(example):
    received = datetime(2026, 1, 20, 10, tzinfo=UTC)  # P3 standard: 8 business hours -> due 18:00 UTC
    medium = {"urgency": urgency(medium=0.6), "category": category("billing", 0.9)}
    fresh = reassess(example, ticket(), medium, received, received)
    assert (fresh.priority, fresh.sla.status) == ("P3", "on_track")
    assert fresh.sla.first_response.due_utc == datetime(2026, 1, 20, 18, tzinfo=UTC)
    near = reassess(example, ticket(), medium, datetime(2026, 1, 20, 16, 30, tzinfo=UTC), received)
    assert (near.priority, near.sla.status, near.action) == ("P2", "near_breach", "assign_now")
    late = reassess(example, ticket(), medium, datetime(2026, 1, 20, 18, 30, tzinfo=UTC), received)
    assert (late.priority, late.sla.status) == ("P2", "breached")
    # Still unanswered in the night gap: P2 past its deadline pages (escalation.breach_page_priorities).
    night = reassess(example, ticket(), medium, TUESDAY_GAP, received)
    assert (night.action, night.sla.status) == ("page_on_call", "breached")
    assert night.sla.first_response.due_utc == fresh.sla.first_response.due_utc  # the promise does not move


def test_time_must_carry_a_zone(example):
    with pytest.raises(ValueError, match="time zone"):
        decide(example, ticket(), ROUTINE, datetime(2026, 1, 20, 10))


def test_a_first_triage_reports_an_old_tickets_breach_without_escalating(example):
    old = datetime(2026, 1, 20, 10, tzinfo=UTC)
    medium = {"urgency": urgency(medium=0.6), "category": category("billing", 0.9)}
    decision = decide(example, ticket(created_at=old, customer_timezone="Asia/Tokyo"), medium, TUESDAY_GAP,
                      escalate=False)
    assert (decision.priority, decision.sla.status, decision.action) == ("P3", "breached", "auto_acknowledge")
    # The deadline has passed: the acknowledgement promises the next shift start instead (09:00 in Tokyo).
    assert decision.acknowledgement.reply_by_local == datetime(2026, 1, 21, 0, tzinfo=UTC)
    assert "Wednesday 21 January, 09:00" in decision.acknowledgement.text
