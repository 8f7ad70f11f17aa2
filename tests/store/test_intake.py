"""Ticket intake from the main platform: CSV, JSON, JSON Lines and the HTTP endpoint.

Idempotent by external id, bad records reported with where and why while the
good ones land, and a record that fails half-way leaves nothing behind. On
SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

import tickets.intake.upsert
from callback_robot.eligibility import DueRules, due_tickets
from core.config import HotlineConfig, load_config
from core.vocabulary import EventKind, TicketStatus
from db.migrate import upgrade
from db.models import Ticket, TicketEvent, ValidCallback
from db.session import make_engine, make_session_factory, unit_of_work
from tests.support.config import write_config
from tests.support.snapshots import snapshot
from tickets.intake.importer import Importer, read_file

DEPARTMENTS_CSV = """code,name,level,parent_code,peer_group
D1S1,交通街道,street,D1,street
R,内蒙古自治区,region,,
C,鄂尔多斯市,city,R,city
D1,东胜区,district,C,district
BAD,坏单位,5,D1,street
D2,康巴什区,3,C,district
"""
TICKETS_CSV = """external_id,caller_number,accepted_at,request_type,category,urgency,department_code,status,dispatched_at,signed_at,closed_at,reply,callback_at,contacted,resolved,satisfaction
P-1,13800000001,2026-11-16 09:00,投诉,水电气暖,一般,D1S1,办结,2026-11-16 09:30,2026-11-16 10:00,2026-11-17 15:00,已修复,2026-11-18 10:00,1,1,2
P-2,13800000002,2026-11-16 11:00,咨询,教育,,D1S1,closed,2026-11-16 11:10,,2026-11-16 16:00,已答复,,,,
P-3,13800000003,2026-11-17 08:00,求助,城市管理,紧急,NOPE,dispatched,2026-11-17 08:05,,,,,,,
P-4,13800000004,2026-11-17 08:00,求助,城市管理,urgent,D1S1,dispatched,,,,,,,,
P-5,13800000005,2026-11-18 08:00,建议,三农,复杂,,受理,,,,,,,,
P-6,13800000006,2026-11-18 08:00,建议,三农,复杂,D1S1,办结,,,,,,,,
P-7,13800000007,2026-11-18 08:00,投诉,三农,,D1S1,办结,,,2026-11-19 08:00,好,2026-11-20 09:00,1,1,7
"""


@pytest.fixture
def site(database_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    upgrade(database_url)
    config = load_config(write_config(tmp_path / "cfg", database={"url": database_url}))
    engine = make_engine(database_url)
    yield config, make_session_factory(engine)
    engine.dispose()


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def import_file(config: HotlineConfig, sessions, path: Path):  # type: ignore[no-untyped-def]
    return Importer(sessions, config).run(read_file(path), chunk=3)


def test_csv_import_lands_good_rows_reports_bad_ones_and_is_idempotent(
    site, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    config, sessions = site
    departments = import_file(config, sessions, write(tmp_path, "units.csv", DEPARTMENTS_CSV))
    assert departments.counts["department"] == {"created": 5, "updated": 0, "unchanged": 0}
    assert [(e.where, e.reason) for e in departments.errors] == [
        ("units.csv:6", "level 5 cannot sit under D1 (level 3)")
    ]
    tickets_file = write(tmp_path, "tickets.csv", TICKETS_CSV)
    report = import_file(config, sessions, tickets_file)
    assert report.counts["ticket"] == {"created": 3, "updated": 0, "unchanged": 0}
    assert [(e.where, e.reason.split(" (got")[0]) for e in report.errors] == [
        ("tickets.csv:4", "department_code 'NOPE' is not a known department (import it first)"),
        ("tickets.csv:5", "urgency: Input should be 'emergency', 'daily_life' or 'complex'"),
        ("tickets.csv:7", "status closed needs closed_at"),
        ("tickets.csv:8", "callbacks.0.satisfaction: Input should be less than or equal to 3"),
    ]
    with unit_of_work(sessions) as session:
        p1 = session.scalars(select(Ticket).where(Ticket.external_id == "P-1")).one()
        assert p1.status == TicketStatus.CLOSED and p1.reply == "已修复"
        assert p1.department.code == "D1S1" and p1.source == "platform"
        # naive CSV times are Beijing time; the number is the local acceptance day
        assert p1.accepted_at == datetime(2026, 11, 16, 1, tzinfo=UTC)
        assert p1.number.startswith("261116")
        # a 3-working-day deadline computed on the calendar: Mon 09:00 -> Thu 09:00
        assert p1.due_at == datetime(2026, 11, 19, 1, tzinfo=UTC)
        kinds = [e.kind for e in p1.events]
        assert kinds == [
            EventKind.ACCEPTED,
            EventKind.DISPATCHED,
            EventKind.SIGNED,
            EventKind.CLOSED,
        ]
        callback = session.scalars(
            select(ValidCallback).where(ValidCallback.ticket_id == p1.id)
        ).one()
        assert (callback.contacted, callback.resolved, callback.satisfaction) == (1, 1, 2)
        assert callback.department_id == p1.department_id
        p5 = session.scalars(select(Ticket).where(Ticket.external_id == "P-5")).one()
        assert p5.status == TicketStatus.ACCEPTED and p5.department_id is None
        refused = session.scalar(
            select(func.count())
            .select_from(Ticket)
            .where(Ticket.external_id.in_(["P-3", "P-4", "P-6", "P-7"]))
        )
        assert refused == 0
    before = snapshot(sessions)
    again = import_file(config, sessions, tickets_file)
    assert again.counts["ticket"] == {"created": 0, "updated": 0, "unchanged": 3}
    assert len(again.errors) == 4
    assert snapshot(sessions) == before


def test_a_changed_record_updates_and_adds_only_what_is_new(site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config, sessions = site
    import_file(config, sessions, write(tmp_path, "units.csv", DEPARTMENTS_CSV))
    open_ticket = {
        "external_id": "J-1",
        "caller_number": "13900000001",
        "accepted_at": "2026-11-16T09:00:00+08:00",
        "department_code": "D1S1",
        "status": "dispatched",
        "events": [
            {"kind": "dispatched", "at": "2026-11-16T09:20:00+08:00", "department_code": "D1S1"}
        ],
    }
    body = {"tickets": [open_ticket]}
    first = Importer(sessions, config).run(_items(body))
    assert first.counts["ticket"]["created"] == 1
    closed = {
        **open_ticket,
        "status": "closed",
        "closed_at": "2026-11-17T10:00:00+08:00",
        "reply": "已办结",
        "events": [
            *open_ticket["events"],
            {"kind": "closed", "at": "2026-11-17T10:00:00+08:00", "department_code": "D1S1"},
        ],
        "callbacks": [
            {"at": "2026-11-18T10:00:00+08:00", "contacted": 1, "resolved": 2, "satisfaction": 3}
        ],
    }
    second = Importer(sessions, config).run(_items({"tickets": [closed]}))
    assert second.counts["ticket"] == {"created": 0, "updated": 1, "unchanged": 0}
    third = Importer(sessions, config).run(_items({"tickets": [closed]}))
    assert third.counts["ticket"] == {"created": 0, "updated": 0, "unchanged": 1}
    with unit_of_work(sessions) as session:
        ticket = session.scalars(select(Ticket).where(Ticket.external_id == "J-1")).one()
        assert [e.kind for e in ticket.events] == [
            EventKind.ACCEPTED,
            EventKind.DISPATCHED,
            EventKind.CLOSED,
        ]
        assert ticket.status == TicketStatus.CLOSED
        assert session.scalar(select(func.count()).select_from(ValidCallback)) == 1


def _items(body: object):  # type: ignore[no-untyped-def]
    from tickets.intake.importer import body_items

    return body_items(body)


def test_a_record_failing_half_way_leaves_nothing_behind(
    site, tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    config, sessions = site
    import_file(config, sessions, write(tmp_path, "units.csv", DEPARTMENTS_CSV))
    real = tickets.intake.upsert._add_new_callbacks

    def crash_on_p1(session, ticket, record):  # type: ignore[no-untyped-def]
        if record.external_id == "P-1":  # the ticket and its events are written by now
            raise ValueError("disk on fire")
        return real(session, ticket, record)

    monkeypatch.setattr(tickets.intake.upsert, "_add_new_callbacks", crash_on_p1)
    report = import_file(config, sessions, write(tmp_path, "tickets.csv", TICKETS_CSV))
    assert ("tickets.csv:2", "disk on fire") in [(e.where, e.reason) for e in report.errors]
    assert report.counts["ticket"]["created"] == 2
    with unit_of_work(sessions) as session:
        assert (
            session.scalar(
                select(func.count()).select_from(Ticket).where(Ticket.external_id == "P-1")
            )
            == 0
        )
        assert session.scalar(select(func.count()).select_from(TicketEvent)) == 2 + 2  # P-2, P-5
        assert session.scalar(select(func.count()).select_from(ValidCallback)) == 0


def test_json_tree_in_any_order_and_jsonl_with_a_broken_line(site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config, sessions = site
    body = {
        "departments": [
            {"code": "V1", "name": "村", "level": 5, "parent_code": "S1", "peer_group": "village"},
            {"code": "S1", "name": "镇", "level": 4, "parent_code": "D1"},
            {"code": "D1", "name": "旗", "level": "district", "parent_code": "C"},
            {"code": "C", "name": "市", "level": 2, "parent_code": "R"},
            {"code": "R", "name": "区", "level": 1},
            {"code": "X", "name": "orphan", "level": 1, "parent_code": "R"},
        ],
        "tickets": [
            {
                "external_id": "J-1",
                "caller_number": "13900000001",
                "accepted_at": "2026-11-16 09:00",
                "department_code": "V1",
                "status": "派单",
            }
        ],
    }
    report = import_file(
        config, sessions, write(tmp_path, "tree.json", json.dumps(body, ensure_ascii=False))
    )
    assert report.counts["department"]["created"] == 5
    assert [(e.where, e.reason) for e in report.errors] == [
        ("departments[5]", "a level-1 unit (region) has no parent")
    ]
    lines = [
        json.dumps(
            {
                "external_id": "L-1",
                "caller_number": "13900000002",
                "accepted_at": "2026-11-16 10:00",
            }
        ),
        "{not json",
        json.dumps(
            {
                "external_id": "L-2",
                "caller_number": "13900000003",
                "accepted_at": "2026-11-16 10:00",
                "colour": "red",
            }
        ),
    ]
    report = import_file(
        config, sessions, write(tmp_path, "tickets.jsonl", "\n".join(lines) + "\n")
    )
    assert report.counts["ticket"]["created"] == 1
    assert [e.where for e in report.errors] == ["tickets.jsonl:2", "tickets.jsonl:3"]
    assert "colour: Extra inputs are not permitted" in report.errors[1].reason


def test_the_robot_surveys_imported_tickets_unless_the_platform_already_did(
    site, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    config, sessions = site
    import_file(config, sessions, write(tmp_path, "units.csv", DEPARTMENTS_CSV))
    import_file(config, sessions, write(tmp_path, "tickets.csv", TICKETS_CSV))
    now = datetime(2026, 11, 25, 3, tzinfo=UTC)
    rules = DueRules(
        now=now, today_start=now - timedelta(hours=3), closed_before=now - timedelta(hours=24)
    )
    with unit_of_work(sessions) as session:
        due = due_tickets(session, rules, 10)
        numbers = set(session.scalars(select(Ticket.external_id).where(Ticket.id.in_(due))))
    assert numbers == {"P-2"}  # closed, no callback yet; P-1 was surveyed on the platform


def test_http_endpoint_needs_the_token_and_imports_idempotently(site, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from dashboard.app import create_app

    config, _ = site
    body = {
        "departments": [{"code": "R", "name": "区", "level": 1}],
        "tickets": [
            {
                "external_id": "H-1",
                "caller_number": "13900000001",
                "accepted_at": "2026-11-16 09:00",
            },
            {"external_id": "H-2", "caller_number": "1"},
        ],
    }
    monkeypatch.delenv("HOTLINE_IMPORT_TOKEN", raising=False)
    with TestClient(create_app(config), base_url="http://127.0.0.1") as client:
        closed = client.post("/api/import", json=body)
        assert closed.status_code == 503 and "HOTLINE_IMPORT_TOKEN" in closed.json()["detail"]
        monkeypatch.setenv("HOTLINE_IMPORT_TOKEN", "s3cret")
        assert client.post("/api/import", json=body).status_code == 401
        wrong = client.post("/api/import", json=body, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        auth = {"Authorization": "Bearer s3cret"}
        first = client.post("/api/import", json=body, headers=auth)
        assert first.status_code == 200
        result = first.json()
        assert result["counts"]["department"]["created"] == 1
        assert result["counts"]["ticket"]["created"] == 1
        assert [e["where"] for e in result["errors"]] == ["tickets[1]"]
        assert "caller_number" in result["errors"][0]["reason"]
        second = client.post("/api/import", json=body, headers=auth).json()
        assert second["counts"]["ticket"] == {"created": 0, "updated": 0, "unchanged": 1}
        unusable = client.post("/api/import", json={"users": []}, headers=auth)
        assert unusable.status_code == 422


def test_cli_import_prints_refusals_and_exits_1(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    subprocess.run(
        [sys.executable, "-m", "hotline.cli", "db", "upgrade", "-c", str(config)],
        check=True,
        capture_output=True,
    )
    units = write(tmp_path, "units.csv", DEPARTMENTS_CSV)
    done = subprocess.run(
        [sys.executable, "-m", "hotline.cli", "tickets", "import", str(units), "-c", str(config)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert "departments: 5 created" in done.stdout
    assert "refused units.csv:6: level 5 cannot sit under D1 (level 3)" in done.stdout
    missing = subprocess.run(
        [
            sys.executable,
            "-m",
            "hotline.cli",
            "tickets",
            "import",
            str(tmp_path / "nope.xml"),
            "-c",
            str(config),
        ],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and "expected a .csv, .json or .jsonl file" in missing.stderr
