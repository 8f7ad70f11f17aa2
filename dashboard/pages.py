"""The supervisors' overview page: last week's three rates, ranking, robot figures, a trend.

Aggregates only (no phone numbers, no recordings), so it needs no login; pages
that show personal data come with login and roles.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from core import periods
from dashboard.charts import Series, line_chart
from db.metrics import Rates, overall, robot_figures, unit_figures, weekly_counts
from db.ranking import rank_peer_groups
from db.session import unit_of_work
from reports.build import rate_rules

router = APIRouter()
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
TREND_WEEKS = 12


def percent(value: float | None) -> str:
    return "无数据" if value is None else f"{value:.1%}"


templates.env.filters["percent"] = percent


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, week: str = Query("", description="ISO week, e.g. 2026-W47")):
    """Last week (or ?week=) at a glance."""
    config = request.app.state.config
    today = datetime.now(config.tz).date()
    try:
        period = periods.iso_week(week) if week else periods.week_of(today - timedelta(days=7))
    except periods.PeriodError as exc:
        raise HTTPException(400, str(exc)) from None
    rules = rate_rules(config)
    start, end = period.utc_range(config.timezone)
    span = periods.last_weeks(period.first, TREND_WEEKS)
    with unit_of_work(request.app.state.sessions) as session:
        total = overall(session, start, end)
        groups = rank_peer_groups(
            unit_figures(session, start, end, rules), config.metrics.min_valid_callbacks
        )
        robot = robot_figures(session, start, end, config.timezone)
        trend = weekly_counts(session, span[0].utc_range(config.timezone)[0], TREND_WEEKS)
    rates = [Rates.of(counts, rules) for counts in trend]
    chart = line_chart(
        [p.label[5:] for p in span],
        [
            Series("响应率", "#1f77b4", [r.response for r in rates]),
            Series("解决率", "#ff7f0e", [r.resolution for r in rates]),
            Series("满意率", "#2ca02c", [r.satisfaction for r in rates]),
        ],
    )
    return templates.TemplateResponse(
        request,
        "overview.html",
        {
            "period": period,
            "total": total,
            "rates": Rates.of(total, rules),
            "groups": groups,
            "robot": robot,
            "chart": chart,
        },
    )
