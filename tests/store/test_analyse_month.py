"""`hotline analyse --month`: one stored run from the store's tickets, and what serve owes.

A small city, made here: three years of weekly 劳动纠纷 in two townships with a
planted three-fold spike in the analysed month, a unit whose "resolved" closes its
citizens contradict, a published knowledge-base entry that answered a caller, and a
每月一题 adopted earlier. Fixed dates (2023-2025), never today.
"""

from __future__ import annotations

import itertools
import json
import random
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from analysis import runs
from core.config import HotlineConfig
from core.vocabulary import ClosedAs, EventKind, Level, RequestType, TicketStatus
from dashboard.analysis_reports import accountability_report, hotspots_report, kb_report
from db.models import (
    AnalysisRun,
    Department,
    GovernanceTopic,
    HotspotFlag,
    KbEntry,
    KbOffer,
    Ticket,
    TicketEvent,
    Topic,
    UnitSignal,
    ValidCallback,
)
from db.session import unit_of_work
from hotline import monthly

TZ = ZoneInfo("Asia/Shanghai")
MONTH = "2025-10"
_numbers = itertools.count(1)
PHRASES = {
    "拖欠工资": ["老板拖欠工资三个月不给", "工地拖欠农民工工资", "公司欠薪不发工资"],
    "社保未缴": ["单位没有给我缴纳社保", "公司不交社会保险", "社保断缴单位不管"],
}


def _config(url: str) -> HotlineConfig:
    return HotlineConfig.model_validate({"database": {"url": url}})


def _local(day: date, hour: int = 10) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=TZ).astimezone(UTC)


def _ticket(session: Session, category: str, area: Department, at: datetime, text: str) -> Ticket:
    ticket = Ticket(
        number=f"A{next(_numbers):09d}",
        caller_number=f"139{next(_numbers):08d}",
        category=category,
        category_source="staff",
        description=text,
        area_id=area.id,
        area_source="import",
        accepted_at=at,
        request_type=RequestType.COMPLAINT,
    )
    session.add(ticket)
    return ticket


def _city(session: Session) -> dict[str, Department]:
    city = Department(code="C", name="市", level=Level.CITY)
    east = Department(
        code="D1", name="东区", level=Level.DISTRICT, parent=city, peer_group="district"
    )
    west = Department(
        code="D2", name="西区", level=Level.DISTRICT, parent=city, peer_group="district"
    )
    units = {"C": city, "D1": east, "D2": west}
    for code, name, parent in (("D1S1", "幸福街道", east), ("D2S1", "和平街道", west)):
        units[code] = Department(
            code=code, name=name, level=Level.TOWNSHIP, parent=parent, peer_group="street"
        )
    for i in range(4):
        units[f"B{i}"] = Department(
            code=f"B{i}", name=f"局{i}", level=Level.DISTRICT, parent=city, peer_group="bureau"
        )
    session.add_all(units.values())
    session.flush()
    return units


def _history(session: Session, units: dict[str, Department]) -> None:
    """Weekly counts since 2023 in both townships; the analysed month's first weeks x3."""
    rng = random.Random(5)
    day = date(2023, 1, 2)
    while day < date(2025, 11, 1):
        for code in ("D1S1", "D2S1"):
            mean = 6.0
            if code == "D1S1" and date(2025, 10, 6) <= day < date(2025, 10, 20):
                mean = 24.0
            for _ in range(_poisson(rng, mean)):
                topic = rng.choice(list(PHRASES))
                when = _local(day + timedelta(days=rng.randrange(7)), rng.randrange(8, 18))
                _ticket(session, "劳动纠纷", units[code], when, rng.choice(PHRASES[topic]))
        day += timedelta(days=7)


def _poisson(rng: random.Random, mean: float) -> int:
    import numpy as np

    return int(np.random.default_rng(rng.randrange(1 << 30)).poisson(mean))


def _closes(session: Session, units: dict[str, Department]) -> None:
    """B0 closes 50 as resolved and 20 are contradicted; its peers 10 %."""
    for code, contradicted in (("B0", 20), ("B1", 5), ("B2", 5), ("B3", 5)):
        unit = units[code]
        for i in range(50):
            at = _local(date(2025, 10, 1) + timedelta(days=i % 25))
            ticket = _ticket(session, "城乡建设", units["D2S1"], at, "道路破损坑洼")
            ticket.area_id, ticket.area_source = None, "unknown"  # no place: not a surge
            ticket.department_id = unit.id
            ticket.status = TicketStatus.CLOSED
            ticket.closed_at = at + timedelta(days=1)
            ticket.closed_as = ClosedAs.RESOLVED
            session.flush()
            session.add_all(
                [
                    TicketEvent(
                        ticket_id=ticket.id, kind=EventKind.DISPATCHED, at=at, department_id=unit.id
                    ),
                    TicketEvent(
                        ticket_id=ticket.id,
                        kind=EventKind.CLOSED,
                        at=ticket.closed_at,
                        department_id=unit.id,
                    ),
                    ValidCallback(
                        ticket_id=ticket.id,
                        department_id=unit.id,
                        surveyed_at=ticket.closed_at + timedelta(days=1),
                        contacted=1,
                        resolved=2 if i < contradicted else 1,
                        satisfaction=1,
                    ),
                ]
            )


