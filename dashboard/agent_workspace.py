"""The agent's workspace `/agent`: state buttons, the screen pop, the ticket form bound to the call.

For the role `agent` only (an account bound to a seat, `dashboard.agent_accounts`).
- State: 就绪 ready / 小休 pause (a reason of `agents.pause_reasons`) / 退出 logout act on
  app_queue over AMI (`agents.control`, a short-lived AMI link per click); a failure
  answers 503 (Asterisk unreachable) or 502 (Asterisk refused) with the reason, and the
  state shown is the store's (queue_log) or what AMI reported since the console started.
  In a cluster they act on every node at once (`agents.cluster_control`): the nodes that
  answer change, and the answer names those that did not (`nodes_missed`).
- Pop: `/agent/events` streams this agent's calls only (`AgentDesk`, AMI `AgentCalled`):
  the caller's number, the line, earlier tickets, a warning for an open ticket.
- Form: drafts (`/agent/draft`) and filing (`/agent/file`), bound to the call's Uniqueid
  and checked server-side (`dashboard.agent_filing`); CSRF on every POST; every action
  audited.
- Transfer: a blind transfer of the caller to another queue (AMI Redirect to
  `hotline-ivr,queue` with HOTLINE_QUEUE set), recorded as a CallLeg.
  Transfer and three-way act on the node that carries the call in a cluster
  (`links.ami.ami_for_call`: the Uniqueid names it), and a third party is dialled
  through the SIP front (`PJSIP/{number}@sip-front`), as the nodes dial out.
- Phone: `/agent/phone` hands the agent's own browser its seat's SIP password (JSON,
  no-store; never in HTML, never logged).

JSON answers: `{"ok": true, ...}` or FastAPI's `{"detail": message}` with the status.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse, StreamingResponse
from sqlalchemy import select

from agents import conference
from agents.cluster_control import (
    NodesOutcome,
    close_links,
    front_membership,
    log_in_everywhere,
    log_out_everywhere,
    open_links,
)
from agents.control import AgentControlError, Membership, log_in, log_out, pause
from agents.store import agent_of_user, current_states, end_leg, membership, open_leg
from core.config import HotlineConfig
from core.seats import seat_password
from core.sip_front import FRONT_OUTBOUND, front_websocket
from core.vocabulary import AgentState, ClosedAs, Handling, RequestType, Urgency, label
from dashboard import agent_kb
from dashboard.agent_filing import (
    FilingError,
    check_call,
    drafts_of,
    file_ticket,
    save_draft,
    when,
)
from dashboard.agent_filing import (
    Form as TicketForm,
)
from dashboard.agent_pop import AgentDesk, pop_payload
from dashboard.audit import audit
from dashboard.auth import (
    SESSION_COOKIE,
    Viewer,
    check_csrf,
    client_address,
    load_viewer,
    read_cookie,
    require_roles,
)
from dashboard.leg_watch import watch_leg
from dashboard.render import page
from db.models import Agent, CallLeg, Department, Ticket
from db.session import unit_of_work
from links.ami import ami_client, ami_for_call, node_client
from telephony.ami import AMIError

# the shipped pause reasons as an agent reads them; a city's own reasons show as written
PAUSE_LABELS = {"break": "小休 break", "training": "培训 training", "meeting": "会议 meeting"}

router = APIRouter(tags=["agent"])
router.include_router(agent_kb.router)  # /agent/kb/use: an entry read out to the caller
AgentViewer = Annotated[Viewer, Depends(require_roles("agent"))]
SHORTCUTS = [
    ("F2", "就绪 Ready"),
    ("F3", "小休 Pause"),
    ("F4", "接听 Answer"),
    ("F7", "挂断 Hang up"),
    ("F8", "提交工单 File"),
    ("F9", "转接 Transfer"),
    ("Alt+1…5", "诉求类型 Request type"),
    ("Alt+K", "知识库搜索 Knowledge base"),
]
TRANSFER_CONTEXT = "hotline-ivr"
TRANSFER_EXTEN = "queue"


def desk_of(request: Request) -> AgentDesk:
    desk = getattr(request.app.state, "desk", None)
    if desk is None:
        desk = request.app.state.desk = AgentDesk()
    return desk


def _agent(request: Request, viewer: Viewer) -> tuple[int, str, str, Membership]:
    """(agent id, endpoint, phone kind, membership) of the viewer; 403 without a seat."""
    with unit_of_work(request.app.state.sessions) as session:
        agent = agent_of_user(session, viewer.user_id)
        if agent is None:
            raise HTTPException(403, "您的账号没有绑定坐席 / your account has no seat")
        return agent.id, agent.endpoint, agent.phone, membership(agent)


def _load_agent(session: Any, viewer: Viewer) -> Agent:
    agent = agent_of_user(session, viewer.user_id)
    if agent is None:
        raise HTTPException(403, "您的账号没有绑定坐席 / your account has no seat")
    return agent


def _state(request: Request, viewer: Viewer, agent_id: int) -> dict[str, Any]:
    """The agent's state: AMI's latest report if newer than the store's (queue_log)."""
    config: HotlineConfig = request.app.state.config
    wrapup = timedelta(seconds=max(q.wrapup_seconds for q in config.queues))
    with unit_of_work(request.app.state.sessions) as session:
        change = current_states(session, [agent_id], datetime.now(UTC), wrapup)[agent_id]
        state = change.state if change else AgentState.LOGGED_OUT
        reason = change.reason if change else None
        at = change.at.timestamp() if change else 0.0
    live = desk_of(request).state(viewer.username)
    if live is not None and live[2] >= at:
        state, reason, at = live
    chinese, english = label(state)
    return {"state": state.value, "label": chinese, "en": english, "reason": reason or ""}


