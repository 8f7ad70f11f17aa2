"""Listening in from the live-calls page (监听 / 耳语 / 强插), for `monitoring.listen_roles`.

- `GET /live/listen`: the agent calls a supervisor may join (the agents' connected
  calls as AMI reported them to `AgentDesk`), the modes and the phones they may be
  rung on (JSON).
- `POST /live/listen` (uniqueid, mode, phone): the call must be a connected agent call
  the console knows, the mode one of `agents.listen.MODES`, the phone a seat of
  `core.seats` not bound to another person's account (or, with simulators, a scripted
  supervisor); only then is AMI used: the agent's channel from the citizen's
  (BRIDGEPEER), then the supervisor's phone is rung into ChanSpy. Answers once the
  phone answered: a `listen_sessions` row and one audit entry `listen_in`; the row's
  end is written on the supervisor leg's Hangup by a watch with its own AMI link.
- `POST /live/listen/{id}/stop`: hang up that supervisor leg. A supervisor stops
  only their own sessions; an admin (only when `monitoring.listen_roles` lets admins
  listen in) stops any, to end one a supervisor left running. Anyone else's stop is
  refused with 403, audited as `listen_refused`, and nothing is hung up.

Any other role gets 403 (audited as `listen_refused`) and nothing is dialled.

In a cluster both act on the node that carries the call (its Uniqueid names
it: `links.ami.ami_for_call`), and the supervisor's seat is rung through the SIP
front, where the phones register (`PJSIP/agent-w002@sip-front`); the agent's
channel is the one app_queue connected (AgentConnect's DestChannel).
"""

from __future__ import annotations

from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Form, HTTPException, Path, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import select

from agents import conference, listen
from agents.store import agents_by_login, interface_of
from core.config import HotlineConfig
from core.seats import seats
from core.sip_front import front_endpoint
from dashboard.audit import audit
from dashboard.auth import Viewer, check_csrf, client_address, current_viewer
from dashboard.leg_watch import watch_leg
from db.models import Agent, ListenSession, User
from db.session import unit_of_work
from links.ami import ami_client, ami_for_call
from telephony.ami import AMIClient, AMIError

router = APIRouter(tags=["listen"])
HIDDEN = ("channel", "agent_channel", "linkedid", "interface", "agent_id")  # not for the page


def _json(data: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status, headers={"Cache-Control": "no-store"})


def _audit(request: Request, viewer: Viewer, action: str, oid: int | None, detail: str) -> None:
    with unit_of_work(request.app.state.sessions) as session:
        audit(
            session,
            viewer.username,
            viewer.role,
            action,
            "listen_session",
            oid,
            client_address(request),
            detail,
        )


def _allowed(request: Request, viewer: Viewer, what: str) -> None:
    """403 (audited) unless the viewer's role may listen in."""
    config: HotlineConfig = request.app.state.config
    if viewer.role not in config.monitoring.listen_roles:
        _audit(request, viewer, "listen_refused", None, f"{viewer.role}: {what}"[:200])
        raise HTTPException(403, "无权监听 / your role may not listen in")


def _call_ami(config: HotlineConfig, *uniqueids: str) -> AMIClient:
    """The AMI of the node that carries the call (NoSuchNode, an AMIError, if none);
    one box: this module's `ami_client` (the store tests put their fake AMI there)."""
    return ami_for_call(config, *uniqueids) if config.cluster else ami_client(config)


def may_stop(viewer: Viewer, supervisor: str) -> bool:
    """A supervisor ends only their own session; an admin allowed to listen, anyone's."""
    return viewer.role == "admin" or supervisor == viewer.username


