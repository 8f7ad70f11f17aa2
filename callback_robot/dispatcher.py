"""One dispatcher pass: who to call now, within the window, the channel cap and the pace.

The dispatcher decides and claims (attempt rows written in one serialised
transaction, see `db.robot.claim_due`); the dialer dials. A pass outside the
call window does nothing; inside it, new calls are bounded by the free
channels (the cap minus attempts dialing or in a call, counted in the
database so it holds across robot processes) and by the calls-per-minute pace.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from callback_robot.windows import in_call_window
from core.config import HotlineConfig
from db.robot import DueRules, claim_due
from db.session import unit_of_work

Place = Callable[[int, int, str], Awaitable[None]]  # (attempt id, ticket id, number)


def utcnow() -> datetime:
    return datetime.now(UTC)


def due_rules(config: HotlineConfig, now: datetime) -> DueRules:
    """The robot's eligibility rules at `now`, from the config."""
    robot = config.robot
    local = now.astimezone(config.tz)
    return DueRules(
        now=now,
        today_start=local.replace(hour=0, minute=0, second=0, microsecond=0),
        closed_before=now - timedelta(hours=robot.min_hours_after_close),
        max_attempts=robot.max_attempts,
        max_attempts_per_day=robot.max_attempts_per_day,
        max_calls_per_citizen_per_day=robot.max_calls_per_citizen_per_day,
        retry_after_minutes=dict(robot.retry_after_minutes),
        max_unanswered=robot.max_unanswered,
        max_partial=robot.max_partial,
    )


class Dispatcher:
    def __init__(
        self,
        config: HotlineConfig,
        sessions: sessionmaker[Session],
        place: Place,
        robot_id: str = "robot",
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.config = config
        self.robot = config.robot
        self.sessions = sessions
        self.place = place
        self.robot_id = robot_id
        self.clock = clock

    def claim(self, now: datetime) -> list[tuple[int, int, str]]:
        """Claim the calls to place at `now` (none outside the window or without capacity)."""
        if not in_call_window(now, self.robot, self.config.tz):
            return []
        with unit_of_work(self.sessions) as session:
            return claim_due(
                session,
                due_rules(self.config, now),
                max_channels=self.robot.max_channels,
                calls_per_minute=self.robot.calls_per_minute,
                robot_id=self.robot_id,
            )

    async def run_once(self) -> list[int]:
        """Claim at the current time and place those calls; returns the attempts started."""
        claimed = await asyncio.to_thread(self.claim, self.clock())
        await asyncio.gather(*(self.place(a, t, n) for a, t, n in claimed))
        return [attempt_id for attempt_id, _, _ in claimed]
