"""Live calls: who is in the IVR and at which step, in the agent queue, being surveyed.

`LiveCalls` follows AMI events (its own AMI connection in the web app's event
loop, never the FastAGI one) into a small table of channels; `/live/events`
pushes that table to the page as server-sent events whenever it changes, each
number masked for viewers who may not see it. With Asterisk down the table is
empty, `connected` is False and every page says so; the rest of the console
works on the store alone. In a cluster it follows every node's AMI
(`links.ami.follow_links`) into the same table; a node whose link drops loses
only its own calls from the table (their Uniqueids name it), `connected` is
whether every node's link is up, and the stream names the nodes that are not
(`down`).

Scoped like every other page: staff see only the calls of their unit's subtree's
tickets (a citizen's call once it has made a ticket of theirs, a survey of one),
a staff account without a unit sees none. Supervisors and admins also get the
compact wallboard panel above the calls (`board_panel`: the hotline's row of
`/wallboard/events`, updated live by `static/live_board.js`). A stream re-checks
its viewer every `web.live_recheck_seconds` (without counting as activity) and
ends, with an `end` event, once the session is over or the account disabled.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse

from agents.figures import STATE_KEYS
from core.config import HotlineConfig
from core.phone_numbers import UNKNOWN, from_caller_id
from core.uniqueid import node_of
from dashboard.auth import SESSION_COOKIE, Viewer, current_viewer, load_viewer, read_cookie
from dashboard.render import page
from dashboard.scope import live_in_subtree
from dashboard.wallboard import ROLES as BOARD_ROLES
from dashboard.wallboard import STATE_NAMES
from db.session import unit_of_work
from links.ami import LinkStates, follow_links, link_names
from telephony.ami import AMIEvent

log = logging.getLogger(__name__)
router = APIRouter(tags=["live"])
EVENTS = (
    "Newchannel",
    "NewCallerid",
    "Newexten",
    "VarSet",
    "QueueCallerJoin",
    "QueueCallerLeave",
    "Hangup",
)
SURVEY_CONTEXT = "hotline-survey"


@dataclass(frozen=True)
class LiveCall:
    uniqueid: str
    number: str
    since: float  # epoch seconds
    where: str  # ivr | queue | survey
    step: str = ""
    did: str = ""
    attempt: str = ""  # a survey call: the robot's attempt id (how staff scope finds it)


class LiveCalls:
    """The channels Asterisk reports, reduced to what a supervisor watches (thread-safe)."""

    def __init__(self) -> None:
        self._calls: dict[str, LiveCall] = {}
        self._lock = threading.Lock()
        self.version = 0
        self.links = LinkStates()

    @property
    def connected(self) -> bool:
        """Every AMI link followed is up (a cluster: every node's)."""
        return self.links.connected

    def snapshot(self) -> list[LiveCall]:
        with self._lock:
            return sorted(self._calls.values(), key=lambda c: c.since)

    def _put(self, call: LiveCall | None, uniqueid: str) -> None:
        with self._lock:
            if call is None:
                if self._calls.pop(uniqueid, None) is None:
                    return
            else:
                self._calls[uniqueid] = call
            self.version += 1

    def feed(self, event: AMIEvent) -> None:
        """Apply one AMI event."""
        uniqueid = event.get("Uniqueid")
        if not uniqueid:
            return
        if event.name == "Hangup":
            self._put(None, uniqueid)
            return
        if event.name == "Newchannel":
            channel = event.get("Channel")
            if channel.startswith("Local/") and channel.endswith(";2"):
                return  # the far half of a Local pair (the simulated citizen), not a call of ours
            linked = event.get("Linkedid")
            if linked and linked != uniqueid and linked in self._calls:
                return  # a leg of a listed call (the agent's phone rung by the queue)
            exten = event.get("Exten")
            number = from_caller_id(event.get("CallerIDNum"))
            did = exten[:20] if exten.isdigit() else ""
            self._put(LiveCall(uniqueid, number, time.time(), "ivr", "", did), uniqueid)
            return
        current = self._calls.get(uniqueid)
        if current is None:
            return
        number = from_caller_id(event.get("CallerIDNum"))
        if number not in (UNKNOWN, current.number):  # CallerID set after the channel was made
            current = replace(current, number=number)
            self._put(current, uniqueid)
        variable, value = event.get("Variable"), event.get("Value")
        if event.name == "Newexten" and event.get("Context") == SURVEY_CONTEXT:
            self._put(replace(current, where="survey"), uniqueid)
        elif event.name == "VarSet" and variable == "HOTLINE_STEP":
            self._put(replace(current, step=value[:32]), uniqueid)
        elif event.name == "VarSet" and variable == "HOTLINE_ATTEMPT":
            attempt = value[:18] if value.isdigit() else ""
            self._put(replace(current, where="survey", attempt=attempt), uniqueid)
        elif event.name == "VarSet" and variable.lstrip("_") == "HOTLINE_DID" and value.isdigit():
            self._put(replace(current, did=value[:20]), uniqueid)
        elif event.name == "QueueCallerJoin":
            self._put(replace(current, where="queue"), uniqueid)
        elif event.name == "QueueCallerLeave":
            self._put(replace(current, where="ivr"), uniqueid)

    def clear(self, node: str = "") -> None:
        """Forget the calls (of one cluster node, when named: the others' go on)."""
        with self._lock:
            gone = [u for u in self._calls if not node or node_of(u) == node]
            for uniqueid in gone:
                del self._calls[uniqueid]
            if gone:
                self.version += 1

    async def follow(self, config: HotlineConfig, stop: asyncio.Event) -> None:
        """Follow AMI until stop (a cluster: every node's); an unreachable Asterisk or node
        is retried every few seconds."""
        self.links = LinkStates(link_names(config))
        await follow_links(
            config, stop, EVENTS, lambda _node, event: self.feed(event), self._linked, "live calls"
        )

    def _linked(self, node: str, up: bool) -> None:
        if self.links.set(node, up):
            with self._lock:
                self.version += 1  # the stream says which links are up
        if not up:  # a lost link: its calls would only grow stale
            self.clear(node)


def _visible(request: Request, viewer: Viewer, calls: list[LiveCall]) -> list[LiveCall]:
    """The calls this viewer may see (staff: their subtree's; a store read, in a thread)."""
    if viewer.role != "staff":
        return calls
    if viewer.department_id is None or not calls:
        return []
    attempts = [int(c.attempt) for c in calls if c.attempt]
    with unit_of_work(request.app.state.sessions) as session:
        channels, surveys = live_in_subtree(
            session, viewer.department_id, [c.uniqueid for c in calls], attempts
        )
    return [c for c in calls if c.uniqueid in channels or (c.attempt and int(c.attempt) in surveys)]


def _rows(request: Request, viewer: Viewer, calls: list[LiveCall]) -> list[dict[str, object]]:
    now = time.time()
    return [
        {
            "uniqueid": c.uniqueid,
            "number": viewer.number(c.number),
            "since": c.since,
            "where": c.where,
            "step": c.step,
            "did": c.did,
            "seconds": int(now - c.since),
        }
        for c in _visible(request, viewer, calls)
    ]


def board_panel(config: HotlineConfig, viewer: Viewer) -> dict[str, object] | None:
    """The compact wallboard panel's goals and state names (None: not for this viewer)."""
    if viewer.role not in BOARD_ROLES:
        return None
    return {
        "service_level": config.monitoring.service_level_goal,
        "completion": config.monitoring.completion_goal,
        "wait_alert": config.monitoring.wait_alert_seconds,
        "states": [(key, STATE_NAMES[key]) for key in STATE_KEYS],
    }


@router.get("/live")
def live_page(request: Request, viewer: Annotated[Viewer, Depends(current_viewer)]) -> Response:
    """Calls in progress; the table refreshes itself from /live/events (and the panel from
    /wallboard/events)."""
    live: LiveCalls = request.app.state.live
    context = {
        "calls": _rows(request, viewer, live.snapshot()),
        "board": board_panel(request.app.state.config, viewer),
    }
    return page(request, "live.html", viewer, context)


@router.get("/live/events")
async def live_events(
    request: Request, viewer: Annotated[Viewer, Depends(current_viewer)]
) -> Response:
    """Server-sent events: the live table (scoped and masked for this viewer) whenever it
    changes, until the viewer's session ends."""
    live: LiveCalls = request.app.state.live
    config: HotlineConfig = request.app.state.config
    cookie = read_cookie(request, SESSION_COOKIE)

    async def stream() -> AsyncIterator[str]:
        current: Viewer | None = viewer
        seen = -1
        beats = 0
        checked = time.monotonic()
        while not await request.is_disconnected():
            if time.monotonic() - checked >= config.web.live_recheck_seconds:
                checked = time.monotonic()
                again = await anyio.to_thread.run_sync(load_viewer, request.app, cookie, False)
                if again is None or again.unitless:
                    yield 'event: end\ndata: {"reason": "session"}\n\n'
                    return
                if again != current:  # a new role or unit: send the table as it now sees it
                    current, seen = again, -1
            assert current is not None
            if live.version != seen:
                seen = live.version
                rows = await anyio.to_thread.run_sync(_rows, request, current, live.snapshot())
                payload = {"connected": live.connected, "down": live.links.note(), "calls": rows}
                yield f"event: calls\ndata: {json.dumps(payload, ensure_ascii=False)}\n\n"
            elif beats % 15 == 0:
                yield ": keep-alive\n\n"
            beats += 1
            await asyncio.sleep(0.5)

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
    )
