"""Count charts label their axis in whole, distinct steps, whatever the largest bar."""

from __future__ import annotations

import itertools
import re

import pytest

from dashboard.charts import stacked_bars


def axis_labels(svg: str) -> list[int]:
    return [int(v) for v in re.findall(r'class="axis" text-anchor="end">(\d+)</text>', svg)]


@pytest.mark.parametrize("highest", [1, 2, 3, 5, 7, 13, 99, 101, 2500])
def test_bar_chart_ticks_are_distinct_whole_numbers_reaching_the_tallest_bar(highest: int) -> None:
    svg = stacked_bars(["a", "b"], [("answered", "#000", [highest, 1])])
    ticks = axis_labels(svg)
    assert ticks[0] == 0 and ticks == sorted(set(ticks)), ticks
    steps = {b - a for a, b in itertools.pairwise(ticks)}
    assert len(steps) == 1, ticks  # even steps
    assert highest <= ticks[-1] <= max(4, 2.5 * highest), ticks  # reaches it, not far above


def test_a_bar_reaches_the_height_its_count_gives_on_the_axis() -> None:
    svg = stacked_bars(["a"], [("answered", "#000", [2])])
    top = axis_labels(svg)[-1]
    (height,) = (float(h) for h in re.findall(r'<rect [^>]*height="([\d.]+)"', svg))
    plot_height = 220 - 12 - 28
    assert height == pytest.approx(plot_height * 2 / top, abs=0.1)
