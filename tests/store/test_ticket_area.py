"""Where a ticket's problem is: the import's area code, a territorial unit, a place named
in the text, or unknown, in that order; `fill_areas` places each ticket once; the import
reads `area_code` and `closed_as` and refuses a bad one per row, landing the rest."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from core.config import load_config
from core.vocabulary import ClosedAs, Level
from db.departments import create_department
from db.migrate import upgrade
from db.models import Department, Line, Ticket
from db.session import make_engine, make_session_factory, unit_of_work
from db.tickets import create_ticket
from tests.support.config import write_config
from tickets.area import AreaError, TreeIndex, fill_areas, resolve_area
from tickets.intake.importer import Importer, read_file

ACCEPTED = datetime(2026, 4, 6, 2, tzinfo=UTC)
# code, name, level, parent, peer group
TREE = [
    ("R", "内蒙古自治区", Level.REGION, None, "region"),
    ("C", "鄂尔多斯市", Level.CITY, "R", "city"),
    ("D1", "东胜区", Level.DISTRICT, "C", "district"),
    ("D2", "康巴什区", Level.DISTRICT, "C", "district"),
    ("B1", "市人社局", Level.DISTRICT, "C", "bureau"),
    ("S1", "交通街道", Level.TOWNSHIP, "D1", "street"),
    ("S2", "交通街道北", Level.TOWNSHIP, "D2", "street"),  # longer name beginning alike
    ("S3", "哈巴格希街道", Level.TOWNSHIP, "D2", "street"),
    ("V1", "民生社区", Level.VILLAGE, "S1", "community"),
    ("V2", "团结社区", Level.VILLAGE, "S1", "community"),
    ("V3", "团结社区", Level.VILLAGE, "S3", "community"),  # a name two places share
]


@pytest.fixture
def site(database_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    upgrade(database_url)
    config = load_config(write_config(tmp_path / "cfg", database={"url": database_url}))
    engine = make_engine(database_url)
    sessions = make_session_factory(engine)
    with unit_of_work(sessions) as session:
        units: dict[str, Department] = {}
        for code, name, level, parent, group in TREE:
            units[code] = create_department(
                session, code, name, level, units.get(parent or ""), group
            )
        ids = {code: unit.id for code, unit in units.items()}
    yield config, sessions, ids
    engine.dispose()


def ticket(unit: int | None = None, text: str | None = None, heard: str | None = None):  # type: ignore[no-untyped-def]
    return SimpleNamespace(department_id=unit, description=text, transcript=heard)


def test_resolve_area_takes_import_then_unit_then_text_then_unknown(site) -> None:  # type: ignore[no-untyped-def]
    _, sessions, ids = site
    with unit_of_work(sessions) as session:
        index = TreeIndex.build(session)
        bureau_about_s3 = ticket(ids["B1"], "哈巴格希街道有企业拖欠工资")
        assert resolve_area(session, bureau_about_s3, index, "D1") == (ids["D1"], "import")
        assert resolve_area(session, ticket(ids["S1"], "哈巴格希街道"), index) == (
            ids["S1"],
            "unit",
        )
        assert resolve_area(session, bureau_about_s3, index) == (ids["S3"], "text")
        assert resolve_area(session, ticket(ids["B1"], "工资没发"), index) == (None, "unknown")
        assert resolve_area(session, ticket(None, None), index) == (None, "unknown")
        with pytest.raises(AreaError, match="NOPE"):
            resolve_area(session, bureau_about_s3, index, "NOPE")


def test_communities_roll_up_to_their_township_and_bureaus_are_no_place(site) -> None:  # type: ignore[no-untyped-def]
    _, sessions, ids = site
    with unit_of_work(sessions) as session:
        index = TreeIndex.build(session)
        assert resolve_area(session, ticket(ids["V1"]), index) == (ids["S1"], "unit")
        assert resolve_area(session, ticket(ids["D2"]), index) == (ids["D2"], "unit")
        assert index.area_of(ids["B1"]) is None and index.area_of(ids["C"]) is None
        heard = ticket(ids["B1"], None, "嗯那个民生社区这边暖气不热")
        assert resolve_area(session, heard, index) == (ids["S1"], "text")


def test_the_longest_place_name_wins_and_a_shared_name_is_no_evidence(site) -> None:  # type: ignore[no-untyped-def]
    _, sessions, ids = site
    with unit_of_work(sessions) as session:
        index = TreeIndex.build(session)
        longest = ticket(ids["B1"], "东胜区交通街道北那边路灯坏了")
        assert resolve_area(session, longest, index) == (ids["S2"], "text")
        assert resolve_area(session, ticket(ids["B1"], "东胜区交通街道"), index) == (
            ids["S1"],
            "text",
        )
        shared = ticket(ids["B1"], "团结社区的路灯，康巴什区")
        assert resolve_area(session, shared, index) == (ids["D2"], "text")


def test_fill_areas_places_each_ticket_once_and_is_idempotent(site) -> None:  # type: ignore[no-untyped-def]
    _, sessions, ids = site
    cases = {
        "unit": (ids["V2"], "路灯不亮", ids["S1"]),
        "text": (ids["B1"], "康巴什区小区噪音", ids["D2"]),
        "unknown": (ids["B1"], "咨询社保", None),
        "unplaced": (None, None, None),
    }
    with unit_of_work(sessions) as session:
        made = {}
        for key, (unit, text, _) in cases.items():
            row = create_ticket(
                session,
                caller_number="13800000000",
                local_day=ACCEPTED.date(),
                accepted_at=ACCEPTED,
                description=text,
            )
            row.department_id = unit
            made[key] = row.id
        early = create_ticket(
            session,
            caller_number="13800000001",
            local_day=datetime(2025, 1, 1).date(),
            accepted_at=datetime(2025, 1, 1, tzinfo=UTC),
            description="东胜区",
        )
        session.flush()
        assert fill_areas(session, datetime(2026, 1, 1, tzinfo=UTC)) == 4
    with unit_of_work(sessions) as session:
        placed = {t.id: (t.area_id, t.area_source) for t in session.scalars(select(Ticket)).all()}
        assert placed[made["unit"]] == (ids["S1"], "unit")
        assert placed[made["text"]] == (ids["D2"], "text")
        assert placed[made["unknown"]] == (None, "unknown")
        assert placed[made["unplaced"]] == (None, "unknown")
        assert placed[early.id] == (None, None)  # before `since`: left for a later run
        assert fill_areas(session, datetime(2026, 1, 1, tzinfo=UTC)) == 0
        assert fill_areas(session, None) == 1
        assert fill_areas(session, None) == 0


TICKETS_CSV = """external_id,caller_number,accepted_at,category,department_code,status,closed_at,reply,closed_as,area_code,description
A-1,13800000001,2026-04-06 09:00,劳动纠纷,B1,办结,2026-04-07 09:00,已协调,已解决,S3,工资
A-2,13800000002,2026-04-06 10:00,劳动纠纷,B1,closed,2026-04-07 09:00,已答复,explained,,民生社区有人欠薪
A-3,13800000003,2026-04-06 11:00,劳动纠纷,B1,办结,2026-04-07 09:00,已答复,搞定了,,
A-4,13800000004,2026-04-06 12:00,劳动纠纷,B1,办结,2026-04-07 09:00,已答复,无法解决,NOPE,
A-5,13800000005,2026-04-06 13:00,,S1,dispatched,,,,,
A-6,13800000006,2026-04-06 14:00,城市管理,S1,dispatched,,,已解决,,
"""


def test_import_reads_area_code_and_closed_as_and_refuses_bad_ones_per_row(
    site, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    config, sessions, ids = site
    path = tmp_path / "tickets.csv"
    path.write_text(TICKETS_CSV, encoding="utf-8")
    report = Importer(sessions, config).run(read_file(path))
    refused = {error.where: error.reason for error in report.errors}
    assert set(refused) == {"tickets.csv:4", "tickets.csv:5", "tickets.csv:7"}
    assert "closed_as" in refused["tickets.csv:4"] and "搞定了" not in refused["tickets.csv:4"]
    assert "area_code" in refused["tickets.csv:5"] and "NOPE" in refused["tickets.csv:5"]
    assert "closed_as is only for a closed ticket" in refused["tickets.csv:7"]
    assert report.counts["ticket"]["created"] == 3
    with unit_of_work(sessions) as session:
        got = {
            t.external_id: (t.closed_as, t.area_id, t.area_source, t.category_source)
            for t in session.scalars(select(Ticket)).all()
        }
    assert got == {
        "A-1": (ClosedAs.RESOLVED, ids["S3"], "import", "import"),
        "A-2": (ClosedAs.EXPLAINED, ids["S1"], "text", "import"),
        "A-5": (None, ids["S1"], "unit", None),
    }
    again = Importer(sessions, config).run(read_file(path))
    assert again.counts["ticket"] == {"created": 0, "updated": 0, "unchanged": 3}


def test_a_dedicated_lines_default_category_is_marked_as_the_lines(site) -> None:  # type: ignore[no-untyped-def]
    _, sessions, _ = site
    with unit_of_work(sessions) as session:
        line = Line(
            did="12345001", name="供热热线", greeting="heating", default_category="水电气暖"
        )
        session.add(line)
        session.flush()
        day = ACCEPTED.date()
        by_line = create_ticket(session, caller_number="13800000000", local_day=day, line=line)
        chosen = create_ticket(
            session, caller_number="13800000000", local_day=day, line=line, category="教育"
        )
        assert (by_line.category, by_line.category_source) == ("水电气暖", "line")
        assert (chosen.category, chosen.category_source) == ("教育", None)
