"""Business-hours calendar math: shifts as UTC intervals, DST-correct through zoneinfo.

A team works weekly ranges of local wall time in its own zone, except on its
holidays. Each local day's ranges are turned into UTC intervals once (and
remembered), so "on shift at t", "next shift start" and "t plus N business
hours" are walks over a short list of intervals. A ``Coverage`` is the union of
several teams' shifts: the hours during which somebody serving a queue works
(follow-the-sun).

Wall times that do not exist (the hour skipped when clocks go forward) are read
with the offset in force before the change, as ``zoneinfo`` does with fold=0.
"""

from __future__ import annotations

import heapq
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

Interval = tuple[datetime, datetime]
#: No team is off work for longer than this; walking further means a broken calendar.
MAX_DAYS_WITHOUT_SHIFT = 400
_DAY_CACHE_LIMIT = 20_000


class TeamCalendar:
    """One team's working time: weekly local ranges minus holidays."""

    def __init__(self, name: str, zone: ZoneInfo, weekly: tuple[tuple[tuple[int, int], ...], ...],
                 is_holiday: Callable[[date], bool] = lambda _: False) -> None:
        if not any(weekly):
            raise ValueError(f"team {name!r} never works")
        self.name = name
        self.zone = zone
        self.weekly = weekly
        self.is_holiday = is_holiday
        self._days: dict[date, tuple[Interval, ...]] = {}

    def shifts_on(self, day: date) -> tuple[Interval, ...]:
        """The UTC intervals of the shifts that start on local date ``day`` (none on a holiday)."""
        cached = self._days.get(day)
        if cached is None:
            cached = self._compute_day(day)
            if len(self._days) >= _DAY_CACHE_LIMIT:
                self._days.clear()
            self._days[day] = cached
        return cached

    def _compute_day(self, day: date) -> tuple[Interval, ...]:
        ranges = self.weekly[day.weekday()]
        if not ranges or self.is_holiday(day):
            return ()
        midnight = datetime(day.year, day.month, day.day)
        return tuple(
            (self._utc(midnight + timedelta(minutes=start)), self._utc(midnight + timedelta(minutes=end)))
            for start, end in ranges
        )

    def _utc(self, wall: datetime) -> datetime:
        return wall.replace(tzinfo=self.zone).astimezone(UTC)

    def first_day(self, t: datetime) -> date:
        """The local day whose shifts a walk from ``t`` looks at first (yesterday's overnight shift may run on)."""
        return t.astimezone(self.zone).date() - timedelta(days=1)

    def shifts_from(self, t: datetime) -> Iterator[Interval]:
        """Shifts (UTC, in order) that end after ``t``, the one in progress first.

        Endless while shifts keep coming (a long target on a thin schedule walks many weeks);
        it stops after ``MAX_DAYS_WITHOUT_SHIFT`` days in a row without one (a calendar with no
        working time left), and the caller reports that.
        """
        day, idle_days = self.first_day(t), 0
        while idle_days < MAX_DAYS_WITHOUT_SHIFT:
            shifts = self.shifts_on(day)
            idle_days = 0 if shifts else idle_days + 1
            for start, end in shifts:
                if end > t:
                    yield start, end
            day += timedelta(days=1)


class Coverage:
    """The union of some teams' shifts: time during which at least one of them works."""

    def __init__(self, calendars: Iterable[TeamCalendar]) -> None:
        self.calendars = tuple(calendars)
        if not self.calendars:
            raise ValueError("a coverage needs at least one team")
        self._unions: dict[tuple[date, ...], CoveredSpan] = {}

    def covered_span(self, t: datetime) -> CoveredSpan:
        """The covered time of the ``UNION_DAYS`` days a walk from ``t`` starts with, merged once and
        remembered per start days (tickets received on the same local day share it)."""
        days = tuple(c.first_day(t) for c in self.calendars)
        span = self._unions.get(days)
        if span is None:
            shifts = sorted(shift for c, first in zip(self.calendars, days)
                            for i in range(UNION_DAYS) for shift in c.shifts_on(first + timedelta(days=i)))
            merged: list[Interval] = []
            for start, end in shifts:
                if merged and start <= merged[-1][1]:
                    merged[-1] = (merged[-1][0], max(merged[-1][1], end))
                else:
                    merged.append((start, end))
            # Shifts of later days start after their local midnight: the union is complete up to the
            # earliest such midnight (a day earlier still, whatever a clock change does to a wall time).
            complete_until = min(c._utc(datetime.combine(first + timedelta(days=UNION_DAYS), datetime.min.time()))
                                 for c, first in zip(self.calendars, days)) - timedelta(days=1)
            span = CoveredSpan([end for _, end in merged], merged, complete_until)
            if len(self._unions) >= _UNION_CACHE_LIMIT:
                self._unions.clear()
            self._unions[days] = span
        return span

    def shifts_from(self, t: datetime) -> Iterator[Interval]:
        """Merged, non-overlapping covered intervals (UTC, in order) that end after ``t``."""
        merged = heapq.merge(*(c.shifts_from(t) for c in self.calendars))
        current: Interval | None = None
        for start, end in merged:
            if current is None:
                current = (start, end)
            elif start <= current[1]:
                current = (current[0], max(current[1], end))
            else:
                yield current
                current = (start, end)
        if current is not None:
            yield current


