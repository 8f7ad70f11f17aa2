"""The three rates, roll-up, ranking and snail seat, worked out by hand (SQLite and PostgreSQL).

Weights as one city uses them: basically satisfied counts 0.9; composite
0.1 response + 0.5 resolution + 0.4 satisfaction. Times are UTC; the
hotline's day is Beijing time (UTC+8), so 2026-11-15 16:00 UTC is Monday
2026-11-16 00:00, the first instant of ISO week 2026-W47.
"""

from __future__ import annotations

from fractions import Fraction as F

import pytest
from sqlalchemy import update

from core.periods import assessment_month, iso_week, previous_assessment_months
from core.vocabulary import EventKind
from db.models import Department
from db.session import unit_of_work
from db.tickets import add_event
from reports.metrics import (
    Counts,
    RateRules,
    Rates,
    UnitFigures,
    overall,
    peer_group_totals,
    unit_figures,
    weekly_counts,
)
from reports.ranking import Ranked, bottom_of_group, rank_peer_groups, snail_seat
from tests.support.metrics_city import add_callback, add_ticket, build_city, utc

TZ = "Asia/Shanghai"
RULES = RateRules(F(9, 10), F(1, 10), F(1, 2), F(2, 5))


def week_47(session) -> dict[str, object]:  # type: ignore[no-untyped-def]
    units = build_city(session)
    # S1: contacted 3/4, resolved 2/4, satisfied 2 + basically 1
    for answers in [(1, 1, 1), (1, 1, 2), (1, 2, 3), (2, 2, 1)]:
        add_callback(session, units["S1"], utc(2026, 11, 18, 3), answers)
    add_callback(session, units["V1"], utc(2026, 11, 19, 3), (1, 1, 1))
    # S2's first callback is the week's first instant (Mon 00:00 Beijing)
    add_callback(session, units["S2"], utc(2026, 11, 15, 16), (1, 1, 1))
    add_callback(session, units["S2"], utc(2026, 11, 20, 3), (1, 1, 2))
    add_callback(session, units["S4"], utc(2026, 11, 17, 3), (1, 1, 1))
    add_callback(session, units["S4"], utc(2026, 11, 17, 4), (1, 1, 2))
    add_callback(session, units["D3"], utc(2026, 11, 21, 3), (2, 2, 3))
    # Mon 2026-11-23 00:00 Beijing: already week 48
    add_callback(session, units["D3"], utc(2026, 11, 22, 16), (1, 1, 1))
    # S1 accepted four tickets in the week and closed three
    for closed in (True, True, True, False):
        add_ticket(session, units["S1"], utc(2026, 11, 19, 1), closed=closed)
    returned = add_ticket(session, units["S3"], utc(2026, 11, 2, 1))
    add_event(
        session,
        returned,
        EventKind.RETURN_REJECTED,
        at=utc(2026, 11, 18, 1),
        department_id=units["S3"].id,
    )
    return units


def by_code(figures: list[UnitFigures]) -> dict[str, UnitFigures]:
    return {unit.code: unit for unit in figures}


def same(rates: Rates, *expected: F | None) -> bool:
    """Rates equal to hand-computed fractions (to float precision); None is no data."""
    got = [rates.response, rates.resolution, rates.satisfaction, rates.completion, rates.composite]
    return all(
        (g is None and e is None) or (g is not None and e is not None and abs(g - float(e)) < 1e-12)
        for g, e in zip(got, expected, strict=True)
    )


def test_week_rates_roll_up_and_rank_as_worked_out_by_hand(store) -> None:  # type: ignore[no-untyped-def]
    with unit_of_work(store) as session:
        week_47(session)
        start, end = iso_week("2026-W47").utc_range(TZ)
        figures = by_code(unit_figures(session, start, end, RULES))
        own = by_code(unit_figures(session, start, end, RULES, rolled_up=False))
        total = overall(session, start, end)

    s1 = own["S1"]
    assert s1.counts == Counts(
        valid=4, contacted=3, resolved=2, satisfied=2, basic=1, accepted=4, closed=3
    )
    assert same(s1.rates, F(3, 4), F(1, 2), F(29, 40), F(3, 4), F(123, 200))  # 0.615
    assert s1.score == F(123, 200)
    # rolled up: S1 + V1
    assert figures["S1"].counts == Counts(5, 4, 3, 3, 1, 4, 3)
    assert figures["S1"].rates.satisfaction == pytest.approx(39 / 50)  # (3 + 0.9) / 5
    assert figures["S1"].score == F(173, 250)  # 0.08 + 0.3 + 0.312 = 0.692
    # D1 = S1 (with V1) + S2 + S3; S3 had an improper return and no callbacks
    assert figures["D1"].counts == Counts(7, 6, 5, 4, 2, 4, 3, 1)
    assert figures["D1"].score == F(542, 700)  # (0.6 + 2.5 + 2.32) / 7
    assert same(figures["D3"].rates, F(0), F(0), F(0), None, F(0))
    assert figures["C"].counts.valid == 10 == figures["R"].counts.valid
    assert total == figures["R"].counts  # no ticket without a unit in this city
    # no valid callbacks: no rates at all, not 0%
    assert figures["S3"].rates == Rates(None, None, None, None, None)
    assert figures["S3"].counts.improper_returns == 1

    totals = peer_group_totals(list(figures.values()))
    assert totals["street"] == Counts(9, 8, 7, 5, 3, 4, 3, 1)  # S1 (with V1) + S2 + S3 + S4
    assert totals["district"] == figures["C"].counts
    groups = rank_peer_groups(list(figures.values()))
    streets = [(r.unit.code, r.rank, r.position) for r in groups["street"]]
    # S2 and S4 tie at 0.98 (same valid count): shared rank 1, code breaks the tie for position
    assert streets == [("S2", 1, 1), ("S4", 1, 2), ("S1", 3, 3), ("S3", None, None)]
    districts = [(r.unit.code, r.rank) for r in groups["district"]]
    assert districts == [("D2", 1), ("D1", 2), ("D3", 3)]


