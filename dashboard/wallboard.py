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

In a cluster the board follows every node's AMI (`links.ami.follow_links`): each
node's waiting callers are kept apart (`NodesWaiting`) and summed, so a node
whose link drops or comes back (its QueueStatus asked again) changes only its
own; `connected` is whether every node's link is up, `down` names the others.
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
from sqlalchemy import func, select
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
from db.models import QueueLogEntry
from db.session import unit_of_work
from links.ami import LinkStates, follow_links, link_names
from telephony.ami import AMIClient, AMIEvent

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


class NodesWaiting:
    """Callers waiting now on each AMI link (a cluster: each node), counted together."""

    def __init__(self) -> None:
        self._nodes: dict[str, Waiting] = {}
        self._lock = threading.Lock()

    def of(self, node: str) -> Waiting:
        with self._lock:
            return self._nodes.setdefault(node, Waiting())

    def feed(self, node: str, name: str, fields: dict[str, str]) -> bool:
        """Apply one of the node's AMI events; whether its waiting callers changed."""
        return self.of(node).feed(name, fields)

    def clear(self, node: str) -> None:
        """Forget the node's callers (its link dropped, or QueueStatus is asked again)."""
        self.of(node).clear()

    def now(self, queues: list[str], at: float | None = None) -> dict[str, dict[str, Any]]:
        """Per queue and HOTLINE over every node: callers waiting and the longest wait."""
        at = time.time() if at is None else at
        with self._lock:
            nodes = list(self._nodes.values())
        found = {name: {"waiting": 0, "longest": 0, "since": None} for name in [*queues, HOTLINE]}
        for waiting in nodes:
            for name, row in waiting.now(queues, at).items():
                total = found[name]
                total["waiting"] += row["waiting"]
                if row["since"] is not None and (
                    total["since"] is None or row["since"] < total["since"]
                ):
                    total["since"], total["longest"] = row["since"], row["longest"]
        return found


def board_figures(
    sessions: sessionmaker[Session], config: HotlineConfig, waiting: NodesWaiting | Waiting
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
        self.waiting = NodesWaiting()
        self.payload: dict[str, Any] | None = None
        self.version = 0
        self.links = LinkStates()
        self.viewers = 0
        self.last_seen = time.monotonic()
        self._task: asyncio.Task[None] | None = None
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="wallboard")
        self._lock = threading.Lock()
        self._last_row: int | None = None  # a cluster: the newest queue_log row figured

    @property
    def connected(self) -> bool:
        """Every AMI link the board follows is up (a cluster: every node's)."""
        return self.links.connected

    def refresh(self, sessions: sessionmaker[Session], config: HotlineConfig, force: bool) -> None:
        """Read queue_log on; recompute when it moved, when forced, or when never computed."""
        with self._lock:
            moved = 0
            try:
                if config.cluster is None:
                    moved = ingest_once(sessions, config.queue_log)
                else:  # the node daemons read each node's queue_log: figure their new rows
                    moved = self._new_rows(sessions)
            except Exception:  # a locked or unreachable store: the figures wait for the next tick
                log.exception("wallboard: queue_log not read")
            if moved or force or self.payload is None or self._on_the_clock():
                payload = board_figures(sessions, config, self.waiting)
                payload["connected"] = self.connected
                payload["down"] = self.links.note()
                self.payload = payload
                self.version += 1

    def _on_the_clock(self) -> bool:
        """An agent is shown in wrap-up: it ends when its time is up, with no queue_log line
        to say so, so the figures are made again on each tick until nobody is in it."""
        rows = (self.payload or {}).get("queues", [])
        return any(row.get("agents", {}).get("wrap_up") for row in rows)

    def _new_rows(self, sessions: sessionmaker[Session]) -> int:
        """1 when the node daemons stored queue_log rows since the last figures, else 0."""
        with unit_of_work(sessions) as session:
            newest = session.scalar(select(func.max(QueueLogEntry.id)))
        if newest == self._last_row:
            return 0
        self._last_row = newest
        return 1

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
        """AMI events (a cluster: every node's) and the queue_log tick into fresh figures,
        until nobody watches."""
        config: HotlineConfig = app.state.config
        sessions = app.state.sessions
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        moved = asyncio.Event()  # an event that changes the figures, or a link up or down
        self.links = LinkStates(link_names(config))

        def feed(node: str, event: AMIEvent) -> None:
            fields = {k: event.get(k) for k in ("Uniqueid", "Queue", "Wait")}
            if self.waiting.feed(node, event.name, fields) or event.name in MEMBER_EVENTS:
                moved.set()

        def linked(node: str, up: bool) -> None:
            if self.links.set(node, up):
                if not up:
                    self.waiting.clear(node)
                moved.set()

        async def asked(node: str, client: AMIClient) -> None:
            self.waiting.clear(node)  # its QueueEntry events: who waits there now
            await client.action("QueueStatus")
            moved.set()

        followers = asyncio.create_task(
            follow_links(
                config,
                stop,
                (*Waiting.EVENTS, *MEMBER_EVENTS),
                feed,
                linked,
                "wallboard",
                on_connect=asked,
            ),
            name="wallboard-ami",
        )
        try:
            await loop.run_in_executor(self._pool, self.refresh, sessions, config, True)
            while not self._idle() and not followers.done():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(moved.wait(), TICK)
                changed = moved.is_set()
                moved.clear()
                await loop.run_in_executor(self._pool, self.refresh, sessions, config, changed)
        finally:
            stop.set()
            await asyncio.gather(followers, return_exceptions=True)
            self.links = LinkStates(link_names(config))  # nobody follows: not connected


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
                    payload = {
                        **board.payload,
                        "connected": board.connected,
                        "down": board.links.note(),
                    }
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
