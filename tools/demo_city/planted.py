"""Problems planted in the demo city, so the monthly analysis can be checked against them.

Two local surges, each three times the category's usual volume in the place
(at least MIN_EXTRA_A_DAY extra tickets a day), all of one sub-topic, for two ISO weeks:
劳动纠纷 (拖欠工资) in one township in the last spring of the period, and
水电气暖 (暖气不热) in one district in its last deep winter, as after a cold
snap there. Both sit relative to the period's end, so any `until` has them
inside the data. The third plant, a bureau that marks its closes 已解决 while
its citizens mostly say otherwise, is the tree's `overclaimer`.

A planted ticket is one of the day's tickets turned into the surge's sub-topic
and place (the day's count stays as calendar() planned it), handled by the
category's bureau with the place in its text, or by a unit of the place.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta

from core.vocabulary import Level
from tools.demo_city.data import CATEGORIES
from tools.demo_city.tree import Route, Tree, Unit
from tools.demo_city.volume import Day

SURGE_DAYS = 14
SURGE_FACTOR = 3.0  # the category's usual volume in the place, times this ...
# ... and at least this many extra a day: a township's 劳动纠纷 is about one ticket a
# week, and a surge of one more a day drowns in a month's thousands of tested series
# (Benjamini-Hochberg); a site's unpaid workers calling in does look like this
MIN_EXTRA_A_DAY = 3
QUIET_AFTER = 21  # days between a surge's end and the period's end


@dataclass
class Surge:
    """A planted local surge: a category's sub-topic in one area for two ISO weeks."""

    category: int  # index in CATEGORIES
    topic: str
    area: Unit  # the township or district it happens in
    places: list[Unit]  # the area and the units below it
    first: date  # a Monday
    extra: dict[date, int] = field(default_factory=dict)

    @property
    def last(self) -> date:
        return self.first + timedelta(days=SURGE_DAYS - 1)

    def weeks(self) -> str:
        year, week, _ = self.first.isocalendar()
        end_year, end_week, _ = self.last.isocalendar()
        return f"{year}-W{week:02d}..{end_year}-W{end_week:02d}"

    def describe(self) -> str:
        """One line of the demo's summary: category, place, unit code, weeks, tickets."""
        where = self.area.name
        if self.area.parent is not None and self.area.level == Level.TOWNSHIP:
            where = f"{self.area.parent.name}{self.area.name}"
        return (
            f"planted surge 计划突增: {CATEGORIES[self.category].name}/{self.topic} "
            f"x{SURGE_FACTOR:g} in {where} ({self.area.code}), ISO weeks {self.weeks()} "
            f"({self.first} .. {self.last}), {sum(self.extra.values())} extra tickets"
        )

    def place_text(self, rng: random.Random) -> str:
        """How a citizen names the place to a bureau: the township (and maybe its community)."""
        township = (
            self.area if self.area.level == Level.TOWNSHIP else rng.choice(self.area.children)
        )
        if township.children and rng.random() < 0.5:
            return f"{township.name}{rng.choice(township.children).name}"
        return township.name


def plan_surges(tree: Tree, routes: list[Route], days: list[Day]) -> list[Surge]:
    """The two surges, placed in the period and sized from the place's usual volume."""
    first, last = days[0].day, days[-1].day
    labour = _index("劳动纠纷")
    heating = _index("水电气暖")
    districts = sorted(tree.districts, key=lambda d: -d.weight)
    township = max(districts[0].children, key=lambda s: s.weight)
    district = districts[1]
    surges = [
        Surge(labour, "拖欠工资", township, _below(township), _window(first, last, 4, 6)),
        Surge(heating, "暖气不热", district, _below(district), _window(first, last, 1, 5)),
    ]
    by_day = {day.day: day for day in days}
    for surge in surges:
        share = _area_share(tree, routes[surge.category], surge.places)
        for offset in range(SURGE_DAYS):
            plan = by_day.get(surge.first + timedelta(days=offset))
            if plan is None or not plan.tickets:
                continue
            usual = plan.tickets * _category_share(plan, surge.category) * share
            surge.extra[plan.day] = max(MIN_EXTRA_A_DAY, round((SURGE_FACTOR - 1) * usual))
    return surges


def _index(name: str) -> int:
    return next(i for i, c in enumerate(CATEGORIES) if c.name == name)


def _below(area: Unit) -> list[Unit]:
    units, stack = [], [area]
    while stack:
        unit = stack.pop()
        units.append(unit)
        stack.extend(unit.children)
    return units


def _window(first: date, last: date, month: int, day: int) -> date:
    """The Monday on or after month/day of the latest year that fits well inside the period.

    Preferably with a year of history before it; else anywhere inside; else five
    weeks before the end (a demo shorter than a season still has its surge).
    """
    for history in (365, 0):
        for year in range(last.year, first.year - 1, -1):
            start = date(year, month, day)
            start += timedelta(days=-start.weekday() % 7)
            if start >= first + timedelta(days=history) and (
                start + timedelta(days=SURGE_DAYS + QUIET_AFTER) <= last
            ):
                return start
    fallback = last - timedelta(days=SURGE_DAYS + QUIET_AFTER)
    return max(first, fallback - timedelta(days=fallback.weekday()))


def _category_share(plan: Day, category: int) -> float:
    edges = plan.categories
    low = edges[category - 1] if category else 0.0
    return (edges[category] - low) / edges[-1]


def _area_share(tree: Tree, route: Route, places: list[Unit]) -> float:
    """The share of a category's tickets about the area: its own units', and the bureaus'
    tickets that name one of its places."""
    inside = {unit.id for unit in places}
    share = 0.0
    for unit, p in route.probabilities():
        if unit.id in inside:
            share += p
        elif unit.level == Level.DISTRICT and unit.peer_group == "bureau":
            share += p * len(inside) / len(tree.places)
    return share


def overclaim_line(unit: Unit, marked: int, contradicted: int) -> str:
    """The summary's line for the over-claiming unit: its closes and their surveys."""
    return (
        f"over-claiming unit 谎报已解决: {unit.name} ({unit.code}, {unit.peer_group}): "
        f"{contradicted} of {marked} closes marked 已解决 with a survey were called "
        f"not resolved by the citizen"
    )
