"""The knowledge base in the agent's workspace: using an entry to answer the caller.

The workspace finds entries through `GET /kb/search` (the search box, and proposals
from what the agent types in the description); showing them records nothing. Using
one (`POST /agent/kb/use`) is what the caller hears, so it writes a `kb_offers` row
at once (channel agent, heard and accepted, the call's number and Uniqueid, the query
and the score the agent was shown) and hands back the answer for the reply. Filing a
咨询 with that offer closes the ticket as 直办 (`dashboard.agent_filing`).

Only an entry the search could have shown may be used: published, valid today, for a
line of the agent's queues.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from agents.store import agent_of_user
from core.config import HotlineConfig
from dashboard.agent_filing import FilingError, check_call
from dashboard.audit import audit
from dashboard.auth import Viewer, check_csrf, client_address, require_roles
from db.calls import call_by_uniqueid
from db.models import Agent, KbEntry
from db.session import unit_of_work
from kb.offers import mark_accepted, record_offer

router = APIRouter(tags=["agent"])
AgentViewer = Annotated[Viewer, Depends(require_roles("agent"))]
MAX_QUERY = 500


def agent_dids(config: HotlineConfig, agent: Agent) -> set[str]:
    """The DIDs of the lines the agent's queues answer (as /kb/search filters them)."""
    queues = set(agent.queue_names)
    return {line.did for line in config.lines if line.queue in queues}


def usable(entry: KbEntry | None, today: date, dids: set[str]) -> bool:
    """Could the agent's search have shown this entry today?"""
    if entry is None or entry.status != "published":
        return False
    if entry.valid_from is not None and entry.valid_from > today:
        return False
    if entry.valid_to is not None and entry.valid_to < today:
        return False
    lines = set(json.loads(entry.lines or "[]"))
    return not lines or bool(lines & dids)


def _score(text: str) -> float | None:
    """The score the search showed, if it is one (0–1); anything else is not recorded."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and 0.0 <= value <= 1.0 else None


def _caller(request: Request, session: Session, login: str, uniqueid: str) -> str | None:
    """The bound call's number, after checking the call is this agent's (403 otherwise)."""
    desk = getattr(request.app.state, "desk", None)
    ring = desk.rung_for(login, uniqueid) if desk is not None else None
    check_call(session, login, uniqueid, ring is not None)
    call = call_by_uniqueid(session, uniqueid)
    return (call.caller_number if call is not None else None) or (ring.number if ring else None)


@router.post("/agent/kb/use")
def agent_kb_use(
    request: Request,
    viewer: AgentViewer,
    entry_id: Annotated[int, Form()],
    query: Annotated[str, Form(max_length=4000)] = "",
    score: Annotated[str, Form(max_length=32)] = "",
    uniqueid: Annotated[str, Form(max_length=64)] = "",
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """The agent reads an entry to the caller: record the offer (heard and accepted) and
    return the answer to put in the reply."""
    check_csrf(request, viewer, csrf)
    config: HotlineConfig = request.app.state.config
    try:
        with unit_of_work(request.app.state.sessions) as session:
            agent = agent_of_user(session, viewer.user_id)
            if agent is None:
                raise HTTPException(403, "您的账号没有绑定坐席 / your account has no seat")
            entry = session.get(KbEntry, entry_id)
            today = datetime.now(config.tz).date()
            if entry is None or not usable(entry, today, agent_dids(config, agent)):
                raise HTTPException(
                    404, "没有这个可用的知识库条目 / no such published entry for your lines"
                )
            number = _caller(request, session, viewer.username, uniqueid) if uniqueid else None
            offer = record_offer(
                session,
                entry.id,
                "agent",
                query=query.strip()[:MAX_QUERY] or None,
                score=_score(score),
                caller_number=number,
                uniqueid=uniqueid or None,
                agent_id=agent.id,
            )
            mark_accepted(session, offer.id)  # read out to the caller: heard and accepted
            audit(
                session,
                viewer.username,
                viewer.role,
                "agent_kb_use",
                "kb_offer",
                offer.id,
                client_address(request),
                f"{entry.key} v{entry.version} call {uniqueid or '-'}",
            )
            result = {
                "ok": True,
                "offer_id": offer.id,
                "key": entry.key,
                "version": entry.version,
                "title": entry.title,
                "category": entry.category or "",
                "answer_zh": entry.answer_zh,
                "answer_en": entry.answer_en or "",
            }
    except FilingError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    return JSONResponse(result, headers={"Cache-Control": "no-store"})
