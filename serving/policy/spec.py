"""The routing policy as configuration: the YAML file's shape, checked on load.

Every model forbids unknown keys (a typo is an error, not a silently ignored
setting) and ``load_policy_spec`` turns any problem into a ``PolicyError`` naming
the file, the key path and what is wrong.
"""

from __future__ import annotations

import re
import string
from datetime import date
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

PRIORITIES: tuple[str, ...] = ("P1", "P2", "P3", "P4")
Priority = Literal["P1", "P2", "P3", "P4"]
ACTIONS: tuple[str, ...] = ("page_on_call", "assign_now", "queue_for_next_shift", "auto_acknowledge", "human_review")
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: Placeholders an acknowledgement template may use (filled by ``acknowledge.draft``).
ACK_PLACEHOLDERS = frozenset({"ticket_id", "issue", "team", "reply_by", "timezone", "articles"})

_DURATION = re.compile(r"^\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m(?:in)?)?\s*$")
_HOURS_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names the file, the key and the problem."""


def _minutes(value: object) -> object:
    """``"4h"``, ``"30m"``, ``"1h30m"`` or a number of minutes, as whole minutes."""
    if isinstance(value, bool):
        raise ValueError("a duration is text like '4h', '30m' or '1h30m', or a number of minutes")
    if isinstance(value, int | float):
        return value
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match and (match.group(1) or match.group(2)):
            return int(match.group(1) or 0) * 60 + int(match.group(2) or 0)
    raise ValueError(f"{value!r} is not a duration; write e.g. '4h', '30m' or '1h30m'")


Minutes = Annotated[int, BeforeValidator(_minutes), Field(gt=0)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not an IANA time zone name (e.g. Europe/Dublin)") from None
    return name


class HolidayCalendar(_Strict):
    """Public holidays from the ``holidays`` package, plus the company's own days off."""

    country: str = Field(description="ISO 3166-1 alpha-2 code, e.g. US, IE, SG")
    subdivision: str | None = Field(None, description="state or province code, e.g. CA")
    extra_dates: tuple[date, ...] = ()

    @model_validator(mode="after")
    def _known_country(self) -> HolidayCalendar:
        import holidays

        supported = holidays.list_supported_countries()
        if self.country not in supported:
            raise ValueError(f"country {self.country!r} has no holiday calendar in the holidays package")
        if self.subdivision is not None and self.subdivision not in supported[self.country]:
            raise ValueError(f"subdivision {self.subdivision!r} is not one of {self.country}'s: "
                             f"{', '.join(supported[self.country][:12])}...")
        return self


