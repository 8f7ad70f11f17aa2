"""The robot's survey call through the real Asterisk, one scripted citizen per persona.

The personas are called at once (their calls overlap as a campaign's do); each test
reads one persona's outcome.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from callback_robot.dialer import Dialer
from core.vocabulary import AttemptOutcome, EventKind, Question, TicketStatus
from db.models import CallbackAttempt, DoNotCall, SurveyAnswer, ValidCallback
from db.session import unit_of_work
from db.tickets import ticket_by_number
from hotline.app import Hotline
from telephony.ami import AMIClient
from tests.support.survey import (
    PERSONAS,
    answers,
    closed_ticket,
    number_for,
    wait_done,
)


@pytest.fixture(scope="module")
async def hotline(start_hotline) -> AsyncIterator[Hotline]:  # type: ignore[no-untyped-def]
    """One store for this module: every persona is surveyed together, once, and each
    test below reads its own persona's attempt from it (none writes)."""
    async with start_hotline() as app:
        yield app


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
