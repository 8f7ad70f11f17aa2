"""The demo city's department tree and which units handle each category.

Five levels: the region, the city, the banners/districts and the city
bureaus, streets/townships, communities/villages. Each unit has a hidden
quality (its own effect; below the district level plus its parent's quality)
that shifts its rates, returns, lateness and stuck tickets; a couple of units
per peer group are made clearly weak, so the snail seat has members. Routes
say which units handle a category: its bureaus, or a place (district offices,
streets, communities) by its share of the territorial tickets.
"""

from __future__ import annotations

import random
from bisect import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field

from core.vocabulary import Level
from db import bulk
from tools.demo_city.data import (
    BUREAUS,
    CATEGORIES,
    COMMUNITY_STEMS,
    DISTRICTS,
    GACHA_HEADS,
    GACHA_TAILS,
    VILLAGE_HEADS,
    VILLAGE_TAILS,
)
from tools.demo_city.draws import cumulative


@dataclass(eq=False)
class Unit:
    """One department with its hidden quality (the sum of its own and its ancestors' effects)."""

    id: int
    code: str
    name: str
    level: Level
    parent: Unit | None
    peer_group: str
    effect: float = 0.0
    weight: float = 1.0  # share of the territorial tickets among its siblings
    quality: float = 0.0
    resolution_shift: float = 0.0  # the over-claiming unit's problems are seldom really solved
    children: list[Unit] = field(default_factory=list)

    def row(self) -> bulk.Row:
        return {
            "id": self.id,
            "code": self.code,
            "name": self.name,
            "level": int(self.level),
            "parent_id": self.parent.id if self.parent else None,
            "peer_group": self.peer_group,
        }


class Tree:
    """The city's units, built with the generator's random stream (so it is reproducible)."""

    def __init__(self, rng: random.Random, first_id: int) -> None:
        self.rng = rng
        self.units: list[Unit] = []
        self._next_id = first_id
        region = self._add("R", "内蒙古自治区", Level.REGION, None, "region")
        self.city = self._add("C", "鄂尔多斯市", Level.CITY, region, "city")
        self.districts = [self._district(i, *spec) for i, spec in enumerate(DISTRICTS, 1)]
        self.bureaus = {
            key: self._add(f"B{i:02d}", name, Level.DISTRICT, self.city, "bureau", 0.3)
            for i, (key, name) in enumerate(BUREAUS, 1)
        }
        self._weaken()
        self.overclaimer = self._overclaim()
        for unit in self.units:  # parents come before their children
            inherited = unit.parent.quality if unit.parent and unit.level > Level.DISTRICT else 0
            unit.quality = unit.effect + inherited
        self.places = [u for u in self.units if u.level >= Level.TOWNSHIP]

    def _add(
        self,
        code: str,
        name: str,
        level: Level,
        parent: Unit | None,
        group: str,
        spread: float = 0.0,
    ) -> Unit:
        unit = Unit(self._next_id, code, name, level, parent, group, self.rng.gauss(0, spread))
        self._next_id += 1
        self.units.append(unit)
        if parent is not None:
            parent.children.append(unit)
        return unit

    def _district(self, index: int, name: str, share: float, streets: tuple[str, ...]) -> Unit:
        district = self._add(f"D{index:02d}", name, Level.DISTRICT, self.city, "district", 0.2)
        district.weight = share
        for number, street_name in enumerate(streets, 1):
            street = self._add(
                f"{district.code}S{number:02d}",
                street_name,
                Level.TOWNSHIP,
                district,
                "street",
                0.25,
            )
            street.weight = self.rng.lognormvariate(0, 0.5)
            for v_number, v_name in enumerate(self._villages(street_name), 1):
                village = self._add(
                    f"{street.code}V{v_number:02d}", v_name, Level.VILLAGE, street, "community", 0.2
                )
                village.weight = self.rng.lognormvariate(0, 0.6)
        return district

    def _villages(self, street: str) -> list[str]:
        """5-10 community/village names fitting the township: 社区 in towns, 嘎查 on the steppe."""
        count = self.rng.randint(5, 10)
        if street.endswith("街道"):
            return [f"{stem}社区" for stem in self.rng.sample(COMMUNITY_STEMS, count)]
        seats = 2 if count > 7 else 1  # the township seat's own communities
        towns = [f"{stem}社区" for stem in self.rng.sample(COMMUNITY_STEMS, seats)]
        if street.endswith("苏木"):
            names = [f"{h}{t}嘎查" for h in GACHA_HEADS for t in GACHA_TAILS]
        else:
            names = [f"{h}家{t}村" for h in VILLAGE_HEADS for t in VILLAGE_TAILS]
        return towns + self.rng.sample(names, count - seats)

    def _weaken(self) -> None:
        """A couple of clearly weak units per peer group, so the snail seat has members."""
        weak_districts = self.rng.sample(self.districts, 2)
        busy = ["住建局", "人社局", "市场监管局", "城管局", "供热公司", "交通运输局", "卫健委"]
        weak_bureaus = [self.bureaus[key] for key in self.rng.sample(busy, 2)]
        healthy = [d for d in self.districts if d not in weak_districts]
        streets = [s for d in healthy for s in d.children]
        weak_streets = self.rng.sample(sorted(streets, key=lambda s: -s.weight)[:30], 2)
        villages = [v for s in streets if s not in weak_streets for v in s.children]
        weak_villages = self.rng.sample(sorted(villages, key=lambda v: -v.weight)[:40], 2)
        for unit, effect in (
            *((u, -0.8) for u in weak_districts),
            *((u, -1.5) for u in weak_bureaus),
            *((u, -2.0) for u in weak_streets),
            *((u, -2.2) for u in weak_villages),
        ):
            unit.effect = effect

    def _overclaim(self) -> Unit:
        """The bureau that marks its closes 已解决 while its citizens mostly say otherwise.

        A busy bureau of ordinary quality (not one of the weak ones: the signal is
        the gap between its claims and the surveys, not a bad rank), chosen
        without a random draw so the rest of the city does not move.
        """
        for key in OVERCLAIM_CANDIDATES:
            unit = self.bureaus[key]
            if unit.effect > -1.0:
                unit.resolution_shift = OVERCLAIM_RESOLUTION_SHIFT
                return unit
        raise AssertionError("every over-claim candidate is weak")  # two weak of seven


