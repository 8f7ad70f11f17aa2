"""Watching a leg the console dialled (a three-way call's party, a listening supervisor).

The request that dialled it answers at once; a task of the app's keeps its own
AMI link until the leg's Hangup (or `LONGEST` at the latest), then closes the
link and writes the end in a worker thread. The app keeps a reference to every
such task so none is collected while it waits.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import UTC, datetime

import anyio.to_thread
from fastapi import Request
from sqlalchemy.orm import Session

from agents.conference import Watched, leg_ended
from db.session import unit_of_work
from telephony.ami import AMIClient

LONGEST = 4 * 3600.0  # a leg's end is written after this at the latest


def watch_leg(
    request: Request,
    ami: AMIClient,
    leg: Watched,
    write_end: Callable[[Session, datetime], None],
    name: str,
) -> None:
    """Write the leg's end (write_end(session, when)) once it hangs up; close ami then."""

    async def watch() -> None:
        try:
            with contextlib.suppress(TimeoutError):
                await leg_ended(ami, leg, timeout=LONGEST)
        finally:
            await ami.close()

        def ended() -> None:
            with unit_of_work(request.app.state.sessions) as session:
                write_end(session, datetime.now(UTC))

        await anyio.to_thread.run_sync(ended)

    watches: set[asyncio.Task[None]] | None = getattr(request.app.state, "leg_watches", None)
    if watches is None:
        watches = request.app.state.leg_watches = set()
    task = asyncio.create_task(watch(), name=name)
    watches.add(task)
    task.add_done_callback(watches.discard)
