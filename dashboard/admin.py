"""Admin pages: the audit log (searchable, newest first) and the list of accounts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from core import periods
from core.config import HotlineConfig
from dashboard.audit import AuditQuery, search_audit
from dashboard.auth import Viewer, require_roles
from dashboard.render import page
from dashboard.users import list_users
from db.session import unit_of_work

router = APIRouter(prefix="/admin", tags=["admin"])
Admin = Annotated[Viewer, Depends(require_roles("admin"))]
FIELDS = ("user", "action", "object", "from", "to", "before")


@router.get("/audit")
def audit_page(request: Request, viewer: Admin) -> Response:
    """Who listened to, downloaded or changed what; filters by user, action, recording, days."""
    config: HotlineConfig = request.app.state.config
    params = {k: request.query_params.get(k, "")[:64].strip() for k in FIELDS}
    error = ""
    start = end = None
    if params["from"] or params["to"]:
        try:
            span = periods.date_range(params["from"] or "2000-01-01", params["to"] or "2100-01-01")
            start, end = span.utc_range(config.timezone)
        except periods.PeriodError as exc:
            error = f"日期 date: {exc}"
    for field in ("object", "before"):
        if params[field] and not (params[field].isdigit() and len(params[field]) <= 18):
            error, params[field] = f"{field}：只能是数字 / digits only", ""
    query = AuditQuery(
        username=params["user"],
        action=params["action"],
        object_id=int(params["object"]) if params["object"] else None,
        start=start,
        end=end,
        before_id=int(params["before"]) if params["before"] else None,
    )
    with unit_of_work(request.app.state.sessions) as session:
        rows = search_audit(session, query) if not error else []
    keep = {k: v for k, v in params.items() if v and k != "before"}
    more = rows[-1].id if len(rows) == query.limit else None
    return page(
        request,
        "audit.html",
        viewer,
        {"rows": rows, "params": params, "error": error, "keep": keep, "more": more},
        400 if error else 200,
    )


@router.get("/users")
def users_page(request: Request, viewer: Admin) -> Response:
    """Every account with its role, unit and state (changes go through `hotline users`)."""
    with unit_of_work(request.app.state.sessions) as session:
        users = [
            (
                u.username,
                u.role,
                u.department.name if u.department else "",
                u.disabled,
                u.last_login_at,
            )
            for u in list_users(session)
        ]
    return page(request, "users.html", viewer, {"users": users})
