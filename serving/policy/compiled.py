"""A checked policy made ready for per-ticket use: calendars, coverages and regexes built once at load."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

from serving.policy.calendar import Coverage, TeamCalendar
from serving.policy.spec import PolicySpec, Signal, load_policy_spec, weekly_ranges

#: Holidays are looked up for this many years around the load year up front (later ones lazily).
_HOLIDAY_YEARS_AROUND = 2


@dataclass(frozen=True)
class CompiledSignal:
    name: str
    regex: re.Pattern[str]
    spec: Signal


@dataclass(frozen=True)
class Policy:
    """The policy a ``decide`` call reads: the spec plus everything precomputed from it."""

    spec: PolicySpec
    calendars: dict[str, TeamCalendar]
    #: queue -> the union of its teams' shifts (the business clock of its SLA).
    coverages: dict[str, Coverage]
    #: team -> its own shifts, merged (an overnight range may run into the next day's).
    team_coverages: dict[str, Coverage]
    #: queue -> its teams in follow-the-sun order.
    queue_teams: dict[str, tuple[str, ...]]
    signals: tuple[CompiledSignal, ...]
    #: lower-cased customer_tier value -> policy tier.
    tier_of_value: dict[str, str]
    zones: dict[str, ZoneInfo] = field(default_factory=dict)
    source: str = "<memory>"
    #: All signal patterns as one alternation (None when they cannot be combined): most tickets
    #: carry no signal, and one scan of the text tells so for about half the cost of one per signal.
    signal_screen: re.Pattern[str] | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    def find_signals(self, text: str) -> list[CompiledSignal]:
        """The signals whose pattern occurs in ``text``, in policy order."""
        if self.signal_screen is not None and self.signal_screen.search(text) is None:
            return []  # the alternation matches wherever any one of the patterns does
        return [s for s in self.signals if s.regex.search(text)]

    def zone(self, name: str) -> ZoneInfo:
        zone = self.zones.get(name)
        if zone is None:
            zone = self.zones[name] = ZoneInfo(name)
        return zone


def compile_policy(spec: PolicySpec, source: str = "<memory>", today: date | None = None) -> Policy:
    today = today or date.today()
    calendars = {name: TeamCalendar(name, ZoneInfo(team.timezone), weekly_ranges(team.hours),
                                    _holiday_check(team.holidays, today))
                 for name, team in spec.teams.items()}
    order = spec.follow_the_sun.order
    queue_teams = {name: tuple(t for t in order if t in queue.teams) if queue.teams else order
                   for name, queue in spec.queues.items()}
    coverages = {name: Coverage(calendars[t] for t in teams) for name, teams in queue_teams.items()}
    team_coverages = {name: Coverage([calendar]) for name, calendar in calendars.items()}
    signals = tuple(CompiledSignal(name, re.compile(signal.pattern, re.IGNORECASE), signal)
                    for name, signal in spec.priority.signals.items())
    tier_of_value = {value.lower(): name for name, tier in spec.tiers.items() for value in tier.customer_tiers}
    zones = {name: ZoneInfo(name) for name in {spec.default_customer_timezone, *(t.timezone for t in spec.teams.values())}}
    return Policy(spec, calendars, coverages, team_coverages, queue_teams, signals, tier_of_value, zones, source,
                  signal_screen(signals))


#: Pattern syntax whose meaning changes when the pattern is put inside a bigger one: numbered
#: or named back-references, conditionals and inline flags (global ones must open the pattern).
_CONTEXT_DEPENDENT = re.compile(r"\\[1-9]|\\g<|\(\?P=|\(\?\(|\(\?[aiLmsux-]+[:)]")


def signal_screen(signals: tuple[CompiledSignal, ...]) -> re.Pattern[str] | None:
    """One case-insensitive alternation of every signal pattern, or None when that would not be
    exactly "any of them matches" (fewer than two patterns, or syntax that depends on context)."""
    if len(signals) < 2 or any(_CONTEXT_DEPENDENT.search(s.spec.pattern) for s in signals):
        return None
    try:
        return re.compile("|".join(f"(?:{s.spec.pattern})" for s in signals), re.IGNORECASE)
    except re.error:  # e.g. the same group name in two patterns
        return None


def load_policy(path: str | Path, today: date | None = None) -> Policy:
    """Read, check and compile a policy file (``PolicyError`` names the file, key and problem)."""
    return compile_policy(load_policy_spec(path), str(path), today)


def default_policy_path() -> Path:
    """The example policy shipped with the package (``serving/defaults/policy.yaml``)."""
    return Path(__file__).resolve().parents[1] / "defaults" / "policy.yaml"


def _holiday_check(calendar, today: date):
    if calendar is None:
        return lambda _: False
    import holidays

    years = range(today.year - _HOLIDAY_YEARS_AROUND, today.year + _HOLIDAY_YEARS_AROUND + 1)
    public = holidays.country_holidays(calendar.country, subdiv=calendar.subdivision, years=years)
    extra = frozenset(calendar.extra_dates)
    # A frozen set for the precomputed years keeps the per-request check a set lookup;
    # dates outside them fall back to the holidays object, which computes their year.
    known = frozenset(public) | extra
    first, last = years[0], years[-1]

    def is_holiday(day: date) -> bool:
        if first <= day.year <= last:
            return day in known
        return day in extra or day in public

    return is_holiday
