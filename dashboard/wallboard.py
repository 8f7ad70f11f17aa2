"""The wallboard (/wallboard): the floor as it is, for a big screen or a compact panel.

Per queue and for the whole hotline: callers waiting now and the longest wait,
agents ready / ringing / on call / in wrap-up / paused (by reason) / logged out,
and today's offered, answered, abandoned, service level, 接通率, ASA and AHT
(`agents.figures`, from the store's queue_log). Thresholds from `monitoring`:
a service level or 接通率 under its goal and a wait past `wait_alert_seconds`
are red.

`Wallboard.follow` runs in the web app's own event loop while someone watches
(started by the first stream, ended a few seconds after the last one closes):
its own AMI connection feeds `agents.figures.Waiting` (QueueCallerJoin / Leave /
Abandon, and a QueueStatus after each (re)connect), and every queue or member
event, like every second's tick, reads queue_log on into the store
(`agents.follow.ingest_once`: `hotline web` alone does not; it is idempotent)
and recomputes the figures when anything moved. `/wallboard/events` pushes
them as server-sent events within a second of the AMI event; EventSource
reconnects by itself. Supervisors and admins only; no citizen's number is on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session, sessionmaker

from agents.figures import (
    HOTLINE,
    STATE_KEYS,
    QueueRule,
    Waiting,
    agents_now,
    day_range,
    period_figures,
)
from agents.follow import ingest_once
from core.config import HotlineConfig
from dashboard.auth import SESSION_COOKIE, Viewer, load_viewer, read_cookie, require_roles
from dashboard.render import page
from db.session import unit_of_work
from links.ami import ami_client
from telephony.ami import AMIError

log = logging.getLogger(__name__)
router = APIRouter(tags=["wallboard"])
ROLES = ("admin", "supervisor")
ALL = "all"  # the hotline's key in the payload
MEMBER_EVENTS = (
    "QueueMemberStatus",
    "QueueMemberPause",
    "QueueMemberAdded",
    "QueueMemberRemoved",
    "AgentCalled",
    "AgentConnect",
    "AgentComplete",
    "AgentRingNoAnswer",
)
IDLE_SECONDS = 5.0  # the follower stops this long after the last viewer left
TICK = 1.0  # queue_log is read at least this often
STATE_NAMES = {
    "ready": "就绪",
    "ringing": "振铃",
    "on_call": "通话",
    "wrap_up": "话后",
    "paused": "小休",
    "logged_out": "离线",
}


def rules_of(config: HotlineConfig) -> list[QueueRule]:
    return [QueueRule(q.name, q.service_level_seconds, q.wrapup_seconds) for q in config.queues]


def board_figures(
    sessions: sessionmaker[Session], config: HotlineConfig, waiting: Waiting
) -> dict[str, Any]:
    """Today's figures and agents now, per queue and ALL, with the callers waiting now."""
    rules = rules_of(config)
    now = datetime.now(UTC)
    start, end = day_range(now.astimezone(config.tz).date(), config.tz)
    with unit_of_work(sessions) as session:
        today = period_figures(session, rules, start, end)
        agents = agents_now(session, rules, now)
    queued = waiting.now([r.name for r in rules])
    rows = []
    for name in [HOTLINE, *(r.name for r in rules)]:
        row = today[name].as_dict()
        row["queue"] = ALL if name == HOTLINE else name
        row.update(queued[name])
        row["agents"] = agents[name].states
        row["paused_by"] = agents[name].paused_by
        rows.append(row)
    return {
        "now": time.time(),
        "day": start.astimezone(config.tz).date().isoformat(),
        "goals": {
            "service_level": config.monitoring.service_level_goal,
            "completion": config.monitoring.completion_goal,
            "wait_alert": config.monitoring.wait_alert_seconds,
        },
        "queues": rows,
    }