def test_an_empty_period_has_no_data_not_zero(store) -> None:  # type: ignore[no-untyped-def]
    with unit_of_work(store) as session:
        week_47(session)
        start, end = iso_week("2025-W47").utc_range(TZ)
        figures = unit_figures(session, start, end, RULES)
        total = overall(session, start, end)
    assert total == Counts()
    assert all(u.rates == Rates(None, None, None, None, None) for u in figures)
    assert all(r.rank is None for group in rank_peer_groups(figures).values() for r in group)


@pytest.mark.timeout(60, method="thread")  # a roll-up that never ends: the run stops, failed
def test_a_looping_parent_chain_ends_the_roll_up(store) -> None:  # type: ignore[no-untyped-def]
    """A cycle written straight into the table: the walk up the tree stops at its bound."""
    with unit_of_work(store) as session:
        units = week_47(session)
        session.execute(
            update(Department).where(Department.code == "R").values(parent_id=units["S1"].id)
        )
    with unit_of_work(store) as session:
        start, end = iso_week("2026-W47").utc_range(TZ)
        figures = unit_figures(session, start, end, RULES)
        trend = weekly_counts(session, iso_week("2026-W46").utc_range(TZ)[0], 3, units["R"].id)
    assert {u.code for u in figures} == set(units)
    assert [w.valid for w in trend] == [0, 10, 1]


def test_weekly_trend_buckets_in_beijing_time(store) -> None:  # type: ignore[no-untyped-def]
    with unit_of_work(store) as session:
        units = week_47(session)
        start = iso_week("2026-W46").utc_range(TZ)[0]
        city = weekly_counts(session, start, 3)
        d3 = weekly_counts(session, start, 3, units["D3"].id)
        d1 = weekly_counts(session, start, 3, units["D1"].id)
    assert [w.valid for w in city] == [0, 10, 1]
    assert [w.valid for w in d3] == [0, 1, 1]
    assert d1[1] == Counts(7, 6, 5, 4, 2)


def test_snail_seat_over_assessment_months_starting_on_the_19th(store) -> None:  # type: ignore[no-untyped-def]
    months = previous_assessment_months("2026-10", 19, 3)
    assert [(m.first.isoformat(), m.end.isoformat()) for m in months] == [
        ("2026-08-19", "2026-09-19"),
        ("2026-09-19", "2026-10-19"),
        ("2026-10-19", "2026-11-19"),
    ]
    with unit_of_work(store) as session:
        units = build_city(session)
        for month_start in (utc(2026, 8, 20, 3), utc(2026, 9, 20, 3)):
            add_callback(session, units["S1"], month_start, (2, 2, 3))  # 0
            add_callback(session, units["S2"], month_start, (1, 1, 2))  # 0.96
            add_callback(session, units["S3"], month_start, (1, 2, 3))  # 0.1
            add_callback(session, units["S4"], month_start, (1, 1, 1))  # 1
        # Oct 18 23:59 Beijing: still the September assessment month; S3 has nothing later
        add_callback(session, units["S3"], utc(2026, 10, 18, 15, 59), (2, 2, 3))
        # Oct 19 00:00 Beijing: the first instant of the October assessment month
        add_callback(session, units["S1"], utc(2026, 10, 18, 16), (2, 2, 3))  # 0
        add_callback(session, units["S2"], utc(2026, 10, 25, 3), (1, 2, 1))  # 0.5
        add_callback(session, units["S4"], utc(2026, 10, 25, 3), (1, 1, 1))  # 1
        seats = snail_seat(session, [m.utc_range(TZ) for m in months], RULES)
        october = assessment_month("2026-10", 19).utc_range(TZ)
        s3_october = by_code(unit_figures(session, *october, RULES))["S3"]
    # S1 bottom three times; S3 was bottom twice, then had no data (streak broken);
    # S2 is bottom only in October; districts and villages are too small a group
    assert [(s.unit.code, s.ranks) for s in seats] == [("S1", [(4, 4), (4, 4), (3, 3)])]
    assert s3_october.counts.valid == 0


def figures_with(scores: list[F | None]) -> list[UnitFigures]:
    """Units whose composite is exactly the given score (response weighted 1, others 0)."""
    rules = RateRules(F(1), F(1), F(0), F(0))
    figures = []
    for i, score in enumerate(scores):
        counts = Counts() if score is None else Counts(valid=10, contacted=int(score * 10))
        figures.append(
            UnitFigures(i, f"U{i}", "", 4, "g", None, counts, Rates.of(counts, rules), rules)
        )
    return figures


def test_bottom_two_includes_ties_at_the_boundary_and_needs_three_units() -> None:
    group = rank_peer_groups(figures_with([F(1), F(1, 2), F(1, 2), F(1, 5), None]))["g"]
    assert [(r.unit.code, r.rank, r.position) for r in group] == [
        ("U0", 1, 1),
        ("U1", 2, 2),
        ("U2", 2, 3),
        ("U3", 4, 4),
        ("U4", None, None),
    ]
    assert bottom_of_group(group, 2, 3) == {1, 2, 3}
    pair = rank_peer_groups(figures_with([F(1), F(0)]))["g"]
    assert bottom_of_group(pair, 2, 3) == set()
    assert isinstance(group[0], Ranked)
