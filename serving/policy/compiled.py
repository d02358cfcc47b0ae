"""A checked policy made ready for per-ticket use: calendars, coverages and regexes built once at load."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

from serving.casefold import ascii_probe
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
    #: For each lowered regex, strings one of which every match contains (``required_substrings``);
    #: None unless known for every signal. Testing them with ``in`` screens a text about three times
    #: faster than the regex screen, and only the signals whose strings occur are searched.
    lowered_needs: tuple[frozenset[str], ...] | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    def find_signals(self, text: str) -> list[CompiledSignal]:
        """The signals whose pattern occurs in ``text``, in policy order."""
        target, screen, regexes = text, self.signal_screen, [s.regex for s in self.signals]
        if self.lowered is not None:
            lowered = text.lower()
            if text.isascii():
                # Case-insensitive matching costs about twice as much per character as exact matching;
                # on ASCII text, these patterns find the same in the lower-cased text (``lowered_regex``).
                target, (screen, regexes) = lowered, self.lowered
            if self.lowered_needs is not None:
                # Only a signal one of whose required strings occurs can match: a few substring tests
                # instead of the screen, and only those signals are searched (the search decides).
                probe = lowered if lowered.isascii() else ascii_probe(lowered)
                return [signal for signal, regex, needs in zip(self.signals, regexes, self.lowered_needs)
                        if any(map(probe.__contains__, needs)) and regex.search(target)]
        if screen is not None and screen.search(target) is None:
            return []  # the alternation matches wherever any one of the patterns does
        return [signal for signal, regex in zip(self.signals, regexes) if regex.search(target)]

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
    lowered = lowered_signals(screen, signals)
    needs = None if lowered is None else tuple(required_substrings(regex.pattern) for regex in lowered[1])
    return Policy(spec, calendars, coverages, team_coverages, queue_teams, signals, tier_of_value, zones, source,
                  screen, lowered, needs if needs is not None and all(needs) else None)


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


def required_substrings(pattern: str) -> frozenset[str] | None:
    """Non-empty strings of which every match of ``pattern`` (compiled as is, case-sensitive) contains
    at least one, or None when none are known (``\\w+``, say): a text holding none of them cannot match.

    Read off the pattern's parse tree: a run of literals (zero-width assertions such as ``\\b``
    between them keep them adjacent), a group, an alternation whose every branch has its own strings,
    a repeat of at least once, a class of plain characters; of a sequence's sets, the one whose
    shortest string is longest. Anything else (another Python's parser, say) gives None.
    """
    try:
        from re import _constants as codes, _parser as parser  # the parser re.compile itself uses

        return _required(parser.parse(pattern).data, codes)
    except Exception:
        return None


def _required(items, codes) -> frozenset[str] | None:
    options: list[frozenset[str]] = []
    run: list[str] = []
    for op, av in [*items, (None, None)]:  # the sentinel ends the last run
        if op is codes.LITERAL:
            run.append(chr(av))
            continue
        if op is codes.AT:  # zero-width: the literals on both sides stay adjacent
            continue
        if run:
            options.append(frozenset(["".join(run)]))
            run = []
        found = None
        if op is codes.SUBPATTERN and not av[1] and not av[2]:  # a group without inline flags
            found = _required(av[3].data, codes)
        elif op is codes.BRANCH:
            branches = [_required(branch.data, codes) for branch in av[1]]
            found = frozenset().union(*branches) if all(branches) else None
        elif op in (codes.MAX_REPEAT, codes.MIN_REPEAT, codes.POSSESSIVE_REPEAT) and av[0] >= 1:
            found = _required(av[2].data, codes)
        elif op is codes.IN and all(kind is codes.LITERAL for kind, _ in av):
            found = frozenset(chr(value) for _, value in av)
        if found:
            options.append(found)
    if not options:
        return None
    best = max(options, key=lambda strings: min(map(len, strings)))
    return frozenset(s for s in best if not any(other != s and other in s for other in best))  # "charged" covers "charged "


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
