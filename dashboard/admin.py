"""Admin pages: the audit log (searchable, newest first) and the list of accounts, where
an admin clears an account's login delay (audited)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request, Response

from core import periods
from core.config import HotlineConfig
from dashboard.audit import AuditQuery, audit, search_audit
from dashboard.auth import Viewer, check_csrf, client_address, require_roles
from dashboard.render import page
from dashboard.users import is_delayed, list_users, unlock, user_by_name
from db.models import utcnow
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


def _users(request: Request, viewer: Viewer, done: str = "") -> Response:
    now = utcnow()
    with unit_of_work(request.app.state.sessions) as session:
        users = [
            {
                "name": u.username,
                "role": u.role,
                "unit": u.department.name if u.department else "",
                "disabled": u.disabled,
                "last": u.last_login_at,
                "failures": u.failed_logins,
                "delayed": is_delayed(u, now),
            }
            for u in list_users(session)
        ]
    return page(request, "users.html", viewer, {"users": users, "done": done})


@router.get("/users")
def users_page(request: Request, viewer: Admin) -> Response:
    """Every account with its role, unit, state and failed logins (other changes go
    through `hotline users`)."""
    return _users(request, viewer)


@router.post("/users/{username}/unlock")
def unlock_user(
    request: Request,
    username: str,
    viewer: Admin,
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """Clear an account's failed logins and its delay (as `hotline users unlock` does)."""
    check_csrf(request, viewer, csrf)
    with unit_of_work(request.app.state.sessions) as session:
        user = user_by_name(session, username[:64])
        if user is None:
            raise HTTPException(404, "没有这个账号 / no such account")
        unlock(session, user)
        address = client_address(request)
        audit(
            session, viewer.username, viewer.role, "unlock", "user", user.id, address, user.username
        )
    return _users(request, viewer, user.username)
