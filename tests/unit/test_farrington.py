"""The weekly detector on hand-built series: seasons are learnt, surges are flagged.

Issue 23's proof: three years (2023-2025) of weekly 水电气暖 counts in one
township, x2.5 every heating season (15 Nov - 15 Mar) with Poisson noise, and a
x3 two-week 劳动纠纷 spike in May 2025 in another township. Each month of 2025
is run as the monthly analysis runs it (every week whose Monday is in the
month, BH over the run, the minimum excess): the spike is flagged in its first
or second week, the winter peak never; EARS C2 alone, on the same counts by day,
alarms when the heating season starts. Fixed seeds and dates throughout.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest
import statsmodels.api as sm

from analysis.counts import SeriesTable
from analysis.ears import ears_c2
from analysis.farrington import design, farrington_week, farrington_weeks, poisson_fit
from analysis.surges import SeriesTest, run_tests, select_flags
from core.config import FarringtonConfig, HotspotsConfig

SETTINGS = HotspotsConfig()
FIRST = date(2023, 1, 2)  # a Monday
END = date(2025, 12, 29)  # the Monday after the last week
HEAT, LABOUR = ("水电气暖", 1), ("劳动纠纷", 2)
SPIKE = (date(2025, 5, 12), date(2025, 5, 26))  # two weeks, Monday to Monday


def heating_season(day: date) -> bool:
    return (
        day.month in (12, 1, 2)
        or (day.month, day.day) >= (11, 15)
        or (day.month == 3 and day.day < 15)
    )


def daily_scenario(seed: int) -> dict[tuple[str, int], np.ndarray]:
    """Counts per day: 70 a week of 水电气暖 (x2.5 in the heating season), 12 of 劳动纠纷."""
    days = [FIRST + timedelta(days=k) for k in range((END - FIRST).days)]
    heat = np.array([2.5 if heating_season(day) else 1.0 for day in days])
    spike = np.array([3.0 if SPIKE[0] <= day < SPIKE[1] else 1.0 for day in days])
    rng = np.random.default_rng(seed)
    return {HEAT: rng.poisson(10 * heat), LABOUR: rng.poisson(12 / 7 * spike)}


def weekly_table(daily: dict[tuple[str, int], np.ndarray]) -> SeriesTable:
    keys = list(daily)
    return SeriesTable(keys, np.array([daily[k].reshape(-1, 7).sum(axis=1) for k in keys]), FIRST)


def monthly_runs(table: SeriesTable, year: int) -> list:  # type: ignore[type-arg]
    """Each month of the year run like `weekly_surges`: its Mondays plus the week before."""
    flags = []
    mondays = [FIRST + timedelta(weeks=k) for k in range(table.values.shape[1])]
    for month in range(1, 13):
        inside = [m for m in mondays if (m.year, m.month) == (year, month)]
        starts = [inside[0] - timedelta(weeks=1), *inside]
        indexes = [(start - FIRST).days // 7 for start in starts]
        tests = run_tests(
            {"township": table},
            indexes,
            starts,
            lambda values, t: farrington_week(values, t, SETTINGS.farrington),
            lookback=indexes[0],
        )
        flags += select_flags(tests, SETTINGS, "week", "farrington", lambda _: None)
    return flags


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_may_spike_is_flagged_and_the_winter_peak_never(seed: int) -> None:
    flags = monthly_runs(weekly_table(daily_scenario(seed)), 2025)
    labour = [f for f in flags if f.category == LABOUR[0] and SPIKE[0] <= f.period_start]
    assert labour and labour[0].period_start in (SPIKE[0], SPIKE[0] + timedelta(weeks=1))
    assert labour[0].area_id == LABOUR[1] and labour[0].state == "watch"
    assert all(f.category != HEAT[0] for f in flags)  # none over the third year's 52 weeks


def test_ears_c2_alone_alarms_when_the_heating_season_starts() -> None:
    """The control: a detector without seasons cries at the onset Farrington takes in its stride."""
    heat = daily_scenario(1)[HEAT]
    onset = (date(2025, 11, 15) - FIRST).days
    alarms = [bool(ears_c2(heat, day, SETTINGS.daily).alarm[0]) for day in range(onset, onset + 3)]
    assert any(alarms)


def test_null_series_stay_within_the_false_discovery_bound() -> None:
    """1,000 seasonal Poisson series, none with a surge; each a monthly run of its own.

    With no true surge a run with any flag is a false discovery, so the share of
    runs with a flag estimates the FDR: it must stay within fdr_q (1.5 x for sampling).
    """
    weeks = np.arange(156)
    mean = 10 * (1 + 0.5 * np.sin(2 * np.pi * (weeks - 10) / 52))
    series = np.random.default_rng(2023).poisson(mean, size=(1000, len(weeks)))
    indexes = [119, 120, 121, 122, 123]  # the week before the month, then its four Mondays
    results = [farrington_week(series, t, SETTINGS.farrington) for t in indexes]
    runs_with_flags = 0
    for row in range(len(series)):
        tests = [
            SeriesTest(
                "c",
                1,
                "township",
                FIRST + timedelta(weeks=t),
                int(r.observed[row]),
                float(r.expected[row]),
                float(r.upper[row]),
                float(r.p_value[row]),
                bool(r.alarm[row]),
                lookback=t == indexes[0],
            )
            for t, r in zip(indexes, results, strict=True)
            if r is not None
        ]
        runs_with_flags += bool(select_flags(tests, SETTINGS, "week", "farrington", lambda _: None))
    assert runs_with_flags / len(series) <= 1.5 * SETTINGS.fdr_q


def test_the_fit_is_statsmodels_quasi_poisson_glm() -> None:
    rng = np.random.default_rng(5)
    weeks, x = design(140, FarringtonConfig(), 2)
    y = rng.poisson(20 * (1 + 0.4 * np.sin(weeks / 8)))
    prior = rng.uniform(0.5, 1.5, len(weeks))
    beta, mu = poisson_fit(y[None].astype(float), x, prior[None])
    model = sm.GLM(y, x, family=sm.families.Poisson(), var_weights=prior).fit(scale="X2")
    assert beta[0] == pytest.approx(model.params, rel=1e-6, abs=1e-8)
    assert mu[0] == pytest.approx(model.mu, rel=1e-6)


def test_the_baseline_is_past_years_around_the_week_and_skips_the_last_half_year() -> None:
    settings = FarringtonConfig()
    weeks, x = design(150, settings, 2)
    assert weeks[0] == 150 - 2 * 52 - 3 and weeks[-1] == 150 - 26
    reference = weeks[x[:, 2:].sum(axis=1) == 0]  # no seasonal dummy: the reference level
    assert set(reference) == set(range(43, 50)) | set(range(95, 102))  # 98 and 46, +-3
    assert x.shape[1] == 2 + settings.seasonal_levels - 1


def test_a_past_outbreak_barely_raises_the_expectation() -> None:
    rng = np.random.default_rng(11)
    series = rng.poisson(10, size=160)
    spiked = series.copy()
    spiked[98:100] += 60  # an outbreak a year before week 150, inside its reference weeks
    plain = farrington_week(series, 150, SETTINGS.farrington)
    past = farrington_week(spiked, 150, SETTINGS.farrington)
    assert plain is not None and past is not None
    naive_rise = 120 / 14  # the extra cases spread over the 14 reference weeks
    assert past.expected[0] - plain.expected[0] < 0.5 * naive_rise


def test_no_alarm_under_five_cases_in_four_weeks() -> None:
    series = np.zeros(160, dtype=int)
    series[150] = 4  # from nothing to four: far above expected, but too few to act on
    result = farrington_week(series, 150, SETTINGS.farrington)
    assert result is not None and not result.alarm[0] and result.p_value[0] < 0.01


def test_too_little_history_is_not_tested() -> None:
    assert farrington_week(np.ones((3, 40), dtype=int), 39, SETTINGS.farrington) is None


def test_weeks_fitted_together_are_the_weeks_fitted_one_by_one() -> None:
    """A chart's weeks are one batch: the same figures as week by week, None where no
    history (the first year), one past year and two told apart as before."""
    daily = daily_scenario(4)
    table = weekly_table(daily)
    weeks = list(range(50, table.values.shape[1]))  # too short, one past year, then two
    together = farrington_weeks(table.values, weeks, SETTINGS.farrington)
    assert len(together) == len(weeks)
    for t, batched in zip(weeks, together, strict=True):
        alone = farrington_week(table.values, t, SETTINGS.farrington)
        if alone is None:
            assert batched is None, t
            continue
        assert batched is not None, t
        assert np.array_equal(batched.observed, alone.observed)
        np.testing.assert_allclose(batched.expected, alone.expected, rtol=1e-6)
        np.testing.assert_allclose(batched.dispersion, alone.dispersion, rtol=1e-6)
        np.testing.assert_allclose(batched.upper, alone.upper, atol=1)
    assert any(r is None for r in together) and any(r is not None for r in together)
