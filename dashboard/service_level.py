"""The standard's daily report (GB/T 33358): per line, queue and day, with the 95 % goal lines.

Per day of a day, an ISO week or a month, for the whole hotline and each queue
(with the lines that ring it): offered, answered within the queue's service
level (15 s), service level, answered, 接通率 over the day and the worst rolling
24 h, abandoned with their waits, ASA, AHT, and the missed-call callbacks
created and closed that day (the hotline's row). The figures are
`agents.figures`'; the table is a `reports.tables.Report`, so the page, its
CSV/XLSX download and `hotline report service-level` are the same rows.
Supervisors and admins only.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from sqlalchemy.orm import Session

from agents.figures import (
    HOTLINE,
    WAIT_BUCKETS,
    QueueRule,
    callbacks,
    day_figures,
    day_range,
    rolling_24h,
)
from core import periods
from core.config import HotlineConfig
from dashboard.audit import audit
from dashboard.auth import Viewer, client_address, require_roles
from dashboard.charts import Series, line_chart
from dashboard.render import page
from dashboard.report_files import report_file
from db.session import unit_of_work
from reports.tables import Report

router = APIRouter(tags=["service-level"])
ROLES = ("admin", "supervisor")
PERCENT = {"服务水平", "接通率", "最差24小时接通率"}
HEADERS = [
    "日期",
    "线路",
    "队列",
    "呼入",
    "服务水平内接通",
    "服务水平",
    "接通",
    "接通率",
    "最差24小时接通率",
    "放弃",
    *(f"放弃{label}" for label, _, _ in WAIT_BUCKETS),
    "平均应答秒",
    "平均处理秒",
    "回拨任务新建",
    "回拨任务关闭",
]
ALL = "全部"


def rules_of(config: HotlineConfig) -> list[QueueRule]:
    return [QueueRule(q.name, q.service_level_seconds, q.wrapup_seconds) for q in config.queues]


def choose(today: date, day: str = "", week: str = "", month: str = "") -> periods.Period:
    """The period named by one of day (YYYY-MM-DD), week (YYYY-Www), month (YYYY-MM); today."""
    if sum(bool(x) for x in (day, week, month)) > 1:
        raise periods.PeriodError("give one of day, week, month")
    if week:
        return periods.iso_week(week)
    if month:
        return periods.calendar_month(month)
    if day:
        try:
            first = date.fromisoformat(day.strip())
        except ValueError:
            raise periods.PeriodError(f"day {day!r}: expected YYYY-MM-DD") from None
        if not periods.EARLIEST <= first <= periods.LATEST:
            raise periods.PeriodError(f"day {day!r}: outside the years a report covers")
    else:
        first = today
    return periods.Period(first.isoformat(), first, first + timedelta(days=1))


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def service_level_report(session: Session, config: HotlineConfig, period: periods.Period) -> Report:
    """The report's rows: each day of the period, the hotline then each queue."""
    rules = rules_of(config)
    lines = {
        q.name: "、".join(
            line.did for line in config.lines if line.queue == q.name and line.answer == "agents"
        )
        for q in config.queues
    }
    report = Report(f"服务水平日报 {period.label}", list(HEADERS), percent=set(PERCENT))
    day = period.first
    while day < period.end:
        figures = day_figures(session, rules, day, config.tz)
        missed = callbacks(session, *day_range(day, config.tz))
        for name in [HOTLINE, *(rule.name for rule in rules)]:
            one = figures[name]
            hotline = name == HOTLINE
            report.rows.append(
                [
                    day.isoformat(),
                    ALL if hotline else lines[name],
                    ALL if hotline else name,
                    one.offered,
                    one.within,
                    one.service_level,
                    one.answered,
                    one.completion,
                    one.worst_24h,
                    one.abandoned,
                    *(one.waits[label] for label, _, _ in WAIT_BUCKETS),
                    _seconds(one.asa),
                    _seconds(one.aht),
                    missed.created if hotline else None,
                    missed.closed if hotline else None,
                ]
            )
        day += timedelta(days=1)
    return report


