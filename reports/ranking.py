"""Weekly ranking within peer groups, monthly assessment and the snail seat (蜗牛席).

Works on the aggregated figures of `reports.metrics` (a few hundred rows), never on
tickets. Units are ranked by their exact composite score (a fraction, so equal
scores are real ties) inside their peer group (streets are not ranked against
district bureaus). Ties share a rank (1, 2, 2, 4); the
`position` (1..n, a permutation) breaks ties by more valid callbacks, then by
unit code, so a list has a stable order. A unit with no valid callbacks in
the period has no rank: it is listed as "no data" and can never be in the
bottom two. Nor has a unit with fewer than `min_valid` valid callbacks (config
`metrics.min_valid_callbacks`): one lucky callback is not a 100% unit.

Snail seat: a unit in the bottom `bottom` of its peer group in each of
`months` consecutive assessment months. "Bottom two" means a score at or
below the second-lowest score of the group, so units tied at the boundary are
all listed rather than one picked arbitrarily. Groups with fewer ranked units
than `min_group_size` have no bottom (in a group of two, both would be).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from reports.metrics import RateRules, UnitFigures, unit_figures


@dataclass(frozen=True)
class Ranked:
    """A unit's place in its peer group; rank and position are None without data."""

    unit: UnitFigures
    rank: int | None
    position: int | None
    ranked_in_group: int


def rankable(unit: UnitFigures, min_valid: int = 1) -> bool:
    """Has a score built on at least min_valid valid callbacks."""
    return unit.score is not None and unit.counts.valid >= min_valid


def rank_peer_groups(figures: list[UnitFigures], min_valid: int = 1) -> dict[str, list[Ranked]]:
    """Each peer group's units ranked by composite score; too few callbacks or none: last."""
    groups: dict[str, list[UnitFigures]] = {}
    for unit in figures:
        groups.setdefault(unit.peer_group, []).append(unit)
    result: dict[str, list[Ranked]] = {}
    for name, members in sorted(groups.items()):
        scored = [u for u in members if rankable(u, min_valid)]
        scored.sort(key=lambda u: (-u.score, -u.counts.valid, u.code))  # type: ignore[operator]
        ranked = [
            Ranked(
                unit=u,
                rank=1 + sum(1 for other in scored if other.score > u.score),  # type: ignore[operator]
                position=index,
                ranked_in_group=len(scored),
            )
            for index, u in enumerate(scored, start=1)
        ]
        unranked = sorted(
            (u for u in members if not rankable(u, min_valid)),
            key=lambda u: (u.score is None, -u.counts.valid, u.code),
        )
        ranked += [Ranked(u, None, None, len(scored)) for u in unranked]
        result[name] = ranked
    return result


def bottom_of_group(group: list[Ranked], bottom: int, min_group_size: int) -> set[int]:
    """Department ids in the group's bottom `bottom` (ties at the boundary included)."""
    scores = sorted(r.unit.score for r in group if r.rank is not None)  # type: ignore[type-var]
    if len(scores) < max(min_group_size, bottom):
        return set()
    threshold = scores[bottom - 1]
    return {
        r.unit.department_id
        for r in group
        if r.rank is not None and r.unit.score <= threshold  # type: ignore[operator]
    }


@dataclass(frozen=True)
class SnailSeat:
    """A unit listed for accountability, with its rank in each month of the run."""

    unit: UnitFigures  # figures of the last month
    ranks: list[tuple[int, int]]  # (rank, ranked units in the group), oldest month first


def snail_seat(
    session: Session,
    months: list[tuple[datetime, datetime]],
    rules: RateRules,
    bottom: int = 2,
    min_group_size: int = 3,
    min_valid: int = 1,
) -> list[SnailSeat]:
    """Units in their peer group's bottom in every one of the given months (oldest first)."""
    streak: dict[int, list[tuple[int, int]]] | None = None
    last: dict[int, UnitFigures] = {}
    for start, end in months:
        figures = unit_figures(session, start, end, rules, handling=False)  # scores only
        groups = rank_peer_groups(figures, min_valid)
        in_bottom: dict[int, tuple[int, int]] = {}
        for group in groups.values():
            ids = bottom_of_group(group, bottom, min_group_size)
            for ranked in group:
                last[ranked.unit.department_id] = ranked.unit
                if ranked.unit.department_id in ids:
                    assert ranked.rank is not None
                    in_bottom[ranked.unit.department_id] = (ranked.rank, ranked.ranked_in_group)
        if streak is None:
            streak = {unit: [place] for unit, place in in_bottom.items()}
        else:
            streak = {
                unit: [*places, in_bottom[unit]]
                for unit, places in streak.items()
                if unit in in_bottom
            }
    return sorted(
        (SnailSeat(last[unit], places) for unit, places in (streak or {}).items()),
        key=lambda seat: (seat.unit.peer_group, seat.unit.code),
    )
