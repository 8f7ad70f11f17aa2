"""/hotspots?month=: the monthly analysis's stored run, for supervisors (issue 23).

The page shows the month's newest finished run (`hotline analyse --month`
writes it): the category lines of the monthly report, the category × district
grid of observed against expected, the flagged series with their expected band,
the topics per category, the 每月一题 candidates (each with an adopt form for
supervisors, `dashboard.governance`) and the adopted topics' progress, the units'
accountability signals (evidence for review, never a penalty) and the
knowledge base's deflection and gaps. Supervisors and admins read it; only
supervisors confirm or dismiss a flag (CSRF-checked, audited), and the page
reports the precision of the reviewed flags. The grid and the flags download as
CSV or XLSX. Above the month, the newest daily early warning (a `daily` run's
flags), so yesterday's warning is seen before the month is analysed.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Path, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from core.config import HotlineConfig
from dashboard.audit import audit
from dashboard.auth import Viewer, check_csrf, client_address, require_roles
from dashboard.hotspot_governance import daily_panel, governance_view
from dashboard.hotspot_store import (
    REVIEWS,
    months_with_runs,
    newest_run,
    precision,
    review_flag,
    unfinished_run,
)
from dashboard.hotspot_summary import RunSummary, read_summary
from dashboard.hotspot_view import (
    LEVEL_NAMES,
    REVIEW_NAMES,
    SIGNAL_KINDS,
    STATES,
    FlagRow,
    GridRow,
    run_view,
)
from dashboard.render import local, page
from dashboard.report_files import report_file
from db.models import utcnow
from db.session import unit_of_work
from reports.tables import Report

router = APIRouter(tags=["hotspots"])
ROLES = ("supervisor", "admin")
REVIEWERS = ("supervisor",)
MONTH = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")
EXPORTS = ("grid", "flags")


def _month(request: Request) -> str:
    """The month asked for ("" for the newest with a run); 400 if it is not YYYY-MM."""
    month = request.query_params.get("month", "").strip()[:20]
    if month and not MONTH.match(month):
        raise HTTPException(400, f"月份 month {month!r}: 应为 YYYY-MM / expected YYYY-MM")
    return month


@router.get("/hotspots")
def hotspots_page(
    request: Request, viewer: Annotated[Viewer, Depends(require_roles(*ROLES))]
) -> Response:
    """The month's newest finished run; the month picker; a message when there is none."""
    month = _month(request)
    with unit_of_work(request.app.state.sessions) as session:
        months = months_with_runs(session)
        month = month or (months[0] if months else "")
        context: dict[str, Any] = {
            "month": month,
            "months": months,
            "precision": precision(session),
            "may_review": viewer.role in REVIEWERS,
            "may_adopt": viewer.role in REVIEWERS,  # the same people: supervisors
            "run": None,
            "daily": daily_panel(session),
        }
        run = newest_run(session, month) if month else None
        if run is None:
            context["unfinished"] = unfinished_run(session, month) if month else None
        else:
            summary, problem = read_summary(run.id, run.summary)
            context.update(
                view=run_view(session, run, summary, viewer),
                run=run,
                summary=summary,
                problem=problem,
                run_precision=precision(session, run.id),
                governance=governance_view(session, run, summary, month),
            )
    context.update(
        STATES=STATES, REVIEW_NAMES=REVIEW_NAMES, LEVEL_NAMES=LEVEL_NAMES, SIGNAL_KINDS=SIGNAL_KINDS
    )
    return page(request, "hotspots.html", viewer, context)


