"""Routing recommendations: which queue a ticket goes to and at what priority.

The policy is pluggable (``RoutingPolicy``): the after-hours policy of a later issue
implements the same protocol and replaces ``DefaultRoutingPolicy`` in the service.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from serving.schemas import Routing, TaskPrediction, TicketIn

TRIAGE_QUEUE = "triage"
PRIORITIES = ("P1", "P2", "P3", "P4")
#: Base priority of each urgency label.
URGENCY_PRIORITY = {"critical": 0, "high": 1, "medium": 2, "low": 3}


class RoutingPolicy(Protocol):
    name: str

    def route(self, ticket: TicketIn, predictions: Mapping[str, TaskPrediction]) -> Routing: ...


class DefaultRoutingPolicy:
    """Queue from the category; priority from urgency, raised for anger and for key tiers.

    - queue: the predicted category, or ``triage`` when there is no category model
      or its prediction needs review;
    - priority: the most likely urgency mapped to P1..P4 (P3 without an urgency model),
      one level higher for a confident negative sentiment and one for a priority tier.
    """

    name = "default"

    def __init__(self, negative_confidence: float = 0.7, priority_tiers: tuple[str, ...] = ("enterprise",)):
        self.negative_confidence = negative_confidence
        self.priority_tiers = frozenset(t.lower() for t in priority_tiers)

    def route(self, ticket: TicketIn, predictions: Mapping[str, TaskPrediction]) -> Routing:
        reasons: list[str] = []
        queue = self._queue(predictions.get("category"), reasons)
        level = self._base_level(predictions.get("urgency"), reasons)
        sentiment = predictions.get("sentiment")
        if sentiment is not None and sentiment.label == "negative" and sentiment.confidence >= self.negative_confidence:
            level -= 1
            reasons.append(f"raised one level: negative sentiment ({sentiment.confidence:.2f})")
        tier = (ticket.customer_tier or "").lower()
        if tier in self.priority_tiers:
            level -= 1
            reasons.append(f"raised one level: {tier} customer")
        return Routing(queue=queue, priority=PRIORITIES[max(0, min(level, 3))], reasons=reasons, policy=self.name)

    @staticmethod
    def _queue(category: TaskPrediction | None, reasons: list[str]) -> str:
        if category is None:
            reasons.append("queue triage: no category model")
            return TRIAGE_QUEUE
        if category.needs_review:
            reasons.append(f"queue triage: category {category.label!r} needs review ({category.confidence:.2f})")
            return TRIAGE_QUEUE
        reasons.append(f"queue from category {category.label!r}")
        return category.label

    @staticmethod
    def _base_level(urgency: TaskPrediction | None, reasons: list[str]) -> int:
        if urgency is None or urgency.label not in URGENCY_PRIORITY:
            reasons.append("priority P3: no urgency prediction")
            return 2
        level = URGENCY_PRIORITY[urgency.label]
        reasons.append(f"priority {PRIORITIES[level]} from urgency {urgency.label!r}")
        return level