def _json(data: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status, headers={"Cache-Control": "no-store"})


def _audit(
    request: Request, viewer: Viewer, action: str, kind: str, oid: int | None, detail: str
) -> None:
    with unit_of_work(request.app.state.sessions) as session:
        audit(
            session,
            viewer.username,
            viewer.role,
            action,
            kind,
            oid,
            client_address(request),
            detail,
        )


def _departments(session: Any) -> list[tuple[int, str]]:
    """The tree as (id, indented name), depth first by code."""
    units = list(session.scalars(select(Department).order_by(Department.code)))
    children: dict[int | None, list[Department]] = {}
    for unit in units:
        children.setdefault(unit.parent_id, []).append(unit)
    out: list[tuple[int, str]] = []

    def walk(parent: int | None, depth: int) -> None:
        for unit in children.get(parent, []):
            out.append((unit.id, "　" * depth + unit.name))
            walk(unit.id, depth + 1)

    walk(None, 0)
    return out


def _categories(session: Any, config: HotlineConfig) -> list[str]:
    known = {line.default_category for line in config.lines if line.default_category}
    known.update(
        c
        for c in session.scalars(
            select(Ticket.category).where(Ticket.category.is_not(None)).distinct().limit(100)
        )
        if c
    )
    return sorted(known)


# -- the page ----------------------------------------------------------------------------
@router.get("/agent")
def agent_page(request: Request, viewer: AgentViewer) -> Response:
    """The workspace; everything live on it comes from /agent/current and /agent/events."""
    config: HotlineConfig = request.app.state.config
    agent_id, endpoint, phone, member = _agent(request, viewer)
    with unit_of_work(request.app.state.sessions) as session:
        departments = _departments(session)
        categories = _categories(session, config)
    return page(
        request,
        "agent.html",
        viewer,
        {
            "endpoint": endpoint,
            "phone": phone,
            "queues": member.queues,
            "all_queues": [q.name for q in config.queues],
            "directory": list(config.agents.directory),
            "pause_reasons": [(r, PAUSE_LABELS.get(r, r)) for r in config.agents.pause_reasons],
            "state": _state(request, viewer, agent_id),
            "departments": departments,
            "categories": categories,
            "request_types": [(t.value, label(t)[0]) for t in RequestType],
            "urgencies": [(u.value, label(u)[0]) for u in Urgency],
            "handlings": [(h.value, label(h)[0]) for h in Handling],
            "closed_as": [(c.value, label(c)[0]) for c in ClosedAs],
            "shortcuts": SHORTCUTS,
        },
    )