class Team(_Strict):
    title: str = ""
    timezone: str
    #: Day spec (``mon``, ``mon-fri``, ``sat,sun``) -> list of ``HH:MM-HH:MM`` local ranges.
    #: An end before the start runs past midnight (``22:00-06:00``); ``24:00`` is midnight.
    hours: dict[str, tuple[str, ...]]
    holidays: HolidayCalendar | None = None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, name: str) -> str:
        return _check_zone(name)

    @field_validator("hours")
    @classmethod
    def _valid_hours(cls, hours: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        weekly_ranges(hours)  # raises with the offending day spec or range
        if not any(hours.values()):
            raise ValueError("a team needs at least one working range")
        return hours


def weekly_ranges(hours: dict[str, tuple[str, ...]]) -> tuple[tuple[tuple[int, int], ...], ...]:
    """Per weekday (Monday first), the ``(start, end)`` minutes after local midnight of each range.

    An overnight range ends after 1440 (the next day's early hours).
    """
    days: list[list[tuple[int, int]]] = [[] for _ in WEEKDAYS]
    for spec, ranges in hours.items():
        for day in _days(spec):
            for text in ranges:
                days[day].append(_range(text))
    for day, ranges in enumerate(days):
        ranges.sort()
        for (_, end), (start, _) in zip(ranges, ranges[1:]):
            if start < end:
                raise ValueError(f"ranges on {WEEKDAYS[day]} overlap")
    return tuple(tuple(r) for r in days)


def _days(spec: str) -> list[int]:
    days: list[int] = []
    for part in spec.lower().replace(" ", "").split(","):
        first, _, last = part.partition("-")
        if first not in WEEKDAYS or (last and last not in WEEKDAYS):
            raise ValueError(f"{spec!r} is not a day spec; use mon..sun, a range 'mon-fri' or a list 'sat,sun'")
        a, b = WEEKDAYS.index(first), WEEKDAYS.index(last or first)
        days += list(range(a, b + 1)) if a <= b else [*range(a, 7), *range(0, b + 1)]
    return days


def _range(text: str) -> tuple[int, int]:
    match = _HOURS_RANGE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a range like '08:00-17:30'")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2):
        raise ValueError(f"{text!r} has an impossible time")
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if start == end:
        raise ValueError(f"{text!r} is empty")
    return (start, end if end > start else end + 1440)


class FollowTheSun(_Strict):
    #: Teams in hand-over order (e.g. APAC -> EMEA -> Americas); breaks ties between teams.
    order: tuple[str, ...]
    #: Of the teams on shift, the one that came on first gets new tickets, except in its
    #: last ``handoff_minutes``: then a team that already overlaps with it takes them.
    handoff_minutes: int = Field(30, ge=0, le=240)


class Queue(_Strict):
    #: How the issue is named to the customer ("your billing question").
    title: str
    #: Teams serving the queue, in follow-the-sun order; empty: the follow-the-sun order.
    teams: tuple[str, ...] = ()


class Tier(_Strict):
    #: Values of the ticket's ``customer_tier`` that belong to this tier (case-insensitive).
    customer_tiers: tuple[str, ...]
    #: Priority levels added for this tier (1: P3 -> P2).
    raise_priority: int = Field(0, ge=0, le=3)


class SlaTarget(_Strict):
    first_response: Minutes
    resolution: Minutes
    #: ``business``: the clock runs only while a team of the queue is on shift.
    clock: Literal["business", "calendar"] = "business"

    @model_validator(mode="after")
    def _response_before_resolution(self) -> SlaTarget:
        if self.first_response > self.resolution:
            raise ValueError("first_response is longer than resolution")
        return self


class UrgencyRule(_Strict):
    """Priority ``priority`` when the urgency probabilities of ``labels`` sum to ``min_probability`` or more."""

    priority: Priority
    labels: tuple[str, ...] = Field(min_length=1)
    min_probability: Probability


class SentimentRule(_Strict):
    label: str = "negative"
    min_probability: Probability = 0.7
    raise_priority: int = Field(1, ge=0, le=3)


class Signal(_Strict):
    """A keyword or regular-expression signal in the subject or body (case-insensitive)."""

    pattern: str
    #: The ticket gets at least this priority.
    min_priority: Priority | None = None
    raise_priority: int = Field(0, ge=0, le=3)
    #: Route to this queue instead of the category's.
    queue: str | None = None

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, pattern: str) -> str:
        try:
            re.compile(pattern)
        except re.error as error:
            raise ValueError(f"pattern is not a valid regular expression: {error}") from None
        return pattern


class PriorityRules(_Strict):
    #: Checked in order; the first rule that holds sets the base priority.
    urgency: tuple[UrgencyRule, ...] = Field(min_length=1)
    #: Base priority when no urgency rule holds.
    otherwise: Priority = "P4"
    #: Base priority when there is no urgency model.
    without_urgency: Priority = "P3"
    negative_sentiment: SentimentRule | None = SentimentRule()
    signals: dict[str, Signal] = {}


class OnCall(_Strict):
    #: Priorities that page the on-call engineer when no team of the queue is on shift.
    page_priorities: tuple[Priority, ...] = ("P1",)
    #: Who is paged, in order; the next one is paged when the previous has not acknowledged.
    chain: tuple[str, ...] = ()
    ack_timeout_minutes: int = Field(15, gt=0, le=24 * 60)


class ConfidenceLevels(_Strict):
    """A task's confidence thresholds: below ``suggest`` the ticket goes to human review."""

    suggest: Probability
    preselect: Probability
    auto_apply: Probability

    @model_validator(mode="after")
    def _ordered(self) -> ConfidenceLevels:
        if not self.suggest <= self.preselect <= self.auto_apply:
            raise ValueError("thresholds must satisfy suggest <= preselect <= auto_apply")
        return self


class Confidence(_Strict):
    tasks: dict[Literal["urgency", "category", "sentiment"], ConfidenceLevels]
    #: Tasks whose label below ``suggest`` sends the ticket to human review.
    review_tasks: tuple[Literal["urgency", "category", "sentiment"], ...] = ("category", "urgency")


class AutoAcknowledge(_Strict):
    #: Off shift, tickets of these priorities whose ``tasks`` all reach ``auto_apply``
    #: are acknowledged automatically (the drafted reply is sent, not only suggested).
    priorities: tuple[Priority, ...] = ("P3", "P4")
    tasks: tuple[Literal["urgency", "category", "sentiment"], ...] = ("category", "urgency")


class Escalation(_Strict):
    """What ``reassess`` does as the first-response deadline comes near or passes."""

    #: Share of the first-response target used up that counts as "near".
    near_breach_fraction: float = Field(0.75, gt=0.0, lt=1.0)
    near_breach_raise: int = Field(1, ge=0, le=3)
    breach_raise: int = Field(1, ge=0, le=3)
    #: Once breached, these priorities page the on-call engineer when nobody is on shift.
    breach_page_priorities: tuple[Priority, ...] = ("P1", "P2")


