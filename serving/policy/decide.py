"""The routing decision: queue, team, priority, SLA deadlines and exactly one action, with reasons.

``decide`` is a pure function of the policy, the ticket, its predictions and the
time. Called when a ticket arrives it routes it; called later (``reassess``) the
same rules see how much of the first-response target is used up and raise the
priority and escalate as the policy's ``escalation`` section says.

Actions, checked in this order:

1. on shift: ``assign_now`` (``human_review`` instead when a review task's
   prediction is below its ``suggest`` threshold, unless the priority pages);
2. off shift, a paging priority and an on-call chain: ``page_on_call``
   (a critical ticket never waits for the next shift while someone is on call);
3. off shift, a review task below ``suggest``: ``human_review``;
4. off shift, an auto-acknowledge priority whose tasks all reach ``auto_apply``:
   ``auto_acknowledge`` (the drafted reply is sent);
5. otherwise ``queue_for_next_shift`` (the reply is drafted for the agent).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from serving.policy.acknowledge import Search, article_links, draft
from serving.policy.calendar import add_business_minutes, add_business_minutes_many, shift_at
from serving.policy.compiled import Policy
from serving.policy.spec import PRIORITIES, Priority
from serving.schemas import Deadline, EscalationStep, Routing, SlaDeadlines, TicketIn

RoutingDecision = Routing
#: ``search_many(texts) -> articles per text`` (serving.kb.KnowledgeBase.search_many fits).
SearchMany = Callable[[Sequence[str]], Sequence[Sequence[Any]]]
#: Characters of subject + body searched for keyword signals and help articles.
SIGNAL_TEXT_CHARS = 20_000


class PredictionLike(Protocol):
    label: str
    confidence: float
    probabilities: Mapping[str, float]


@dataclass
class Assessment:
    """What the ticket and its predictions say, before the clock is consulted."""

    tier: str
    level: int  # index into PRIORITIES
    queue: str
    signals: list[str]
    levels: dict[str, str]
    review_needed: bool
    reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Staffing:
    team: str
    on_shift: bool
    available_at: datetime


def decide(policy: Policy, ticket: TicketIn, predictions: Mapping[str, PredictionLike], now: datetime, *,
           received_at: datetime | None = None, search: Search | None = None, escalate: bool = True,
           staff_of: Callable[[str], Staffing] | None = None) -> Routing:
    """Route ``ticket`` at ``now``; the SLA clock starts at ``received_at`` (default: its ``created_at``).

    ``escalate=False`` reports the SLA status but leaves the priority (and so the
    paging) as the ticket's own: for a first triage of tickets that may be old.
    ``staff_of(queue)`` may answer ``staff(policy, queue, now)`` from a cache (``decide_many``).
    """
    if now.tzinfo is None:
        raise ValueError("now must carry a time zone")
    now = now.astimezone(UTC)
    received = _received(ticket, received_at, now)
    assessment = assess(policy, ticket, predictions)
    reasons = assessment.reasons
    customer_zone_name = ticket.customer_timezone or policy.spec.default_customer_timezone
    customer_zone = policy.zone(customer_zone_name)

    sla = deadlines(policy, assessment.queue, assessment.tier, PRIORITIES[assessment.level], received,
                    customer_zone_name, customer_zone)
    level, page_priorities = _escalate(policy, assessment, sla, received, now, escalate)
    priority = PRIORITIES[level]

    staffing = staff_of(assessment.queue) if staff_of is not None else staff(policy, assessment.queue, now)
    if staffing.on_shift:
        reasons.append(f"team {staffing.team} is on shift")
    else:
        reasons.append(f"no team of queue {assessment.queue} on shift; {staffing.team} starts "
                       f"{staffing.available_at:%Y-%m-%d %H:%M} UTC")
    action = choose_action(policy, assessment, priority, staffing.on_shift, page_priorities, reasons)

    escalation = []
    if action == "page_on_call":
        timeout = timedelta(minutes=policy.spec.on_call.ack_timeout_minutes)
        escalation = [EscalationStep(contact=who, page_at=now + i * timeout)
                      for i, who in enumerate(policy.spec.on_call.chain)]
    acknowledgement = None
    if action in ("auto_acknowledge", "queue_for_next_shift"):
        # The promise is the first-response deadline; once that has passed, the next shift start.
        reply_by = max(sla.first_response.due_utc, staffing.available_at).astimezone(customer_zone)
        acknowledgement = _acknowledgement(policy, ticket, assessment.queue, staffing.team, reply_by,
                                           customer_zone_name, search, send=action == "auto_acknowledge")
    return Routing(
        queue=assessment.queue, priority=priority, reasons=reasons, policy=policy.name, action=action,
        team=staffing.team, team_on_shift=staffing.on_shift, team_available_at=staffing.available_at,
        tier=assessment.tier, signals=assessment.signals, confidence_levels=assessment.levels, sla=sla,
        acknowledgement=acknowledgement, escalation=escalation,
    )


def decide_many(policy: Policy, tickets: Sequence[TicketIn], predictions: Sequence[Mapping[str, PredictionLike]],
                now: datetime, *, search_many: SearchMany | None = None, escalate: bool = True) -> list[Routing]:
    """``decide`` for each ticket at the same ``now``; the help articles of every drafted
    acknowledgement are found with one ``search_many`` call instead of one search per ticket.

    The routings equal ``decide``'s with ``search=lambda text: search_many([text])[0]``.
    """
    if now.tzinfo is None:
        raise ValueError("now must carry a time zone")
    now = now.astimezone(UTC)
    staffed: dict[str, Staffing] = {}  # who staffs a queue at ``now`` is the same for the whole batch

    def staff_of(queue: str) -> Staffing:
        staffing = staffed.get(queue)
        if staffing is None:
            staffing = staffed[queue] = staff(policy, queue, now)
        return staffing

    routings = [decide(policy, ticket, p, now, escalate=escalate, staff_of=staff_of)
                for ticket, p in zip(tickets, predictions)]
    drafted = [i for i, routing in enumerate(routings) if routing.acknowledgement is not None]
    if search_many is None or not drafted or policy.spec.acknowledgement.max_articles <= 0:
        return routings
    found = search_many([_searched_text(tickets[i]) for i in drafted])
    for i, articles in zip(drafted, found):
        if not articles:  # the draft without links already is the answer
            continue
        routing, ticket = routings[i], tickets[i]
        draft_so_far = routing.acknowledgement
        routing.acknowledgement = _acknowledgement(
            policy, ticket, routing.queue, routing.team, draft_so_far.reply_by_local, routing.sla.customer_timezone,
            lambda _text, found=articles: found, send=draft_so_far.send)
    return routings


def reassess(policy: Policy, ticket: TicketIn, predictions: Mapping[str, PredictionLike], now: datetime,
             received_at: datetime, *, search: Search | None = None) -> Routing:
    """The decision for a still unanswered ticket ``now``, received at ``received_at``."""
    return decide(policy, ticket, predictions, now, received_at=received_at, search=search)


def _received(ticket: TicketIn, received_at: datetime | None, now: datetime) -> datetime:
    received = received_at or ticket.created_at or now
    if received.tzinfo is None:
        raise ValueError("received_at must carry a time zone")
    return min(received.astimezone(UTC), now)  # a clock running fast cannot put the ticket in the future


def assess(policy: Policy, ticket: TicketIn, predictions: Mapping[str, PredictionLike]) -> Assessment:
    """Tier, confidence levels, signals, queue and priority level of a ticket (time plays no part)."""
    spec = policy.spec
    reasons: list[str] = []
    tier = policy.tier_of_value.get((ticket.customer_tier or "").lower(), spec.default_tier)
    levels = {task: confidence_level(policy, task, p.confidence) for task, p in predictions.items()}
    review_needed = False
    for task in spec.confidence.review_tasks:
        if levels.get(task) == "review":
            review_needed = True
            reasons.append(f"{task} {predictions[task].label!r} needs review "
                           f"(confidence {predictions[task].confidence:.2f} below "
                           f"{spec.confidence.tasks[task].suggest:.2f})")
    text = f"{ticket.subject}\n{ticket.body}"[:SIGNAL_TEXT_CHARS]
    signals = policy.find_signals(text)

    queue = _queue(policy, predictions.get("category"), levels.get("category"), signals, reasons)
    level = _base_level(policy, predictions.get("urgency"), reasons)
    sentiment_rule = spec.priority.negative_sentiment
    sentiment = predictions.get("sentiment")
    if sentiment_rule is not None and sentiment is not None and sentiment_rule.raise_priority:
        p = sentiment.probabilities.get(sentiment_rule.label, 0.0)
        if p >= sentiment_rule.min_probability:
            level -= sentiment_rule.raise_priority
            reasons.append(f"raised {sentiment_rule.raise_priority}: P({sentiment_rule.label}) = {p:.2f}")
    tier_raise = spec.tiers[tier].raise_priority
    if tier_raise:
        level -= tier_raise
        reasons.append(f"raised {tier_raise}: tier {tier}")
    for signal in signals:
        if signal.spec.raise_priority:
            level -= signal.spec.raise_priority
            reasons.append(f"raised {signal.spec.raise_priority}: signal {signal.name}")
    for signal in signals:
        floor = signal.spec.min_priority
        if floor is not None and level > PRIORITIES.index(floor):
            level = PRIORITIES.index(floor)
            reasons.append(f"at least {floor}: signal {signal.name}")
    level = max(0, min(level, len(PRIORITIES) - 1))
    reasons.append(f"priority {PRIORITIES[level]}, tier {tier}")
    return Assessment(tier, level, queue, [s.name for s in signals], levels, review_needed, reasons)


def confidence_level(policy: Policy, task: str, confidence: float) -> str:
    thresholds = policy.spec.confidence.tasks.get(task)
    if thresholds is None:
        return "suggest"
    if confidence >= thresholds.auto_apply:
        return "auto_apply"
    if confidence >= thresholds.preselect:
        return "preselect"
    if confidence >= thresholds.suggest:
        return "suggest"
    return "review"


def _queue(policy: Policy, category: PredictionLike | None, level: str | None, signals, reasons: list[str]) -> str:
    spec = policy.spec
    for signal in signals:
        if signal.spec.queue is not None:
            reasons.append(f"queue {signal.spec.queue}: signal {signal.name}")
            return signal.spec.queue
    if category is None:
        reasons.append(f"queue {spec.review_queue}: no category model")
        return spec.review_queue
    if level == "review":
        reasons.append(f"queue {spec.review_queue}: category too uncertain")
        return spec.review_queue
    queue = spec.categories.get(category.label)
    if queue is None:
        reasons.append(f"queue {spec.default_queue}: category {category.label!r} has no queue of its own")
        return spec.default_queue
    reasons.append(f"queue {queue} from category {category.label!r} ({level})")
    return queue


def _base_level(policy: Policy, urgency: PredictionLike | None, reasons: list[str]) -> int:
    rules = policy.spec.priority
    if urgency is None:
        reasons.append(f"base {rules.without_urgency}: no urgency model")
        return PRIORITIES.index(rules.without_urgency)
    for rule in rules.urgency:
        p = sum(urgency.probabilities.get(label, 0.0) for label in rule.labels)
        if p >= rule.min_probability:
            reasons.append(f"base {rule.priority}: P({'+'.join(rule.labels)}) = {p:.2f} >= {rule.min_probability:.2f}")
            return PRIORITIES.index(rule.priority)
    reasons.append(f"base {rules.otherwise}: no urgency rule holds")
    return PRIORITIES.index(rules.otherwise)


def deadlines(policy: Policy, queue: str, tier: str, priority: Priority, received: datetime,
              customer_zone_name: str, customer_zone: ZoneInfo | None = None) -> SlaDeadlines:
    """First-response and resolution deadlines of a ticket received at ``received`` (UTC and customer time)."""
    zone = customer_zone or policy.zone(customer_zone_name)
    target = policy.spec.sla[tier][priority]
    coverage = policy.coverages[queue] if target.clock == "business" else None

    minutes = (target.first_response, target.resolution)
    if coverage is not None:  # both deadlines in one walk over the shifts
        dues = add_business_minutes_many(coverage, received, minutes)
    else:
        dues = [received + timedelta(minutes=m) for m in minutes]
    # Validated, not model_construct: pydantic 2 validates these few typed values faster than
    # model_construct sets them (~1.2 against ~2.2 us a model).
    first, resolution = (Deadline(target_minutes=m, clock=target.clock, due_utc=due, due_local=due.astimezone(zone))
                         for m, due in zip(minutes, dues))
    return SlaDeadlines(tier=tier, customer_timezone=customer_zone_name, received_at=received,
                        first_response=first, resolution=resolution)


def _escalate(policy: Policy, assessment: Assessment, sla: SlaDeadlines, received: datetime,
              now: datetime, escalate: bool) -> tuple[int, tuple[str, ...]]:
    """The priority level and paging priorities once the time already waited is taken into account."""
    rules = policy.spec.escalation
    pages = policy.spec.on_call.page_priorities
    level = assessment.level
    first = sla.first_response
    if now <= received:
        return level, pages
    if now >= first.due_utc:
        sla.status = "breached"
        if not escalate:
            assessment.reasons.append(f"first response overdue since {first.due_utc:%Y-%m-%d %H:%M} UTC")
            return level, pages
        raised = max(0, level - rules.breach_raise)
        assessment.reasons.append(f"first response overdue since {first.due_utc:%Y-%m-%d %H:%M} UTC: "
                                  f"escalated {PRIORITIES[level]} -> {PRIORITIES[raised]}")
        return raised, tuple(dict.fromkeys((*pages, *rules.breach_page_priorities)))
    near_minutes = first.target_minutes * rules.near_breach_fraction
    near_at = (add_business_minutes(policy.coverages[assessment.queue], received, near_minutes)
               if first.clock == "business" else received + timedelta(minutes=near_minutes))
    if now >= near_at:
        sla.status = "near_breach"
        if not escalate:
            return level, pages
        raised = max(0, level - rules.near_breach_raise)
        assessment.reasons.append(f"{rules.near_breach_fraction:.0%} of the first-response target used: "
                                  f"raised {PRIORITIES[level]} -> {PRIORITIES[raised]}")
        return raised, pages
    return level, pages


def staff(policy: Policy, queue: str, now: datetime) -> Staffing:
    """The queue's team on shift now (follow-the-sun with handoff), else the next one to start."""
    teams = policy.queue_teams[queue]
    handoff = timedelta(minutes=policy.spec.follow_the_sun.handoff_minutes)
    on_shift = []
    for rank, team in enumerate(teams):
        shift = shift_at(policy.team_coverages[team], now)
        if shift is not None:
            on_shift.append((shift[0], rank, team, shift[1]))
    if on_shift:
        # The team that came on first keeps the queue until its hand-over window.
        on_shift.sort()
        staying = [entry for entry in on_shift if entry[3] - now > handoff]
        team = (staying or sorted(on_shift, key=lambda e: e[3], reverse=True))[0][2]
        return Staffing(team, True, now)
    starts = []
    for rank, team in enumerate(teams):
        start = next(iter(policy.team_coverages[team].shifts_from(now)))[0]
        starts.append((start, rank, team))
    start, _, team = min(starts)
    return Staffing(team, False, start)


