"""Agents' performance (绩效考核) `/performance`: per agent and per team, a day, week or month.

For supervisors and admins; staff and agents get 403 (an agent's own figures are
not shown on /agent yet). The figures are `agents.performance`'s, the three rates
of the tickets an agent filed are `reports.metrics`' own computation over their
valid callbacks, and the exports are `reports.tables` reports: the same files
`hotline report performance --format csv|xlsx` writes. Every export is audited.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from sqlalchemy.orm import Session

from agents.performance import AgentFigures, agent_figures, period_of, team_figures
from core.config import HotlineConfig
from core.periods import Period, PeriodError
from dashboard.audit import audit
from dashboard.auth import Viewer, client_address, require_roles
from dashboard.charts import stacked_bars
from dashboard.render import page
from dashboard.report_files import report_file
from db.models import utcnow
from db.session import unit_of_work
from reports.build import rate_rules
from reports.metrics import Counts, Rates
from reports.tables import Report

router = APIRouter(tags=["performance"])
Supervisor = Annotated[Viewer, Depends(require_roles("supervisor", "admin"))]
PAUSE_NAMES = {"break": "小休", "training": "培训", "meeting": "会议", "rona": "未接自动置忙"}
PERCENT = {"占用率", "直办占比", "响应率", "解决率", "满意率"}
WHICH = ("agents", "teams")


def figures(
    session: Session, config: HotlineConfig, period: Period, now: datetime | None = None
) -> list[AgentFigures]:
    """Every agent's figures in period (local days of the hotline's time zone)."""
    start, end = period.utc_range(config.timezone)
    wrapup = {queue.name: queue.wrapup_seconds for queue in config.queues}
    longest = max(wrapup.values(), default=0)
    return agent_figures(session, start, end, now or utcnow(), wrapup, longest)


def rates_of(one: AgentFigures, config: HotlineConfig) -> Rates:
    counts = Counts(one.valid, one.contacted, one.resolved, one.satisfied, one.basic)
    return Rates.of(counts, rate_rules(config))


def pause_reasons(config: HotlineConfig, rows: list[AgentFigures]) -> list[str]:
    """The configured reasons, then any other reason found in the period."""
    found = {reason for one in rows for reason in one.pauses}
    return list(config.agents.pause_reasons) + sorted(found - set(config.agents.pause_reasons))


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def performance_report(
    session: Session,
    config: HotlineConfig,
    period: Period,
    which: str = "agents",
    now: datetime | None = None,
) -> Report:
    """The agents' (or teams') figures as a report: the page's table, CSV, XLSX, terminal."""
    rows = figures(session, config, period, now)
    if which == "teams":
        rows = team_figures(rows)
    reasons = pause_reasons(config, rows)
    first = ["班组"] if which == "teams" else ["坐席", "班组"]
    headers = [
        *first,
        "接听",
        "振铃未接",
        "平均处理(秒)",
        "平均话后(秒)",
        "通话(秒)",
        "话后(秒)",
        *(f"{PAUSE_NAMES.get(r, r)}({r})(秒)" for r in reasons),
        "登录(秒)",
        "占用率",
        "工单",
        "直办",
        "直办占比",
        "有效回访",
        "响应率",
        "解决率",
        "满意率",
        "质检次数",
        "质检均分",
    ]
    report = Report(f"坐席绩效 {period.label}", headers, percent=set(PERCENT))
    for one in rows:
        rates = rates_of(one, config)
        names = [one.login] if which == "teams" else [one.login, one.team]
        report.rows.append(
            [
                *names,
                one.answered,
                one.rang_out,
                _round(one.average_handle),
                _round(one.average_wrap),
                round(one.talk_seconds),
                round(one.wrap_seconds),
                *(round(one.pauses.get(r, 0.0)) for r in reasons),
                round(one.logged_in_seconds),
                one.occupancy,
                one.tickets,
                one.direct,
                one.direct_share,
                one.valid,
                rates.response,
                rates.resolution,
                rates.satisfaction,
                one.scores,
                _round(one.quality),
            ]
        )
    return report


def _period(request: Request, config: HotlineConfig) -> tuple[Period, dict[str, str]]:
    chosen = {
        name: request.query_params.get(name, "").strip()[:12]
        for name in ("day", "week", "month")
        if request.query_params.get(name, "").strip()
    }
    try:
        return period_of(datetime.now(config.tz).date(), **chosen), chosen
    except PeriodError as exc:
        raise HTTPException(400, str(exc)) from None


@router.get("/performance")
def performance_page(request: Request, viewer: Supervisor) -> Response:
    """The agents' and teams' figures in the chosen period, with a chart."""
    config: HotlineConfig = request.app.state.config
    period, chosen = _period(request, config)
    with unit_of_work(request.app.state.sessions) as session:
        agents = performance_report(session, config, period, "agents")
        teams = performance_report(session, config, period, "teams")
    column = {h: i for i, h in enumerate(agents.headers)}
    chart = stacked_bars(
        [row[0] for row in agents.rows],
        [
            ("接听 answered", "#2ca02c", [row[column["接听"]] for row in agents.rows]),
            ("振铃未接 rang out", "#d62728", [row[column["振铃未接"]] for row in agents.rows]),
        ],
    )
    query = "&".join(f"{k}={v}" for k, v in chosen.items())
    return page(
        request,
        "performance.html",
        viewer,
        {
            "period": period,
            "chosen": chosen,
            "query": query,
            "agents": agents,
            "teams": teams,
            "chart": chart,
        },
    )


@router.get("/performance/export/{which}.{fmt}")
def export(request: Request, which: str, fmt: str, viewer: Supervisor) -> Response:
    """The agents' or teams' table as CSV (UTF-8 with BOM) or XLSX; audited."""
    if which not in WHICH or fmt not in ("csv", "xlsx"):
        raise HTTPException(404, "没有这个报表 / no such report")
    config: HotlineConfig = request.app.state.config
    period, _ = _period(request, config)
    with unit_of_work(request.app.state.sessions) as session:
        report = performance_report(session, config, period, which)
        audit(
            session,
            viewer.username,
            viewer.role,
            "export",
            None,
            None,
            client_address(request),
            f"performance {which} {period.label}",
        )
    return report_file(report, fmt, f"performance-{which}-{period.label}.{fmt}")
