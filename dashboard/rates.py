"""Three rates: the unit table for a week / month / assessment month with ranks, drill-down
through the five levels, trend per unit, the snail seat, deadline lists, and exports.

Figures come from `reports.metrics` and ranks from `reports.ranking` (with
`metrics.min_valid_callbacks`); exports are `reports.build` reports written by
`reports.tables`: the very files `hotline report ... --format csv|xlsx` writes.
Staff see their own unit's subtree only.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from sqlalchemy import Select
from sqlalchemy.orm import Session

from core import periods
from core.config import HotlineConfig
from dashboard.audit import audit
from dashboard.auth import Viewer, client_address, current_viewer
from dashboard.charts import Series, line_chart
from dashboard.render import page
from dashboard.report_files import report_file
from dashboard.scope import children, in_subtree, subtree_units
from db.departments import MAX_DEPTH, department_by_code, subtree
from db.models import Department, utcnow
from db.session import unit_of_work
from reports import build, tables
from reports.deadline_lists import LISTS
from reports.metrics import unit_figures
from reports.ranking import rank_peer_groups
from reports.tables import Report

router = APIRouter(tags=["rates"])
REPORTS = ("three-rates", "ranking", "snail-seat", "overdue")
OVERDUE_LIMIT = 200  # the overdue export's rows
PREVIEW = 10  # rows of each deadline list on the rates page; the rest on /deadlines
PAGE_SIZE = 50  # rows of a /deadlines page
TREND_WEEKS = 12


class _Recent:
    """Reports kept for a few minutes: the snail seat reads three months of callbacks, and
    months that are over do not change while a supervisor clicks through the levels."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._kept: dict[str, tuple[float, Report]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, build_report: Callable[[], Report]) -> Report:
        now = time.monotonic()
        with self._lock:
            kept = self._kept.get(key)
        if kept is not None and now - kept[0] < self.seconds:
            return kept[1]
        report = build_report()
        with self._lock:
            self._kept = {k: v for k, v in self._kept.items() if now - v[0] < self.seconds}
            self._kept[key] = (now, report)
        return report


SNAIL_SECONDS = 300


def _snail_cache(request: Request) -> _Recent:
    """This app's recent snail-seat reports (per app: one app, one store)."""
    cache = getattr(request.app.state, "snail_cache", None)
    if cache is None:
        cache = request.app.state.snail_cache = _Recent(SNAIL_SECONDS)
    return cache


def _period(request: Request) -> tuple[periods.Period, dict[str, str]]:
    config: HotlineConfig = request.app.state.config
    chosen = {k: request.query_params.get(k, "")[:20] for k in ("week", "month", "assessment")}
    try:
        period = periods.choose_period(
            datetime.now(config.tz).date(),
            config.metrics.assessment_month_start_day,
            week=chosen["week"],
            month=chosen["month"],
            assessment=chosen["assessment"],
        )
    except periods.PeriodError as exc:
        raise HTTPException(400, f"时段 period: {exc}") from None
    return period, {k: v for k, v in chosen.items() if v}


def _own_rows(report: Report, allowed: set[str] | None) -> Report:
    """The report with the rows of these unit codes only (a staff member's subtree:
    no city-wide totals, no other unit's place on the snail seat); None: all of it."""
    if allowed is None or "单位编码" not in report.headers:
        return report
    at = report.headers.index("单位编码")
    return dataclasses.replace(report, rows=[row for row in report.rows if row[at] in allowed])


def _allowed_codes(session: Session, viewer: Viewer) -> set[str] | None:
    if viewer.scope_root is None:
        return None
    return {u.code for u in subtree_units(session, viewer.scope_root)}


def _staff_units(viewer: Viewer) -> Select[Any] | None:
    """The viewer's units as a query (staff), or None: every unit."""
    return None if viewer.scope_root is None else subtree(viewer.scope_root)


def _path(unit: Department | None) -> list[tuple[str, str]]:
    """The crumbs from the top down to unit: at most MAX_DEPTH steps up, each unit once
    (a loop written into the table ends the walk instead of holding the page)."""
    path: list[tuple[str, str]] = []
    seen: set[int] = set()
    while unit is not None and unit.id not in seen and len(path) <= MAX_DEPTH:
        seen.add(unit.id)
        path.insert(0, (unit.code, unit.name))
        unit = unit.parent
    return path


