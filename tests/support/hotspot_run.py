"""A stored monthly analysis run for the hotspots page's tests, written the way the run
writer stores one: `analysis_runs` with its summary JSON, flags, topics, unit signals.

Built on the console city (`console_city`): districts D1, D2, D3, township S1 under
D1, and the city's tickets of S1, S2 and V1; one 保密 ticket is added here.
Fixed month and dates, so nothing depends on today.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import AnalysisRun, Department, HotspotFlag, Topic, UnitSignal
from db.session import unit_of_work
from db.tickets import create_ticket, ticket_by_number
from tests.support.console_city import ConsoleCity

MONTH = "2025-10"
FINISHED = datetime(2025, 11, 3, 2, 0, tzinfo=UTC)
SECRET_TEXT = "保密举报 某单位负责人收受红包"
LABOUR_LINE = "劳动纠纷 120件，环比 +20.0%，同比 +33.3%，主要反映拖欠工资、社保未缴等问题"
HEATING_LINE = "水电气暖 300件，环比 +50.0%，同比 +5.0%，主要反映暖气不热、停水等问题"
WEEKS = ["2025-09-01", "2025-09-08", "2025-09-15", "2025-09-22", "2025-09-29", "2025-10-06"]


@dataclass
class StoredRun:
    run_id: int
    flags: dict[str, int] = field(default_factory=dict)  # "labour" (S1 alert), "heating" (D2)
    units: dict[str, int] = field(default_factory=dict)  # code -> department id
    tickets: dict[str, str] = field(default_factory=dict)  # S1, S2, V1, secret -> number


def summary(districts: list[tuple[int, str]], flags: dict[str, int]) -> dict[str, Any]:
    """The summary JSON the run writer stores (the shape in the page's docs)."""
    d1, d2, d3 = (d[0] for d in districts)
    return {
        "categories": [
            {"category": "劳动纠纷", "count": 120, "previous": 100, "year_ago": 90, "mom": 0.2,
             "yoy": 0.333, "topics": ["拖欠工资", "社保未缴"], "line": LABOUR_LINE},
            {"category": "水电气暖", "count": 300, "previous": 200, "year_ago": 286, "mom": 0.5,
             "yoy": 0.05, "topics": ["暖气不热", "停水"], "line": HEATING_LINE},
        ],
        "grid": {
            "districts": [list(d) for d in districts],
            "cells": [
                {"category": "劳动纠纷", "area_id": d1, "observed": 30, "expected": 12.5},
                {"category": "劳动纠纷", "area_id": d2, "observed": 10, "expected": 11.0},
                {"category": "劳动纠纷", "area_id": d3, "observed": 4, "expected": 6.0},
                {"category": "水电气暖", "area_id": d1, "observed": 50, "expected": 48.0},
                {"category": "水电气暖", "area_id": d2, "observed": 41, "expected": 25.0},
            ],
        },
        "series": {
            str(flags["labour"]): {"weeks": WEEKS, "observed": [3, 4, 2, 5, 14, 16],
                                   "expected": [3.1, 3.0, 3.2, 3.0, 3.1, 3.2],
                                   "upper": [7.5, 7.4, 7.6, 7.4, 7.5, 7.6]},
        },
        "candidates": [
            {"rank": 1, "category": "水电气暖", "topic": "暖气不热", "volume": 900,
             "months_in_top10": 12, "unresolved_share": 0.31, "returns": 44,
             "districts_above": ["unit D1"], "score": 0.82},
            {"rank": 2, "category": "城乡建设", "topic": None, "volume": 610,
             "months_in_top10": 9, "unresolved_share": 0.22, "returns": 12,
             "districts_above": [], "score": 0.61},
        ],
        "topic_candidates": [
            {"rank": 1, "category": "城乡建设", "topic": "物业维修", "volume": 210,
             "months_in_top10": 7, "unresolved_share": None, "returns": 3,
             "districts_above": ["unit D2"], "score": 0.55},
        ],
        "governance": [
            {"id": 1, "title": "冬季供暖不热专项治理", "lead_unit": "市住建局",
             "months": [{"month": "2025-09", "observed": 40, "baseline": 55.0, "change": -0.27},
                        {"month": "2025-10", "observed": 48, "baseline": 60.0, "change": -0.2}]},
        ],
        "kb": {
            "entries": [{"key": "heating-fault", "title": "暖气不热找谁", "offered": 30,
                         "heard": 25, "accepted": 18, "true_deflection": 15}],
            "gaps": [{"topic": "电动车充电桩安装", "count": 12}],
        },
    }  # fmt: skip


def _flag(
    run_id: int, category: str, area_id: int, level: str, state: str, **more: Any
) -> HotspotFlag:
    values: dict[str, Any] = {
        "run_id": run_id, "category": category, "area_id": area_id, "level": level,
        "period": "week", "period_start": date(2025, 10, 6), "method": "farrington",
        "observed": 16, "expected": 3.2, "upper": 7.6, "p_value": 0.0002, "q_value": 0.004,
        "state": state,
    }  # fmt: skip
    values.update(more)
    return HotspotFlag(**values)


def store_run(sessions: sessionmaker[Session], city: ConsoleCity, month: str = MONTH) -> StoredRun:
    """An older and a newer finished run of month (the page shows the newer), their flags,
    topics and signals; also a failed run of the month after."""
    with unit_of_work(sessions) as session:
        units = {d.code: d for d in session.scalars(select(Department))}
        ticket_ids = {code: ticket_by_number(session, n).id for code, n in city.tickets.items()}  # type: ignore[union-attr]
        secret = create_ticket(
            session, caller_number="13600009999", local_day=date(2025, 10, 9),
            accepted_at=datetime(2025, 10, 9, 2, tzinfo=UTC), description=SECRET_TEXT,
            category="劳动纠纷", source="test",
        )  # fmt: skip
        secret.confidential = True
        districts = [(units[c].id, units[c].name) for c in ("D1", "D2", "D3")]
        older = AnalysisRun(
            month=month, kind="month", config="{}", code_version="old",
            started_at=datetime(2025, 11, 1, 1, tzinfo=UTC),
            finished_at=datetime(2025, 11, 1, 2, tzinfo=UTC), status="done",
            summary=json.dumps({"categories": [{"category": "旧", "line": "旧的运行 old run"}]}),
        )  # fmt: skip
        run = AnalysisRun(
            month=month, kind="month", config="{}", code_version="test-1",
            started_at=datetime(2025, 11, 3, 1, tzinfo=UTC), finished_at=FINISHED, status="done",
        )  # fmt: skip
        failed = AnalysisRun(
            month="2025-11", kind="month", config="{}", code_version="test-1",
            started_at=datetime(2025, 12, 3, 1, tzinfo=UTC), status="failed",
        )  # fmt: skip
        session.add_all([older, run, failed])
        session.flush()
        labour = _flag(run.id, "劳动纠纷", units["S1"].id, "township", "alert")
        heating = _flag(run.id, "水电气暖", units["D2"].id, "district", "watch", observed=41,
                        expected=25.0, upper=38.0, p_value=0.01, q_value=0.04)  # fmt: skip
        session.add_all([labour, heating])
        session.flush()
        flags = {"labour": labour.id, "heating": heating.id}
        run.summary = json.dumps(summary(districts, flags), ensure_ascii=False)
        session.add_all(_topics(run.id, month, ticket_ids, secret.id))
        session.add_all(_signals(run.id, units, ticket_ids))
        session.flush()
        return StoredRun(
            run_id=run.id,
            flags=flags,
            units={code: d.id for code, d in units.items()},
            tickets={**city.tickets, "secret": secret.number},
        )


def _topics(run_id: int, month: str, ids: dict[str, int], secret_id: int) -> list[Topic]:
    def terms(*words: str) -> str:
        return json.dumps([[w, round(1 - i / 10, 2)] for i, w in enumerate(words)])

    return [
        Topic(run_id=run_id, month=month, category="劳动纠纷", label="拖欠工资",
              terms=terms("工资", "拖欠", "工地"), size=60,
              typical_ticket_ids=json.dumps([ids["S1"], secret_id]), is_new=True),
        Topic(run_id=run_id, month=month, category="劳动纠纷", label="社保未缴",
              terms=terms("社保", "缴纳"), size=25, typical_ticket_ids=json.dumps([ids["S2"]]),
              is_new=False),
        Topic(run_id=run_id, month=month, category="水电气暖", label="暖气不热",
              terms=terms("暖气", "不热"), size=140, typical_ticket_ids=json.dumps([ids["V1"]]),
              is_new=False),
    ]  # fmt: skip


def _signals(run_id: int, units: dict[str, Department], ids: dict[str, int]) -> list[UnitSignal]:
    return [
        UnitSignal(run_id=run_id, department_id=units["S2"].id, kind="ping_pong",
                   other_department_id=units["S1"].id, category="城市管理", observed=2, total=40,
                   peer_rate=0.02, p_value=0.4, q_value=0.6, flagged=False, hours_lost=30.5,
                   ticket_ids=json.dumps([ids["S2"]])),
        UnitSignal(run_id=run_id, department_id=units["S1"].id, kind="contradicted_resolved",
                   category="城市管理", observed=20, total=50, peer_rate=0.1, p_value=0.00001,
                   q_value=0.0001, flagged=True, ticket_ids=json.dumps([ids["S1"], ids["V1"]])),
    ]  # fmt: skip
