"""One dispatcher pass: who to call now, within the window, the channel cap and the pace.

The dispatcher decides and claims (attempt rows written in one serialised
transaction, see `callback_robot.claim.claim_due`, through the robot's gateway:
in `hotline serve` it takes its turn with the calls' writes; the search before
it is a read of its own, off that queue); the dialer dials. A pass outside the
call window does nothing; inside it, new calls are bounded by the free
channels (the cap minus attempts dialing or in a call, counted in the
database so it holds across robot processes) and by the calls-per-minute pace.

A channel that frees up is used at once, not at the next periodic pass:
`follow` runs a pass as soon as a placed call ends unanswered or a survey
ends (fewer live attempts in the store), a short moment later so that a burst
of ends is one pass. The periodic pass stays as the safety net.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from callback_robot.claim import ClaimedCall, claim_due, free_budget
from callback_robot.eligibility import DueRules, due_tickets
from callback_robot.nodes import NodeView
from callback_robot.store import Claimed, RobotStore
from callback_robot.windows import in_call_window
from core.config import HotlineConfig
from db.callbacks import outbound_load
from db.session import unit_of_work

log = logging.getLogger(__name__)

Place = Callable[[int, int, str, str | None], Awaitable[None]]  # (attempt, ticket, number, node)
SETTLE_SECONDS = 0.3  # after a freed channel, wait this long so a burst of ends is one pass
FOLLOW_SECONDS = 1.0  # how often the live attempts are counted to see a survey end


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
        closed_after=(
            None
            if robot.survey_within_days is None
            else now - timedelta(days=robot.survey_within_days)
        ),
    )


class Dispatcher:
    def __init__(
        self,
        config: HotlineConfig,
        sessions: sessionmaker[Session],
        place: Place,
        robot_id: str = "robot",
        clock: Callable[[], datetime] = utcnow,
        store: RobotStore | None = None,
        nodes: Callable[[], NodeView] | None = None,
    ) -> None:
        """`nodes` (a cluster): this robot's view of the nodes now, for each claim's node choice."""
        self.config = config
        self.robot = config.robot
        self.sessions = sessions
        self.place = place
        self.robot_id = robot_id
        self.clock = clock
        self.store = store or RobotStore(config, sessions)
        self.nodes = nodes
        self.freed = asyncio.Event()  # a channel may have freed up: pass again now
        self.limits = {
            "max_channels": self.robot.max_channels,
            "calls_per_minute": self.robot.calls_per_minute,
        }

    def search(self, now: datetime) -> tuple[DueRules, list[int]]:
        """Who may be called at `now` (none outside the window or without capacity): a read.

        Without the robot lock; the claim re-checks only these under it.
        """
        if not in_call_window(now, self.robot, self.config.tz):
            return due_rules(self.config, now), []
        rules = due_rules(self.config, now)
        with unit_of_work(self.sessions) as session:
            budget = free_budget(session, now, **self.limits)
            candidates = due_tickets(session, rules, limit=budget * 4) if budget > 0 else []
        return rules, candidates

    async def claim(self, now: datetime) -> Claimed:
        """Claim the calls to place at `now`: searched in a thread, claimed through the store."""
        rules, candidates = await asyncio.to_thread(self.search, now)
        if not candidates:
            return []
        return await self.store.claim(
            rules, **self.limits, robot_id=self.robot_id, candidates=candidates, view=self.view()
        )

    def view(self) -> NodeView | None:
        """The nodes as this robot sees them now (a cluster), or None on one box."""
        return self.nodes() if self.nodes is not None else None

    def claim_here(self, now: datetime) -> Claimed:
        """The same claim in this thread on its own sessions (one of several robot processes)."""
        rules, candidates = self.search(now)
        if not candidates:
            return []
        with unit_of_work(self.sessions) as session:
            return claim_due(
                session,
                rules,
                **self.limits,
                robot_id=self.robot_id,
                candidates=candidates,
                node=self.config.asterisk.systemname,
                view=self.view(),
            )

    async def run_once(self) -> list[int]:
        """Claim at the current time and place those calls; returns the attempts started."""
        claimed = await self.claim(self.clock())
        await asyncio.gather(*(self.place_and_free(call) for call in claimed))
        return [call.attempt_id for call in claimed]

    async def place_and_free(self, call: ClaimedCall) -> None:
        """Place a call; once its Originate resolves, a channel may be free: say so."""
        await self.place(call.attempt_id, call.ticket_id, call.number, call.node)
        # the Originate resolved: unanswered, the attempt is settled and its channel free
        self.freed.set()

    async def follow(self, dispatch: Callable[[], Awaitable[None]]) -> None:
        """Run `dispatch` as soon as a channel frees up (until cancelled).

        A channel frees when a placed call ends unanswered (`place_and_free` sets `freed`)
        or when a survey or an agent-first callback ends, which is seen as fewer live
        outbound calls in the store
        (counted every `FOLLOW_SECONDS` on the state index; it holds across robot
        processes and whichever process ran the survey's `survey-end`).
        """
        last_live: int | None = None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.freed.wait(), FOLLOW_SECONDS)
            live = await asyncio.to_thread(self.live)
            freed = self.freed.is_set() or (last_live is not None and live < last_live)
            last_live = live
            if not freed:
                continue
            await asyncio.sleep(SETTLE_SECONDS)
            self.freed.clear()
            try:
                await dispatch()
            except Exception:
                log.exception("dispatch after a freed channel failed; the periodic pass stays")

    def live(self) -> int:
        """Live outbound calls: the robot's attempts and the agent-first callbacks, which
        share its channels (`db.callbacks.outbound_load`), so either ending frees one."""
        with unit_of_work(self.sessions) as session:
            return outbound_load(session, self.clock()).live
