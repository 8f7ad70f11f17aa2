"""Surges: what rose beyond its season, and where (issue 23, `hotspots:`).

A run tests every category x area series at each configured level (district,
township) for every week whose Monday falls in the month (`weekly_surges`,
improved Farrington), or for one day (`daily_warnings`, EARS C2 or EWMA). What
turns an alarm into a flag, for both:

- Benjamini-Hochberg over all tests of the run (`fdr_q`): hundreds of series
  are tested at once, so each test's own level would flag some by chance;
- an excess of at least max(`min_excess_cases`, `min_excess_share` x expected):
  significant but tiny rises are not worth a supervisor's morning;
- a township and its district flagged in one category and period are shown
  once, where most of the excess lies (the township if it holds more than half
  the district's excess, else the district: the rise is spread);
- "watch" after one flagged period, "alert" when the series' previous period
  was flagged too (the previous period is tested again for this, not reported).

Tickets without an area count as area None ("unknown") and are never tested.
Nothing here writes: the run writer stores the flags.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy.orm import Session

from analysis.counts import (
    AreaTree,
    DailyCounts,
    SeriesTable,
    area_tree,
    daily_counts,
    monday_of,
    roll_up,
    to_weeks,
)
from analysis.ears import DayResult, daily_detector
from analysis.farrington import WEEKS_PER_YEAR, WeekResult, farrington_week
from analysis.fdr import bh_adjust
from core.config import HotspotsConfig
from core.periods import calendar_month


@dataclass(frozen=True)
class SurgeFlag:
    """A flagged series: the fields of db.models.HotspotFlag without run and review."""

    category: str
    area_id: int | None
    level: str  # district | township
    period: str  # week | day
    period_start: date
    method: str  # farrington | ears_c2 | ewma
    observed: int
    expected: float
    upper: float
    p_value: float
    q_value: float | None
    state: str  # watch | alert


@dataclass(frozen=True)
class SeriesTest:
    """One series tested for one period; `lookback` tests only decide the next one's state."""

    category: str
    area_id: int
    level: str
    period_start: date
    observed: int
    expected: float
    upper: float
    p_value: float
    alarm: bool
    lookback: bool = False


Detector = Callable[[np.ndarray, int], WeekResult | DayResult | None]


def run_tests(
    tables: dict[str, SeriesTable],
    indexes: list[int],
    starts: list[date],
    detector: Detector,
    lookback: int | None = None,
) -> list[SeriesTest]:
    """Each table's known-area series at each period index, all series of a level at once."""
    tests: list[SeriesTest] = []
    for level, table in tables.items():
        rows = [i for i, (_, area) in enumerate(table.keys) if area is not None]
        if not rows:
            continue
        values = table.values[rows]
        for index, start in zip(indexes, starts, strict=True):
            result = detector(values, index)
            if result is None:
                continue
            for j, row in enumerate(rows):
                category, area = table.keys[row]
                tests.append(
                    SeriesTest(
                        category,
                        int(area),  # type: ignore[arg-type]
                        level,
                        start,
                        int(result.observed[j]),
                        float(result.expected[j]),
                        float(result.upper[j]),
                        float(result.p_value[j]),
                        bool(result.alarm[j]),
                        lookback=index == lookback,
                    )
                )
    return tests


def select_flags(
    tests: list[SeriesTest],
    settings: HotspotsConfig,
    period: str,
    method: str,
    district_of: Callable[[int], int | None],
) -> list[SurgeFlag]:
    """BH over the run, the minimum excess, the state, then one flag per township/district."""
    q_values = bh_adjust([t.p_value for t in tests])
    step = timedelta(days=7 if period == "week" else 1)
    flagged: dict[tuple[str, int, str, date], tuple[SeriesTest, float]] = {}
    for test, q in zip(tests, q_values, strict=True):
        needed = max(settings.min_excess_cases, settings.min_excess_share * test.expected)
        if test.alarm and q <= settings.fdr_q and test.observed - test.expected >= needed:
            flagged[(test.category, test.area_id, test.level, test.period_start)] = (test, q)
    flags = [
        SurgeFlag(
            test.category,
            test.area_id,
            test.level,
            period,
            test.period_start,
            method,
            test.observed,
            round(test.expected, 3),
            test.upper,
            test.p_value,
            q,
            "alert" if (key[0], key[1], key[2], key[3] - step) in flagged else "watch",
        )
        for key, (test, q) in flagged.items()
        if not test.lookback
    ]
    return _once_per_place(flags, district_of)


