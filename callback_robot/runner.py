"""`hotline robot run`: APScheduler jobs around the dispatcher, the dialer and recovery.

State lives in the database, not in the scheduler: attempts are rows written
before dialing, so a restarted robot recovers what was in flight and then
simply asks the database again who is due.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.orm import Session, sessionmaker

from callback_robot import cdr, recovery
from callback_robot.dialer import Dialer
from callback_robot.dispatcher import Dispatcher
from core.config import HotlineConfig
from db.robot import RobotFigures, robot_figures
from db.session import make_engine, make_session_factory, unit_of_work
from telephony.ami import AMIClient, AMIError

log = logging.getLogger(__name__)
DISPATCH_SECONDS = 10


def robot_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def recover(
    ami: AMIClient,
    sessions: sessionmaker[Session],
    config: HotlineConfig,
    started_before: datetime | None = None,
) -> None:
    """Settle attempts in flight that Asterisk no longer has a channel for."""
    try:
        live = await recovery.live_attempt_ids(ami)
    except (AMIError, TimeoutError) as exc:
        log.warning("recovery skipped: cannot list Asterisk's channels (%s)", exc)
        return
    records = await asyncio.to_thread(cdr.dispositions, config.cdr_csv)
    await asyncio.to_thread(recovery.resolve, sessions, live, started_before, records)


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


async def run_robot(
    config: HotlineConfig,
    stop: asyncio.Event | None = None,
    dispatch_seconds: float = DISPATCH_SECONDS,
) -> None:
    """Connect to AMI, recover, then dispatch every few seconds until stopped."""
    ami_cfg = config.asterisk.ami
    ami = AMIClient(
        ami_cfg.host,
        ami_cfg.port,
        ami_cfg.username,
        config.ami_secret(),
        connect_timeout=ami_cfg.connect_timeout,
        reconnect_max_delay=ami_cfg.reconnect_max_delay,
        secret_hint=ami_cfg.secret_env,
    )
    await ami.connect()
    sessions = make_session_factory(
        make_engine(config.database_url, False, config.database.busy_timeout_ms)
    )
    await recover(ami, sessions, config)  # on start: nothing of ours can still be dialing
    grace = timedelta(seconds=config.robot.ring_timeout_seconds + 30)

    link = {"lost_at": datetime.now(UTC)}

    async def link_lost() -> None:
        link["lost_at"] = datetime.now(UTC)

    async def after_reconnect() -> None:
        # Asterisk may have restarted: calls placed before the link dropped that it no
        # longer has are over, and get their outcome now; later ones are left alone.
        await recover(ami, sessions, config, started_before=link["lost_at"])

    async def periodic_recovery() -> None:
        await recover(ami, sessions, config, started_before=datetime.now(UTC) - grace)

    ami.on_disconnect.append(link_lost)
    ami.on_connect.append(after_reconnect)
    me = robot_id()
    dialer = Dialer(config, ami, sessions, me)
    dispatcher = Dispatcher(config, sessions, dialer.place, robot_id=me)
    pending: set[asyncio.Task[list[int]]] = set()

    async def dispatch() -> None:
        if not ami.connected.is_set():
            log.warning("AMI link down: dispatch skipped")
            return
        task = asyncio.create_task(dispatcher.run_once())
        pending.add(task)
        task.add_done_callback(pending.discard)

    scheduler = AsyncIOScheduler(timezone=config.timezone)
    scheduler.add_job(
        dispatch,
        "interval",
        seconds=dispatch_seconds,
        id="dispatch",
        max_instances=1,
        coalesce=True,
    )
    scheduler.add_job(
        after_reconnect, "interval", minutes=1, id="recovery", max_instances=1, coalesce=True
    )
    scheduler.add_job(
        report,
        "interval",
        minutes=config.robot.report_minutes,
        id="report",
        args=[sessions, config],
        max_instances=1,
        coalesce=True,
    )
    scheduler.start()
    follower = asyncio.create_task(dispatcher.follow(dispatch), name="dispatch-on-free")
    await dispatch()
    stop = stop or asyncio.Event()
    if not stop.is_set():
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (RuntimeError, ValueError):  # not the main thread (tests)
                break
    await stop.wait()
    scheduler.shutdown(wait=False)
    follower.cancel()
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    await ami.close()