def _kb(session: Session) -> None:
    entry = KbEntry(
        key="wage-arrears",
        version=1,
        title="拖欠工资怎么办",
        phrasings=json.dumps(["老板不给工资怎么办", "欠薪找谁", "工资被拖欠"]),
        keywords=json.dumps(["欠薪"]),
        answer_zh="可向人社局劳动监察投诉",
        category="劳动纠纷",
        status="published",
    )
    session.add(entry)
    session.flush()
    session.add(
        KbOffer(
            entry_id=entry.id,
            channel="queue",
            caller_number="13700000001",
            offered_at=_local(date(2025, 10, 8)),
            heard=True,
            accepted=True,
        )
    )


@pytest.fixture
def city(store: sessionmaker[Session]) -> sessionmaker[Session]:
    with unit_of_work(store) as session:
        units = _city(session)
        _history(session, units)
        _closes(session, units)
        _kb(session)
        session.add(
            GovernanceTopic(
                title="欠薪治理",
                category="劳动纠纷",
                keywords="[]",
                lead_department_id=units["B0"].id,
                start_month="2025-09",
                created_by="boss",
            )
        )
    return store


def test_a_month_is_analysed_into_one_stored_run(city: sessionmaker[Session]) -> None:
    config = _config("sqlite://")
    result = monthly.analyse_month(city, config, MONTH)
    with unit_of_work(city) as session:
        run = session.get(AnalysisRun, result.run_id)
        assert run is not None and run.status == "done" and run.month == MONTH
        assert json.loads(run.config)["hotspots"]["fdr_q"] == 0.05
        flags = list(session.scalars(select(HotspotFlag).where(HotspotFlag.run_id == run.id)))
        happy = session.scalar(select(Department.id).where(Department.code == "D1S1"))
        east = session.scalar(select(Department.id).where(Department.code == "D1"))
        assert {(f.category, f.area_id) for f in flags} <= {("劳动纠纷", happy), ("劳动纠纷", east)}
        assert any(f.period_start == date(2025, 10, 6) for f in flags), flags
        assert session.scalars(select(Topic).where(Topic.run_id == run.id)).first() is not None
        signals = session.scalars(
            select(UnitSignal).where(UnitSignal.run_id == run.id, UnitSignal.flagged.is_(True))
        ).all()
        b0 = session.scalar(select(Department.id).where(Department.code == "B0"))
        assert {(s.department_id, s.kind) for s in signals} == {(b0, "contradicted_resolved")}
        summary = runs.summary_of(run)
        labour = next(c for c in summary["categories"] if c["category"] == "劳动纠纷")
        assert labour["line"].startswith(f"劳动纠纷 {labour['count']}件，环比 ")
        assert labour["mom"] is not None and labour["mom"] > 0.2  # the spike
        assert {str(f.id) for f in flags if f.period == "week"} == set(summary["series"])
        assert summary["candidates"][0]["category"] in {"劳动纠纷", "城乡建设"}
        assert summary["governance"][0]["title"] == "欠薪治理"
        assert [e["true_deflection"] for e in summary["kb"]["entries"]] == [1]
        # the reports read this run
        assert hotspots_report(session, MONTH).rows
        assert accountability_report(session, MONTH, flagged_only=True).rows[0][0] == "局0"
        assert kb_report(session, MONTH).rows[0][:6] == [
            "wage-arrears",
            "拖欠工资怎么办",
            1,
            1,
            1,
            1,
        ]
    assert any(line.startswith("劳动纠纷") for line in result.lines)


def test_a_failing_part_leaves_a_failed_run_that_is_never_shown(
    city: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object) -> list[object]:
        raise RuntimeError("statsmodels fell over")

    monkeypatch.setattr(monthly.surges, "weekly_surges", broken)
    with pytest.raises(RuntimeError):
        monthly.analyse_month(city, _config("sqlite://"), MONTH)
    with unit_of_work(city) as session:
        (run,) = session.scalars(select(AnalysisRun)).all()
        assert run.status == "failed" and "statsmodels fell over" in (run.summary or "")
        assert runs.latest_run(session, MONTH) is None
        assert session.scalars(select(HotspotFlag)).first() is None


