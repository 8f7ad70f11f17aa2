"""The supervisors' overview page: last week's three rates, ranking, robot figures, a trend.

Aggregates only (no phone numbers, no recordings), for supervisors and admins;
department staff go to their own unit's rates instead.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import RedirectResponse

from callback_robot.reporting import robot_figures
from core import periods
from dashboard.auth import Viewer, current_viewer
from dashboard.charts import Series, line_chart
from dashboard.render import page
from db.session import unit_of_work
from reports.build import rate_rules
from reports.metrics import Rates, overall, unit_figures, weekly_counts
from reports.ranking import rank_peer_groups

router = APIRouter()
TREND_WEEKS = 12


@router.get("/")
def overview(
    request: Request,
    viewer: Annotated[Viewer, Depends(current_viewer)],
    week: str = Query("", max_length=20, description="ISO week, e.g. 2026-W47"),
) -> Response:
    """Last week (or ?week=) at a glance."""
    if viewer.role == "staff":
        return RedirectResponse("/rates", status_code=303)
    if viewer.role == "agent":
        return RedirectResponse("/agent", status_code=303)
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
    return page(
        request,
        "overview.html",
        viewer,
        {
            "period": period,
            "total": total,
            "rates": Rates.of(total, rules),
            "groups": groups,
            "robot": robot,
            "chart": chart,
        },
    )
