"""Surges through the store: the GROUP BY, the roll-up to township and district, the flags.

A small tree (one city, districts D1 and D2; townships T1, T2 under D1, T3
under D2; village V1 under T1) and 2023-01 .. 2025-05 of 劳动纠纷 tickets, about
four a week in each township, some filed at the village. Planted: a two-week
spike at V1 (so T1, and D1 with it) in May 2025, and a one-day burst at T3 on
2025-05-28. Tickets without an area spike too and must never be tested.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import insert
from sqlalchemy.orm import Session, sessionmaker

from analysis.bands import weekly_series
from analysis.counts import area_tree, daily_counts, roll_up
from analysis.surges import daily_warnings, weekly_surges
from core.config import HotspotsConfig
from core.vocabulary import Level
from db.departments import create_department
from db.models import Department, Ticket

TZ = ZoneInfo("Asia/Shanghai")
SETTINGS = HotspotsConfig()
FIRST, END = date(2023, 1, 2), date(2025, 6, 2)


def build_tree(session: Session) -> dict[str, Department]:
    units: dict[str, Department] = {}
    for code, level, parent in [
        ("C", Level.CITY, None),
        ("D1", Level.DISTRICT, "C"),
        ("D2", Level.DISTRICT, "C"),
        ("T1", Level.TOWNSHIP, "D1"),
        ("T2", Level.TOWNSHIP, "D1"),
        ("T3", Level.TOWNSHIP, "D2"),
        ("V1", Level.VILLAGE, "T1"),
    ]:
        units[code] = create_department(
            session, code, f"地区 {code}", level, units.get(parent or "")
        )
    return units


def noon(day: date, hour: int = 12) -> datetime:
    """A local wall-clock time on day, as the UTC instant the store keeps."""
    return datetime(day.year, day.month, day.day, hour, tzinfo=TZ).astimezone(UTC)


def plant(session: Session, units: dict[str, Department]) -> None:
    rng = np.random.default_rng(23)
    rows: list[tuple[int | None, datetime]] = []
    day = FIRST
    while day < END:
        for area in ("V1", "T2", "T3"):
            rows += [(units[area].id, noon(day, 9 + k)) for k in range(rng.poisson(4 / 7))]
        day += timedelta(days=1)
    for k in range(24):  # May 12-25: twelve more a week in V1, i.e. in T1 and D1
        rows.append(
            (units["V1"].id, noon(date(2025, 5, 12) + timedelta(days=k // 12 * 7 + k % 7), 8))
        )
    rows += [(units["T3"].id, noon(date(2025, 5, 28), 10 + k % 8)) for k in range(9)]
    rows += [(None, noon(date(2025, 5, 13), 10)) for _ in range(40)]  # no area: never tested
    session.execute(
        insert(Ticket),
        [
            {
                "number": f"T{n:07d}",
                "caller_number": "13800000000",
                "source": "test",
                "category": "劳动纠纷",
                "area_id": area,
                "accepted_at": at,
            }
            for n, (area, at) in enumerate(rows)
        ],
    )


def test_the_planted_spike_is_flagged_at_its_township_once(store: sessionmaker[Session]) -> None:
    with store() as session:
        units = build_tree(session)
        plant(session, units)
        session.commit()
        flags = weekly_surges(session, "2025-05", SETTINGS, TZ)
        by_district = weekly_surges(
            session, "2025-05", SETTINGS.model_copy(update={"levels": ["district"]}), TZ
        )
    # alone, the district level flags D1 that week: the township flag below replaces it
    assert (units["D1"].id, date(2025, 5, 12)) in {(f.area_id, f.period_start) for f in by_district}
    place = {units["T1"].id, units["D1"].id}
    spike = [(f.area_id, f.level, f.period_start, f.state) for f in flags if f.area_id in place]
    assert spike[0] == (units["T1"].id, "township", date(2025, 5, 12), "watch")
    # the district holds the same excess: the flag is shown once, at the township
    assert all(level == "township" for _, level, _, _ in spike)
    assert (units["T1"].id, "township", date(2025, 5, 19), "alert") in spike
    assert all(f.area_id is not None and f.method == "farrington" for f in flags)
    assert {f.period_start for f in flags} <= {date(2025, 5, d) for d in (5, 12, 19, 26)}
    assert all(f.observed - f.expected >= 5 and f.q_value <= SETTINGS.fdr_q for f in flags)  # type: ignore[operator]


def test_the_day_burst_warns_that_morning(store: sessionmaker[Session]) -> None:
    with store() as session:
        units = build_tree(session)
        plant(session, units)
        session.commit()
        flags = daily_warnings(session, date(2025, 5, 28), SETTINGS, TZ)
    assert [(f.area_id, f.level, f.period, f.method) for f in flags] == [
        (units["T3"].id, "township", "day", "ears_c2")
    ]


def test_counts_fall_on_the_local_day_and_roll_up_the_tree(store: sessionmaker[Session]) -> None:
    with store() as session:
        units = build_tree(session)
        at = [
            (units["V1"].id, datetime(2025, 5, 11, 16, 30, tzinfo=UTC)),  # Mon 00:30 local
            (units["T1"].id, datetime(2025, 5, 11, 15, 59, tzinfo=UTC)),  # Sun 23:59 local
            (units["D2"].id, datetime(2025, 5, 12, 3, tzinfo=UTC)),  # a district itself
        ]
        for n, (area, when) in enumerate(at):
            session.add(
                Ticket(
                    number=f"L{n}",
                    caller_number="1",
                    source="test",
                    category="劳动纠纷",
                    area_id=area,
                    accepted_at=when,
                )
            )
        session.flush()
        counts = daily_counts(session, date(2025, 5, 11), date(2025, 5, 13), TZ)
        tree = area_tree(session)
    township, district = roll_up(counts, tree, "township"), roll_up(counts, tree, "district")
    assert list(township.row(("劳动纠纷", units["T1"].id))) == [1, 1]  # type: ignore[arg-type]
    assert list(township.row(("劳动纠纷", None))) == [0, 1]  # type: ignore[arg-type]
    assert list(district.row(("劳动纠纷", units["D1"].id))) == [1, 1]  # type: ignore[arg-type]
    assert list(district.row(("劳动纠纷", units["D2"].id))) == [0, 1]  # type: ignore[arg-type]


def test_the_chart_band_follows_the_series(store: sessionmaker[Session]) -> None:
    with store() as session:
        units = build_tree(session)
        plant(session, units)
        session.commit()
        chart = weekly_series(
            session, "劳动纠纷", units["T1"].id, "township", date(2025, 5, 25), 8, SETTINGS, TZ
        )
        flags = weekly_surges(session, "2025-05", SETTINGS, TZ)
    assert chart["weeks"][-2:] == ["2025-05-12", "2025-05-19"]
    assert len(chart["observed"]) == len(chart["expected"]) == len(chart["stl"]) == 8
    spike = next(f for f in flags if f.area_id == units["T1"].id)
    assert chart["observed"][-2] == spike.observed > chart["upper"][-2]
    assert chart["expected"][-2] == round(spike.expected, 2)
