"""Benjamini-Hochberg: many series tested in one run, false alarms kept to a share.

A month's run tests hundreds of category x area series (and units for the
accountability signals); at a fixed per-test level some would alarm by chance
alone. The step-up procedure keeps the expected share of false discoveries
among the flagged ones at or under q.
"""

from __future__ import annotations

from collections.abc import Sequence


def bh_adjust(p_values: Sequence[float]) -> list[float]:
    """The BH-adjusted p-values (q-values), in the input's order.

    q_(i) = min over j >= i of p_(j) * m / j, capped at 1: a test is discovered at
    level q exactly when its adjusted value is <= q.
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 1.0
    for rank in range(m, 0, -1):
        index = order[rank - 1]
        running = min(running, p_values[index] * m / rank)
        adjusted[index] = min(running, 1.0)
    return adjusted


def bh_reject(p_values: Sequence[float], q: float) -> list[bool]:
    """Which tests are discoveries at false-discovery rate q."""
    return [value <= q for value in bh_adjust(p_values)]
