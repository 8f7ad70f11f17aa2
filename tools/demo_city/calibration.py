"""The demo city's rate model and its calibration to the seed city's figures.

Each unit's hidden quality shifts its rates (logistic in the quality), its
returns (退单) and its stuck tickets; a problem's difficulty shifts the chance
it was resolved. The model's intercepts are solved for this tree so the city
as a whole lands on the seed city's figures (response 95.7%, resolution 83.7%,
satisfaction 97.2%, completion 97.2%; the robot's 72% success is the share of
completed attempts in data.OUTCOMES), while units still differ and a few
clearly weak ones end up in the snail seat.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from core.vocabulary import Urgency
from tools.demo_city.data import (
    CATEGORIES,
    TARGET_COMPLETION,
    TARGET_RESOLUTION,
    TARGET_RESPONSE,
    TARGET_SATISFACTION,
    TYPE_DIFFICULTY,
    Category,
)
from tools.demo_city.tree import Route, Unit

# How strongly a unit's hidden quality moves each rate (logistic slopes).
SLOPE_RESPONSE = 1.0
SLOPE_RESOLUTION = 1.0
SLOPE_UNSATISFIED = 0.8
UNRESOLVED_UNSATISFIED = 2.4  # log-odds of 不满意 added when the problem was not resolved
RETURN_BASE = 0.035  # share of dispatches returned (退单) by an average unit
PROPER_RETURN = 0.65  # ... of which really were another unit's business (the rest: rejected)
STUCK_SLOPE = 0.9  # weak units leave more tickets open for good
STUCK_COMPLEX = 2.5  # and complex requests are that much likelier to stay open


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _solve(rate: Callable[[float], float], target: float) -> float:
    """The intercept b at which the increasing function rate(b) equals target (bisection)."""
    low, high = -15.0, 15.0
    for _ in range(40):
        middle = (low + high) / 2
        if rate(middle) < target:
            low = middle
        else:
            high = middle
    return (low + high) / 2


@dataclass(frozen=True)
class Model:
    """The intercepts that make the whole city land on the target figures."""

    response: float
    resolution: float
    unsatisfied: float
    stuck: float  # base probability of a ticket that is never closed (疑难件, long disputes)


def return_probability(unit: Unit) -> float:
    """退单: weak units try to hand tickets back more often."""
    return min(0.25, RETURN_BASE * math.exp(-0.8 * unit.quality))


def _final_shares(route: Route) -> list[tuple[Unit, float]]:
    """Who ends up handling a category's tickets once proper returns have moved some on."""
    shares = list(route.probabilities())
    moved = sum(p * return_probability(u) * PROPER_RETURN for u, p in shares)
    return [(u, p * (1 - return_probability(u) * PROPER_RETURN) + moved * p) for u, p in shares]


def stuck_factor(unit: Unit, urgency: Urgency) -> float:
    """How much likelier than the base a ticket is to stay open for good (weak units, complex)."""
    return math.exp(-STUCK_SLOPE * unit.quality) * (
        STUCK_COMPLEX if urgency == Urgency.COMPLEX else 1
    )


def _mean_stuck_factor(unit: Unit, category: Category) -> float:
    """stuck_factor averaged over the category's urgencies."""
    return math.exp(-STUCK_SLOPE * unit.quality) * (1 + (STUCK_COMPLEX - 1) * category.complex)


def _stuck_base(routes: list[Route], category_mass: list[float], recent_open: float) -> float:
    """The base stuck probability that, with the last days' open tickets, hits the completion."""
    expected = sum(
        mass * share * _mean_stuck_factor(unit, category)
        for category, route, mass in zip(CATEGORIES, routes, category_mass, strict=True)
        for unit, share in _final_shares(route)
    )
    return max(0.0, 1 - TARGET_COMPLETION - recent_open) / expected


def _survey_mix(
    routes: list[Route], category_mass: list[float], stuck: float
) -> dict[tuple[float, float], float]:
    """The expected share of valid callbacks per (unit quality, difficulty).

    Stuck tickets are never surveyed, and they are more often a weak unit's,
    so the surveyed mix leans to the better units; calibrating on it keeps the
    rates from coming out a few tenths high.
    """
    mix: dict[tuple[float, float], float] = {}
    for category, route, mass in zip(CATEGORIES, routes, category_mass, strict=True):
        for unit, share in _final_shares(route):
            closed = 1 - min(1.0, stuck * _mean_stuck_factor(unit, category))
            q = round(unit.quality, 2)
            for type_share, type_difficulty in zip(category.types, TYPE_DIFFICULTY, strict=True):
                difficulty = category.difficulty + type_difficulty + unit.resolution_shift
                key = (q, round(difficulty, 2))
                mix[key] = mix.get(key, 0.0) + mass * share * type_share * closed
    total = sum(mix.values())
    return {key: value / total for key, value in mix.items()}


def calibrate(routes: list[Route], category_mass: list[float], recent_open: float) -> Model:
    """Solve the intercepts over the expected mix of (unit quality, difficulty) in valid callbacks.

    Units differ, so sigmoid(intercept + quality) averaged over the city is not
    sigmoid(intercept): solving over this tree's actual mix keeps the overall
    rates on target whatever the seed drew.
    """
    stuck = _stuck_base(routes, category_mass, recent_open)
    mix = _survey_mix(routes, category_mass, stuck)
    by_quality: dict[float, float] = {}
    for (q, _), m in mix.items():
        by_quality[q] = by_quality.get(q, 0.0) + m
    response = _solve(
        lambda b: sum(m * sigmoid(b + SLOPE_RESPONSE * q) for q, m in by_quality.items()),
        TARGET_RESPONSE,
    )
    resolution = _solve(
        lambda b: sum(m * sigmoid(b + SLOPE_RESOLUTION * (q + d)) for (q, d), m in mix.items()),
        TARGET_RESOLUTION,
    )

    def satisfied(b: float) -> float:
        total = 0.0
        for (q, d), m in mix.items():
            resolved = sigmoid(resolution + SLOPE_RESOLUTION * (q + d))
            base = -b - SLOPE_UNSATISFIED * q
            unhappy = resolved * sigmoid(base)
            unhappy += (1 - resolved) * sigmoid(base + UNRESOLVED_UNSATISFIED)
            total += m * (1 - unhappy)
        return total

    unsatisfied = -_solve(satisfied, TARGET_SATISFACTION)
    return Model(response, resolution, unsatisfied, stuck)
