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

from analysis.counts import AreaLevel, area_tree, daily_counts, monday_of, roll_up, to_weeks
from analysis.farrington import WEEKS_PER_YEAR, farrington_week
from core.config import HotspotsConfig


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
    f = settings.farrington
    history = WEEKS_PER_YEAR * f.years_back + f.window_weeks
    last = monday_of(end)
    first_shown = last - timedelta(weeks=weeks - 1)
    first = first_shown - timedelta(weeks=history)
    counts = daily_counts(session, first, last + timedelta(days=7), tz, category=category)
    table = to_weeks(roll_up(counts, area_tree(session), level))
    row = table.row((category, area_id))
    series = row if row is not None else np.zeros(table.values.shape[1], dtype=np.int64)
    shown = range(history, history + weeks)
    expected: list[float | None] = []
    upper: list[float | None] = []
    for t in shown:
        result = farrington_week(series[: t + 1], t, f)
        expected.append(None if result is None else round(float(result.expected[0]), 2))
        upper.append(None if result is None else float(result.upper[0]))
    return {
        "weeks": [(first_shown + timedelta(weeks=k)).isoformat() for k in range(weeks)],
        "observed": [int(v) for v in series[history:]],
        "expected": expected,
        "upper": upper,
        "stl": _stl(series, settings.stl_period, weeks),
    }


def _stl(series: np.ndarray, period: int, shown: int) -> list[float] | None:
    """Trend + season of the series' last `shown` weeks; None under two whole periods."""
    start = int(np.argmax(series > 0)) if series.any() else len(series)
    data = series[start:].astype(float)
    if len(data) < 2 * period:
        return None
    fit = STL(data, period=period, robust=True).fit()
    curve = (fit.trend + fit.seasonal)[-shown:]
    return [round(float(v), 2) for v in curve]
