"""The daily warning: EARS C2 and ESSENCE's EWMA on counts worked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.ears import daily_detector, ears_c2, ewma
from core.config import DailyWarningConfig

RULES = DailyWarningConfig()  # C2: 7-day baseline, 2-day guard, 3 SD, min sigma 0.5


def test_c2_compares_the_day_with_the_week_before_the_guard_days() -> None:
    # baseline days 0..6 (mean 4, sd 2), guard days 7 and 8 (huge, ignored), the day 9
    counts = np.array([2, 6, 2, 6, 2, 6, 4, 90, 90, 11])
    result = ears_c2(counts, 9, RULES)
    assert result is not None
    sd = np.std(counts[:7], ddof=1)
    assert result.expected[0] == pytest.approx(4.0)
    assert result.upper[0] == pytest.approx(4 + 3 * sd)
    assert sd == pytest.approx(2.0) and result.alarm[0]  # (11 - 4) / 2 = 3.5 > 3
    counts[9] = 10  # (10 - 4) / 2 = 3: not above
    assert not ears_c2(counts, 9, RULES).alarm[0]  # type: ignore[union-attr]


def test_c2_on_a_flat_baseline_uses_min_sigma() -> None:
    counts = np.array([[3] * 9 + [4], [3] * 9 + [5]])  # sd 0: one more is 2 sigma, two are 4
    result = ears_c2(counts, 9, RULES)
    assert result is not None
    assert list(result.alarm) == [False, True]
    assert result.upper[0] == pytest.approx(3 + 3 * 0.5)


def test_without_a_full_baseline_no_test() -> None:
    assert ears_c2(np.ones(8), 7, RULES) is None
    assert ewma(np.ones(30), 29, RULES) is None


def test_ewma_catches_a_one_day_jump_and_a_build_up() -> None:
    rng = np.random.default_rng(3)
    quiet = rng.poisson(10, size=(3, 31))
    quiet[1, 30] = 40  # one day's jump: lambda 0.9 sees it
    quiet[2, 28:31] = [19, 20, 21]  # three days up by a third each: lambda 0.4 adds them up
    result = ewma(quiet, 30, RULES)
    assert result is not None
    assert list(result.alarm) == [False, True, True]
    assert result.observed[1] > result.upper[1]


def test_the_configured_method_is_used() -> None:
    assert daily_detector(RULES) is ears_c2
    assert daily_detector(DailyWarningConfig(method="ewma")) is ewma