class AcknowledgementText(_Strict):
    #: ``str.format`` template; placeholders: ticket_id, issue, team, reply_by, timezone, articles
    #: (``articles`` is a short paragraph listing the links, empty when none matched).
    template: str
    #: Help articles linked at most (the knowledge base's own score floor applies).
    max_articles: int = Field(3, ge=0, le=3)

    @field_validator("template")
    @classmethod
    def _known_placeholders(cls, template: str) -> str:
        try:
            names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
        except ValueError as error:
            raise ValueError(f"template is not a valid format string: {error}") from None
        unknown = names - ACK_PLACEHOLDERS
        if unknown:
            raise ValueError(f"unknown placeholder(s) {sorted(unknown)}; allowed: {sorted(ACK_PLACEHOLDERS)}")
        return template


class PolicySpec(_Strict):
    name: str
    description: str = ""
    #: The customer's zone when a ticket has no ``customer_timezone``.
    default_customer_timezone: str = "UTC"
    teams: dict[str, Team] = Field(min_length=1)
    follow_the_sun: FollowTheSun
    queues: dict[str, Queue] = Field(min_length=1)
    #: Predicted category -> queue; a category not listed goes to ``default_queue``.
    categories: dict[str, str] = {}
    default_queue: str
    #: Where tickets whose category is too uncertain (or unknown) go.
    review_queue: str
    tiers: dict[str, Tier] = Field(min_length=1)
    default_tier: str
    #: tier -> priority -> targets; every tier needs every priority.
    sla: dict[str, dict[Priority, SlaTarget]]
    priority: PriorityRules
    on_call: OnCall
    confidence: Confidence
    auto_acknowledge: AutoAcknowledge = AutoAcknowledge()
    escalation: Escalation = Escalation()
    acknowledgement: AcknowledgementText

    @field_validator("default_customer_timezone")
    @classmethod
    def _zone(cls, name: str) -> str:
        return _check_zone(name)

    @model_validator(mode="after")
    def _references(self) -> PolicySpec:
        teams, queues = set(self.teams), set(self.queues)
        _known("follow_the_sun.order", self.follow_the_sun.order, teams, "team")
        if set(self.follow_the_sun.order) != teams:
            missing = sorted(teams - set(self.follow_the_sun.order))
            raise ValueError(f"follow_the_sun.order: teams {missing} are missing (list every team once)")
        for name, queue in self.queues.items():
            _known(f"queues.{name}.teams", queue.teams, teams, "team")
        for category, queue in self.categories.items():
            _known(f"categories.{category}", (queue,), queues, "queue")
        _known("default_queue", (self.default_queue,), queues, "queue")
        _known("review_queue", (self.review_queue,), queues, "queue")
        _known("default_tier", (self.default_tier,), set(self.tiers), "tier")
        for name, signal in self.priority.signals.items():
            if signal.queue is not None:
                _known(f"priority.signals.{name}.queue", (signal.queue,), queues, "queue")
        for tier in self.tiers:
            if tier not in self.sla:
                raise ValueError(f"sla: tier {tier!r} has no targets")
            missing = [p for p in PRIORITIES if p not in self.sla[tier]]
            if missing:
                raise ValueError(f"sla.{tier}: no targets for {', '.join(missing)}")
        _known("sla", tuple(self.sla), set(self.tiers), "tier")
        seen: dict[str, str] = {}
        for name, tier in self.tiers.items():
            for value in tier.customer_tiers:
                if value.lower() in seen:
                    raise ValueError(f"tiers.{name}.customer_tiers: {value!r} is also in tier {seen[value.lower()]!r}")
                seen[value.lower()] = name
        return self


def _known(key: str, names: tuple[str, ...], known: set[str], kind: str) -> None:
    for name in names:
        if name not in known:
            raise ValueError(f"{key}: unknown {kind} {name!r} (known: {', '.join(sorted(known))})")


def load_policy_spec(path: str | Path) -> PolicySpec:
    """Read and check a policy file; any problem raises ``PolicyError`` naming file, key and cause."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise PolicyError(f"{path}: cannot read the policy file: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise PolicyError(f"{path}: not valid YAML{where}: {getattr(error, 'problem', None) or error}") from None
    if not isinstance(raw, dict):
        raise PolicyError(f"{path}: a policy file is a mapping of keys (name, teams, queues, ...)")
    try:
        return PolicySpec.model_validate(raw)
    except ValidationError as error:
        raise PolicyError(f"{path}: " + "; ".join(_describe(e) for e in error.errors())) from None


def _describe(error: dict) -> str:
    key = ".".join(str(part) for part in error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key (a typo?)"
    return f"{key}: {message}" if key else message
