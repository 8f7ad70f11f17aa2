"""One ticket, and the handling steps staff take from a phone: sign, return, close.

The steps go through `tickets.handling` (the same functions and checks as
`hotline tickets sign|return|close`), acting as the viewer's own unit, behind a
CSRF-checked form. Staff see only tickets of their unit's subtree.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request, Response
from fastapi.responses import RedirectResponse

from agents.store import agent_of_user
from core.phone_numbers import mask
from dashboard.audit import audit
from dashboard.auth import Viewer, check_csrf, client_address, current_viewer
from dashboard.render import page
from dashboard.scope import department, in_subtree
from db.session import unit_of_work
from db.tickets import ticket_by_number
from tickets import handling

router = APIRouter(tags=["tickets"])
NUMBER = re.compile(r"^[0-9]{1,20}$")
STEPS = {"sign": "签收 sign", "return": "退单 return", "close": "办结 close"}


def _load(request: Request, viewer: Viewer, number: str) -> dict[str, Any]:
    """The ticket as a dict for the template, if it exists and the viewer may see it."""
    if not NUMBER.match(number):
        raise HTTPException(404, "工单号只能是数字 / a ticket number is digits")
    with unit_of_work(request.app.state.sessions) as session:
        ticket = ticket_by_number(session, number)
        if ticket is None:
            raise HTTPException(404, f"没有工单 {number} / no ticket {number}")
        if viewer.scope_root is not None and not in_subtree(
            session, ticket.department_id, viewer.scope_root
        ):
            raise HTTPException(403, "此工单不属于您的单位 / not a ticket of your unit")
        filer = agent_of_user(session, viewer.user_id) if viewer.role == "agent" else None
        if viewer.role == "agent" and (filer is None or ticket.agent_id != filer.id):
            raise HTTPException(403, "坐席只能查看自己受理的工单 / not a ticket you filed")
        # 保密: number and text masked for everyone but the agent who filed it
        hidden = ticket.confidential and filer is None
        secret = "（保密）"
        return {
            "number": ticket.number,
            "status": ticket.status.value,
            "caller": mask(ticket.caller_number)
            if hidden
            else ticket.caller_number
            if filer is not None  # the agent who took the call heard the number
            else viewer.number(ticket.caller_number),
            "type": ticket.request_type.value if ticket.request_type else "-",
            "category": ticket.category or "-",
            "urgency": ticket.urgency.value,
            "accepted": ticket.accepted_at,
            "due": ticket.due_at,
            "unit": ticket.department.name if ticket.department else "-",
            "own": ticket.department_id == viewer.department_id,
            "description": secret if hidden else ticket.description or "",
            "transcript": secret if hidden else ticket.transcript or "",
            "reply": secret if hidden else ticket.reply or "",
            "events": [(e.at, e.kind.value, e.actor, e.note) for e in ticket.events],
            "calls": [(c.id, c.started_at, c.direction.value) for c in ticket.calls],
        }


@router.get("/tickets/{number}")
def ticket_page(
    request: Request, number: str, viewer: Annotated[Viewer, Depends(current_viewer)]
) -> Response:
    """A ticket with its history, calls and (for its own unit's staff) the handling forms."""
    ticket = _load(request, viewer, number)
    message = request.query_params.get("done", "")[:40]
    return page(
        request,
        "ticket.html",
        viewer,
        {"t": ticket, "done": STEPS.get(message, ""), "error": ""},
    )


@router.post("/tickets/{number}/{step}")
def ticket_step(
    request: Request,
    number: str,
    step: str,
    viewer: Annotated[Viewer, Depends(current_viewer)],
    csrf: Annotated[str, Form(max_length=128)] = "",
    text: Annotated[str, Form(max_length=2000)] = "",
    closed_as: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Sign, return (with a reason) or close (with a reply and how it ended) as the unit."""
    check_csrf(request, viewer, csrf)
    if step not in STEPS:
        raise HTTPException(404, "没有这个办理步骤 / no such step")
    if viewer.role != "staff" or viewer.department_id is None:
        raise HTTPException(403, "只有承办单位可以办理工单 / only the handling unit's staff may")
    ticket = _load(request, viewer, number)
    actor = f"web:{viewer.username}"
    try:
        with unit_of_work(request.app.state.sessions) as session:
            unit = department(session, viewer.department_id)
            assert unit is not None
            if step == "sign":
                handling.sign(session, number, unit.code, actor)
            elif step == "return":
                handling.return_ticket(session, number, unit.code, text, actor)
            else:
                handling.close(session, number, unit.code, text, actor, closed_as)
            audit(
                session,
                viewer.username,
                viewer.role,
                step,
                "ticket",
                None,
                client_address(request),
                f"ticket {number}",
            )
    except handling.HandlingError as exc:
        return page(
            request, "ticket.html", viewer, {"t": ticket, "done": "", "error": str(exc)}, 409
        )
    return RedirectResponse(f"/tickets/{number}?done={step}", status_code=303)
