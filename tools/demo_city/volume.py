"""How many tickets the demo city gets on each day, and of which categories.

Weekday, holiday and seasonal rhythms (heating in winter, wage arrears before
the Spring Festival, construction in summer, schools in August), a cold snap
and a rainstorm each year, and a hotline that gets better known year by year;
the counts are then apportioned so the whole period has exactly the tickets
asked for. Days are simulated and written in chunks of whole days.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from core.deadlines import is_working_day
from tools.demo_city.data import CATEGORIES, SPRING_FESTIVAL
from tools.demo_city.draws import cumulative

CHUNK_TICKETS = 10_000  # tickets simulated and written per chunk (whole days)


@dataclass(frozen=True)
class Day:
    """One day's plan: how many tickets are accepted, and what about."""

    day: date
    tickets: int
    categories: list[float]  # cumulative category weights of the day


def calendar(rng: random.Random, tickets: int, first: date, last: date) -> list[Day]:
    """Each day's ticket count (exactly `tickets` in all) and category mix."""
    incidents = _incidents(rng, first, last)
    span = max(1, (last - first).days)
    days, volumes, mixes = [], [], []
    for offset in range((last - first).days + 1):
        day = first + timedelta(days=offset)
        weights = _category_weights(day, incidents)
        growth = 1 + 0.25 * offset / span  # the hotline gets better known every year
        volumes.append(sum(weights) * _rhythm(day) * growth * rng.lognormvariate(0, 0.08))
        days.append(day)
        mixes.append(cumulative(weights))
    counts = _apportion(tickets, volumes)
    return [Day(d, n, mix) for d, n, mix in zip(days, counts, mixes, strict=True)]


def _rhythm(day: date) -> float:
    """Mondays are busiest (the weekend's problems), weekends and holidays quiet."""
    if not is_working_day(day):
        return 0.6
    return 1.15 if day.weekday() == 0 else 1.0


def _apportion(total: int, weights: list[float]) -> list[int]:
    """Whole numbers proportional to weights that add up to total (largest remainder)."""
    scale = total / sum(weights)
    exact = [w * scale for w in weights]
    counts = [int(x) for x in exact]
    order = sorted(range(len(exact)), key=lambda i: (counts[i] - exact[i], i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def _category_weights(day: date, incidents: dict[tuple[date, int], float]) -> list[float]:
    """The day's relative volume per category: season, Spring Festival, incidents."""
    weights = []
    for index, category in enumerate(CATEGORIES):
        weight = category.share * _month_factor(category.months, day)
        if category.name == "劳动纠纷":
            weight *= _before_spring_festival(day)
        weights.append(weight * incidents.get((day, index), 1.0))
    return weights


def _incidents(rng: random.Random, first: date, last: date) -> dict[tuple[date, int], float]:
    """A cold snap each winter (heating complaints) and a rainstorm each summer (streets)."""
    spikes: dict[tuple[date, int], float] = {}
    heating = next(i for i, c in enumerate(CATEGORIES) if c.name == "水电气暖")
    city_management = next(i for i, c in enumerate(CATEGORIES) if c.name == "城市管理")
    for year in range(first.year - 1, last.year + 1):
        snap = date(year, 12, 1) + timedelta(days=rng.randint(0, 60))
        storm = date(year, 7, 1) + timedelta(days=rng.randint(0, 55))
        for offset in range(rng.randint(2, 4)):
            spikes[(snap + timedelta(days=offset), heating)] = 2.5
            spikes[(storm + timedelta(days=offset), city_management)] = 2.0
    return spikes


def _month_factor(months: Sequence[float], day: date) -> float:
    """A monthly multiplier interpolated linearly between mid-months (no steps on the 1st)."""
    position = day.month - 1 + (day.day - 15.5) / 30.5
    low = math.floor(position)
    frac = position - low
    return months[low % 12] * (1 - frac) + months[(low + 1) % 12] * frac


def _before_spring_festival(day: date) -> float:
    """Extra wage-arrears pressure: rises over the 40 days before the Spring Festival."""
    for year in (day.year, day.year + 1):
        festival = SPRING_FESTIVAL.get(year, date(year, 2, 1))
        days_before = (festival - day).days
        if 0 <= days_before <= 40:
            return 1.0 + 1.5 * (1 - days_before / 40)
    return 1.0


def chunks(days: list[Day]) -> Iterator[list[Day]]:
    """Runs of whole days of about CHUNK_TICKETS tickets (a day's numbers stay together)."""
    current: list[Day] = []
    count = 0
    for day in days:
        current.append(day)
        count += day.tickets
        if count >= CHUNK_TICKETS:
            yield current
            current, count = [], 0
    if current:
        yield current


def category_mass(days: list[Day]) -> list[float]:
    """The expected share of each category over the whole period."""
    mass = [0.0] * len(CATEGORIES)
    for day in days:
        previous = 0.0
        for index, edge in enumerate(day.categories):
            mass[index] += day.tickets * (edge - previous) / day.categories[-1]
            previous = edge
    total = sum(mass) or 1.0
    return [m / total for m in mass]


def recent_open(days: list[Day], tickets: int) -> float:
    """The share of tickets still open only because they are recent (measured on this model).

    About two thirds of the last two days' tickets and a seventh of the five
    days before are not closed yet, plus a few reworked after a bad callback.
    """
    last_two = sum(d.tickets for d in days[-2:])
    before = sum(d.tickets for d in days[-7:-2])
    return (0.65 * last_two + 0.14 * before) / tickets + 0.0003