def _phones(request: Request, viewer: Viewer) -> list[str]:
    """Seats the viewer may be rung on: their own first, then those bound to nobody; with
    the simulators (tests, demo), last, the viewer's scripted phone `sim-LOGIN`."""
    config: HotlineConfig = request.app.state.config
    with unit_of_work(request.app.state.sessions) as session:
        bound = {e: u for e, u in session.execute(select(Agent.endpoint, Agent.user_id))}
    own = [e for e, user in bound.items() if user == viewer.user_id]
    free = [
        s.endpoint
        for s in seats(config.agents.webrtc_seats, config.agents.desk_seats)
        if s.endpoint not in bound
    ]
    scripted = f"sim-{viewer.username}"
    if config.asterisk.include_simulators and listen.SIM_PHONE.fullmatch(scripted):
        return [*own, *free, scripted]
    return own + free


def _agent_calls(request: Request, viewer: Viewer) -> list[dict[str, Any]]:
    """The agents' connected calls the console's desk knows (AMI AgentConnect)."""
    desk = getattr(request.app.state, "desk", None)
    if desk is None:
        return []
    with unit_of_work(request.app.state.sessions) as session:
        logins = list(session.scalars(select(User.username).join(Agent, Agent.user_id == User.id)))
        agents = agents_by_login(session, logins)
        found = []
        for login in sorted(logins):
            ring = desk.ring(login)
            agent = agents.get(login)
            if ring is None or ring.state != "connected" or agent is None:
                continue
            if ring.kind == "callback":  # the agent's own call out: not offered (yet)
                continue
            found.append(
                {
                    "uniqueid": ring.uniqueid,
                    "agent": login,
                    "agent_id": agent.id,
                    "interface": interface_of(agent),
                    "channel": ring.channel,
                    "agent_channel": ring.agent_channel,
                    "linkedid": ring.linkedid,
                    "number": viewer.number(ring.number),
                    "queue": ring.queue,
                    "since": ring.at,
                }
            )
    return found


@router.get("/live/listen")
def listen_options(
    request: Request, viewer: Annotated[Viewer, Depends(current_viewer)]
) -> Response:
    _allowed(request, viewer, "list")
    calls = [{k: v for k, v in c.items() if k not in HIDDEN} for c in _agent_calls(request, viewer)]
    with unit_of_work(request.app.state.sessions) as session:
        mine = [
            {
                "id": s.id,
                "uniqueid": s.uniqueid,
                "mode": s.mode,
                "phone": s.phone,
                "supervisor": s.supervisor,
            }
            for s in listen.open_sessions(session)
            if may_stop(viewer, s.supervisor)
        ]
    return _json(
        {
            "calls": calls,
            "modes": [[m, listen.MODE_NAMES[m]] for m in listen.MODES],
            "phones": _phones(request, viewer),
            "sessions": mine,
        }
    )


