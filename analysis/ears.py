"""The daily early warning: EARS C2 and ESSENCE's EWMA, on many series at once.

Both compare one day with the days just before it, leaving a guard band of
`guard_days` between them so a surge that began yesterday is not already in
its own baseline. They know nothing of seasons: that is the weekly detector's
job; the daily warning is for what breaks out between two monthly runs
(a burst main, a cold snap), and is read by people the next morning.

EARS C2 (CDC): mean and sd of the `baseline_days` days ending `guard_days`
before the day; alarm when (x - mean) / max(sd, min_sigma) > threshold_sd.

EWMA (ESSENCE): the same kind of baseline over `ewma_baseline_days`; an
exponentially weighted mean, started at the baseline mean, runs over the guard
days and the day; alarm when it stands more than threshold_sd of its own sd
(sigma * sqrt(lambda / (2 - lambda) * (1 - (1 - lambda)^(2k)))) above the
mean, for any of `ewma_lambdas` (0.4 sees a build-up over days, 0.9 a one-day jump).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats

from core.config import DailyWarningConfig


@dataclass(frozen=True)
class DayResult:
    """One day of many series: arrays indexed like the input rows."""

    observed: np.ndarray
    expected: np.ndarray  # the baseline mean
    upper: np.ndarray  # the count above which the day alarms
    p_value: np.ndarray  # the normal upper tail of the statistic
    alarm: np.ndarray


def _baseline(
    counts: np.ndarray, day: int, days: int, guard: int, min_sigma: float
) -> tuple[np.ndarray, np.ndarray] | None:
    first, end = day - guard - days, day - guard
    if first < 0:
        return None
    window = counts[:, first:end].astype(float)
    return window.mean(axis=1), np.maximum(window.std(axis=1, ddof=1), min_sigma)


def ears_c2(counts: np.ndarray, day: int, settings: DailyWarningConfig) -> DayResult | None:
    """Day `day` of each row of counts (series x days); None without a full baseline."""
    counts = np.atleast_2d(np.asarray(counts))
    base = _baseline(counts, day, settings.baseline_days, settings.guard_days, settings.min_sigma)
    if base is None:
        return None
    mean, sigma = base
    observed = counts[:, day].astype(np.int64)
    statistic = (observed - mean) / sigma
    upper = mean + settings.threshold_sd * sigma
    return DayResult(
        observed, mean, upper, stats.norm.sf(statistic), statistic > settings.threshold_sd
    )


def ewma(counts: np.ndarray, day: int, settings: DailyWarningConfig) -> DayResult | None:
    """ESSENCE-style EWMA at each lambda; a day alarms if any does (p Bonferroni-joined)."""
    counts = np.atleast_2d(np.asarray(counts))
    guard, threshold = settings.guard_days, settings.threshold_sd
    base = _baseline(counts, day, settings.ewma_baseline_days, guard, settings.min_sigma)
    if base is None:
        return None
    mean, sigma = base
    observed = counts[:, day].astype(np.int64)
    recent = counts[:, day - guard : day + 1].astype(float)  # the guard days, then the day
    steps = recent.shape[1]
    best_p = np.ones(len(observed))
    upper = np.full(len(observed), np.inf)
    for lam in settings.ewma_lambdas:
        smoothed = mean.copy()
        for k in range(steps - 1):
            smoothed = lam * recent[:, k] + (1 - lam) * smoothed
        before = smoothed  # the EWMA up to the day before
        smoothed = lam * recent[:, -1] + (1 - lam) * before
        spread = sigma * np.sqrt(lam / (2 - lam) * (1 - (1 - lam) ** (2 * steps)))
        best_p = np.minimum(best_p, stats.norm.sf((smoothed - mean) / spread))
        # the day's count that would carry this EWMA over its threshold
        upper = np.minimum(upper, (mean + threshold * spread - (1 - lam) * before) / lam)
    p_value = np.minimum(best_p * len(settings.ewma_lambdas), 1.0)
    alarm = best_p < stats.norm.sf(threshold)
    return DayResult(observed, mean, upper, p_value, alarm)


def daily_detector(
    settings: DailyWarningConfig,
) -> Callable[[np.ndarray, int, DailyWarningConfig], DayResult | None]:
    """The configured method: ears_c2 or ewma."""
    return ewma if settings.method == "ewma" else ears_c2
