"""A flagged series' chart: weekly counts with the Farrington band and an STL curve.

For the console's charts only: nothing here flags. The band is what the weekly
detector expected each week and its alarm threshold (None where the history
is too short); STL (robust, period `stl_period`) draws the trend plus the
season through the counts when there are at least two periods of them.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy.orm import Session
from statsmodels.tsa.seasonal import STL

from analysis.counts import (
    AreaLevel,
    DailyCounts,
    area_tree,
    daily_counts,
    monday_of,
    roll_up,
    to_weeks,
)
from analysis.farrington import WEEKS_PER_YEAR, farrington_weeks
from core.config import HotspotsConfig

SeriesRef = tuple[str, int | None, AreaLevel]  # (category, area id, level)


def weekly_series(
    session: Session,
    category: str,
    area_id: int | None,
    level: AreaLevel,
    end: date,
    weeks: int,
    settings: HotspotsConfig,
    tz: ZoneInfo,
) -> dict[str, Any]:
    """The `weeks` ISO weeks up to the one holding `end`: observed, expected, upper, stl."""
    return weekly_series_of(session, [(category, area_id, level)], end, weeks, settings, tz)[0]


def weekly_series_of(
    session: Session,
    series: list[SeriesRef],
    end: date,
    weeks: int,
    settings: HotspotsConfig,
    tz: ZoneInfo,
    counts: DailyCounts | None = None,
) -> list[dict[str, Any]]:
    """`weekly_series` of many series at once, in their order.

    A month's flags are charted together: one GROUP BY for all of them (or `counts`,
    daily counts covering `chart_span`, when the caller has them) and one batched
    detector fit for all of them and all their weeks, not one of each per flag and week.
    """
    if not series:
        return []
    f = settings.farrington
    history = WEEKS_PER_YEAR * f.years_back + f.window_weeks
    first, last_end = chart_span(end, weeks, settings)
    first_shown = first + timedelta(weeks=history)
    if counts is None:
        categories = {category for category, _, _ in series}
        only = next(iter(categories)) if len(categories) == 1 else None
        counts = daily_counts(session, first, last_end, tz, category=only)
    else:
        counts = counts.window(first, last_end)
    tree = area_tree(session)
    tables = {level: to_weeks(roll_up(counts, tree, level)) for _, _, level in series}
    width = history + weeks
    rows = np.zeros((len(series), width), dtype=np.int64)
    for i, (category, area_id, level) in enumerate(series):
        row = tables[level].row((category, area_id))
        if row is not None:
            rows[i] = row[:width]
    expected: list[list[float | None]] = [[] for _ in series]
    upper: list[list[float | None]] = [[] for _ in series]
    for result in farrington_weeks(rows, range(history, width), f):  # all weeks, one fit
        for i in range(len(series)):
            expected[i].append(None if result is None else round(float(result.expected[i]), 2))
            upper[i].append(None if result is None else float(result.upper[i]))
    shown = [(first_shown + timedelta(weeks=k)).isoformat() for k in range(weeks)]
    return [
        {
            "weeks": shown,
            "observed": [int(v) for v in rows[i, history:]],
            "expected": expected[i],
            "upper": upper[i],
            "stl": _stl(rows[i], settings.stl_period, weeks),
        }
        for i in range(len(series))
    ]


def chart_span(end: date, weeks: int, settings: HotspotsConfig) -> tuple[date, date]:
    """The local days [first, end) a chart of `weeks` weeks up to `end` reads (with the
    detector's history before its first shown week)."""
    f = settings.farrington
    history = WEEKS_PER_YEAR * f.years_back + f.window_weeks
    last = monday_of(end)
    return last - timedelta(weeks=weeks - 1 + history), last + timedelta(days=7)


def _stl(series: np.ndarray, period: int, shown: int) -> list[float] | None:
    """Trend + season of the series' last `shown` weeks; None under two whole periods."""
    start = int(np.argmax(series > 0)) if series.any() else len(series)
    data = series[start:].astype(float)
    if len(data) < 2 * period:
        return None
    fit = STL(data, period=period, robust=True).fit()
    curve = (fit.trend + fit.seasonal)[-shown:]
    return [round(float(v), 2) for v in curve]
