"""`hotline robot run`: APScheduler jobs around the dispatcher, the dialer and recovery.

State lives in the database, not in the scheduler: attempts are rows written
before dialing, so a restarted robot recovers what was in flight and then
simply asks the database again who is due.

Nothing here may stop silently: every job logs its own failure and runs again
at its next interval; each successful dispatch pass is recorded as the robot's
heartbeat (`hotline robot status` says "stalled" when it is old); the
recovery job settles, every `recovery_seconds`, any attempt older than the
ring timeout plus a grace that Asterisk no longer has a channel for.

Its writes (the claim, the heartbeat, the dialer's attempts and outcomes,
recovery) go through its gateway on a store runtime (`callback_robot.store`):
`hotline serve` hands it the runtime its calls use, so they take turns;
`hotline robot run` builds one of its own on its own engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from callback_robot import cdr, recovery
from callback_robot.dialer import Dialer
from callback_robot.dispatcher import Dispatcher
from callback_robot.reporting import RobotFigures, robot_figures
from callback_robot.store import RobotStore
from core.config import HotlineConfig
from core.telemetry import DISPATCH_PASSES
from db.runtime import StoreRuntime
from db.session import make_engine, make_session_factory, unit_of_work
from links.ami import ami_client
from telephony.ami import AMIClient, AMIError

log = logging.getLogger(__name__)
DISPATCH_SECONDS = 10
RECOVERY_SECONDS = 60
GRACE_SECONDS = 30  # beyond the ring timeout, before an attempt without a channel is settled


def robot_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


_this_process = robot_id


async def recover(
    ami: AMIClient,
    store: RobotStore,
    config: HotlineConfig,
    started_before: datetime | None = None,
    records: cdr.CdrReader | None = None,
) -> list[tuple[int, str]]:
    """Settle attempts in flight that Asterisk no longer has a channel for."""
    try:
        live = await recovery.live_attempt_ids(ami)
    except (AMIError, TimeoutError) as exc:
        log.warning("recovery skipped: cannot list Asterisk's channels (%s)", exc)
        return []
    reader = records or cdr.CdrReader(config.cdr_csv)
    found = await asyncio.to_thread(reader.dispositions)
    settled = await store.settle_in_flight(live, started_before, found)
    recovery.log_settled(settled)
    return settled


async def report(sessions: sessionmaker[Session], config: HotlineConfig) -> None:
    """Log today's robot figures (the reporting job)."""
    now = datetime.now(UTC)
    start = now.astimezone(config.tz).replace(hour=0, minute=0, second=0, microsecond=0)

    def figures() -> RobotFigures:
        with unit_of_work(sessions) as session:
            return robot_figures(session, start, now, config.timezone)

    today = await asyncio.to_thread(figures)
    log.info(
        "robot today: placed %s, reached %s, completed %s, success rate %s",
        today.placed,
        today.reached,
        today.completed,
        "no data" if today.success_rate is None else f"{today.success_rate:.1%}",
    )


