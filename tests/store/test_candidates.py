"""每月一题 candidates and an adopted topic's progress, on hand-built years (SQLite and PostgreSQL).

Months are local (Beijing); every ticket is accepted at 10:00 on the 10th.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session

from analysis.candidates import governance_progress, monthly_candidates, shift_month
from core.vocabulary import EventKind, Level
from db.departments import create_department
from db.models import AnalysisRun, Department, GovernanceTopic, Ticket, Topic, ValidCallback
from db.session import unit_of_work
from db.tickets import add_event, create_ticket

TZ = ZoneInfo("Asia/Shanghai")
MONTH = "2025-10"
_numbers = itertools.count(13700000000)


def build_areas(session: Session) -> dict[str, Department]:
    """Two districts with one street each: tickets sit in the streets."""
    units: dict[str, Department] = {}
    for district in ("D1", "D2"):
        units[district] = create_department(session, district, district, Level.DISTRICT)
        street = f"S{district[1]}"
        units[street] = create_department(
            session, street, street, Level.TOWNSHIP, units[district], "street"
        )
    return units


def tickets(
    session: Session,
    month: str,
    category: str,
    count: int,
    area: Department,
    resolved: int = 0,
    description: str = "",
) -> list[int]:
    """count tickets in month; the first `resolved` get a callback saying resolved, the rest not."""
    year, number = int(month[:4]), int(month[5:])
    accepted = datetime(year, number, 10, 2, tzinfo=UTC)
    made = []
    for i in range(count):
        ticket = create_ticket(
            session,
            caller_number=str(next(_numbers)),
            local_day=accepted.date(),
            accepted_at=accepted,
            category=category,
            description=description or category,
            source="test",
        )
        ticket.area_id = area.id
        session.add(
            ValidCallback(
                ticket_id=ticket.id,
                department_id=area.id,
                surveyed_at=accepted.replace(day=20),
                contacted=1,
                resolved=1 if i < resolved else 2,
                satisfaction=1,
            )
        )
        made.append(ticket.id)
    session.flush()
    return made


def test_a_category_frequent_every_month_and_seldom_resolved_ranks_first(store) -> None:  # type: ignore[no-untyped-def]
    window = [shift_month(MONTH, back) for back in range(-11, 1)]
    with unit_of_work(store) as session:
        units = build_areas(session)
        for month in window:
            heating = tickets(session, month, "水电气暖", 8, units["S1"], resolved=2)
            tickets(session, month, "噪音扰民", 6, units["S1"], resolved=6)
            tickets(session, month, "噪音扰民", 6, units["S2"], resolved=6)
            ticket = session.get_one(Ticket, heating[0])
            add_event(
                session,
                ticket,
                EventKind.RETURNED,
                at=ticket.accepted_at,
                department_id=units["S1"].id,
            )
        # one large month of 劳动纠纷, all in district D2
        tickets(session, "2025-05", "劳动纠纷", 60, units["S2"], resolved=30)
        # outside the window: counts nothing
        tickets(session, "2024-10", "消费维权", 500, units["S1"])
        run = AnalysisRun(month=MONTH, config="{}", code_version="test")
        session.add(run)
        session.flush()
        session.add(
            Topic(
                run_id=run.id,
                month=MONTH,
                category="水电气暖",
                label="暖气不热",
                terms="[]",
                size=5,
                typical_ticket_ids="[]",
            )
        )
        d2 = units["D2"].id

    with store() as session:
        result = monthly_candidates(session, MONTH, TZ)

    assert result.months == tuple(window)
    by_category = {c.category: c for c in result.categories}
    assert set(by_category) == {"水电气暖", "噪音扰民", "劳动纠纷"}
    first = result.categories[0]
    assert (first.category, first.rank) == ("水电气暖", 1)
    assert first.volume == 96 and first.months_in_top_ten == 12
    assert first.unresolved_rate == pytest.approx(0.75)
    assert first.returns_between_units == 12
    assert by_category["噪音扰民"].unresolved_rate == pytest.approx(0.0)
    labour = by_category["劳动纠纷"]
    assert labour.months_in_top_ten == 1 and labour.districts_above == (d2,)
    assert [c.rank for c in result.categories] == [1, 2, 3]
    assert result.categories[0].score > result.categories[1].score
    (topic,) = result.topics
    assert (topic.category, topic.topic, topic.volume) == ("水电气暖", "暖气不热", 5)
    assert topic.unresolved_rate == pytest.approx(0.75)


def adopted(session: Session, start_month: str) -> GovernanceTopic:
    topic = GovernanceTopic(
        title="广场舞噪音",
        category="噪音扰民",
        keywords=json.dumps(["广场舞"]),
        start_month=start_month,
        created_by="test",
    )
    session.add(topic)
    session.flush()
    return topic


def test_an_adopted_topic_falls_against_its_same_months_before(store) -> None:  # type: ignore[no-untyped-def]
    with unit_of_work(store) as session:
        units = build_areas(session)
        for back in range(-24, 0):  # two years before adoption, 10 a month
            month = shift_month("2025-06", back)
            tickets(session, month, "噪音扰民", 10, units["S1"], description="小区广场舞太吵")
        for month in ("2025-06", "2025-07", "2025-08", "2025-09", "2025-10"):
            tickets(session, month, "噪音扰民", 4, units["S1"], description="晚上广场舞音响")
            tickets(
                session, month, "噪音扰民", 7, units["S1"], description="装修噪音"
            )  # no keyword
            tickets(
                session, month, "文体活动", 3, units["S1"], description="广场舞场地"
            )  # other category
        topic_id = adopted(session, "2025-06").id

    with store() as session:
        progress = governance_progress(
            session, session.get_one(GovernanceTopic, topic_id), MONTH, TZ
        )

    assert [m.month for m in progress.months] == [
        "2025-06",
        "2025-07",
        "2025-08",
        "2025-09",
        "2025-10",
    ]
    for month in progress.months:
        assert (month.observed, month.method) == (4, "same_month")
        assert month.baseline == pytest.approx(10.0)
        assert month.change == pytest.approx(-0.6)


def test_without_a_year_before_the_baseline_is_the_months_before_by_season(store) -> None:  # type: ignore[no-untyped-def]
    with unit_of_work(store) as session:
        units = build_areas(session)
        for month in ("2025-02", "2025-03", "2025-04", "2025-05"):
            tickets(session, month, "噪音扰民", 8, units["S1"], description="广场舞")
        tickets(session, "2025-06", "噪音扰民", 2, units["S1"], description="广场舞")
        topic_id = adopted(session, "2025-06").id

    with store() as session:
        topic = session.get_one(GovernanceTopic, topic_id)
        progress = governance_progress(session, topic, "2025-06", TZ)
        scaled = governance_progress(
            session, topic, "2025-06", TZ, seasonal_index={2: 1.0, 3: 1.0, 4: 1.0, 5: 1.0, 6: 1.5}
        )

    (month,) = progress.months
    assert (month.observed, month.method, month.baseline) == (2, "seasonal_index", 8.0)
    assert month.change == pytest.approx(-0.75)
    assert scaled.months[0].baseline == pytest.approx(12.0)  # June's season is 1.5 times
