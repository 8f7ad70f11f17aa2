"""`hotline robot run`: APScheduler jobs around the dispatcher, the dialer and recovery.

State lives in the database, not in the scheduler: attempts are rows written
before dialing, so a restarted robot recovers what was in flight and then
simply asks the database again who is due.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from callback_robot import recovery
from callback_robot.dialer import Dialer
from callback_robot.dispatcher import Dispatcher
from db.session import make_engine, make_session_factory
from hotline.asterisk.ami import AMIClient
from hotline.config import HotlineConfig

log = logging.getLogger(__name__)
DISPATCH_SECONDS = 10


def robot_id() -> str:
    import os

    return f"{socket.gethostname()}:{os.getpid()}"


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
        ami_cfg.secret(),
        connect_timeout=ami_cfg.connect_timeout,
        reconnect_max_delay=ami_cfg.reconnect_max_delay,
        secret_hint=ami_cfg.secret_env,
    )
    await ami.connect()
    sessions = make_session_factory(
        make_engine(config.database_url, False, config.database.busy_timeout_ms)
    )
    live = await recovery.live_attempt_ids(ami)
    await asyncio.to_thread(recovery.resolve, sessions, live)
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
    scheduler.start()
    await dispatch()
    stop = stop or asyncio.Event()
    if stop is not None and not stop.is_set():
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (RuntimeError, ValueError):  # not the main thread (tests)
                break
    await stop.wait()
    scheduler.shutdown(wait=False)
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)
    await ami.close()
