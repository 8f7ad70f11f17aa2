"""Erlang C: the M/M/K queue's waiting-time law, the yardstick for bench/acd.py.

K agents, calls arriving as a Poisson process at rate lam, exponential handle
times of mean h (talk + wrap-up), offered load A = lam * h erlangs, occupancy
rho = A / K < 1. Erlang C is the probability that a call waits at all:

    C(K, A) = K * B(K, A) / (K - A * (1 - B(K, A)))

with Erlang B from the stable recursion B(0) = 1, B(k) = A B(k-1) / (k + A B(k-1))
(no factorials, no powers: exact to rounding for any K). Then, first come first
served, P(W > t) = C * exp(-(K - A) * t / h) and E[W] = C * h / (K - A).
"""

from __future__ import annotations

import math


def erlang_b(k: int, a: float) -> float:
    """Blocking probability of k servers offered a erlangs (k >= 0, a >= 0)."""
    if k < 0 or a < 0:
        raise ValueError("k and a must be >= 0")
    b = 1.0
    for n in range(1, k + 1):
        b = a * b / (n + a * b)
    return b


def erlang_c(k: int, a: float) -> float:
    """Probability that a call waits (k agents, a erlangs); 1.0 when a >= k (unstable)."""
    if k <= 0:
        raise ValueError("k must be >= 1")
    if a >= k:
        return 1.0
    if a <= 0:
        return 0.0
    b = erlang_b(k, a)
    return k * b / (k - a * (1 - b))


def wait_beyond(k: int, a: float, h: float, t: float) -> float:
    """P(W > t): the share of calls that wait longer than t seconds (h: mean handle time)."""
    if a >= k:
        return 1.0
    return erlang_c(k, a) * math.exp(-(k - a) * t / h)


def service_level(k: int, a: float, h: float, t: float) -> float:
    """P(W <= t): the share answered within t seconds."""
    return 1.0 - wait_beyond(k, a, h, t)


def mean_wait(k: int, a: float, h: float) -> float:
    """E[W] over all calls (those that do not wait count as 0)."""
    if a >= k:
        return math.inf
    return erlang_c(k, a) * h / (k - a)