Schedule = TeamCalendar | Coverage
#: Days of shifts a ``Coverage`` merges per start day for ``add_business_minutes_many``.
UNION_DAYS = 28
_UNION_CACHE_LIMIT = 4096


class CoveredSpan(NamedTuple):
    """Merged covered intervals (UTC, in order), their ends, and the moment up to which they are complete."""

    ends: list[datetime]
    intervals: list[Interval]
    complete_until: datetime

    def shifts_after(self, t: datetime) -> Iterator[Interval]:
        """The intervals ending after ``t``, as long as they are complete (a walk that runs out of
        them must continue on the full calendar)."""
        for start, end in self.intervals[bisect_right(self.ends, t):]:
            if end > self.complete_until:
                return
            yield start, end


def shift_at(schedule: Schedule, t: datetime) -> Interval | None:
    """The covered interval containing ``t`` (start <= t < end), or None when off shift."""
    for start, end in schedule.shifts_from(t):
        return (start, end) if start <= t else None
    return None


def is_on_shift(schedule: Schedule, t: datetime) -> bool:
    return shift_at(schedule, t) is not None


def next_shift_start(schedule: Schedule, t: datetime) -> datetime:
    """``t`` itself when on shift, else the start of the next shift."""
    for start, _ in schedule.shifts_from(t):
        return max(start, t)
    raise ValueError("no shift within the calendar's horizon")


def add_business_minutes(schedule: Schedule, t: datetime, minutes: float) -> datetime:
    """The moment when ``minutes`` of working time have passed since ``t`` (the clock stops off shift)."""
    due = _walk(schedule.shifts_from(t), t, [timedelta(minutes=minutes)])
    if due is None:
        raise ValueError("the calendar's horizon is shorter than the duration")
    return due[0]


def add_business_minutes_many(schedule: Schedule, t: datetime, minutes: Sequence[float]) -> list[datetime]:
    """``[add_business_minutes(schedule, t, m) for m in minutes]`` in one walk over the shifts
    (the same sums of exact ``timedelta``s, so the same moments: a ticket's deadlines share a start).

    A coverage walks its cached span first: the result depends only on the covered time after ``t``,
    not on how it is cut into intervals, and the span holds exactly the shifts the walk would visit first.
    """
    wanted = [timedelta(minutes=m) for m in minutes]
    due = _walk(schedule.covered_span(t).shifts_after(t), t, wanted) if isinstance(schedule, Coverage) else None
    if due is None:
        due = _walk(schedule.shifts_from(t), t, wanted)
    if due is None:
        raise ValueError("the calendar's horizon is shorter than the duration")
    return due


def _walk(shifts: Iterable[Interval], t: datetime, wanted: list[timedelta]) -> list[datetime] | None:
    """When each of the ``wanted`` working times has passed since ``t``, walking ``shifts``
    (in order, ending after ``t``); None when they run out first."""
    order = sorted(range(len(wanted)), key=wanted.__getitem__)
    due: list[datetime] = [t] * len(wanted)
    worked = timedelta()  # working time in the shifts walked so far
    k = 0
    for start, end in shifts:
        start = max(start, t)
        while k < len(order) and wanted[order[k]] - worked <= end - start:
            due[order[k]] = start + (wanted[order[k]] - worked)
            k += 1
        if k == len(order):
            return due
        worked += end - start
    return None


def business_minutes_between(schedule: Schedule, a: datetime, b: datetime) -> float:
    """Working minutes in ``[a, b)`` (0 when b <= a)."""
    total = timedelta()
    if b <= a:
        return 0.0
    for start, end in schedule.shifts_from(a):
        if start >= b:
            break
        total += min(end, b) - max(start, a)
    return total.total_seconds() / 60
