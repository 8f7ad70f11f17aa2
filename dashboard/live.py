"""Live calls: who is in the IVR and at which step, in the agent queue, being surveyed.

`LiveCalls` follows AMI events (its own AMI connection in the web app's event
loop, never the FastAGI one) into a small table of channels; `/live/events`
pushes that table to the page as server-sent events whenever it changes, each
number masked for viewers who may not see it. With Asterisk down the table is
empty, `connected` is False and every page says so; the rest of the console
works on the store alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, replace
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse

from core.config import HotlineConfig
from core.phone_numbers import UNKNOWN, from_caller_id
from dashboard.auth import Viewer, current_viewer
from dashboard.render import page
from links.ami import ami_client
from telephony.ami import AMIError, AMIEvent

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


class LiveCalls:
    """The channels Asterisk reports, reduced to what a supervisor watches (thread-safe)."""

    def __init__(self) -> None:
        self._calls: dict[str, LiveCall] = {}
        self._lock = threading.Lock()
        self.version = 0
        self.connected = False

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
            self._put(replace(current, where="survey"), uniqueid)
        elif event.name == "VarSet" and variable.lstrip("_") == "HOTLINE_DID" and value.isdigit():
            self._put(replace(current, did=value[:20]), uniqueid)
        elif event.name == "QueueCallerJoin":
            self._put(replace(current, where="queue"), uniqueid)
        elif event.name == "QueueCallerLeave":
            self._put(replace(current, where="ivr"), uniqueid)

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()
            self.version += 1

    async def follow(self, config: HotlineConfig, stop: asyncio.Event) -> None:
        """Follow AMI until stop; an unreachable Asterisk is retried every few seconds."""
        while not stop.is_set():
            client = ami_client(config)
            try:
                await client.connect()
            except (AMIError, OSError) as exc:
                self.connected = False
                log.info("live calls: AMI not reachable (%s); retrying", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 3)
                continue
            queue = client.subscribe(*EVENTS)
            try:
                while not stop.is_set():
                    self.connected = client.connected.is_set()
                    if not self.connected:
                        self.clear()
                    try:
                        self.feed(await asyncio.wait_for(queue.get(), 1))
                    except TimeoutError:
                        continue
            finally:
                self.connected = False
                client.unsubscribe(queue)
                await client.close()


def _rows(live: LiveCalls, viewer: Viewer) -> list[dict[str, object]]:
    now = time.time()
    return [
        {**asdict(c), "number": viewer.number(c.number), "seconds": int(now - c.since)}
        for c in live.snapshot()
    ]


@router.get("/live")
def live_page(request: Request, viewer: Annotated[Viewer, Depends(current_viewer)]) -> Response:
    """Calls in progress; the table refreshes itself from /live/events."""
    live: LiveCalls = request.app.state.live
    return page(request, "live.html", viewer, {"calls": _rows(live, viewer)})


@router.get("/live/events")
async def live_events(
    request: Request, viewer: Annotated[Viewer, Depends(current_viewer)]
) -> Response:
    """Server-sent events: the live table (masked for this viewer) whenever it changes."""
    live: LiveCalls = request.app.state.live

    async def stream() -> AsyncIterator[str]:
        seen = -1
        beats = 0
        while not await request.is_disconnected():
            if live.version != seen:
                seen = live.version
                payload = {"connected": live.connected, "calls": _rows(live, viewer)}
                yield f"event: calls\ndata: {json.dumps(payload, ensure_ascii=False)}\n\n"
            elif beats % 15 == 0:
                yield ": keep-alive\n\n"
            beats += 1
            await asyncio.sleep(0.5)

    return StreamingResponse(
        stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
    )
