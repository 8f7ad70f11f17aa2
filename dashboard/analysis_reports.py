"""The monthly analysis's tables: `hotline report hotspots|topics|accountability|kb`.

Each reads the month's newest finished run (`analysis.runs.latest_run`), never the
tickets live, so the terminal, the CSV/XLSX and the console show one set of figures.
Ticket numbers in the evidence columns are what a supervisor opens next; the text of
tickets is not in these tables.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from analysis.runs import latest_run, summary_of
from db.models import AnalysisRun, Department, HotspotFlag, Ticket, Topic, UnitSignal
from reports.tables import Report

STATE = {"watch": "关注", "alert": "预警"}
REVIEW = {"confirmed": "已确认", "dismissed": "已排除", None: ""}
SIGNAL = {
    "contradicted_resolved": "谎报瞒报：办结称已解决、回访称未解决",
    "repeat_after_close": "谎报瞒报：称已解决后同号同类再来电",
    "bounced": "推诿扯皮：多次退回或改派",
    "ping_pong": "推诿扯皮：A→B→A 来回派",
    "pair_bounce": "推诿扯皮：两单位间同类互推",
}


class NoRun(LookupError):
    """No finished run for the month: the message says how to make one."""


def month_run(session: Session, month: str) -> AnalysisRun:
    run = latest_run(session, month)
    if run is None:
        raise NoRun(f"no analysis of {month} yet: run `hotline analyse --month {month}`")
    return run


def _names(session: Session, ids: set[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.execute(select(Department.id, Department.name).where(Department.id.in_(wanted)))
    return {row.id: row.name for row in rows}


def _numbers(session: Session, ticket_ids: list[int], limit: int = 10) -> str:
    """The first tickets of the evidence as their numbers (and how many more)."""
    shown = ticket_ids[:limit]
    if not shown:
        return ""
    rows = session.execute(select(Ticket.id, Ticket.number).where(Ticket.id.in_(shown)))
    numbers = {row.id: row.number for row in rows}
    text = " ".join(numbers.get(i, f"#{i}") for i in shown)
    more = len(ticket_ids) - len(shown)
    return text + (f" 等{len(ticket_ids)}件" if more > 0 else "")


def hotspots_report(session: Session, month: str, level: str = "") -> Report:
    """The month's surge flags: where and what rose beyond its season."""
    run = month_run(session, month)
    query = select(HotspotFlag).where(HotspotFlag.run_id == run.id)
    if level:
        query = query.where(HotspotFlag.level == level)
    flags = list(session.scalars(query.order_by(HotspotFlag.period_start, HotspotFlag.category)))
    names = _names(session, {flag.area_id for flag in flags})
    report = Report(
        f"{month} 热点预警（第 {run.id} 次研判）",
        [
            "周期",
            "起始",
            "类别",
            "地区",
            "层级",
            "方法",
            "实际",
            "预期",
            "阈值",
            "q值",
            "状态",
            "复核",
        ],
    )
    for flag in flags:
        report.rows.append(
            [
                "周" if flag.period == "week" else "日",
                flag.period_start.isoformat(),
                flag.category,
                names.get(flag.area_id or 0, "未知"),
                "旗区" if flag.level == "district" else "苏木乡镇/街道",
                flag.method,
                flag.observed,
                round(flag.expected, 1),
                round(flag.upper, 1),
                None if flag.q_value is None else round(flag.q_value, 4),
                STATE.get(flag.state, flag.state),
                REVIEW.get(flag.review, flag.review),
            ]
        )
    return report


def topics_report(session: Session, month: str, category: str = "") -> Report:
    """Without a category: each category's line; with one: its topics."""
    run = month_run(session, month)
    if not category:
        report = Report(
            f"{month} 各类诉求（第 {run.id} 次研判）",
            ["类别", "件数", "上月", "去年同月", "环比", "同比", "主要反映", "摘要"],
            percent={"环比", "同比"},
        )
        for line in summary_of(run).get("categories", []):
            report.rows.append(
                [
                    line["category"],
                    line["count"],
                    line["previous"],
                    line["year_ago"],
                    line["mom"],
                    line["yoy"],
                    "、".join(line["topics"]),
                    line["line"],
                ]
            )
        return report
    topics = list(
        session.scalars(
            select(Topic)
            .where(Topic.run_id == run.id, Topic.category == category)
            .order_by(Topic.size.desc())
        )
    )
    report = Report(
        f"{month} {category} 主要反映（第 {run.id} 次研判）",
        ["主题", "件数", "新出现", "关键词", "典型工单"],
    )
    for topic in topics:
        terms = [str(term).replace(" ", "") for term, _ in json.loads(topic.terms)]
        terms = list(dict.fromkeys(terms))[:8]  # a bigram reads as one phrase
        report.rows.append(
            [
                topic.label,
                topic.size,
                "新" if topic.is_new else "",
                "、".join(terms),
                _numbers(session, json.loads(topic.typical_ticket_ids)),
            ]
        )
    return report


def accountability_report(session: Session, month: str, flagged_only: bool = False) -> Report:
    """Evidence per unit, flagged ones first: for review, never a penalty by itself."""
    run = month_run(session, month)
    query = select(UnitSignal).where(UnitSignal.run_id == run.id)
    if flagged_only:
        query = query.where(UnitSignal.flagged.is_(True))
    signals = list(
        session.scalars(
            query.order_by(UnitSignal.flagged.desc(), UnitSignal.kind, UnitSignal.department_id)
        )
    )
    names = _names(
        session,
        {s.department_id for s in signals} | {s.other_department_id for s in signals},
    )
    report = Report(
        f"{month} 履职信号（第 {run.id} 次研判；供核查，不作自动处罚）",
        [
            "单位",
            "信号",
            "对方单位",
            "类别",
            "件数",
            "基数",
            "比例",
            "同类单位比例",
            "q值",
            "标记",
            "损失小时",
            "工单",
        ],
        percent={"比例", "同类单位比例"},
    )
    for signal in signals:
        report.rows.append(
            [
                names.get(signal.department_id, str(signal.department_id)),
                SIGNAL.get(signal.kind, signal.kind),
                names.get(signal.other_department_id or 0, ""),
                signal.category or "",
                signal.observed,
                signal.total,
                signal.observed / signal.total if signal.total else None,
                signal.peer_rate,
                None if signal.q_value is None else round(signal.q_value, 4),
                "需核查" if signal.flagged else "",
                None if signal.hours_lost is None else round(signal.hours_lost, 1),
                _numbers(session, json.loads(signal.ticket_ids)),
            ]
        )
    return report


def kb_report(session: Session, month: str) -> Report:
    """Per entry: offered, heard, accepted, true deflection; then the gaps."""
    run = month_run(session, month)
    kb: dict[str, Any] = summary_of(run).get("kb", {})
    report = Report(
        f"{month} 知识库（第 {run.id} 次研判）",
        ["条目", "标题", "提供", "收听", "接受", "真正分流", "分流率"],
        percent={"分流率"},
    )
    for entry in kb.get("entries", []):
        offered = entry.get("offered", 0)
        report.rows.append(
            [
                entry.get("key", ""),
                entry.get("title", ""),
                offered,
                entry.get("heard", 0),
                entry.get("accepted", 0),
                entry.get("true_deflection", 0),
                entry.get("true_deflection", 0) / offered if offered else None,
            ]
        )
    for gap in kb.get("gaps", []):
        report.rows.append(
            ["（缺口）", gap.get("topic", ""), gap.get("count", 0), "", "", "", None]
        )
    return report
