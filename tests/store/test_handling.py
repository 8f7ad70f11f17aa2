"""The handling workflow, deadline lists and the report command (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook

from core.config import load_config
from core.vocabulary import EventKind, TicketStatus, Urgency
from db.migrate import upgrade
from db.session import make_engine, make_session_factory, unit_of_work
from db.tickets import create_ticket
from reports.deadline_lists import deadline_lists
from reports.metrics import RateRules, unit_figures
from tests.support.config import write_config
from tests.support.metrics_city import add_callback, build_city, utc
from tickets import handling


@pytest.fixture
def site(database_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    upgrade(database_url)
    # the hand-made callbacks are one per unit: rank them all (the default needs five)
    path = write_config(
        tmp_path / "cfg", database={"url": database_url}, metrics={"min_valid_callbacks": 1}
    )
    engine = make_engine(database_url)
    yield load_config(path), make_session_factory(engine), path
    engine.dispose()


def new_ticket(session, accepted: datetime, urgency: Urgency = Urgency.DAILY_LIFE) -> str:  # type: ignore[no-untyped-def]
    ticket = create_ticket(
        session,
        caller_number="13800000000",
        local_day=accepted.date(),
        accepted_at=accepted,
        urgency=urgency,
    )
    return ticket.number


def test_dispatch_sign_return_redispatch_close_rework(site) -> None:  # type: ignore[no-untyped-def]
    config, sessions, _ = site
    with unit_of_work(sessions) as session:
        units = build_city(session)
        # Fri 2025-09-26 10:00 Beijing; Sun 09-28 is an adjusted working day (National Day)
        number = new_ticket(session, datetime(2025, 9, 26, 2, tzinfo=UTC))
        ticket = handling.dispatch(session, number, "S1", "operator", config)
        assert ticket.status == TicketStatus.DISPATCHED
        assert ticket.due_at == datetime(2025, 9, 30, 2, tzinfo=UTC)  # Sun 28, Mon 29, Tue 30
        with pytest.raises(
            handling.HandlingError, match="S2 cannot sign it; it is dispatched to S1"
        ):
            handling.sign(session, number, "S2", "unit")
        handling.return_ticket(session, number, "S1", "不属本单位职责", "unit")
        with pytest.raises(handling.HandlingError, match="cannot close a ticket that is returned"):
            handling.close(session, number, "S1", "done", "unit", "resolved")
        handling.redispatch(session, number, "S2", "supervisor", improper_return=True)
        handling.sign(session, number, "S2", "unit")
        with pytest.raises(handling.HandlingError, match="closing needs a reply"):
            handling.close(session, number, "S2", "  ", "unit", "resolved")
        closed = handling.close(session, number, "S2", "已协调解决", "unit", "已解决")
        assert closed.status == TicketStatus.CLOSED and closed.reply == "已协调解决"
        reworked = handling.rework(session, number, "群众反映未解决", "supervisor", config)
        assert reworked.status == TicketStatus.IN_PROGRESS
        assert reworked.due_at > datetime.now(UTC)
        session.expire(reworked, ["events"])
        events = [(e.kind, e.department_id) for e in reworked.events]
        ids = {code: unit.id for code, unit in units.items()}
    assert events == [
        (EventKind.ACCEPTED, None),
        (EventKind.DISPATCHED, ids["S1"]),
        (EventKind.DISPATCHED_ABOVE, ids["D1"]),  # 双派单: the level above oversees
        (EventKind.RETURNED, ids["S1"]),
        (EventKind.RETURN_REJECTED, ids["S1"]),  # counted against the unit that returned it
        (EventKind.REDISPATCHED, ids["S2"]),
        (EventKind.DISPATCHED_ABOVE, ids["D1"]),
        (EventKind.SIGNED, ids["S2"]),
        (EventKind.CLOSED, ids["S2"]),
        (EventKind.REWORK, ids["S2"]),
    ]
    with unit_of_work(sessions) as session:
        with pytest.raises(handling.HandlingError, match="no ticket numbered 999"):
            handling.sign(session, "999", "S1", "unit")
        with pytest.raises(handling.HandlingError, match="no department with code 'ZZ'"):
            handling.dispatch(session, number, "ZZ", "operator", config)
        now = datetime.now(UTC)
        figures = {
            u.code: u
            for u in unit_figures(
                session, now - timedelta(hours=1), now + timedelta(hours=1), RateRules()
            )
        }
    assert figures["S1"].counts.improper_returns == 1
    assert figures["D1"].counts.improper_returns == 1
    assert figures["S2"].counts.improper_returns == 0


def test_deadline_lists_warn_at_48_and_escalate_at_24_hours(site) -> None:  # type: ignore[no-untyped-def]
    config, sessions, _ = site
    now = datetime(2026, 11, 25, 4, tzinfo=UTC)
    with unit_of_work(sessions) as session:
        build_city(session)
        due = {}
        for name, hours in [("late", -5), ("soon", 10), ("day2", 30), ("later", 60)]:
            number = new_ticket(session, now - timedelta(days=3))
            ticket = handling.dispatch(session, number, "S1", "operator", config)
            ticket.due_at = now + timedelta(hours=hours)
            due[name] = number
        done = new_ticket(session, now - timedelta(days=3))
        ticket = handling.dispatch(session, done, "S1", "operator", config)
        ticket.due_at = now - timedelta(hours=1)
        handling.sign(session, done, "S1", "unit")
        handling.close(session, done, "S1", "ok", "unit", "explained")
        session.flush()
        lists = deadline_lists(session, now, 48, 24)
        got = {key: [t.number for t in tickets] for key, tickets in lists.items()}
    assert got == {"overdue": [due["late"]], "escalate": [due["soon"]], "warn": [due["day2"]]}


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hotline.cli", *args], capture_output=True, text=True
    )


def test_report_command_writes_table_csv_and_xlsx_with_chinese_headers(
    site, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    _, sessions, path = site
    with unit_of_work(sessions) as session:
        units = build_city(session)
        add_callback(session, units["S1"], utc(2026, 11, 18, 3), (1, 1, 2))
        add_callback(session, units["S2"], utc(2026, 11, 18, 3), (2, 2, 3))
    table = run_cli(
        "report", "three-rates", "--week", "2026-W47", "--level", "street", "-c", str(path)
    )
    assert table.returncode == 0, table.stderr
    assert "三率报表 2026-W47" in table.stdout
    as_csv = run_cli(
        "report",
        "three-rates",
        "--week",
        "2026-W47",
        "--level",
        "street",
        "--format",
        "csv",
        "-c",
        str(path),
    )
    rows = list(csv.reader(io.StringIO(as_csv.stdout.lstrip("\ufeff"))))
    assert rows[0][:8] == [
        "单位编码",
        "单位",
        "层级",
        "同类组",
        "有效回访",
        "响应率",
        "解决率",
        "满意率",
    ]
    by_code = {row[0]: row for row in rows[1:]}
    assert rows[1][1] == "全部" and rows[1][4] == "2"
    assert rows[2][1] == "同类组合计 street" and rows[2][4] == "2"
    assert by_code["S1"][5:8] == ["100.00%", "100.00%", "100.00%"]  # basically satisfied counts 1.0
    assert by_code["S2"][5:8] == ["0.00%", "0.00%", "0.00%"]
    assert by_code["S3"][5] == "无数据"
    xlsx = tmp_path / "rates.xlsx"
    written = run_cli(
        "report",
        "ranking",
        "--week",
        "2026-W47",
        "--format",
        "xlsx",
        "-o",
        str(xlsx),
        "-c",
        str(path),
    )
    assert written.returncode == 0, written.stderr
    sheet = load_workbook(xlsx).active
    assert sheet["A1"].value == "排名 2026-W47"
    assert [c.value for c in sheet[2]][:5] == ["同类组", "排名", "位次", "单位编码", "单位"]
    streets = [
        [c.value for c in row] for row in sheet.iter_rows(min_row=3) if row[0].value == "street"
    ]
    assert [(r[1], r[3]) for r in streets] == [
        (1, "S1"),
        (2, "S2"),
        ("无数据", "S3"),
        ("无数据", "S4"),
    ]
    assert streets[0][9] == 1.0 and sheet.cell(3, 10).number_format == "0.00%"
    bad = run_cli("report", "three-rates", "--week", "2026-W60", "-c", str(path))
    assert bad.returncode == 2 and "2026 has no ISO week 60" in bad.stderr
    both = run_cli("report", "ranking", "--week", "2026-W47", "--month", "2026-11", "-c", str(path))
    assert both.returncode == 2 and "give one period" in both.stderr
    empty = run_cli(
        "report", "snail-seat", "--month", "2026-11", "--format", "csv", "-c", str(path)
    )
    assert empty.returncode == 0 and empty.stdout.lstrip("\ufeff").startswith("同类组,单位编码")
