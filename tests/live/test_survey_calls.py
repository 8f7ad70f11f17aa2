"""The robot's survey call through the real Asterisk, one scripted citizen per persona."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from callback_robot.dialer import Dialer
from core.vocabulary import AttemptOutcome, AttemptState, EventKind, Question, TicketStatus
from db.models import CallbackAttempt, DoNotCall, SurveyAnswer, ValidCallback
from db.session import unit_of_work
from db.tickets import ticket_by_number
from hotline.app import Hotline
from telephony.ami import AMIClient
from tests.support.survey import (
    PERSONAS,
    answers,
    closed_ticket,
    first_attempt_of,
    number_for,
    script_ids,
    sim_number,
    wait_done,
)


@pytest.fixture(scope="module")
async def surveyed(hotline: Hotline, ami: AMIClient) -> dict[str, tuple[CallbackAttempt, str]]:
    dialer = Dialer(hotline.config, ami, hotline.sessions, "test-robot")

    async def run(persona: str) -> tuple[CallbackAttempt, str]:
        number = await number_for(ami, persona, hotline.config.state_dir / "voices")
        ticket_id, ticket_number = closed_ticket(hotline, number)
        attempt_id = await dialer.dial(ticket_id, datetime.now(UTC) - timedelta(seconds=1))
        return await wait_done(hotline, attempt_id), ticket_number

    results = await asyncio.gather(*(run(p) for p in PERSONAS))
    return dict(zip(PERSONAS, results, strict=True))


@pytest.mark.parametrize(
    ("persona", "outcome", "expected"),
    [
        (
            "answers_1_1_1",
            AttemptOutcome.COMPLETED,
            {"contacted": 1, "resolved": 1, "satisfaction": 1},
        ),
        (
            "answers_2_2_3",
            AttemptOutcome.COMPLETED,
            {"contacted": 2, "resolved": 2, "satisfaction": 3},
        ),
        ("hangs_up_after_q1", AttemptOutcome.PARTIAL, {"contacted": 1}),
        (
            "wrong_key_then_valid",
            AttemptOutcome.COMPLETED,
            {"contacted": 1, "resolved": 1, "satisfaction": 2},
        ),
        ("opts_out", AttemptOutcome.OPTED_OUT, {}),
        (
            "silent_then_says_yes",
            AttemptOutcome.COMPLETED,
            {"contacted": 1, "resolved": 1, "satisfaction": 2},
        ),
        ("never_answers", AttemptOutcome.NO_ANSWER, {}),
        ("busy", AttemptOutcome.BUSY, {}),
    ],
)
def test_each_persona_ends_with_the_right_outcome_and_answers(
    surveyed: dict[str, tuple[CallbackAttempt, str]],
    hotline: Hotline,
    persona: str,
    outcome: AttemptOutcome,
    expected: dict[str, int],
) -> None:
    attempt, _number = surveyed[persona]
    assert attempt.outcome == outcome
    assert attempt.attempt_no == 1 and attempt.ended_at is not None
    got = {q.value: a for q, a in answers(hotline, attempt.id).items()}
    assert got == expected
    # a valid callback (有效回访) is a completed survey with three valid answers, nothing else
    with unit_of_work(hotline.sessions) as session:
        valid = session.scalars(
            select(ValidCallback).where(ValidCallback.attempt_id == attempt.id)
        ).one_or_none()
    if outcome == AttemptOutcome.COMPLETED and all(v > 0 for v in expected.values()):
        assert valid is not None
        assert (valid.contacted, valid.resolved, valid.satisfaction) == (
            expected["contacted"],
            expected["resolved"],
            expected["satisfaction"],
        )
    else:
        assert valid is None


def test_the_survey_call_is_recorded_and_linked_to_its_attempt(
    surveyed: dict[str, tuple[CallbackAttempt, str]],
    hotline: Hotline,
) -> None:

    from core.vocabulary import CallDirection
    from db.models import Call

    attempt, _ = surveyed["answers_1_1_1"]
    with unit_of_work(hotline.sessions) as session:
        call = session.get(Call, attempt.call_id)
        assert call is not None and call.direction == CallDirection.OUTBOUND
        assert call.ticket_id == attempt.ticket_id
        assert call.caller_number == call.ticket.caller_number  # type: ignore[union-attr]
        assert call.recording_path and f"attempt{attempt.id}" in call.recording_path
    assert Path(call.recording_path).stat().st_size > 16000


def test_not_resolved_goes_back_for_rework_and_completed_is_an_event(
    surveyed: dict[str, tuple[CallbackAttempt, str]],
    hotline: Hotline,
) -> None:
    with unit_of_work(hotline.sessions) as session:
        bad = ticket_by_number(session, surveyed["answers_2_2_3"][1])
        good = ticket_by_number(session, surveyed["answers_1_1_1"][1])
        assert bad is not None and good is not None
        assert bad.status == TicketStatus.IN_PROGRESS
        assert [e.kind for e in bad.events][-2:] == [EventKind.SURVEYED, EventKind.REWORK]
        assert good.status == TicketStatus.CLOSED
        assert [e.kind for e in good.events][-1] == EventKind.SURVEYED


def test_opting_out_puts_the_number_on_the_do_not_call_list(
    surveyed: dict[str, tuple[CallbackAttempt, str]],
    hotline: Hotline,
) -> None:
    with unit_of_work(hotline.sessions) as session:
        ticket = ticket_by_number(session, surveyed["opts_out"][1])
        assert ticket is not None
        assert session.get(DoNotCall, ticket.caller_number) is not None


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


def test_a_spoken_answer_is_recognised_by_the_real_model_and_marked_as_speech(
    surveyed: dict[str, tuple[CallbackAttempt, str]],
    hotline: Hotline,
) -> None:
    attempt, _ = surveyed["silent_then_says_yes"]
    with unit_of_work(hotline.sessions) as session:
        rows = {
            r.question: (r.answer, r.via)
            for r in session.scalars(
                select(SurveyAnswer).where(SurveyAnswer.attempt_id == attempt.id)
            )
        }
    assert rows[Question.CONTACTED] == (1, "speech")
    assert rows[Question.RESOLVED] == (1, "dtmf")


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
    from db.robot import create_attempt

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


def test_the_robots_rework_sets_a_new_due_time_like_a_supervisors(
    surveyed: dict[str, tuple[CallbackAttempt, str]],
    hotline: Hotline,
) -> None:
    attempt, number = surveyed["answers_2_2_3"]
    with unit_of_work(hotline.sessions) as session:
        ticket = ticket_by_number(session, number)
        assert ticket is not None and ticket.status == TicketStatus.IN_PROGRESS
        # counted from the survey on the working-day calendar, not the old (past) due time
        assert ticket.due_at is not None and ticket.due_at > attempt.started_at
