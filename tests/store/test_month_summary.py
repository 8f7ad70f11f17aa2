"""The month's lines (环比, 同比, 主要反映), the category x district grid, and stored runs.

Fixed months (2025), never today: the figures are the same on any day this runs.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session, sessionmaker

from analysis import runs, summary
from core.vocabulary import Level
from dashboard.analysis_reports import NoRun, hotspots_report, topics_report
from db.models import Department, Ticket
from db.session import unit_of_work

TZ = ZoneInfo("Asia/Shanghai")
_numbers = itertools.count(1)


def _tree(session: Session) -> dict[str, Department]:
    city = Department(code="C", name="市", level=Level.CITY)
    east = Department(code="D1", name="东区", level=Level.DISTRICT, parent=city)
    west = Department(code="D2", name="西区", level=Level.DISTRICT, parent=city)
    street = Department(code="D1S1", name="幸福街道", level=Level.TOWNSHIP, parent=east)
    village = Department(code="D1S1V1", name="光明社区", level=Level.VILLAGE, parent=street)
    bureau = Department(code="B1", name="人社局", level=Level.DISTRICT, parent=city)
    session.add_all([city, east, west, street, village, bureau])
    session.flush()
    return {d.code: d for d in (city, east, west, street, village, bureau)}


def _tickets(session: Session, category: str, area: Department | None, at: datetime, n: int):
    for _ in range(n):
        session.add(
            Ticket(
                number=f"T{next(_numbers):08d}",
                caller_number="13800000000",
                category=category,
                area_id=area.id if area else None,
                accepted_at=at,
            )
        )


def _local(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, 10, tzinfo=TZ).astimezone(UTC)


def test_lines_compare_with_the_month_before_and_the_year_before(
    store: sessionmaker[Session],
) -> None:
    with unit_of_work(store) as session:
        tree = _tree(session)
        _tickets(session, "劳动纠纷", tree["D1S1V1"], _local(2025, 10, 3), 12)
        _tickets(session, "劳动纠纷", tree["D2"], _local(2025, 9, 30), 10)
        _tickets(session, "劳动纠纷", None, _local(2024, 10, 15), 8)
        _tickets(session, "水电气暖", tree["D1S1"], _local(2025, 10, 31), 3)
        # local time decides the month: 2025-10-31 23:30 in Shanghai is still October
        session.add(
            Ticket(
                number="TLATE",
                caller_number="1",
                category="水电气暖",
                accepted_at=datetime(2025, 10, 31, 15, 30, tzinfo=UTC),
            )
        )
    with unit_of_work(store) as session:
        lines = summary.category_lines(
            session, "2025-10", TZ, {"劳动纠纷": ["拖欠工资", "社保未缴", "x"]}
        )
    assert [(line.category, line.count) for line in lines] == [("劳动纠纷", 12), ("水电气暖", 4)]
    labour = lines[0]
    assert (labour.previous, labour.year_ago) == (10, 8)
    assert labour.mom == pytest.approx(0.2) and labour.yoy == pytest.approx(0.5)
    assert (
        labour.line == "劳动纠纷 12件，环比 +20.0%，同比 +50.0%，主要反映拖欠工资、社保未缴等问题"
    )
    assert lines[1].line == "水电气暖 4件，环比 无可比，同比 无可比"


def test_the_grid_rolls_places_up_to_districts_against_the_same_month_before(
    store: sessionmaker[Session],
) -> None:
    with unit_of_work(store) as session:
        tree = _tree(session)
        _tickets(session, "劳动纠纷", tree["D1S1V1"], _local(2025, 10, 3), 9)  # village -> 东区
        _tickets(session, "劳动纠纷", tree["D1S1"], _local(2025, 10, 4), 3)  # street -> 东区
        _tickets(session, "劳动纠纷", tree["D1"], _local(2024, 10, 4), 4)
        _tickets(session, "劳动纠纷", tree["D1"], _local(2023, 10, 4), 2)
        _tickets(session, "劳动纠纷", None, _local(2025, 10, 4), 5)  # no place: not in the grid
        east = tree["D1"].id
    with unit_of_work(store) as session:
        districts, cells = summary.district_grid(session, "2025-10", TZ, years_back=2)
    assert districts == [(east, "东区")]
    assert [(c.category, c.area_id, c.observed, c.expected) for c in cells] == [
        ("劳动纠纷", east, 12, 3.0)
    ]


@dataclass(frozen=True)
class _Flag:  # the shape analysis.surges returns
    category: str
    area_id: int | None
    level: str
    period: str
    period_start: date
    method: str
    observed: int
    expected: float
    upper: float
    p_value: float
    q_value: float | None
    state: str


def test_a_stored_run_is_what_the_reports_read_and_a_failed_one_is_never_shown(
    store: sessionmaker[Session],
) -> None:
    with unit_of_work(store) as session:
        tree = _tree(session)
        with pytest.raises(NoRun, match="hotline analyse --month 2025-10"):
            hotspots_report(session, "2025-10")
        failed = runs.start_run(session, "2025-10", {"a": 1}, "abc")
        runs.fail_run(session, failed.id, "boom")
        run = runs.start_run(session, "2025-10", {"a": 1}, "abc")
        flag = _Flag(
            "劳动纠纷",
            tree["D1S1"].id,
            "township",
            "week",
            date(2025, 10, 6),
            "farrington",
            30,
            8.0,
            17.5,
            1e-6,
            1e-4,
            "alert",
        )
        runs.store_flags(session, run, [flag])
        runs.finish_run(
            session,
            run,
            {"categories": [summary.CategoryLine("劳动纠纷", 30, 20, 0, ("拖欠工资",)).as_json()]},
        )
    with unit_of_work(store) as session:
        assert runs.run_months(session) == ["2025-10"]
        report = hotspots_report(session, "2025-10")
        assert report.rows == [
            [
                "周",
                "2025-10-06",
                "劳动纠纷",
                "幸福街道",
                "苏木乡镇/街道",
                "farrington",
                30,
                8.0,
                17.5,
                0.0001,
                "预警",
                "",
            ]
        ]
        assert hotspots_report(session, "2025-10", "district").rows == []
        lines = topics_report(session, "2025-10")
        assert lines.rows[0][0] == "劳动纠纷" and lines.rows[0][-1].startswith(
            "劳动纠纷 30件，环比 +50.0%"
        )
