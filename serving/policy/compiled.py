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
    #: The screen and each signal's regex for lower-cased ASCII text (None: not every pattern allows it).
    lowered: tuple[re.Pattern[str] | None, tuple[re.Pattern[str], ...]] | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    def find_signals(self, text: str) -> list[CompiledSignal]:
        """The signals whose pattern occurs in ``text``, in policy order."""
        if self.lowered is not None and text.isascii():
            # Case-insensitive matching costs about twice as much per character as exact matching;
            # on ASCII text, these patterns find the same in the lower-cased text (``lowered_regex``).
            text, (screen, regexes) = text.lower(), self.lowered
        else:
            screen, regexes = self.signal_screen, [s.regex for s in self.signals]
        if screen is not None and screen.search(text) is None:
            return []  # the alternation matches wherever any one of the patterns does
        return [signal for signal, regex in zip(self.signals, regexes) if regex.search(text)]

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
    screen = signal_screen(signals)
    return Policy(spec, calendars, coverages, team_coverages, queue_teams, signals, tier_of_value, zones, source,
                  screen, lowered_signals(screen, signals))


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


#: What a pattern may contain for ``lowered_regex``: ASCII without upper-case letters, and escapes only
#: of \b, \d, \s, \w or a punctuation character (never a character by number, like \x41 or \101).
_LOWERABLE = re.compile(r"(?:[\x00-\x40\x5b\x5d-\x7f]|\\[bdsw\W_])*")
#: Group openings whose meaning does not depend on case; any other "(?" (inline flags such as
#: ``(?-i:...)``, which would turn case back on, comments, conditionals) rules lowering out.
_PLAIN_GROUPS = re.compile(r"\(\?(?::|=|!|<=|<!|P<)")


def lowered_regex(pattern: str) -> re.Pattern[str] | None:
    """``pattern`` for lower-cased ASCII text, when that finds exactly what the case-insensitive
    pattern finds in the original text; else None.

    On ASCII text lower-casing only maps A-Z to a-z, one character to one. A pattern
    with no upper-case letter, no inline flags, no escape naming a character by
    number and no class range other than within a-z or 0-9 (``[0-_]`` holds "A"
    but not "a") then matches a lower-cased letter exactly where, ignoring case, it
    matched the original one.
    """
    if _LOWERABLE.fullmatch(pattern) is None or "(?" in _PLAIN_GROUPS.sub("", pattern):
        return None
    if not all("a" <= low <= high <= "z" or "0" <= low <= high <= "9" for low, high in _class_ranges(pattern)):
        return None
    try:
        return re.compile(pattern)
    except re.error:
        return None


def _class_ranges(pattern: str):
    """The (low, high) ends of every range inside a character class of ``pattern`` (an escape
    as an end is given as written, e.g. ``\\d``, so it never passes as a letter or digit)."""
    i, n = 0, len(pattern)
    while i < n:
        if pattern[i] == "\\":
            i += 2
        elif pattern[i] != "[":
            i += 1
        else:
            i += 2 if pattern[i + 1:i + 2] == "^" else 1
            items: list[str] = []
            while i < n and (pattern[i] != "]" or not items):  # "]" first in a class is a literal
                width = 2 if pattern[i] == "\\" else 1
                items.append(pattern[i:i + width])
                i += width
            i += 1
            yield from ((items[k - 1], items[k + 1]) for k in range(1, len(items) - 1) if items[k] == "-")


def lowered_signals(screen: re.Pattern[str] | None, signals: tuple[CompiledSignal, ...]):
    """``Policy.lowered``: every signal's pattern (and the screen) for lower-cased ASCII text, or None."""
    regexes = tuple(lowered_regex(s.spec.pattern) for s in signals)
    if not signals or any(regex is None for regex in regexes):
        return None
    lowered_screen = None if screen is None else lowered_regex(screen.pattern)
    if screen is not None and lowered_screen is None:
        return None
    return lowered_screen, regexes


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
