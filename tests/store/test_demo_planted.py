"""The demo city's plants for the monthly analysis: two local surges and an over-claiming
unit, named in its summary and present in its rows; every ticket has an area, every
closed one how it ended, and requests are said in many, noisy ways."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.config import HotlineConfig
from db.migrate import upgrade
from db.models import Department, Ticket, ValidCallback
from db.session import make_engine, make_session_factory, unit_of_work
from tickets.area import TreeIndex, fill_areas, resolve_area
from tools.demo_city import generate_demo_city
from tools.demo_city.data import CATEGORIES
from tools.demo_city.speech import FILLERS, HOMOPHONES

UNTIL = date(2026, 11, 22)
CONFIG = HotlineConfig()
TZ = ZoneInfo(CONFIG.timezone)
SURGE = re.compile(
    r"planted surge 计划突增: (?P<category>\w+)/(?P<topic>\w+) x3 in \w+ \((?P<code>\w+)\), "
    r"ISO weeks \S+ \((?P<first>[\d-]+) \.\. (?P<last>[\d-]+)\), (?P<extra>\d+) extra tickets"
)
OVERCLAIM = re.compile(r"over-claiming unit 谎报已解决: \w+ \((?P<code>B\d\d), bureau\)")


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path_factory.mktemp('planted') / 'demo.db'}"
    upgrade(url)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    summary = generate_demo_city(sessions, CONFIG, seed=11, tickets=2500, until=UNTIL)
    yield summary, sessions
    engine.dispose()


def local(day: str, end: bool = False) -> datetime:
    when = date.fromisoformat(day) + timedelta(days=1 if end else 0)
    return datetime.combine(when, time(), TZ)


def in_area(session: Session, code: str) -> set[int]:
    """The area's id and the ids of the areas below it (townships of a district)."""
    area = session.scalars(select(Department).where(Department.code == code)).one()
    below = session.scalars(select(Department.id).where(Department.parent_id == area.id))
    return {area.id, *below}


def test_the_summary_names_two_surges_inside_the_data_and_the_rows_hold_them(city) -> None:  # type: ignore[no-untyped-def]
    summary, sessions = city
    surges = [m.groupdict() for line in summary.planted if (m := SURGE.fullmatch(line))]
    assert [(s["category"], s["topic"]) for s in surges] == [
        ("劳动纠纷", "拖欠工资"),
        ("水电气暖", "暖气不热"),
    ]
    assert re.fullmatch(r"D\d\dS\d\d", surges[0]["code"])  # a township
    assert re.fullmatch(r"D\d\d", surges[1]["code"])  # a district
    with unit_of_work(sessions) as session:
        for surge in surges:
            first, last = date.fromisoformat(surge["first"]), date.fromisoformat(surge["last"])
            assert first.weekday() == 0 and (last - first).days == 13
            assert summary.first_day <= first and last <= UNTIL - timedelta(days=21)
            areas = in_area(session, surge["code"])
            counts: Counter[bool] = Counter()
            for accepted, area in session.execute(
                select(Ticket.accepted_at, Ticket.area_id).where(
                    Ticket.category == surge["category"],
                    Ticket.accepted_at >= local(surge["first"]) - timedelta(days=56),
                    Ticket.accepted_at < local(surge["last"], end=True),
                )
            ):
                if area in areas:
                    counts[accepted >= local(surge["first"])] += 1
            # planted tickets land in the area (a few move away on a proper return)
            assert counts[True] >= int(surge["extra"]) * 0.8
            assert counts[True] >= 3 * counts[False] / 4  # two weeks against the eight before


def test_the_over_claiming_unit_marks_resolved_what_its_citizens_deny(city) -> None:  # type: ignore[no-untyped-def]
    summary, sessions = city
    claims = [m for line in summary.planted if (m := OVERCLAIM.match(line))]
    assert len(claims) == 1
    with unit_of_work(sessions) as session:
        rows = session.execute(
            select(Department.code, ValidCallback.resolved)
            .join(Ticket, Ticket.id == ValidCallback.ticket_id)
            .join(Department, Department.id == Ticket.department_id)
            .where(Ticket.closed_as == "resolved")
        ).all()
    claimed = [resolved for code, resolved in rows if code == claims[0]["code"]]
    others = [resolved for code, resolved in rows if code != claims[0]["code"]]
    assert len(claimed) >= 20 and sum(r == 2 for r in claimed) / len(claimed) > 0.5
    assert sum(r == 2 for r in others) / len(others) < 0.12


def test_every_ticket_has_an_area_closed_ones_how_they_ended(city) -> None:  # type: ignore[no-untyped-def]
    _, sessions = city
    with unit_of_work(sessions) as session:
        tickets = session.scalars(select(Ticket)).all()
        index = TreeIndex.build(session)
        for ticket in tickets:  # the store's own rules agree with what the demo wrote
            assert resolve_area(session, ticket, index) == (ticket.area_id, ticket.area_source)
            assert (ticket.closed_as is not None) == (ticket.closed_at is not None)
        assert fill_areas(session, None) == 0  # nothing left to place
    sources = Counter(t.area_source for t in tickets)
    assert sources["unit"] > 0 and sources["text"] > 0 and sum(sources.values()) == 2500
    ended = Counter(t.closed_as.value for t in tickets if t.closed_as)
    assert ended["resolved"] > ended["explained"] > ended["unresolvable"] > 0


def test_requests_come_in_many_noisy_phrasings(city) -> None:  # type: ignore[no-untyped-def]
    _, sessions = city
    assert all(len(t.phrasings) >= 8 for c in CATEGORIES for t in c.asks)
    with unit_of_work(sessions) as session:
        texts = list(session.scalars(select(Ticket.description)))
    noisy = [t for t in texts if t.startswith(FILLERS) or any(h in t for h in HOMOPHONES.values())]
    assert 0.2 < len(noisy) / len(texts) < 0.6
    assert len(set(texts)) > 0.8 * len(texts)


def test_the_monthly_analysis_finds_both_planted_surges(city) -> None:  # type: ignore[no-untyped-def]
    """`hotline analyse` on the planted months flags each surge's place in its weeks.

    (The over-claiming bureau has a handful of surveyed closes a month at this size,
    under `accountability.min_n`; `tests/store/test_accountability.py` flags one.)"""
    from db.models import HotspotFlag
    from hotline.monthly import analyse_month

    summary, sessions = city
    surges = [m.groupdict() for line in summary.planted if (m := SURGE.fullmatch(line))]
    for surge in surges:
        month = surge["first"][:7]
        run_id = analyse_month(sessions, CONFIG, month).run_id
        with unit_of_work(sessions) as session:
            places = in_area(session, surge["code"])
            parent = session.scalars(
                select(Department.parent_id).where(Department.code == surge["code"])
            ).one()
            flags = session.scalars(
                select(HotspotFlag).where(
                    HotspotFlag.run_id == run_id,
                    HotspotFlag.category == surge["category"],
                    HotspotFlag.period_start >= date.fromisoformat(surge["first"]),
                    HotspotFlag.period_start <= date.fromisoformat(surge["last"]),
                )
            ).all()
            assert {f.area_id for f in flags} & (places | {parent}), (surge, flags)