class Wallboard:
    """The figures the streams push, kept fresh while someone watches (one per app)."""

    def __init__(self) -> None:
        self.waiting = Waiting()
        self.payload: dict[str, Any] | None = None
        self.version = 0
        self.connected = False
        self.viewers = 0
        self.last_seen = time.monotonic()
        self._task: asyncio.Task[None] | None = None
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="wallboard")
        self._lock = threading.Lock()

    def refresh(self, sessions: sessionmaker[Session], config: HotlineConfig, force: bool) -> None:
        """Read queue_log on; recompute when it moved, when forced, or when never computed."""
        with self._lock:
            moved = 0
            try:
                moved = ingest_once(sessions, config.queue_log)
            except Exception:  # a locked or unreachable store: the figures wait for the next tick
                log.exception("wallboard: queue_log not read")
            if moved or force or self.payload is None:
                payload = board_figures(sessions, config, self.waiting)
                payload["connected"] = self.connected
                self.payload = payload
                self.version += 1

    def watch(self, app: FastAPI) -> None:
        """A viewer arrived: follow AMI and queue_log if nobody did."""
        self.viewers += 1
        self.last_seen = time.monotonic()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.follow(app), name="wallboard")

    def leave(self) -> None:
        self.viewers -= 1
        self.last_seen = time.monotonic()

    def _idle(self) -> bool:
        return self.viewers <= 0 and time.monotonic() - self.last_seen > IDLE_SECONDS

    async def follow(self, app: FastAPI) -> None:
        """AMI events and the queue_log tick into fresh figures, until nobody watches."""
        config: HotlineConfig = app.state.config
        sessions = app.state.sessions
        loop = asyncio.get_running_loop()

        async def refresh(force: bool) -> None:
            await loop.run_in_executor(self._pool, self.refresh, sessions, config, force)

        while not self._idle():
            client = ami_client(config)
            try:
                await client.connect()
            except (AMIError, OSError) as exc:
                self.connected = False
                log.info("wallboard: AMI not reachable (%s); retrying", exc)
                await refresh(True)
                await asyncio.sleep(3)
                continue
            queue = client.subscribe(*Waiting.EVENTS, *MEMBER_EVENTS)
            try:
                self.waiting.clear()
                self.connected = True
                with contextlib.suppress(AMIError, TimeoutError):
                    await client.action("QueueStatus")  # its QueueEntry events: who waits now
                await refresh(True)
                ticked = loop.time()
                while not self._idle() and client.connected.is_set():
                    try:
                        event = await asyncio.wait_for(queue.get(), TICK)
                    except TimeoutError:
                        event = None
                    changed = False
                    while event is not None:  # everything that has arrived, then one refresh
                        fields = {k: event.get(k) for k in ("Uniqueid", "Queue", "Wait")}
                        changed |= self.waiting.feed(event.name, fields)
                        changed |= event.name in MEMBER_EVENTS
                        event = None if queue.empty() else queue.get_nowait()
                    if changed or loop.time() - ticked >= TICK:
                        ticked = loop.time()
                        await refresh(changed)
            finally:
                self.connected = False
                client.unsubscribe(queue)
                await client.close()
        self.connected = False


def board_of(app: FastAPI) -> Wallboard:
    board = getattr(app.state, "wallboard", None)
    if board is None:
        board = app.state.wallboard = Wallboard()
    return board


def _queues(config: HotlineConfig) -> list[dict[str, str]]:
    lines = {
        q.name: "、".join(
            line.name for line in config.lines if line.queue == q.name and line.answer == "agents"
        )
        for q in config.queues
    }
    return [{"key": ALL, "name": "全部 Hotline", "lines": ""}] + [
        {"key": q.name, "name": q.name, "lines": lines[q.name]} for q in config.queues
    ]


@router.get("/wallboard")
def wallboard_page(
    request: Request, viewer: Annotated[Viewer, Depends(require_roles(*ROLES))]
) -> Response:
    """The board; its figures arrive from /wallboard/events at once and on every change."""
    config: HotlineConfig = request.app.state.config
    compact = request.query_params.get("compact", "") in ("1", "true", "yes")
    return page(
        request,
        "wallboard.html",
        viewer,
        {
            "compact": compact,
            "queues": _queues(config),
            "states": [(key, STATE_NAMES[key]) for key in STATE_KEYS],
            "monitoring": config.monitoring,
        },
    )


@router.get("/wallboard/events")
async def wallboard_events(
    request: Request, viewer: Annotated[Viewer, Depends(require_roles(*ROLES))]
) -> Response:
    """Server-sent events: the board's figures whenever they change, until the session ends."""
    app = request.app
    config: HotlineConfig = app.state.config
    board = board_of(app)
    cookie = read_cookie(request, SESSION_COOKIE)

    async def stream() -> AsyncIterator[str]:
        board.watch(app)
        try:
            seen, beats, checked = -1, 0, time.monotonic()
            while not await request.is_disconnected():
                if time.monotonic() - checked >= config.web.live_recheck_seconds:
                    checked = time.monotonic()
                    again = await anyio.to_thread.run_sync(load_viewer, app, cookie, False)
                    if again is None or again.role not in ROLES:
                        yield 'event: end\ndata: {"reason": "session"}\n\n'
                        return
                if board.payload is not None and board.version != seen:
                    seen = board.version
                    payload = {**board.payload, "connected": board.connected}
                    yield f"event: board\ndata: {json.dumps(payload, ensure_ascii=False)}\n\n"
                elif beats % 60 == 0:
                    yield ": keep-alive\n\n"
                beats += 1
                await asyncio.sleep(0.1)
        finally:
            board.leave()

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
    )