@router.post("/live/listen")
async def listen_start(
    request: Request,
    viewer: Annotated[Viewer, Depends(current_viewer)],
    uniqueid: Annotated[str, Form(max_length=64)] = "",
    mode: Annotated[str, Form(max_length=16)] = "",
    phone: Annotated[str, Form(max_length=32)] = "",
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """Ring the supervisor's phone and join it to the agent's call in mode (see module)."""
    await anyio.to_thread.run_sync(_allowed, request, viewer, f"call {uniqueid[:64]}")
    check_csrf(request, viewer, csrf)
    config: HotlineConfig = request.app.state.config
    try:
        listen.check_mode(mode)
        allowed = await anyio.to_thread.run_sync(_phones, request, viewer)
        through = front_endpoint(phone) if config.cluster else ""
        dial = listen.phone_channel(phone, allowed, config.asterisk.include_simulators, through)
    except listen.ListenError as exc:
        raise HTTPException(422, f"参数无效 / {exc}") from None
    calls = await anyio.to_thread.run_sync(_agent_calls, request, viewer)
    call = next((c for c in calls if c["uniqueid"] == uniqueid), None)
    if call is None:
        raise HTTPException(409, "不是正在进行的坐席通话 / not a live agent call")
    try:
        ami = _call_ami(config, uniqueid, call["linkedid"])
        await ami.connect()
    except (AMIError, OSError) as exc:
        raise HTTPException(503, f"无法连接 Asterisk / Asterisk is not reachable: {exc}") from None
    try:
        peer = await conference.agent_channel(
            ami, call["channel"], call["interface"], call["agent_channel"]
        )
        leg = await listen.listen_in(
            ami,
            agent_channel=peer,
            mode=mode,
            phone=phone,
            dial=dial,
            tell_agent=config.monitoring.tell_agent,
        )
    except (conference.ThreeWayError, listen.ListenError, AMIError, TimeoutError) as exc:
        await ami.close()
        await anyio.to_thread.run_sync(
            _audit, request, viewer, "listen_failed", None, f"call {uniqueid} {mode}: {exc}"[:200]
        )
        raise HTTPException(502, f"监听未接通 / listening in failed: {exc}") from None

    def record() -> int:
        with unit_of_work(request.app.state.sessions) as session:
            session_id = listen.open_session(
                session,
                supervisor=viewer.username,
                uniqueid=uniqueid,
                agent_id=call["agent_id"],
                mode=mode,
                phone=phone,
                channel=leg.channel,
            )
            audit(
                session,
                viewer.username,
                viewer.role,
                "listen_in",
                "listen_session",
                session_id,
                client_address(request),
                f"call {uniqueid} agent {call['agent']} {mode} on {phone}",
            )
            return session_id

    session_id = await anyio.to_thread.run_sync(record)

    watch_leg(
        request,
        ami,
        leg,
        lambda session, when: listen.end_session(session, session_id, when),
        name=f"listen-{session_id}",
    )
    return _json({"ok": True, "session": session_id, "mode": mode, "phone": phone})


@router.post("/live/listen/{session_id}/stop")
async def listen_stop(
    request: Request,
    viewer: Annotated[Viewer, Depends(current_viewer)],
    session_id: Annotated[str, Path(max_length=12)],
    csrf: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """End a session: hang up the supervisor's leg (its Hangup writes the end); only the
    session's own supervisor, or an admin allowed to listen in, may."""
    await anyio.to_thread.run_sync(_allowed, request, viewer, f"stop {session_id[:12]}")
    check_csrf(request, viewer, csrf)
    if not session_id.isdigit():
        raise HTTPException(404, "没有进行中的监听 / no such session in progress")

    def open_row() -> tuple[str, str, str] | None:
        with unit_of_work(request.app.state.sessions) as session:
            row = session.get(ListenSession, int(session_id))
            if row is None or row.ended_at is not None:
                return None
            return row.channel, row.supervisor, row.uniqueid

    found = await anyio.to_thread.run_sync(open_row)
    if found is None or not found[0]:
        raise HTTPException(404, "没有进行中的监听 / no such session in progress")
    channel, supervisor, call_id = found
    if not may_stop(viewer, supervisor):
        await anyio.to_thread.run_sync(
            _audit,
            request,
            viewer,
            "listen_refused",
            int(session_id),
            f"stop: the session of {supervisor}"[:200],
        )
        raise HTTPException(403, "只能结束自己的监听 / you may end only your own session")
    config: HotlineConfig = request.app.state.config
    try:
        ami = _call_ami(config, call_id)  # the supervisor's leg is on the call's node
    except AMIError as exc:
        raise HTTPException(502, f"未能挂断 / the AMI action failed: {exc}") from None
    try:
        await ami.connect()
        await listen.stop(ami, channel)
    except listen.ListenError as exc:
        raise HTTPException(409, str(exc)) from None
    except (AMIError, OSError) as exc:
        raise HTTPException(502, f"未能挂断 / the AMI action failed: {exc}") from None
    finally:
        await ami.close()
    await anyio.to_thread.run_sync(
        _audit, request, viewer, "listen_stop", int(session_id), f"hung up {channel}"
    )
    return _json({"ok": True, "session": int(session_id)})