def chart(
    session: Session, config: HotlineConfig, period: periods.Period, report: Report
) -> tuple[str, str]:
    """An SVG with the goal line: a day's 24 rolling 24 h windows (接通率), or each day's
    service level and 接通率 of a week or month; and what it shows."""
    goal = config.monitoring.completion_goal
    if period.end - period.first == timedelta(days=1):
        _, end = day_range(period.first, config.tz)
        rates = rolling_24h(session, rules_of(config), end)[HOTLINE]
        labels = [f"{h:02d}:00" for h in range(1, 25)]
        series = [
            Series("24小时接通率", "#1f77b4", list(rates)),
            Series(f"目标 {goal:.0%}", "#d62728", [goal] * len(labels)),
        ]
        return line_chart(labels, series), "滚动24小时接通率（每小时结束的24小时窗口）"
    at = {h: i for i, h in enumerate(report.headers)}
    rows = [row for row in report.rows if row[at["队列"]] == ALL]
    labels = [row[0][5:] for row in rows]
    series = [
        Series("服务水平", "#2ca02c", [row[at["服务水平"]] for row in rows]),
        Series("接通率", "#1f77b4", [row[at["接通率"]] for row in rows]),
        Series(
            f"目标 {config.monitoring.service_level_goal:.0%}",
            "#d62728",
            [config.monitoring.service_level_goal] * len(rows),
        ),
    ]
    return line_chart(labels, series), "每日服务水平与接通率"


def _period(request: Request) -> tuple[periods.Period, dict[str, str]]:
    config: HotlineConfig = request.app.state.config
    chosen = {k: request.query_params.get(k, "")[:20] for k in ("day", "week", "month")}
    try:
        period = choose(datetime.now(config.tz).date(), **chosen)
    except periods.PeriodError as exc:
        raise HTTPException(400, f"时段 period: {exc}") from None
    return period, {k: v for k, v in chosen.items() if v}


@router.get("/service-level")
def service_level_page(
    request: Request, viewer: Annotated[Viewer, Depends(require_roles(*ROLES))]
) -> Response:
    """The daily report's table and chart for a day (today), week or month."""
    config: HotlineConfig = request.app.state.config
    period, chosen = _period(request)
    with unit_of_work(request.app.state.sessions) as session:
        report = service_level_report(session, config, period)
        svg, what = chart(session, config, period, report)
    at = {h: i for i, h in enumerate(report.headers)}
    low: list[dict[str, bool]] = []
    for row in report.rows:
        sl, done, worst = (row[at[h]] for h in ("服务水平", "接通率", "最差24小时接通率"))
        low.append(
            {
                "服务水平": sl is not None and sl < config.monitoring.service_level_goal,
                "接通率": done is not None and done < config.monitoring.completion_goal,
                "最差24小时接通率": worst is not None and worst < config.monitoring.completion_goal,
            }
        )
    query = "&".join(f"{k}={v}" for k, v in chosen.items())
    return page(
        request,
        "service_level.html",
        viewer,
        {
            "period": period,
            "chosen": chosen,
            "query": query,
            "report": report,
            "low": low,
            "chart": svg,
            "chart_title": what,
        },
    )


@router.get("/service-level/export.{fmt}")
def export(
    request: Request, fmt: str, viewer: Annotated[Viewer, Depends(require_roles(*ROLES))]
) -> Response:
    """The report as CSV (UTF-8 with BOM) or XLSX: the file `hotline report service-level`
    writes."""
    if fmt not in ("csv", "xlsx"):
        raise HTTPException(404, "没有这个格式 / csv or xlsx")
    config: HotlineConfig = request.app.state.config
    period, _ = _period(request)
    with unit_of_work(request.app.state.sessions) as session:
        report = service_level_report(session, config, period)
        audit(
            session,
            viewer.username,
            viewer.role,
            "export",
            None,
            None,
            client_address(request),
            f"service-level {period.label}",
        )
    return report_file(report, fmt, f"service-level-{period.label}.{fmt}")
