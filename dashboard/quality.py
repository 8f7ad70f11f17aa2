"""Quality scores (质检): a supervisor scores an agent's recorded call from the call page.

The checklist is `monitoring.quality_checklist` (item -> most points, total 100).
Every item must be scored, in whole points from 0 to its most; an unknown item
or a score above the most is refused (400) and nothing is written. The scored
agent must be one who answered the call (queue_log CONNECT; a transferred call
offers each of them). Only supervisors and admins who may open recordings score
(agents and staff: 403); CSRF as every form; each score is audited.
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, HTTPException, Path, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from agents.performance import ScoreError, answered_by, check_items, save_score, scores_of
from core.config import HotlineConfig
from dashboard.audit import audit
from dashboard.auth import Viewer, check_csrf, client_address, recording_viewer
from dashboard.call_search import call_by_id
from dashboard.scope import in_subtree
from db.session import unit_of_work

router = APIRouter(tags=["quality"])
SCORING_ROLES = ("supervisor", "admin")
ITEM_PREFIX = "item:"


def may_score(viewer: Viewer) -> bool:
    return viewer.role in SCORING_ROLES and viewer.may_listen


def scoring_context(
    session: Session, uniqueid: str, viewer: Viewer, checklist: dict[str, int]
) -> dict[str, Any]:
    """What the call page shows those who may score: the scores given and the form."""
    if not may_score(viewer):
        return {"quality_shown": False}
    agents = answered_by(session, uniqueid)
    return {
        "quality_shown": True,
        "quality_scores": [
            {"score": score, "agent": login} for score, login in scores_of(session, uniqueid)
        ],
        "quality_agents": agents,
        "quality_checklist": checklist if agents else {},
        "quality_prefix": ITEM_PREFIX,
    }


@router.post("/calls/{call_id}/quality")
async def score_call(
    request: Request,
    call_id: Annotated[int, Path(ge=1, le=2**62)],
    viewer: Annotated[Viewer, Depends(recording_viewer)],
) -> Response:
    """Save one score of one agent on this call (form: csrf, agent, item:NAME..., note)."""
    form = await request.form()
    check_csrf(request, viewer, str(form.get("csrf", ""))[:128])
    if not may_score(viewer):
        raise HTTPException(403, "只有班长可以质检评分 / only supervisors score calls")
    config: HotlineConfig = request.app.state.config
    checklist = dict(config.monitoring.quality_checklist)
    given = {
        str(key)[len(ITEM_PREFIX) :][:64]: str(value)[:8]
        for key, value in form.multi_items()
        if str(key).startswith(ITEM_PREFIX)
    }
    note = str(form.get("note", "")).strip()[:1000]
    agent_text = str(form.get("agent", "")).strip()
    try:
        points = check_items(checklist, given)
    except ScoreError as exc:
        raise HTTPException(400, str(exc)) from None
    if not agent_text.isdigit() or len(agent_text) > 12:
        raise HTTPException(400, "请选择坐席 / choose the agent")
    # the store's work off the event loop, like every page handler's
    await anyio.to_thread.run_sync(_save, request, viewer, call_id, int(agent_text), points, note)
    return RedirectResponse(f"/calls/{call_id}#quality", status_code=303)


def _save(
    request: Request,
    viewer: Viewer,
    call_id: int,
    agent_id: int,
    points: dict[str, int],
    note: str,
) -> None:
    with unit_of_work(request.app.state.sessions) as session:
        call = call_by_id(session, call_id)
        if call is None:
            raise HTTPException(404, f"没有编号为 {call_id} 的通话 / no call {call_id}")
        if viewer.scope_root is not None:
            unit = call.ticket.department_id if call.ticket else None
            if not in_subtree(session, unit, viewer.scope_root):
                raise HTTPException(403, "此通话不属于您的单位 / not a call of your unit")
        agents = dict(answered_by(session, call.uniqueid))
        if agent_id not in agents:
            raise HTTPException(400, "该坐席没有接听此通话 / that agent did not answer this call")
        score = save_score(session, call.uniqueid, agent_id, viewer.username, points, note)
        audit(
            session,
            viewer.username,
            viewer.role,
            "quality_score",
            "call",
            call.id,
            client_address(request),
            f"agent {agents[agent_id]}, total {score.total:g}, score {score.id}",
        )
