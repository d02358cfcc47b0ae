from __future__ import annotations

from serving.routing import DefaultRoutingPolicy, RoutingPolicy
from serving.schemas import TaskPrediction, TicketIn


def _prediction(label: str, confidence: float = 0.9, needs_review: bool = False) -> TaskPrediction:
    return TaskPrediction(label=label, confidence=confidence, needs_review=needs_review,
                          probabilities={label: confidence}, top_features=[], truncated=False,
                          model_name="m", model_version="1")


TICKET = TicketIn(id="T-1", body="x")


def test_queue_follows_a_confident_category_and_priority_follows_urgency():
    routing = DefaultRoutingPolicy().route(TICKET, {"category": _prediction("billing"), "urgency": _prediction("high")})
    assert (routing.queue, routing.priority) == ("billing", "P2")


def test_uncertain_or_missing_category_goes_to_triage():
    policy = DefaultRoutingPolicy()
    assert policy.route(TICKET, {"category": _prediction("billing", 0.3, needs_review=True)}).queue == "triage"
    assert policy.route(TICKET, {}).queue == "triage"
    assert policy.route(TICKET, {}).priority == "P3"


def test_angry_enterprise_customers_go_up_two_levels_but_not_past_p1():
    ticket = TicketIn(id="T-1", body="x", customer_tier="Enterprise")
    low = DefaultRoutingPolicy().route(ticket, {"urgency": _prediction("low"), "sentiment": _prediction("negative", 0.8)})
    assert low.priority == "P2" and len(low.reasons) == 4
    critical = DefaultRoutingPolicy().route(ticket, {"urgency": _prediction("critical"),
                                                     "sentiment": _prediction("negative", 0.8)})
    assert critical.priority == "P1"


def test_weak_negative_sentiment_does_not_raise_priority():
    routing = DefaultRoutingPolicy(negative_confidence=0.9).route(
        TICKET, {"urgency": _prediction("medium"), "sentiment": _prediction("negative", 0.8)})
    assert routing.priority == "P3"


def test_the_default_policy_satisfies_the_protocol():
    policy: RoutingPolicy = DefaultRoutingPolicy()
    assert policy.name == "default"