def _current(request: Request, viewer: Viewer, agent_id: int) -> dict[str, Any]:
    """State, the latest call with its pop, and the agent's drafts (what a reload restores)."""
    config: HotlineConfig = request.app.state.config
    desk = desk_of(request)
    ring = desk.ring(viewer.username)
    with unit_of_work(request.app.state.sessions) as session:
        agent = session.get(Agent, agent_id)
        assert agent is not None
        pop = _pop(request, viewer, session, ring.uniqueid) if ring is not None else None
        drafts = [
            {"uniqueid": d.uniqueid, "updated": when(d.updated_at, config), "body": d.body}
            for d in drafts_of(session, agent)
        ]
    return {
        "state": _state(request, viewer, agent_id),
        "connected": desk.connected,
        "down": desk.links.note(),
        "pop": pop,
        "drafts": drafts,
    }


def _pop(request: Request, viewer: Viewer, session: Any, uniqueid: str) -> dict[str, Any]:
    config: HotlineConfig = request.app.state.config
    desk = desk_of(request)
    ring = desk.rung_for(viewer.username, uniqueid)
    did = ""
    live = getattr(request.app.state, "live", None)
    if live is not None:
        did = next((c.did for c in live.snapshot() if c.uniqueid == uniqueid), "")
    return pop_payload(
        session,
        config.tz,
        uniqueid,
        number=ring.number if ring else "",
        did=did,
        queue=ring.queue if ring else "",
        state=ring.state if ring else "ended",
        caller_name=ring.caller_name if ring else "",  # 常见问题转人工: the caller pressed 0
    )


@router.get("/agent/current")
def agent_current(request: Request, viewer: AgentViewer) -> Response:
    agent_id, *_ = _agent(request, viewer)
    return _json(_current(request, viewer, agent_id))


@router.get("/agent/pop")
def agent_pop(
    request: Request,
    viewer: AgentViewer,
    uniqueid: Annotated[str, Query(max_length=64)],
) -> Response:
    """The pop of a call this agent had (rung for, connected to, or holding a draft of)."""
    with unit_of_work(request.app.state.sessions) as session:
        agent = _load_agent(session, viewer)
        rung = desk_of(request).rung_for(viewer.username, uniqueid) is not None
        if not drafts_of(session, agent, uniqueid):
            try:
                check_call(session, viewer.username, uniqueid, rung)
            except FilingError as exc:
                raise HTTPException(exc.status, str(exc)) from None
        return _json(_pop(request, viewer, session, uniqueid))


@router.get("/agent/events")
async def agent_events(request: Request, viewer: AgentViewer) -> Response:
    """Server-sent events for this agent only: `desk` (state, the latest call's pop) whenever
    AMI reports a change for their login; `end` when the session is over."""
    config: HotlineConfig = request.app.state.config
    agent_id, *_ = await anyio.to_thread.run_sync(_agent, request, viewer)
    desk = desk_of(request)
    cookie = read_cookie(request, SESSION_COOKIE)

    async def stream() -> AsyncIterator[str]:
        seen = -1
        beats = 0
        checked = time.monotonic()
        while not await request.is_disconnected():
            if time.monotonic() - checked >= config.web.live_recheck_seconds:
                checked = time.monotonic()
                again = await anyio.to_thread.run_sync(load_viewer, request.app, cookie, False)
                if again is None or again.role != "agent":
                    yield 'event: end\ndata: {"reason": "session"}\n\n'
                    return
            version = desk.version(viewer.username)
            if version != seen:
                seen = version
                data = await anyio.to_thread.run_sync(_current, request, viewer, agent_id)
                data.pop("drafts")
                yield f"event: desk\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
            elif beats % 60 == 0:
                yield ": keep-alive\n\n"
            beats += 1
            await asyncio.sleep(0.2)

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
    )