@router.post("/hotspots/flags/{flag_id}/review")
def review(
    request: Request,
    flag_id: Annotated[int, Path(ge=1, le=2**62)],
    viewer: Annotated[Viewer, Depends(require_roles(*REVIEWERS))],
    csrf: Annotated[str, Form(max_length=128)] = "",
    decision: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    """Confirm or dismiss one flag (form: csrf, decision=confirmed|dismissed), audited."""
    check_csrf(request, viewer, csrf)
    if decision not in REVIEWS:
        raise HTTPException(400, "请选择确认或排除 / decision: confirmed or dismissed")
    with unit_of_work(request.app.state.sessions) as session:
        found = review_flag(session, flag_id, decision, viewer.username, utcnow())
        if found is None:
            raise HTTPException(404, f"没有编号为 {flag_id} 的标记 / no flag {flag_id}")
        flag, run = found
        audit(
            session,
            viewer.username,
            viewer.role,
            "hotspot_review",
            "hotspot_flag",
            flag.id,
            client_address(request),
            f"{decision}: {flag.category} area {flag.area_id} {flag.period} "
            f"{flag.period_start} ({flag.state}), run {run.id} {run.month}",
        )
        month = run.month
    return RedirectResponse(f"/hotspots?month={month}#flag-{flag_id}", status_code=303)


@router.get("/hotspots/export/{which}.{fmt}")
def export(
    request: Request,
    which: str,
    fmt: str,
    viewer: Annotated[Viewer, Depends(require_roles(*ROLES))],
) -> Response:
    """The month's grid or flags as CSV (UTF-8 with BOM) or XLSX, audited."""
    if which not in EXPORTS or fmt not in ("csv", "xlsx"):
        raise HTTPException(404, "没有这个导出 / grid or flags, csv or xlsx")
    month = _month(request)
    config: HotlineConfig = request.app.state.config
    with unit_of_work(request.app.state.sessions) as session:
        run = newest_run(session, month) if month else None
        if run is None:
            raise HTTPException(404, f"{month or '该月'} 没有完成的分析 / no finished run")
        summary, _ = read_summary(run.id, run.summary)
        view = run_view(session, run, summary, viewer)
        report = (
            grid_report(month, summary, view.grid)
            if which == "grid"
            else flags_report(month, view.flags, config)
        )
        _audit_export(session, request, viewer, f"hotspots {which} {month} run {run.id}")
    return report_file(report, fmt, f"hotspots-{which}-{month}.{fmt}")


def _audit_export(session: Session, request: Request, viewer: Viewer, detail: str) -> None:
    audit(
        session, viewer.username, viewer.role, "export", None, None, client_address(request), detail
    )


def _state_names(flags: list[FlagRow]) -> str:
    return "、".join(f"{STATES.get(f.state, (f.state,))[0]} #{f.id}" for f in flags)


def grid_report(month: str, summary: RunSummary, rows: list[GridRow]) -> Report:
    """One row per category and district: observed, expected, their ratio, the flags."""
    report = Report(
        f"热点研判 类别×旗区 {month}", ["类别", "旗区", "观测", "期望", "观测/期望", "标记"]
    )
    for row in rows:
        for (_, district), cell in zip(summary.grid.districts, row.cells, strict=True):
            if cell is None:
                continue
            ratio = cell.ratio
            observed = cell.observed
            report.rows.append(
                [
                    row.category,
                    district,
                    int(observed) if float(observed).is_integer() else observed,
                    None if cell.expected is None else round(cell.expected, 2),
                    None if ratio is None else round(ratio, 2),
                    _state_names(cell.flags),
                ]
            )
    return report


FLAG_HEADERS = [
    "编号", "类别", "区域", "层级", "周期", "起始", "方法", "观测", "期望", "阈值",
    "p值", "q值", "状态", "核实", "核实人", "核实时间",
]  # fmt: skip


def flags_report(month: str, flags: list[FlagRow], config: HotlineConfig) -> Report:
    """The run's flags with their review, as the page lists them."""
    report = Report(f"热点研判 标记 {month}", list(FLAG_HEADERS))
    for f in flags:
        report.rows.append(
            [
                f.id,
                f.category,
                f.area,
                f.level,
                f.period,
                f.period_start.isoformat(),
                f.method,
                f.observed,
                round(f.expected, 2),
                round(f.upper, 2),
                f.p_value,
                f.q_value,
                STATES.get(f.state, (f.state,))[0],
                REVIEW_NAMES.get(f.review or "", ("",))[0],
                f.reviewed_by or "",
                local(f.reviewed_at, config.tz),
            ]
        )
    return report
