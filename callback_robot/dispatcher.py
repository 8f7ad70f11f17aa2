"""One dispatcher pass: who to call now, within the window, the channel cap and the pace.

The dispatcher decides; the dialer dials. A pass outside the call window does
nothing; inside it, the number of new calls is bounded by the free channels
(the cap minus attempts dialing or in a call, counted in the database so it
holds across robot processes) and by the calls-per-minute pace.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from callback_robot.windows import in_call_window
from db.robot import attempts_started_since, due_tickets, live_attempts
from db.session import unit_of_work
from hotline.config import HotlineConfig

Dial = Callable[[int, datetime], Awaitable[int]]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Dispatcher:
    def __init__(
        self,
        config: HotlineConfig,
        sessions: sessionmaker[Session],
        dial: Dial,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.config = config
        self.robot = config.robot
        self.sessions = sessions
        self.dial = dial
        self.clock = clock

    def plan(self, now: datetime) -> list[int]:
        """The tickets to call at `now` (empty outside the window or without capacity)."""
        if not in_call_window(now, self.robot, self.config.tz):
            return []
        local = now.astimezone(self.config.tz)
        today_start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        with unit_of_work(self.sessions) as session:
            free = self.robot.max_channels - live_attempts(session)
            paced = self.robot.calls_per_minute - attempts_started_since(
                session, now - timedelta(minutes=1)
            )
            budget = min(free, paced)
            if budget <= 0:
                return []
            return due_tickets(
                session,
                today_start=today_start,
                closed_before=now - timedelta(hours=self.robot.min_hours_after_close),
                max_attempts=self.robot.max_attempts,
                limit=budget,
            )

    async def run_once(self) -> list[int]:
        """Plan at the current time and place those calls; returns the attempts started."""
        now = self.clock()
        tickets = await asyncio.to_thread(self.plan, now)
        return list(await asyncio.gather(*(self.dial(ticket, now) for ticket in tickets)))