# -- state buttons -----------------------------------------------------------------------
async def _over_ami(
    config: HotlineConfig, work: Callable[[Any], Awaitable[None]], call: tuple[str, ...] = ()
) -> None:
    """One AMI link for one click: connect, act, close; failures as 503/502 with the reason.

    call: the ids of the call acted on (its Uniqueid first): a cluster's link is
    then to the node that carries it; without, the one Asterisk's.
    """
    try:
        client = ami_for_call(config, *call) if call else ami_client(config)
        await client.connect()
    except (AMIError, OSError) as exc:
        raise HTTPException(
            503,
            f"无法连接 Asterisk，状态未改变 / Asterisk is not reachable, nothing changed: {exc}",
        ) from None
    try:
        await work(client)
    except AgentControlError as exc:
        raise HTTPException(502, f"Asterisk 拒绝了操作 / Asterisk refused: {exc}") from None
    except AMIError as exc:
        raise HTTPException(502, f"Asterisk 操作失败 / the AMI action failed: {exc}") from None
    finally:
        await client.close()


NodesStep = Callable[[dict[str, Any]], Awaitable[NodesOutcome]]


async def _on_nodes(config: HotlineConfig, step: NodesStep) -> str:
    """A cluster: one AMI link per node for one click; the nodes not reached, as one line.

    The nodes that answer all change; a node down or refusing is named in the
    answer, not fatal. Nothing reached or nothing changed: 503 or 502.
    """
    assert config.cluster is not None
    clients = {node.name: node_client(config, node) for node in config.cluster.nodes}
    links, opened = await open_links(clients)
    try:
        if not links:
            raise HTTPException(
                503,
                "无法连接任何 Asterisk 节点，状态未改变 / "
                f"no Asterisk node is reachable, nothing changed: {opened.summary()}",
            )
        outcome = await step(links)
    finally:
        await close_links(clients)
    missed = NodesOutcome(outcome.done, {**opened.failed, **outcome.failed})
    if not outcome.anywhere:
        raise HTTPException(502, f"Asterisk 拒绝了操作 / Asterisk refused: {missed.summary()}")
    return missed.summary()


def _cluster_steps(member: Membership, reason: str) -> dict[str, NodesStep]:
    """The state buttons on every node: rung through the front, the shared state watched."""
    return {
        "ready": lambda links: log_in_everywhere(links, member),
        "pause": lambda links: log_in_everywhere(links, member, paused_for=reason),
        "logout": lambda links: log_out_everywhere(links, member),
    }


