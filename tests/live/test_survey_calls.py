"""The robot's survey calls through the real Asterisk: the robot's run, real SIP, crashes, retries."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from callback_robot.dialer import Dialer
from core.vocabulary import AttemptOutcome, AttemptState, Question
from db.models import CallbackAttempt
from db.session import unit_of_work
from hotline.app import Hotline
from telephony.ami import AMIClient
from tests.support.survey import (
    answers,
    closed_ticket,
    first_attempt_of,
    number_for,
    script_ids,
    sim_number,
    wait_done,
)


async def test_robot_run_dials_a_due_ticket_inside_the_window(
    hotline: Hotline,
    ami: AMIClient,
) -> None:
    from datetime import time

    from callback_robot.runner import run_robot
    from core.config import CallWindow

    always = hotline.config.robot.model_copy(
        update={"call_windows": [CallWindow(start=time(0, 0), end=time(23, 59, 59))]}
    )
    config = hotline.config.model_copy(update={"robot": always})
    number = await number_for(ami, "answers_1_1_1")
    ticket_id, _ = closed_ticket(hotline, number)
    stop = asyncio.Event()
    robot = asyncio.create_task(run_robot(config, stop, dispatch_seconds=1))
    try:
        row = await first_attempt_of(hotline, ticket_id, lambda a: a.state == AttemptState.DONE)
    finally:
        stop.set()
        await robot
    assert row.outcome == AttemptOutcome.COMPLETED
    assert row.node == config.asterisk.systemname == "ast1"  # the node that dialled (issue 22)
    with unit_of_work(hotline.sessions) as session:
        attempts = session.scalars(
            select(CallbackAttempt).where(CallbackAttempt.ticket_id == ticket_id)
        ).all()
        assert len(attempts) == 1  # completed: the dispatcher never calls it again


async def test_a_survey_answered_over_real_sip_by_the_softphone(
    hotline: Hotline,
    ami: AMIClient,
) -> None:
    import sys

    sip = hotline.config.asterisk.model_copy(update={"outbound_channel": "PJSIP/{number}"})
    config = hotline.config.model_copy(update={"asterisk": sip})
    ticket_id, _ = closed_ticket(hotline, "6003")
    phone = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hotline.cli",
        "phone",
        "answer",
        "--as",
        "6003",
        "--script",
        "w11|d1|w2|d2|w2|d2",
        "--timeout",
        "40",
        "--config",
        str(hotline.config.source),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert phone.stdout is not None
    line = await asyncio.wait_for(phone.stdout.readline(), 20)
    assert b"6003 registered" in line
    dialer = Dialer(config, ami, hotline.sessions, "sip-test")
    attempt_id = await dialer.dial(ticket_id, datetime.now(UTC))
    attempt = await wait_done(hotline, attempt_id)
    _, err = await asyncio.wait_for(phone.communicate(), 60)
    assert phone.returncode == 0, err.decode()
    assert attempt.outcome == AttemptOutcome.COMPLETED
    got = {q.value: a for q, a in answers(hotline, attempt_id).items()}
    assert got == {"contacted": 1, "resolved": 2, "satisfaction": 2}


async def test_asterisk_killed_mid_campaign_truthful_outcome_and_the_robot_carries_on(
    hotline: Hotline,
    ami: AMIClient,
    asterisk,  # type: ignore[no-untyped-def]
) -> None:
    import os
    import signal
    from datetime import time

    from callback_robot.runner import run_robot
    from core.config import CallWindow

    always = hotline.config.robot.model_copy(
        update={"call_windows": [CallWindow(start=time(0, 0), end=time(23, 59, 59))]}
    )
    config = hotline.config.model_copy(update={"robot": always})
    # answers Q1, then stays on the line without pressing anything
    script_id = next(script_ids)
    await ami.action("DBPut", Family="sim", Key=f"{script_id:07d}", Val="w11|d1|w60")
    first_id, _ = closed_ticket(hotline, sim_number("script", script_id))
    stop = asyncio.Event()
    robot = asyncio.create_task(run_robot(config, stop, dispatch_seconds=1))
    try:
        first = await first_attempt_of(hotline, first_id, lambda a: answers(hotline, a.id), 60)
        pid = asterisk.running_pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)  # Asterisk dies in the middle of the survey
        await asyncio.to_thread(asterisk.down)
        await asyncio.to_thread(asterisk.up)
        await asyncio.wait_for(ami.connected.wait(), 30)
        settled = await wait_done(hotline, first.id, timeout=60)
        assert settled.outcome == AttemptOutcome.PARTIAL  # Q1 was given before the crash
        assert "restarted" in str(settled.hangup_cause)
        assert answers(hotline, first.id) == {Question.CONTACTED: 1}
        # the robot carries on with the next citizen after the restart
        second_id, _ = closed_ticket(hotline, await number_for(ami, "answers_1_1_1"))
        second = await first_attempt_of(hotline, second_id, lambda a: a.state == AttemptState.DONE)
        assert second.outcome == AttemptOutcome.COMPLETED
    finally:
        stop.set()
        await robot
    with unit_of_work(hotline.sessions) as session:  # the interrupted call was not redialled
        assert (
            session.query(CallbackAttempt).filter(CallbackAttempt.ticket_id == first_id).count()
            == 1
        )


async def test_an_attempt_orphaned_by_a_dead_robot_takes_its_outcome_from_the_cdr(
    hotline: Hotline,
    ami: AMIClient,
) -> None:
    from callback_robot import cdr, recovery
    from callback_robot.attempts import create_attempt

    ticket_id, _ = closed_ticket(hotline, sim_number("busy"))
    with unit_of_work(hotline.sessions) as session:
        attempt_id = create_attempt(session, ticket_id, datetime.now(UTC), "dead-robot").id
    # what a robot sends just before it is killed: the Originate, and nobody waits for it
    await ami.action(
        "Originate",
        Channel="Local/busy@sim-citizen",
        Context="hotline-survey",
        Exten="s",
        Priority="1",
        Async="true",
        Timeout="5000",
        variables={"HOTLINE_ATTEMPT": str(attempt_id), "CDR(userfield)": f"attempt-{attempt_id}"},
    )
    deadline = asyncio.get_running_loop().time() + 20
    while attempt_id not in (records := cdr.dispositions(hotline.config.cdr_csv)):
        assert asyncio.get_running_loop().time() < deadline, "no CDR for the attempt"
        await asyncio.sleep(0.5)
    assert records[attempt_id] == "BUSY"
    resolved = dict(recovery.resolve(hotline.sessions, set(), None, records))
    assert resolved[attempt_id] == "busy"


async def test_retries_wait_for_their_interval_and_stop_at_the_limit(
    hotline: Hotline,
    ami: AMIClient,
) -> None:
    from datetime import time

    from callback_robot.dispatcher import Dispatcher
    from core.config import CallWindow

    robot = hotline.config.robot.model_copy(
        update={
            "call_windows": [CallWindow(start=time(0, 0), end=time(23, 59, 59))],
            "max_attempts_per_day": 5,
            "max_calls_per_citizen_per_day": 5,
            "max_unanswered": 2,
            "retry_after_minutes": {"no_answer": 120, "busy": 30, "failed": 60, "partial": 240},
        }
    )
    config = hotline.config.model_copy(update={"robot": robot})
    ticket_id, _ = closed_ticket(hotline, sim_number("busy"))  # its own number: no spacing rule
    clock = {"now": datetime.now(UTC)}
    dialer = Dialer(config, ami, hotline.sessions, "retry-test")
    dispatcher = Dispatcher(
        config, hotline.sessions, dialer.place, robot_id="retry-test", clock=lambda: clock["now"]
    )

    def outcomes() -> list[AttemptOutcome | None]:
        with unit_of_work(hotline.sessions) as session:
            return [
                a.outcome
                for a in session.scalars(
                    select(CallbackAttempt)
                    .where(CallbackAttempt.ticket_id == ticket_id)
                    .order_by(CallbackAttempt.attempt_no)
                )
            ]

    start = clock["now"]
    for minutes, expected in [(0, 1), (10, 1), (31, 2), (70, 2), (200, 2)]:
        clock["now"] = start + timedelta(minutes=minutes)
        await dispatcher.run_once()
        assert outcomes() == [AttemptOutcome.BUSY] * expected, f"at +{minutes} min"
