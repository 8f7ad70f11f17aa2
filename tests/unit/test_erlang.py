"""Erlang C (bench/erlang.py) against table values and its known shape."""

from __future__ import annotations

import itertools
import math

import pytest

from bench.erlang import erlang_b, erlang_c, mean_wait, service_level, wait_beyond


def test_erlang_c_table_value() -> None:
    # the classic table: 10 agents, 8 erlangs -> 40.92 % of calls wait
    assert erlang_c(10, 8.0) == pytest.approx(0.4092, abs=5e-5)


def test_erlang_b_table_value() -> None:
    # Erlang B table: 10 trunks, 5 erlangs -> 1.84 % blocked
    assert erlang_b(10, 5.0) == pytest.approx(0.01838, abs=5e-5)


def test_single_agent_is_mm1() -> None:
    # M/M/1: P(wait) = rho, E[W] = rho h / (1 - rho)
    assert erlang_c(1, 0.7) == pytest.approx(0.7)
    assert mean_wait(1, 0.7, 10.0) == pytest.approx(0.7 * 10 / 0.3)


def test_service_level_formula() -> None:
    k, a, h, t = 4, 3.0, 5.0, 15.0
    expected = 1 - erlang_c(k, a) * math.exp(-(k - a) * t / h)
    assert service_level(k, a, h, t) == pytest.approx(expected)
    assert service_level(k, a, h, 0.0) == pytest.approx(1 - erlang_c(k, a))
    assert wait_beyond(k, a, h, t) + service_level(k, a, h, t) == pytest.approx(1.0)


def test_monotonic_in_agents_and_load() -> None:
    a = 4.5
    waits = [erlang_c(k, a) for k in range(5, 30)]
    assert all(x > y for x, y in itertools.pairwise(waits))
    loads = [erlang_c(10, x / 10) for x in range(1, 100)]
    assert all(x < y for x, y in itertools.pairwise(loads))
    assert all(0.0 < c < 1.0 for c in waits + loads)


def test_large_k_is_stable() -> None:
    # no overflow for a big centre: 500 agents at 95 % occupancy
    c = erlang_c(500, 475.0)
    assert 0.0 < c < 1.0
    assert erlang_c(3, 3.0) == 1.0
    assert math.isinf(mean_wait(3, 3.5, 5.0))