def _once_per_place(
    flags: list[SurgeFlag], district_of: Callable[[int], int | None]
) -> list[SurgeFlag]:
    """A township and its district flagged together: keep where most of the excess lies."""
    districts = {(f.category, f.period_start, f.area_id): f for f in flags if f.level == "district"}
    children: dict[tuple[str, date, int | None], list[SurgeFlag]] = {}
    for flag in flags:
        if flag.level == "township" and flag.area_id is not None:
            parent = (flag.category, flag.period_start, district_of(flag.area_id))
            if parent in districts:
                children.setdefault(parent, []).append(flag)
    dropped: set[int] = set()
    for parent, kids in children.items():
        district = districts[parent]
        top = max(kid.observed - kid.expected for kid in kids)
        if top > 0.5 * (district.observed - district.expected):
            dropped.add(id(district))
        else:
            dropped.update(id(kid) for kid in kids)
    kept = [f for f in flags if id(f) not in dropped]
    return sorted(kept, key=lambda f: (f.period_start, f.category, f.level, f.area_id or 0))


def _tables(
    session: Session,
    first: date,
    end: date,
    settings: HotspotsConfig,
    tz: ZoneInfo,
    counts: DailyCounts | None = None,
) -> tuple[dict[str, SeriesTable], AreaTree]:
    tree = area_tree(session)
    counts = daily_counts(session, first, end, tz) if counts is None else counts.window(first, end)
    return {level: roll_up(counts, tree, level) for level in settings.levels}, tree


def _mondays(month: str) -> list[date]:
    period = calendar_month(month)
    return [
        day
        for day in (monday_of(period.first) + timedelta(days=7 * k) for k in range(6))
        if period.first <= day < period.end
    ]


def weekly_span(month: str, settings: HotspotsConfig) -> tuple[date, date]:
    """The local days [first, end) `weekly_surges` reads for the month."""
    mondays = _mondays(month)
    history = WEEKS_PER_YEAR * settings.farrington.years_back + settings.farrington.window_weeks
    first = mondays[0] - timedelta(days=7 * (history + 1))  # the history of the week before
    return first, mondays[-1] + timedelta(days=7)


def weekly_surges(
    session: Session,
    month: str,
    settings: HotspotsConfig,
    tz: ZoneInfo,
    counts: DailyCounts | None = None,
) -> list[SurgeFlag]:
    """Every week whose Monday falls in the local month "YYYY-MM", every series, flagged ones.

    `counts`: daily counts covering `weekly_span` (read here when not given).
    """
    mondays = _mondays(month)
    look_back = mondays[0] - timedelta(days=7)
    first, end = weekly_span(month, settings)
    daily, tree = _tables(session, first, end, settings, tz, counts)
    weekly = {level: to_weeks(table) for level, table in daily.items()}
    starts = [look_back, *mondays]
    indexes = [(day - first).days // 7 for day in starts]
    tests = run_tests(
        weekly,
        indexes,
        starts,
        lambda values, t: farrington_week(values, t, settings.farrington),
        lookback=indexes[0],
    )
    return select_flags(tests, settings, "week", "farrington", _district_of(tree))


def daily_warnings(
    session: Session, day: date, settings: HotspotsConfig, tz: ZoneInfo
) -> list[SurgeFlag]:
    """The local day's early warnings, by the configured method (EARS C2 or EWMA)."""
    rules = settings.daily
    detector = daily_detector(rules)
    longest = max(rules.baseline_days, rules.ewma_baseline_days) + rules.guard_days + 1
    first = day - timedelta(days=longest)
    tables, tree = _tables(session, first, day + timedelta(days=1), settings, tz)
    starts = [day - timedelta(days=1), day]
    indexes = [(start - first).days for start in starts]
    tests = run_tests(
        tables,
        indexes,
        starts,
        lambda values, index: detector(values, index, rules),
        lookback=indexes[0],
    )
    return select_flags(tests, settings, "day", rules.method, _district_of(tree))


def _district_of(tree: AreaTree) -> Callable[[int], int | None]:
    return lambda area_id: tree.ancestor_at(area_id, "district")