def test_a_failure_in_the_topics_worker_fails_the_run_the_same_way(
    city: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Topics are found in a forked process: its error is the run's error, nothing shown."""

    def broken(*_: object) -> list[object]:
        raise RuntimeError("NMF fell over")

    monkeypatch.setattr(monthly.topic_analysis, "find_topics", broken)
    with pytest.raises(RuntimeError, match="NMF fell over"):
        monthly.analyse_month(city, _config("sqlite://"), MONTH)
    with unit_of_work(city) as session:
        (run,) = session.scalars(select(AnalysisRun)).all()
        assert run.status == "failed"
        assert runs.summary_of(run) == {"error": "RuntimeError: NMF fell over"}
        assert runs.latest_run(session, MONTH) is None
        for table in (HotspotFlag, UnitSignal, Topic):
            assert session.scalars(select(table)).first() is None


def test_the_month_is_analysed_on_a_batch_thread_as_serve_does(
    city: sessionmaker[Session],
) -> None:
    with ThreadPoolExecutor(1, thread_name_prefix="batch") as batch:
        result = batch.submit(monthly.analyse_month, city, _config("sqlite://"), MONTH).result()
    with unit_of_work(city) as session:
        run = session.get(AnalysisRun, result.run_id)
        assert run is not None and run.status == "done"
        stored = session.scalars(select(Topic).where(Topic.run_id == run.id)).all()
        assert len(stored) == result.topics > 0


def test_serve_owes_the_daily_warning_after_its_hour_and_the_month_on_its_day(
    store: sessionmaker[Session],
) -> None:
    config = _config("sqlite://")  # daily at 07:00, run_day 3
    morning = datetime(2025, 11, 3, 6, 59, tzinfo=TZ)
    with unit_of_work(store) as session:
        assert monthly.due(session, config, morning) == []
        owed = monthly.due(session, config, morning + timedelta(minutes=1))
    assert owed == [
        ("daily", "2025-11", date(2025, 11, 2)),
        ("month", "2025-10", date(2025, 11, 3)),
    ]
    with unit_of_work(store) as session:
        assert monthly.due(session, config, datetime(2025, 11, 2, 8, tzinfo=TZ)) == [
            ("daily", "2025-11", date(2025, 11, 1))
        ]
    done = monthly.run_due(store, config, morning + timedelta(hours=1))
    assert len(done) == 2, done
    with unit_of_work(store) as session:
        assert monthly.due(session, config, morning + timedelta(hours=2)) == []


def test_the_commands_analyse_and_report(city: sessionmaker[Session], tmp_path: Path) -> None:
    from hotline.cli.main import app

    url = city.kw["bind"].url.render_as_string(hide_password=False)
    path = tmp_path / "config.yaml"
    path.write_text(f"database:\n  url: {url}\n", encoding="utf-8")
    runner = CliRunner()
    missing = runner.invoke(app, ["report", "hotspots", "--month", MONTH, "-c", str(path)])
    assert missing.exit_code == 2 and "hotline analyse --month 2025-10" in missing.output
    done = runner.invoke(app, ["analyse", "--month", MONTH, "-c", str(path)])
    assert done.exit_code == 0, done.output
    assert "劳动纠纷" in done.output and "surge flags" in done.output
    out = tmp_path / "signals.csv"
    signals = runner.invoke(
        app,
        [
            "report",
            "accountability",
            "--month",
            MONTH,
            "--format",
            "csv",
            "-o",
            str(out),
            "-c",
            str(path),
        ],
    )
    assert signals.exit_code == 0, signals.output
    assert "局0" in out.read_text(encoding="utf-8-sig")
    bad = runner.invoke(app, ["analyse", "--month", "2025-13", "-c", str(path)])
    assert bad.exit_code == 2 and "YYYY-MM" in bad.output


def test_a_failed_analysis_is_tried_again_only_after_an_hour(
    store: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config("sqlite://")
    at = datetime(2025, 11, 3, 8, tzinfo=TZ)

    def broken(*_: object) -> list[object]:
        raise RuntimeError("no")

    monkeypatch.setattr(monthly.surges, "daily_warnings", broken)
    with pytest.raises(RuntimeError):
        monthly.run_due(store, config, at)
    with unit_of_work(store) as session:
        failed = session.scalars(select(AnalysisRun)).all()
        assert [r.status for r in failed] == ["failed"]
        failed[0].started_at = at  # the failure as of the time the test stands at
    with unit_of_work(store) as session:
        assert monthly.due(session, config, at + timedelta(minutes=30)) == [
            ("month", "2025-10", date(2025, 11, 3))  # the month itself had not failed
        ]
        later = monthly.due(session, config, at + timedelta(hours=2))
        assert [kind for kind, _, _ in later] == ["daily", "month"]
