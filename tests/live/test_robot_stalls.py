"""The robot never stalls silently: an Originate that times out, a database error at start,
a heartbeat that says "stalled". Calls go through the real Asterisk.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from callback_robot.dialer import Dialer
from core.config import CallWindow, DatabaseConfig, HotlineConfig
from core.vocabulary import AttemptOutcome, AttemptState
from db.migrate import upgrade
from db.models import CallbackAttempt, RobotHeartbeat
from db.session import make_engine, make_session_factory, unit_of_work
from hotline.app import Hotline, supervise_robot
from telephony.ami import AMIClient, OriginateResult
from tests.support.survey import closed_ticket, sim_number, wait_done


class ImpatientAMI:
    """The session's real AMI client, but it gives up on an OriginateResponse after 0.5 s."""

    def __init__(self, ami: AMIClient) -> None:
        self._ami = ami

    async def originate(self, *args: object, **kwargs: object) -> OriginateResult:
        return await self._ami.originate(*args, result_timeout=0.5, **kwargs)  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> object:
        return getattr(self._ami, name)


def always_open(config: HotlineConfig) -> HotlineConfig:
    robot = config.robot.model_copy(
        update={
            "call_windows": [CallWindow(start=time(0, 0), end=time(23, 59, 59))],
            "max_calls_per_citizen_per_day": 20,
        }
    )
    return config.model_copy(update={"robot": robot})


async def test_an_originate_that_times_out_does_not_raise_and_is_left_for_recovery(
    hotline: Hotline, ami: AMIClient
) -> None:
    ticket_id, _ = closed_ticket(hotline, sim_number("noanswer"))  # rings the whole ring timeout
    dialer = Dialer(hotline.config, ImpatientAMI(ami), hotline.sessions, "impatient")  # type: ignore[arg-type]
    attempt_id = await dialer.dial(ticket_id, datetime.now(UTC))  # must not raise
    with unit_of_work(hotline.sessions) as session:
        attempt = session.get(CallbackAttempt, attempt_id)
        assert attempt is not None and attempt.state == AttemptState.DIALING


async def test_the_periodic_recovery_settles_an_attempt_whose_originate_timed_out(
    hotline: Hotline, ami: AMIClient
) -> None:
    from callback_robot.runner import Robot

    config = always_open(hotline.config)
    ticket_id, _ = closed_ticket(hotline, sim_number("noanswer"))
    robot = Robot(
        config,
        ImpatientAMI(ami),  # type: ignore[arg-type]
        hotline.sessions,
        robot_id="periodic-test",
        dispatch_seconds=1,
        recovery_seconds=1,
        grace_seconds=1,
    )
    await robot.start()
    try:

        async def first_attempt() -> int:
            while True:
                with unit_of_work(hotline.sessions) as session:
                    found = session.scalar(
                        select(CallbackAttempt.id).where(CallbackAttempt.ticket_id == ticket_id)
                    )
                if found is not None:
                    return found
                await asyncio.sleep(0.2)

        attempt_id = await asyncio.wait_for(first_attempt(), 20)
        # the Originate timed out at once; Asterisk rang 5 s and wrote its call record
        settled = await wait_done(hotline, attempt_id, timeout=40)
    finally:
        await robot.stop()
    assert settled.outcome == AttemptOutcome.NO_ANSWER
    assert "call record" in str(settled.hangup_cause)


async def test_a_database_error_at_robot_start_is_retried_until_it_is_gone(
    hotline: Hotline, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'not-yet' / 'hotline.db'}"  # the folder does not exist
    config = always_open(hotline.config).model_copy(
        update={"database": DatabaseConfig(url=url, busy_timeout_ms=1000)}
    )
    stop = asyncio.Event()
    with caplog.at_level(logging.ERROR):
        task = asyncio.create_task(supervise_robot(config, stop, backoff=(0.2, 0.5)))
        try:
            await asyncio.sleep(3)
            assert not task.done(), "the supervisor gave up on the robot"
            assert caplog.text.count("restarting") >= 2
            upgrade(url)  # the database comes back

            async def beating() -> None:
                sessions = make_session_factory(make_engine(url))
                while True:
                    with unit_of_work(sessions) as session:
                        if session.scalars(select(RobotHeartbeat)).first() is not None:
                            return
                    await asyncio.sleep(0.2)

            await asyncio.wait_for(beating(), 30)
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)


def test_status_says_stalled_when_the_last_dispatch_pass_is_old(hotline: Hotline) -> None:
    from callback_robot.heartbeat import record_heartbeat
    from callback_robot.status import robot_status

    now = datetime.now(UTC) + timedelta(minutes=10)  # later than any robot of the session
    with unit_of_work(hotline.sessions) as session:
        record_heartbeat(session, "old-robot", now - timedelta(hours=1), now - timedelta(minutes=5))
        status = robot_status(session, hotline.config, now)
    assert status.heartbeat is not None and status.stalled
    with unit_of_work(hotline.sessions) as session:
        record_heartbeat(session, "fresh-robot", now - timedelta(hours=1), now)
        status = robot_status(session, hotline.config, now)
    assert not status.stalled