@router.post("/agent/state")
async def agent_state(
    request: Request,
    viewer: AgentViewer,
    action: Annotated[str, Form(max_length=16)],
    reason: Annotated[str, Form(max_length=64)] = "",
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """就绪 ready (log in and un-pause), 小休 pause with a reason, 退出 logout."""
    check_csrf(request, viewer, csrf)
    config: HotlineConfig = request.app.state.config
    agent_id, seat, _, member = await anyio.to_thread.run_sync(_agent, request, viewer)
    if action == "pause" and reason not in config.agents.pause_reasons:
        raise HTTPException(
            422,
            f"小休原因无效 / the reason must be one of {', '.join(config.agents.pause_reasons)}",
        )

    async def ready(ami: Any) -> None:
        await log_in(ami, member)
        await pause(ami, member, None)

    async def paused(ami: Any) -> None:
        await log_in(ami, member, paused_for=reason)
        await pause(ami, member, reason)

    async def gone(ami: Any) -> None:
        await log_out(ami, member)

    steps = {
        "ready": (ready, AgentState.READY),
        "pause": (paused, AgentState.PAUSED),
        "logout": (gone, AgentState.LOGGED_OUT),
    }
    if action not in steps:
        raise HTTPException(422, "没有这个操作 / no such action")
    work, state = steps[action]
    missed = ""
    try:
        if config.cluster is None:
            await _over_ami(config, work)
        else:
            cluster_member = front_membership(member.login, seat, member.queues)
            missed = await _on_nodes(config, _cluster_steps(cluster_member, reason)[action])
    except HTTPException as exc:
        await anyio.to_thread.run_sync(
            _audit,
            request,
            viewer,
            f"agent_{action}_failed",
            "agent",
            agent_id,
            str(exc.detail)[:200],
        )
        raise
    desk_of(request).note_state(viewer.username, state, reason if action == "pause" else None)
    detail = f"{reason or action}; not reached: {missed}" if missed else reason or action
    await anyio.to_thread.run_sync(
        _audit, request, viewer, f"agent_{action}", "agent", agent_id, detail[:200]
    )
    current = await anyio.to_thread.run_sync(_state, request, viewer, agent_id)
    if missed:
        current["nodes_missed"] = f"部分节点未生效 / not changed on: {missed}"
    return _json({"ok": True, **current})


# -- drafts and filing -------------------------------------------------------------------
@router.get("/agent/draft")
def agent_draft_get(
    request: Request, viewer: AgentViewer, uniqueid: Annotated[str, Query(max_length=64)]
) -> Response:
    with unit_of_work(request.app.state.sessions) as session:
        agent = _load_agent(session, viewer)
        found = drafts_of(session, agent, uniqueid)
        if not found:
            raise HTTPException(404, "没有这通电话的草稿 / no draft for that call")
        config: HotlineConfig = request.app.state.config
        return _json(
            {
                "uniqueid": uniqueid,
                "updated": when(found[0].updated_at, config),
                "body": found[0].body,
            }
        )


@router.post("/agent/draft")
def agent_draft_save(
    request: Request,
    viewer: AgentViewer,
    uniqueid: Annotated[str, Form(max_length=64)],
    body: Annotated[str, Form(max_length=20000)],
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """Keep the form as typed; the call must be one this agent had. The first save of a call
    is audited (later ones are the same draft growing)."""
    check_csrf(request, viewer, csrf)
    config: HotlineConfig = request.app.state.config
    rung = desk_of(request).rung_for(viewer.username, uniqueid) is not None
    try:
        with unit_of_work(request.app.state.sessions) as session:
            agent = _load_agent(session, viewer)
            first = not drafts_of(session, agent, uniqueid)
            if first:
                check_call(session, viewer.username, uniqueid, rung)
            draft = save_draft(session, agent, uniqueid, body)
            if first:
                audit(
                    session,
                    viewer.username,
                    viewer.role,
                    "agent_draft",
                    "draft",
                    draft.id,
                    client_address(request),
                    f"call {uniqueid}",
                )
            saved = when(draft.updated_at, config)
    except FilingError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    return _json({"ok": True, "uniqueid": uniqueid, "updated": saved})


@router.post("/agent/file")
def agent_file(
    request: Request,
    viewer: AgentViewer,
    uniqueid: Annotated[str, Form(max_length=64)],
    request_type: Annotated[str, Form(max_length=24)],
    description: Annotated[str, Form(max_length=4000)],
    csrf: Annotated[str, Form(max_length=128)] = "",
    category: Annotated[str, Form(max_length=100)] = "",
    urgency: Annotated[str, Form(max_length=24)] = Urgency.DAILY_LIFE.value,
    place: Annotated[str, Form(max_length=200)] = "",
    confidential: Annotated[str, Form(max_length=8)] = "",
    handling: Annotated[str, Form(max_length=24)] = Handling.DISPATCH.value,
    closed_as: Annotated[str, Form(max_length=24)] = "",
    reply: Annotated[str, Form(max_length=4000)] = "",
    department_id: Annotated[str, Form(max_length=12)] = "",
    merge_into: Annotated[str, Form(max_length=20)] = "",
    kb_offer: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    """File the call's ticket (fill the one the call has, or make it) with its outcome; a 咨询
    answered from the knowledge base (`kb_offer`) is closed at once as 直办."""
    check_csrf(request, viewer, csrf)
    config: HotlineConfig = request.app.state.config
    ring = desk_of(request).rung_for(viewer.username, uniqueid)
    form = TicketForm(
        uniqueid=uniqueid,
        request_type=request_type,
        category=category,
        urgency=urgency,
        place=place,
        description=description,
        confidential=confidential in ("1", "on", "true", "yes"),
        handling=handling,
        closed_as=closed_as,
        reply=reply,
        department_id=int(department_id) if department_id.isdigit() else None,
        merge_into=merge_into,
        kb_offer=int(kb_offer) if kb_offer.isdigit() else None,
    )
    actor = f"web:{viewer.username}"
    try:
        with unit_of_work(request.app.state.sessions) as session:
            agent = _load_agent(session, viewer)
            check_call(session, viewer.username, uniqueid, ring is not None)
            ticket = file_ticket(session, config, agent, form, actor, ring.number if ring else "")
            result = {
                "ok": True,
                "number": ticket.number,
                "status": ticket.status.value,
                "status_label": label(ticket.status)[0],
                "handling": ticket.handling.value if ticket.handling else form.handling,
                "unit": ticket.department.name if ticket.department else "",
                "due": when(ticket.due_at, config),
            }
            audit(
                session,
                viewer.username,
                viewer.role,
                f"agent_file_{result['handling']}",
                "ticket",
                ticket.id,
                client_address(request),
                f"ticket {ticket.number} call {uniqueid}",
            )
    except FilingError as exc:
        raise HTTPException(exc.status, str(exc)) from None
    if "application/json" not in request.headers.get("accept", ""):
        return RedirectResponse(f"/agent?filed={result['number']}", status_code=303)
    return _json(result)


# -- transfer ----------------------------------------------------------------------------
@router.post("/agent/transfer")
async def agent_transfer(
    request: Request,
    viewer: AgentViewer,
    uniqueid: Annotated[str, Form(max_length=64)],
    queue: Annotated[str, Form(max_length=64)],
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """Blind transfer: the caller's channel goes back to `hotline-ivr,queue` with another queue."""
    check_csrf(request, viewer, csrf)
    config: HotlineConfig = request.app.state.config
    if queue not in [q.name for q in config.queues]:
        raise HTTPException(422, "没有这个队列 / no such queue")
    ring = desk_of(request).rung_for(viewer.username, uniqueid)
    if ring is None or ring.state != "connected" or not ring.channel:
        raise HTTPException(
            409, "只能转接正在通话的来电 / only the call you are talking on can be transferred"
        )
    agent_id, *_ = await anyio.to_thread.run_sync(_agent, request, viewer)

    async def redirect(ami: Any) -> None:
        await ami.action("Setvar", Channel=ring.channel, Variable="HOTLINE_QUEUE", Value=queue)
        await ami.action(
            "Redirect",
            Channel=ring.channel,
            Context=TRANSFER_CONTEXT,
            Exten=TRANSFER_EXTEN,
            Priority="1",
        )

    await _over_ami(config, redirect, (uniqueid, ring.linkedid))

    def record() -> None:
        with unit_of_work(request.app.state.sessions) as session:
            leg = CallLeg(
                uniqueid=uniqueid,
                kind="blind",
                target=queue,
                agent_id=agent_id,
                channel=ring.channel,
            )
            session.add(leg)
            session.flush()
            audit(
                session,
                viewer.username,
                viewer.role,
                "agent_transfer",
                "call_leg",
                leg.id,
                client_address(request),
                f"call {uniqueid} -> {queue}",
            )

    await anyio.to_thread.run_sync(record)
    return _json({"ok": True, "queue": queue})


def outbound_channel(config: HotlineConfig) -> str:
    """How the call's node dials a third party: a cluster's nodes dial out through the front."""
    return FRONT_OUTBOUND if config.cluster is not None else config.asterisk.outbound_channel


@router.post("/agent/three-way")
async def agent_three_way(
    request: Request,
    viewer: AgentViewer,
    uniqueid: Annotated[str, Form(max_length=64)],
    target: Annotated[str, Form(max_length=64)],
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """三方通话: bring a directory entry (agents.directory) into the call (agents.conference).

    Answers once the third party answered (or did not); the leg is on the call's record
    (CallLeg kind three_way) and its end is written when that party hangs up, by a watch
    that keeps its own AMI link for as long as the leg lasts.
    """
    check_csrf(request, viewer, csrf)
    config: HotlineConfig = request.app.state.config
    try:
        name, number = conference.resolve(config.agents.directory, target)
    except conference.ThreeWayError as exc:
        raise HTTPException(422, f"号码不在通讯录中 / not in the directory: {exc}") from None
    ring = desk_of(request).rung_for(viewer.username, uniqueid)
    if ring is None or ring.state != "connected" or not ring.channel:
        raise HTTPException(
            409, "只能在正在通话的来电上三方通话 / only on the call you are talking on"
        )
    agent_id, *_ = await anyio.to_thread.run_sync(_agent, request, viewer)
    try:
        ami = ami_for_call(config, uniqueid, ring.linkedid)
        await ami.connect()
    except (AMIError, OSError) as exc:
        raise HTTPException(503, f"无法连接 Asterisk / Asterisk is not reachable: {exc}") from None
    try:
        peer = await conference.agent_channel(ami, ring.channel, ring.interface, ring.agent_channel)
        base = await conference.recording_base(ami, ring.channel)
        leg = await conference.three_way(
            ami,
            caller_channel=ring.channel,
            agent_channel=peer,
            number=number,
            room=conference.room_of(uniqueid),
            recording=conference.leg_recording(base, number),
            outbound_channel=outbound_channel(config),
        )
    except (conference.ThreeWayError, AMIError, TimeoutError) as exc:
        await ami.close()
        await anyio.to_thread.run_sync(
            _audit, request, viewer, "agent_three_way_failed", "agent", agent_id, str(exc)[:200]
        )
        raise HTTPException(502, f"三方通话未接通 / the three-way call failed: {exc}") from None

    def record() -> int:
        with unit_of_work(request.app.state.sessions) as session:
            leg_id = open_leg(
                session,
                uniqueid=uniqueid,
                kind="three_way",
                target=name,
                agent_id=agent_id,
                channel=leg.channel,
                recording_path=leg.recording,
            )
            audit(
                session,
                viewer.username,
                viewer.role,
                "agent_three_way",
                "call_leg",
                leg_id,
                client_address(request),
                f"call {uniqueid} + {name}",
            )
            return leg_id

    leg_id = await anyio.to_thread.run_sync(record)

    watch_leg(
        request,
        ami,
        leg,
        lambda session, when: end_leg(session, leg_id, when),
        name=f"three-way-{leg_id}",
    )
    return _json({"ok": True, "target": name, "leg": leg_id})


# -- the browser phone -------------------------------------------------------------------
@router.get("/agent/phone")
def agent_phone(request: Request, viewer: AgentViewer) -> Response:
    """The agent's own seat for the browser phone: wss URL, SIP URI and the seat's password."""
    config: HotlineConfig = request.app.state.config
    agent_id, endpoint, phone, _ = _agent(request, viewer)
    if phone != "webrtc":
        return _json(
            {"ok": False, "phone": phone, "detail": "这个坐席不是网页电话 / not a browser seat"}
        )
    host = request.url.hostname or "127.0.0.1"
    socket = f"wss://{host}:{config.agents.wss_port}"  # one box: Asterisk's own wss
    if config.cluster is not None:  # a cluster: the front, where every node finds the phone
        host = config.cluster.front.address
        socket = front_websocket(host, config.cluster.front.ws_port)
    _audit(request, viewer, "agent_phone_secret", "agent", agent_id, endpoint)
    return _json(
        {
            "ok": True,
            "phone": phone,
            "endpoint": endpoint,
            "wsUrl": f"{socket}/ws",
            "uri": f"sip:{endpoint}@{host}",
            "password": seat_password(config.agent_sip_key(), endpoint),
        }
    )