OVERCLAIM_CANDIDATES = ("城管局", "市场监管局", "交通运输局", "住建局")
OVERCLAIM_RESOLUTION_SHIFT = -2.8  # log-odds: about a third of its surveys say resolved


# -- routing -------------------------------------------------------------------------------
@dataclass
class Route:
    """Which units handle a category, as a cumulative table for one bisect per ticket."""

    units: list[Unit]
    cumulative: list[float]

    def draw(self, rng: random.Random) -> Unit:
        return self.units[bisect(self.cumulative, rng.random() * self.cumulative[-1])]

    def probabilities(self) -> Iterator[tuple[Unit, float]]:
        previous = 0.0
        for unit, edge in zip(self.units, self.cumulative, strict=True):
            yield unit, (edge - previous) / self.cumulative[-1]
            previous = edge


def _territorial_weights(tree: Tree) -> list[tuple[Unit, float]]:
    """Tickets by place: 10% to the district's own offices, 45% streets, 45% communities."""
    result = []
    for district in tree.districts:
        result.append((district, district.weight * 0.10))
        street_total = sum(s.weight for s in district.children)
        for street in district.children:
            street_share = district.weight * street.weight / street_total
            result.append((street, street_share * 0.45))
            village_total = sum(v.weight for v in street.children)
            result += [(v, street_share * 0.45 * v.weight / village_total) for v in street.children]
    return result


def category_routes(tree: Tree) -> list[Route]:
    """One route per category (in CATEGORIES order): its bureaus, then every place."""
    places = _territorial_weights(tree)
    result = []
    for category in CATEGORIES:
        units = [tree.bureaus[key] for key, _ in category.bureaus]
        weights = [category.bureau_share * share for _, share in category.bureaus]
        units += [unit for unit, _ in places]
        weights += [(1 - category.bureau_share) * share for _, share in places]
        result.append(Route(units, cumulative(weights)))
    return result
