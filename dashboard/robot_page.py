"""The callback robot: success rate per day and week with trends, the outcome mix per day,
reach within N attempts, the queue now with the heartbeat, the attempts with their
answers and survey recordings, and the follow-up list (sent back for rework).

Staff see the figures of their subtree's tickets only, and not the queue (the whole
city's work in progress); supervisors and admins see the city's.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response

from callback_robot.status import robot_report, robot_status
from core import periods
from core.config import HotlineConfig
from dashboard.auth import Viewer, current_viewer
from dashboard.charts import Series, line_chart, stacked_bars
from dashboard.render import page
from db.console import attempts, follow_ups
from db.departments import subtree
from db.models import utcnow
from db.session import unit_of_work

router = APIRouter(tags=["robot"])
DEFAULT_DAYS = 28
OUTCOME_COLOURS = [
    ("completed", "#2ca02c"),
    ("partial", "#bcbd22"),
    ("no_answer", "#7f7f7f"),
    ("busy", "#ff7f0e"),
    ("failed", "#d62728"),
    ("opted_out", "#9467bd"),
]


def _days(request: Request, today: date) -> tuple[str, str]:
    first = request.query_params.get("from", "")[:10] or str(
        today - timedelta(days=DEFAULT_DAYS - 1)
    )
    last = request.query_params.get("to", "")[:10] or str(today)
    return first, last


def weekly(by_day: dict[str, dict[str, int]]) -> dict[str, tuple[int, int]]:
    """(completed, placed) per ISO week label, from the per-day outcome counts."""
    weeks: dict[str, tuple[int, int]] = {}
    for day, counts in sorted(by_day.items()):
        year, week, _ = date.fromisoformat(day).isocalendar()
        label = f"{year}-W{week:02d}"
        done, placed = weeks.get(label, (0, 0))
        weeks[label] = (done + counts.get("completed", 0), placed + sum(counts.values()))
    return weeks


@router.get("/robot")
def robot_page(request: Request, viewer: Annotated[Viewer, Depends(current_viewer)]) -> Response:
    """What the robot did in a span of days (default the last four weeks) and is doing now."""
    config: HotlineConfig = request.app.state.config
    today = datetime.now(config.tz).date()
    first, last = _days(request, today)
    within_raw = request.query_params.get("within", "")[:2]
    within = (
        int(within_raw)
        if within_raw.isdigit() and int(within_raw) > 0
        else config.robot.max_attempts
    )
    try:
        start, end = periods.date_range(first, last).utc_range(config.timezone)
    except periods.PeriodError as exc:
        raise HTTPException(400, f"日期 date: {exc}") from None
    scope = viewer.scope_root
    units = subtree(scope) if scope is not None else None
    with unit_of_work(request.app.state.sessions) as session:
        figures = robot_report(session, config, first, last, within, units)
        status = robot_status(session, config, utcnow()) if scope is None else None
        recent = attempts(session, start, end, 50, scope_root=viewer.scope_root)
        follow = follow_ups(session, start, 100, viewer.scope_root)
    days = sorted(figures.by_day)
    daily = [
        (figures.by_day[d].get("completed", 0) / sum(figures.by_day[d].values()))
        if sum(figures.by_day[d].values())
        else None
        for d in days
    ]
    weeks = weekly(figures.by_day)
    week_rates = [done / placed if placed else None for done, placed in weeks.values()]
    return page(
        request,
        "robot.html",
        viewer,
        {
            "first": first,
            "last": last,
            "within": within,
            "f": figures,
            "status": status,
            "states": {state.value: n for state, n in status.states.items()} if status else {},
            "attempts": recent,
            "follow": follow,
            "day_chart": line_chart(
                [d[5:] for d in days], [Series("回访成功率", "#b71c1c", daily)]
            ),
            "week_chart": line_chart(list(weeks), [Series("回访成功率", "#b71c1c", week_rates)]),
            "weeks": list(zip(weeks, week_rates, strict=True)),
            "mix_chart": stacked_bars(
                [d[5:] for d in days],
                [(o, c, [figures.by_day[d].get(o, 0) for d in days]) for o, c in OUTCOME_COLOURS],
            ),
            "colours": OUTCOME_COLOURS,
        },
    )
