"""The routing hot path's fast forms give exactly what the plain ones give: the combined signal screen,
the signals' required substrings, lower-cased matching and both SLA deadlines from one walk over the shifts."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from policy_helpers import make_policy

from serving.policy import PRIORITIES
from serving.policy.calendar import add_business_minutes, add_business_minutes_many
from serving.policy.compiled import CompiledSignal, lowered_regex, required_substrings, signal_screen
from serving.policy.decide import deadlines
from serving.schemas import SlaDeadlines
from training.sample import generate_tickets

PROFILE = settings.get_profile("policy")
# Clock changes (US, EU, Australia) and the years around them.
TRANSITIONS = tuple(datetime(*args, tzinfo=UTC) for args in [
    (2026, 3, 8, 7), (2026, 11, 1, 6), (2026, 3, 29, 1), (2026, 10, 25, 1), (2026, 4, 4, 16), (2025, 10, 26, 1)])
instants = st.one_of(
    st.datetimes(datetime(2024, 1, 1), datetime(2028, 12, 31), timezones=st.just(UTC)),
    st.builds(lambda base, minutes: base + timedelta(minutes=minutes), st.sampled_from(TRANSITIONS),
              st.integers(-3 * 1440, 3 * 1440)))
durations = st.one_of(st.integers(1, 80 * 60), st.floats(0.0, 5000.0, allow_nan=False))

# Near-misses and look-alikes of the shipped signal words, case and Unicode variants, word boundaries.
TRICKY = [
    "", "the site is down", "THE APP IS UNAVAILABLE", "apps are unavailable", "503 error", "5030 error",
    "we were hacked!", "hackers", "hacking", "unhacked", "unauthorised logins", "UNAUTHORIZED CHARGES",
    "card was declined", "carddeclined", "refund has never arrived", "charged me twice", "double-charged",
    "lost all our files", "files were wiped", "data loss", "datalosses", "ſtolen", "\u212aey stolen",
    "STOLEN", "stolen\n", "x" * 5000 + " outage", "outage" + "y" * 10, "phishing\u00e9", "breached.",
]


def _texts() -> list[str]:
    frame = generate_tickets(300, seed=5)
    sample = [f"{s}\n{b}" for s, b in zip(frame.subject, frame.body)]
    rng = random.Random(3)
    spliced = [f"{rng.choice(sample)} {rng.choice(TRICKY)} {rng.choice(sample)[:40]}" for _ in range(300)]
    return TRICKY + sample + spliced


def test_the_signal_screen_finds_exactly_the_signals_the_patterns_find(example):
    assert example.signal_screen is not None  # the shipped patterns combine
    texts = _texts()
    found = [[s.name for s in example.find_signals(text)] for text in texts]
    assert found == [[s.name for s in example.signals if s.regex.search(text)] for text in texts]
    assert sum(map(bool, found)) > 50 and sum(not f for f in found) > 50  # both branches exercised


def test_the_shipped_signals_are_matched_on_lower_cased_text_with_the_same_result(example):
    assert example.lowered is not None and example.lowered_needs is not None  # the fast forms are in use
    texts = _texts()
    assert sum(text.isascii() for text in texts) > 300 and not all(text.isascii() for text in texts)
    found = [[s.name for s in example.find_signals(text)] for text in texts]
    assert found == [[s.name for s in example.signals if s.regex.search(text)] for text in texts]


# Patterns that may run on lower-cased text, and texts that try them: letters of both cases,
# classes and ranges, escapes, lookarounds, back-references by name.
LOWERABLE = [r"\bdown\b", r"[a-f]+x", r"[^a-z]{2}", r"ab?c[- ]d", r"\d{3} error", r"\w+@\w+", r"(?<!un)lock",
             r"(ab)-x", r"[]a]b", r"[0-9a-c_]z", r"x(?=y)", r"\.\*"]
NOT_LOWERABLE = [r"Down", r"[0-_]", r"[A-Z]", r"\x41", r"\101", r"(?-i:down)", r"(?i)down", r"\Bx", r"\Sx",
                 r"[\d-z]", r"\N{DIGIT ONE}", r"(?#c)x", r"[!-~]", r"\n"]
HITS = ["The site is DOWN", "FAX", "x1", "AbC-D", "ab D", "503 ERROR", "Jo@Example", "UNLOCK, Lock", "AB-X",
        "]B", "9Z", "C_Z", "XY", "X.*", "Ab-ab"]
ascii_texts = st.one_of(
    st.text(st.sampled_from("abcdefxyzABCDEFXYZ019_-@.* []!\n\t^~`{"), max_size=40),
    st.builds(lambda a, b: f"{a} {b}", st.sampled_from(HITS), st.sampled_from(HITS)))


def test_which_patterns_may_run_on_lower_cased_text():
    assert all(lowered_regex(p) is not None for p in LOWERABLE)
    # Every lowerable pattern meets a text it matches, in upper or mixed case.
    assert all(any(re.search(p, t, re.IGNORECASE) and t != t.lower() for t in HITS) for p in LOWERABLE)
    assert [p for p in NOT_LOWERABLE if lowered_regex(p) is not None] == []


@settings(PROFILE)
@given(st.sampled_from(LOWERABLE), ascii_texts)
def test_a_lowered_pattern_finds_what_the_case_insensitive_one_finds(pattern, text):
    found = re.compile(pattern, re.IGNORECASE).search(text)
    lowered = lowered_regex(pattern).search(text.lower())
    assert (found is None) == (lowered is None)
    if found is not None:
        assert found.span() == lowered.span()


def test_required_substrings_read_off_a_pattern():
    assert required_substrings(r"\b(hack(ed|er)?|breach)\b") == {"hack", "breach"}
    assert required_substrings(r"(cat|dog)s") == {"cat", "dog"}  # the set with the longer strings
    assert required_substrings(r"50[234] error") == {" error"}
    assert required_substrings(r"(charged|charged twice|x[yz])") == {"charged", "x"}  # "charged" covers the second
    assert required_substrings(r"x(?=yz)") == {"x"}  # a lookahead's text need not be in the match
    for unknown in (r"\w+", r"(x|\d)", r"x{0,3}", r"a|", r"[^a]", r"(?i:ab)", ""):
        assert required_substrings(unknown) is None, unknown


@settings(PROFILE)
@given(st.sampled_from(LOWERABLE + [r"\b(is|are) down\b", r"(cat|dog)s?", r"a(b|)c", r"(?:ab)+x"]),
       ascii_texts.map(str.lower))
def test_a_text_without_the_required_substrings_never_matches(pattern, text):
    needs = required_substrings(pattern)
    if needs is not None and re.search(pattern, text):
        assert any(part in text for part in needs)


def _signals(*patterns: str) -> tuple[CompiledSignal, ...]:
    class Spec:
        def __init__(self, pattern):
            self.pattern = pattern

    return tuple(CompiledSignal(f"s{i}", re.compile(p, re.IGNORECASE), Spec(p)) for i, p in enumerate(patterns))


def test_patterns_whose_meaning_depends_on_context_are_not_combined():
    assert signal_screen(_signals(r"\bdown\b", r"(a)b")) is not None
    assert signal_screen(_signals(r"\bdown\b")) is None  # one pattern: nothing to gain
    assert signal_screen(_signals(r"\bdown\b", r"(a)\1")) is None  # \1 would name another group
    assert signal_screen(_signals(r"(?P<w>x)", r"(?P<w>y)")) is None  # the same group name twice
    assert signal_screen(_signals(r"(?i)down", r"up")) is None  # global flags only open a pattern
    assert signal_screen(_signals(r"(?P<w>x)(?P=w)", r"up")) is None


@settings(PROFILE)
@given(instants, st.lists(durations, min_size=1, max_size=4), st.sampled_from(["billing", "technical", "general"]))
def test_deadlines_from_one_walk_equal_one_walk_each(example, start, minutes, queue):
    coverage = example.coverages[queue]
    assert add_business_minutes_many(coverage, start, minutes) == [add_business_minutes(coverage, start, m)
                                                                   for m in minutes]


@settings(PROFILE)
@given(instants, st.sampled_from(["billing", "security", "general"]), st.sampled_from(["premium", "standard"]),
       st.sampled_from(PRIORITIES), st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"]))
def test_deadlines_are_the_one_walk_sums_and_round_trip(example, received, queue, tier, priority, zone):
    sla = deadlines(example, queue, tier, priority, received, zone)
    assert SlaDeadlines.model_validate(sla.model_dump()) == sla
    assert sla.model_dump_json() == SlaDeadlines(**sla.model_dump()).model_dump_json()
    target = example.spec.sla[tier][priority]
    coverage = example.coverages[queue] if target.clock == "business" else None
    for deadline, minutes in ((sla.first_response, target.first_response), (sla.resolution, target.resolution)):
        plain = (add_business_minutes(coverage, received, minutes) if coverage
                 else received + timedelta(minutes=minutes))
        assert deadline.due_utc == plain and deadline.target_minutes == minutes


def test_a_policy_without_combinable_patterns_still_finds_its_signals(example_raw):
    raw = {**example_raw, "priority": {**example_raw["priority"], "signals": {
        "echo": {"pattern": r"\b(\w+) \1\b", "min_priority": "P2"},
        "outage": {"pattern": r"\boutage\b", "min_priority": "P1"}}}}
    policy = make_policy(raw)
    assert policy.signal_screen is None
    assert [s.name for s in policy.find_signals("the the outage")] == ["echo", "outage"]
    assert [s.name for s in policy.find_signals("an Outage")] == ["outage"]


def test_deadlines_beyond_the_cached_span_are_walked_in_full(example):
    coverage = example.coverages["billing"]
    start = datetime(2026, 3, 27, 16, 59, 30, tzinfo=UTC)  # a Friday afternoon before the EU clock change
    minutes = [30, 60 * 400, 60 * 2000]  # the last two reach weeks past the cached days
    assert add_business_minutes_many(coverage, start, minutes) == [add_business_minutes(coverage, start, m)
                                                                   for m in minutes]
    span = coverage.covered_span(start)
    assert add_business_minutes(coverage, start, 60 * 400) > span.complete_until  # the fallback was needed
