"""Benjamini-Hochberg, checked against values worked by hand and its defining property."""

from __future__ import annotations

import random

import pytest

from analysis.fdr import bh_adjust, bh_reject


def test_adjusted_values_match_the_step_up_rule_worked_by_hand() -> None:
    # sorted p: .01 .02 .03 .04 .20 with m = 5 -> .05 .05 .05 .05 .20
    p = [0.04, 0.01, 0.20, 0.03, 0.02]
    assert bh_adjust(p) == pytest.approx([0.05, 0.05, 0.20, 0.05, 0.05])
    assert bh_reject(p, 0.05) == [True, True, False, True, True]
    assert bh_reject(p, 0.04) == [False] * 5


def test_a_single_test_is_its_own_p_value() -> None:
    assert bh_adjust([0.3]) == [0.3]
    assert bh_adjust([]) == []


def test_null_p_values_are_almost_never_all_rejected() -> None:
    """Under the null (uniform p), some discovery happens in at most about q of the runs."""
    rng = random.Random(7)
    runs_with_discovery = sum(
        any(bh_reject([rng.random() for _ in range(200)], 0.05)) for _ in range(400)
    )
    assert runs_with_discovery <= 0.05 * 400 * 1.6