def choose_action(policy: Policy, assessment: Assessment, priority: str, on_shift: bool,
                  page_priorities: tuple[str, ...], reasons: list[str]) -> str:
    on_call = policy.spec.on_call
    pages = priority in page_priorities
    if on_shift:
        if assessment.review_needed and not pages:
            reasons.append("human review: a prediction is below its suggest threshold")
            return "human_review"
        reasons.append("assign now")
        return "assign_now"
    if pages and on_call.chain:
        reasons.append(f"{priority} pages on call when nobody is on shift: {on_call.chain[0]} first")
        return "page_on_call"
    if pages:
        reasons.append(f"{priority} would page, but the policy names no on-call engineer")
    elif assessment.review_needed:
        reasons.append("human review: a prediction is below its suggest threshold")
        return "human_review"
    auto = policy.spec.auto_acknowledge
    if priority in auto.priorities and all(assessment.levels.get(t) == "auto_apply" for t in auto.tasks):
        reasons.append(f"auto-acknowledge: {priority} and {', '.join(auto.tasks)} confident enough to apply")
        return "auto_acknowledge"
    reasons.append("queued for the next shift")
    return "queue_for_next_shift"


def _acknowledgement(policy: Policy, ticket: TicketIn, queue: str, team: str, reply_by: datetime,
                     customer_zone_name: str, search: Search | None, *, send: bool):
    settings = policy.spec.acknowledgement
    issue = policy.spec.queues[queue].title
    subject = ticket.subject.strip()
    if subject:
        issue = f'{issue} ("{subject[:80]}")'
    articles = article_links(search, _searched_text(ticket), settings.max_articles)
    team_title = policy.spec.teams[team].title or team
    return draft(settings, ticket_id=ticket.id, issue=issue, team=team_title,
                 reply_by_local=reply_by, timezone=customer_zone_name,
                 articles=articles, send=send)


def _searched_text(ticket: TicketIn) -> str:
    """What the help articles are searched with."""
    return f"{ticket.subject}\n{ticket.body}"[:SIGNAL_TEXT_CHARS]
