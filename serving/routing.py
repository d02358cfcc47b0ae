"""Routing recommendations: which queue a ticket goes to, at what priority, and what happens now.

The policy is pluggable (``RoutingPolicy``). The service uses ``PolicyRouter``: the
round-the-clock policy of ``serving/policy`` (business hours, follow-the-sun, SLA,
on-call, acknowledgements) read from a YAML file. ``DefaultRoutingPolicy`` is the
simple queue-and-priority policy without a clock, kept for callers that want no
calendar.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from serving.schemas import ReassessIn, Routing, TaskPrediction, TicketIn

logger = logging.getLogger("nightdesk.routing")

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


class PolicyRouter:
    """The round-the-clock policy behind the ``RoutingPolicy`` protocol (clock and article search injected)."""

    def __init__(self, policy, search: Callable[[str], list] | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 search_many: Callable[[Sequence[str]], list[list]] | None = None) -> None:
        self.policy = policy
        self.name = policy.name
        self.search = search
        self.clock = clock
        if search_many is None and search is not None:
            search_many = lambda texts: [search(text) for text in texts]  # noqa: E731
        self.search_many = search_many

    def route_many(self, tickets: Sequence[TicketIn], predictions: Sequence[Mapping[str, TaskPrediction]]
                   ) -> list[Routing]:
        """``route`` for a batch at one moment, its help articles searched together (``decide_many``)."""
        from serving.policy import decide_many

        return decide_many(self.policy, tickets, predictions, self.clock(), search_many=self.search_many,
                           escalate=False)

    def route(self, ticket: TicketIn, predictions: Mapping[str, TaskPrediction]) -> Routing:
        from serving.policy import decide

        # A first triage: an old ticket's SLA status is reported, but only a reassessment escalates it.
        return decide(self.policy, ticket, predictions, self.clock(), search=self.search, escalate=False)

    def reassess(self, ticket_id: str, request: ReassessIn) -> Routing:
        """The decision for a still unanswered ticket (see ``ReassessIn`` for the times)."""
        from serving.policy import reassess

        if request.ticket.id != ticket_id:
            raise RequestFieldError(("body", "ticket", "id"),
                                    f"ticket.id {request.ticket.id[:60]!r} differs from the path's {ticket_id[:60]!r}")
        received, now = reassessment_times(request, self.clock())
        return reassess(self.policy, request.ticket, request.predictions, now, received, search=self.search)


class RequestFieldError(ValueError):
    """A request that is well-formed but inconsistent; ``loc`` names the field (as in a 422 answer)."""

    def __init__(self, loc: tuple[str, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc

    def detail(self) -> list[dict]:
        return [{"loc": list(self.loc), "msg": str(self), "type": "value_error"}]


def reassessment_times(request: ReassessIn, server_now: datetime) -> tuple[datetime, datetime]:
    """``(received, now)`` of a reassessment.

    - ``now`` given: the decision is taken at ``now``; received is ``created_at``,
      else ``now - elapsed_minutes``.
    - only ``elapsed_minutes``: received is ``created_at`` and now = received +
      elapsed; without ``created_at``, now is the server's clock.
    - neither: now is the server's clock, received is ``created_at``.
    """
    created = request.ticket.created_at
    elapsed = timedelta(minutes=request.elapsed_minutes) if request.elapsed_minutes is not None else None
    if request.now is not None:
        now = request.now
        received = created if created is not None else now - (elapsed or timedelta())
    elif elapsed is not None:
        received = created if created is not None else server_now - elapsed
        now = received + elapsed
    else:
        now, received = server_now, created if created is not None else server_now
    if created is not None and now < created:
        raise RequestFieldError(("body", "now"), "the reassessment time is before the ticket's created_at")
    return received, now


def load_routing_policy(policy_file: Path | None = None, kb_index: Path | None = None) -> PolicyRouter:
    """The service's router: the policy file (default: the shipped example) and the help-article search.

    A bad policy file stops the service (``PolicyError`` names file, key and
    problem). A missing help-article index is built in memory from the shipped
    sample articles; an unusable one is logged and acknowledgements go without links.
    """
    from serving.policy import default_policy_path, load_policy

    policy = load_policy(policy_file or default_policy_path())
    knowledge_base = _knowledge_base(kb_index, policy.spec.acknowledgement.max_articles)
    if knowledge_base is None:
        return PolicyRouter(policy)
    limit = policy.spec.acknowledgement.max_articles
    return PolicyRouter(policy, search=lambda text: knowledge_base.search(text, k=limit),
                        search_many=lambda texts: knowledge_base.search_many(texts, k=limit))


def route_all(policy: RoutingPolicy, tickets: Sequence[TicketIn],
              predictions: Sequence[Mapping[str, TaskPrediction]]) -> list[Routing]:
    """Every ticket's routing, with the policy's batch form (``route_many``) when it has one."""
    route_many = getattr(policy, "route_many", None)
    if route_many is not None:
        return route_many(tickets, predictions)
    return [policy.route(ticket, p) for ticket, p in zip(tickets, predictions)]


def _knowledge_base(index: Path | None, limit: int):
    if limit == 0:
        return None
    try:
        from serving.kb import IndexNotFoundError, KnowledgeBase, KnowledgeBaseError
    except ImportError:  # the knowledge-base module is optional for routing
        return None
    try:
        if index is None:
            raise IndexNotFoundError("no index configured")
        knowledge_base = KnowledgeBase.load(index)
    except IndexNotFoundError:
        logger.info("no help-article index at %s: indexing the shipped sample articles", index)
        knowledge_base = KnowledgeBase.build()
    except KnowledgeBaseError as error:
        logger.error("help articles unavailable, acknowledgements go without links: %s", error)
        return None
    return knowledge_base


def page_request(ticket: TicketIn, routing: Routing):
    """The on-call page for a ``page_on_call`` decision (text masked: a pager is no place for personal data)."""
    from features.masking import mask_pii
    from serving.paging import PageRequest

    what = mask_pii((ticket.subject or ticket.body).strip())[:200]
    due = routing.sla.first_response.due_utc.isoformat() if routing.sla else None
    return PageRequest(
        ticket_id=ticket.id,
        summary=f"{routing.priority} {routing.queue}: {what} (ticket {ticket.id})",
        severity="critical" if routing.priority == "P1" else "error",
        custom_details={
            "queue": routing.queue, "priority": routing.priority, "tier": routing.tier, "signals": routing.signals,
            "next_team": routing.team, "next_shift_start": routing.team_available_at, "first_response_due": due,
            "escalation": [step.model_dump(mode="json") for step in routing.escalation],
            "reasons": routing.reasons, "policy": routing.policy,
        },
    )


def reassess_router():
    """``POST /tickets/{ticket_id}/reassess`` for the service's mounted FastAPI app.

    422 names the field for bad input (FastAPI's validation, plus a ticket id that
    differs from the path's or a time before ``created_at``); 501 when the served
    policy has no clock. A ``page_on_call`` decision is paged in the background.
    """
    from fastapi import APIRouter
    from fastapi.responses import JSONResponse

    router = APIRouter(tags=["Routing"])

    @router.post("/tickets/{ticket_id}/reassess", response_model=Routing,
                 summary="Re-decide a still unanswered ticket after elapsed_minutes (or at now): priority raised "
                         "and on-call paged as the first-response deadline nears or passes")
    def reassess(ticket_id: str, request: ReassessIn):
        import bentoml

        service = bentoml.get_current_service()
        policy = service.routing
        if not hasattr(policy, "reassess"):
            return JSONResponse({"detail": f"routing policy {policy.name!r} cannot reassess"}, status_code=501)
        try:
            routing = policy.reassess(ticket_id, request)
        except RequestFieldError as error:
            return JSONResponse({"detail": error.detail()}, status_code=422)
        service.page_if_needed(request.ticket, routing)
        return routing

    return router