@router.get("/rates")
def rates_page(request: Request, viewer: Annotated[Viewer, Depends(current_viewer)]) -> Response:
    """The units under one unit (or the top level), with rates and ranks; drill down by name."""
    config: HotlineConfig = request.app.state.config
    period, chosen = _period(request)
    code = request.query_params.get("unit", "")[:64]
    rules = build.rate_rules(config)
    start, end = period.utc_range(config.timezone)
    with unit_of_work(request.app.state.sessions) as session:
        allowed = _allowed_codes(session, viewer)
        parent = department_by_code(session, code) if code else None
        if code and parent is None:
            raise HTTPException(404, f"没有单位 {code} / no unit {code}")
        if parent is None and viewer.scope_root is not None:
            parent = subtree_units(session, viewer.scope_root)[0]
        if (
            parent is not None
            and viewer.scope_root is not None
            and not in_subtree(session, parent.id, viewer.scope_root)
        ):
            raise HTTPException(403, "此单位不在您的范围内 / not your unit")
        figures = unit_figures(session, start, end, rules)
        ranked = {
            r.unit.department_id: r
            for group in rank_peer_groups(figures, config.metrics.min_valid_callbacks).values()
            for r in group
        }
        shown_ids = [u.id for u in children(session, parent.id if parent else None)]
        if parent is not None:
            shown_ids.insert(0, parent.id)
        path = _path(parent)
        now, units = utcnow(), _staff_units(viewer)
        lists = {
            which: build.deadline_page_report(session, config, now, which, 0, PREVIEW, units)
            for which in LISTS
        }
        totals = build.deadline_totals(session, config, now, units)
        snail = None
        if chosen.get("month") or chosen.get("assessment"):
            label = chosen.get("month") or chosen["assessment"]
            try:
                snail = _snail_cache(request).get(
                    label, lambda: build.snail_seat_report(session, config, label)
                )
            except periods.PeriodError:
                snail = None
    if snail is not None:
        snail = _own_rows(snail, allowed)  # the cache keeps the whole report, staff see theirs
    rows = [ranked[i] for i in shown_ids if i in ranked]
    if allowed is not None:
        rows = [r for r in rows if r.unit.code in allowed]
    query = "&".join(f"{k}={v}" for k, v in chosen.items())
    return page(
        request,
        "rates.html",
        viewer,
        {
            "period": period,
            "chosen": chosen,
            "query": query,
            "rows": rows,
            "parent": parent,
            "path": path,
            "lists": lists,
            "totals": totals,
            "preview": PREVIEW,
            "snail": snail,
            "min_valid": config.metrics.min_valid_callbacks,
            "too_few": tables.TOO_FEW,
        },
    )


@router.get("/deadlines")
def deadlines_page(
    request: Request,
    viewer: Annotated[Viewer, Depends(current_viewer)],
    which: Annotated[str, Query(alias="list", max_length=20)] = "overdue",
    number: Annotated[int, Query(alias="page", ge=1, le=1_000_000)] = 1,
) -> Response:
    """One deadline list (overdue, escalate, warn), PAGE_SIZE tickets a page, soonest due first."""
    if which not in LISTS:
        raise HTTPException(404, "没有这个列表 / no such list (overdue, escalate, warn)")
    config: HotlineConfig = request.app.state.config
    with unit_of_work(request.app.state.sessions) as session:
        now, units = utcnow(), _staff_units(viewer)
        total = build.deadline_totals(session, config, now, units)[which]
        report = build.deadline_page_report(
            session, config, now, which, (number - 1) * PAGE_SIZE, PAGE_SIZE, units
        )
    pages = max(1, -(-total // PAGE_SIZE))
    return page(
        request,
        "deadlines.html",
        viewer,
        {
            "which": which,
            "name": tables.DEADLINE_LABELS[which],
            "report": report,
            "total": total,
            "number": number,
            "pages": pages,
        },
    )


@router.get("/rates/trend/{code}")
def trend_page(
    request: Request, code: str, viewer: Annotated[Viewer, Depends(current_viewer)]
) -> Response:
    """A unit's three rates week by week (its whole subtree)."""
    config: HotlineConfig = request.app.state.config
    code = code[:64]
    with unit_of_work(request.app.state.sessions) as session:
        unit = department_by_code(session, code)
        if unit is None:
            raise HTTPException(404, f"没有单位 {code} / no unit {code}")
        if viewer.scope_root is not None and not in_subtree(session, unit.id, viewer.scope_root):
            raise HTTPException(403, "此单位不在您的范围内 / not your unit")
        report = build.trend_report(
            session, config, datetime.now(config.tz).date(), TREND_WEEKS, code
        )
        name = unit.name
    column = {h: i for i, h in enumerate(report.headers)}
    chart = line_chart(
        [row[0][5:] for row in report.rows],
        [
            Series(label, colour, [row[column[label]] for row in report.rows])
            for label, colour in (
                ("响应率", "#1f77b4"),
                ("解决率", "#ff7f0e"),
                ("满意率", "#2ca02c"),
            )
        ],
    )
    return page(
        request,
        "trend.html",
        viewer,
        {"name": name, "code": code, "report": report, "chart": chart},
    )


def _report(request: Request, viewer: Viewer, which: str) -> Report:
    config: HotlineConfig = request.app.state.config
    period, chosen = _period(request)
    with unit_of_work(request.app.state.sessions) as session:
        allowed = _allowed_codes(session, viewer)
        if which == "three-rates":
            report = build.three_rates_report(session, config, period)
        elif which == "ranking":
            report = build.ranking_report(session, config, period)
        elif which == "snail-seat":
            label = chosen.get("month") or chosen.get("assessment")
            if not label:
                raise HTTPException(400, "蜗牛席需要月份 / the snail seat needs month=YYYY-MM")
            try:
                report = build.snail_seat_report(session, config, label)
            except periods.PeriodError as exc:
                raise HTTPException(400, str(exc)) from None
        else:
            report = build.overdue_report(
                session, config, utcnow(), OVERDUE_LIMIT, _staff_units(viewer)
            )
        audit(
            session,
            viewer.username,
            viewer.role,
            "export",
            None,
            None,
            client_address(request),
            f"{which} {period.label}",
        )
    return _own_rows(report, allowed)


@router.get("/rates/export/{which}.{fmt}")
def export(
    request: Request, which: str, fmt: str, viewer: Annotated[Viewer, Depends(current_viewer)]
) -> Response:
    """A report as CSV (UTF-8 with BOM) or XLSX: the same file `hotline report` writes."""
    if which not in REPORTS or fmt not in ("csv", "xlsx"):
        raise HTTPException(404, "没有这个报表 / no such report")
    report = _report(request, viewer, which)
    period = report.title.split(" ", 1)[-1].replace(" ", "_")
    return report_file(report, fmt, f"{which}-{period}.{fmt}")