class Robot:
    """The robot's jobs on one AMI link and one store; `start()` then `stop()`."""

    def __init__(
        self,
        config: HotlineConfig,
        ami: AMIClient,
        sessions: sessionmaker[Session],
        *,
        robot_id: str | None = None,
        dispatch_seconds: float = DISPATCH_SECONDS,
        recovery_seconds: float = RECOVERY_SECONDS,
        grace_seconds: float = GRACE_SECONDS,
        runtime: StoreRuntime | None = None,
    ) -> None:
        """On the store runtime given (`hotline serve`'s); else one of its own on `sessions`."""
        self.config = config
        self.ami = ami
        self.sessions = sessions
        self.id = robot_id or _this_process()
        self.dispatch_seconds = dispatch_seconds
        self.recovery_seconds = recovery_seconds
        self.grace = timedelta(seconds=config.robot.ring_timeout_seconds + grace_seconds)
        self.store = RobotStore(config, sessions, runtime=runtime)
        self.dialer = Dialer(config, ami, sessions, self.id, self.store)
        self.dispatcher = Dispatcher(
            config, sessions, self.dialer.place, robot_id=self.id, store=self.store
        )
        self.records = cdr.CdrReader(config.cdr_csv)
        self.started_at = datetime.now(UTC)
        self.lost_at = self.started_at
        self.last_pass: datetime | None = None
        self.passes = 0
        self.pending: set[asyncio.Task[None]] = set()
        self.scheduler = AsyncIOScheduler(timezone=config.timezone)
        self.follower: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Apply what waited in the spool, settle what a crash left, then schedule the jobs."""
        await asyncio.to_thread(self.store.replay)
        await self.recover(started_before=None)  # on start: nothing of ours can still be dialing
        self.ami.on_disconnect.append(self.link_lost)
        self.ami.on_connect.append(self.after_reconnect)
        every = {"max_instances": 1, "coalesce": True}
        self.scheduler.add_job(
            self.dispatch, "interval", seconds=self.dispatch_seconds, id="dispatch", **every
        )
        self.scheduler.add_job(
            self.periodic_recovery,
            "interval",
            seconds=self.recovery_seconds,
            id="recovery",
            **every,
        )
        self.scheduler.add_job(
            report,
            "interval",
            minutes=self.config.robot.report_minutes,
            id="report",
            args=[self.sessions, self.config],
            **every,
        )
        self.scheduler.start()
        # a freed channel is used at once, not at the next periodic pass
        self.follower = asyncio.create_task(
            self.dispatcher.follow(self.dispatch), name="dispatch-on-free"
        )
        await self.dispatch()

    async def stop(self) -> None:
        """Stop the jobs and let the calls being placed finish their Originate."""
        self.scheduler.shutdown(wait=False)
        if self.follower is not None:
            self.follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.follower
        for hooks, hook in (
            (self.ami.on_disconnect, self.link_lost),
            (self.ami.on_connect, self.after_reconnect),
        ):
            if hook in hooks:
                hooks.remove(hook)
        if self.pending:
            await asyncio.gather(*self.pending, return_exceptions=True)

    async def recover(self, started_before: datetime | None) -> None:
        """Spooled intents first (the citizen's own answers), then Asterisk's view."""
        await asyncio.to_thread(self.store.replay)
        await recover(self.ami, self.store, self.config, started_before, self.records)

    async def link_lost(self) -> None:
        self.lost_at = datetime.now(UTC)

    async def after_reconnect(self) -> None:
        # Asterisk may have restarted: calls placed before the link dropped that it no
        # longer has are over, and get their outcome now; later ones are left alone.
        await self.recover(started_before=self.lost_at)

    async def periodic_recovery(self) -> None:
        """Every attempt older than ring timeout + grace that Asterisk no longer has."""
        try:
            await self.recover(started_before=datetime.now(UTC) - self.grace)
        except Exception:
            log.exception("recovery pass failed; next one in %.0f s", self.recovery_seconds)

    async def dispatch(self) -> None:
        """One pass: claim who is due, record the heartbeat, place the calls."""
        if not self.ami.connected.is_set():
            log.warning("AMI link down: dispatch skipped")
            return
        try:
            now = self.dispatcher.clock()
            claimed = await self.dispatcher.claim(now)
            await self.beat(now)
        except Exception:
            log.exception("dispatch pass failed; next one in %.0f s", self.dispatch_seconds)
            return
        for call in claimed:
            task = asyncio.create_task(self.dispatcher.place_and_free(call))
            self.pending.add(task)
            task.add_done_callback(self.pending.discard)

    async def beat(self, at: datetime) -> None:
        await self.store.heartbeat(self.id, self.started_at, at)
        self.last_pass = at
        self.passes += 1
        DISPATCH_PASSES.inc()


async def run_robot(
    config: HotlineConfig,
    stop: asyncio.Event | None = None,
    dispatch_seconds: float = DISPATCH_SECONDS,
    recovery_seconds: float = RECOVERY_SECONDS,
    on_robot: Callable[[Robot | None], None] | None = None,
    runtime: StoreRuntime | None = None,
) -> None:
    """Connect to AMI, recover, then dispatch every few seconds until stopped.

    `on_robot` is told the running robot (and None when it stops), for /healthz.
    `runtime`: the store runtime of the process it runs in (`hotline serve`);
    without one it builds its own on an engine of its own (`hotline robot run`).
    """
    ami = ami_client(config)
    await ami.connect()
    robot: Robot | None = None
    try:
        if runtime is None:
            runtime = StoreRuntime(make_session_factory(robot_engine(config)))
        robot = Robot(
            config,
            ami,
            runtime.sessions,
            dispatch_seconds=dispatch_seconds,
            recovery_seconds=recovery_seconds,
            runtime=runtime,
        )
        await robot.start()
        if on_robot is not None:
            on_robot(robot)
        await until_stopped(stop or asyncio.Event())
    finally:
        if on_robot is not None:
            on_robot(None)
        if robot is not None:
            await robot.stop()
        await ami.close()


def robot_engine(config: HotlineConfig) -> Engine:
    """The engine of a robot process of its own (`hotline robot run`)."""
    return make_engine(
        config.database_url,
        False,
        config.database.busy_timeout_ms,
        attempt_seconds=config.robot.db_retry_seconds,  # no try outlives its budget
    )


async def until_stopped(stop: asyncio.Event) -> None:
    """Wait for `stop`, which SIGINT and SIGTERM set when this runs in the main thread."""
    if not stop.is_set():
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (RuntimeError, ValueError):  # not the main thread (tests)
                break
    await stop.wait()
