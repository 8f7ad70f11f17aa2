"""Scripted citizens for the robot's survey calls, and reading an attempt's outcome."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from core.vocabulary import AttemptState, Question, TicketStatus
from db.models import CallbackAttempt, SurveyAnswer
from db.session import unit_of_work
from db.tickets import create_ticket
from hotline.app import Hotline
from telephony.ami import AMIClient
from tests.support.calls import speech_file

script_ids = itertools.count(1000)

# the intro lasts ~9 s, each question ~7.5 s: keys are pressed during the questions
PERSONAS = {
    "answers_1_1_1": "w11|d1|w2|d1|w2|d1",
    "answers_2_2_3": "w11|d2|w2|d2|w2|d3",
    "hangs_up_after_q1": "w11|d1|w1|h",
    "wrong_key_then_valid": "w11|d7|w2|d1|w2|d1|w2|d2",
    "opts_out": "w3|d9",
    # no key for Q1 (asked twice), then says 예 after the beep; keys for Q2 and Q3
    "silent_then_says_yes": "w33|p{yes}|w1|p{yes}|w1|p{yes}|w1|p{yes}|w3|d1|w2|d2",
    "never_answers": None,
    "busy": None,
}


# simulator citizens have phone numbers too (the robot dials nothing else):
# 1990+id follows the AstDB script sim/id, 1991... is busy, 1992... never answers
SIM_PREFIX = {"script": "1990", "busy": "1991", "noanswer": "1992"}


def sim_number(kind: str, ident: int | None = None) -> str:
    return f"{SIM_PREFIX[kind]}{next(script_ids) if ident is None else ident:07d}"


async def number_for(ami: AMIClient, persona: str, voices: Path | None = None) -> str:
    script = PERSONAS[persona]
    if script is None:
        return sim_number({"never_answers": "noanswer", "busy": "busy"}[persona])
    if "{yes}" in script:
        assert voices is not None, "a speaking persona needs a folder Asterisk can read"
        script = script.format(yes=speech_file(voices, "예"))
    script_id = next(script_ids)
    await ami.action("DBPut", Family="sim", Key=f"{script_id:07d}", Val=script)
    return sim_number("script", script_id)


def closed_ticket(hotline: Hotline, number: str) -> tuple[int, str]:
    """A ticket accepted three days ago and closed yesterday: due for its survey now.

    Relative to now, so the robot's `survey_within_days` never ages it out.
    """
    closed = datetime.now(UTC) - timedelta(days=1)
    accepted = closed - timedelta(days=2)
    with unit_of_work(hotline.sessions) as session:
        ticket = create_ticket(
            session,
            caller_number=number,
            local_day=accepted.astimezone(hotline.config.tz).date(),
            accepted_at=accepted,
        )
        ticket.status = TicketStatus.CLOSED
        ticket.closed_at = closed
        return ticket.id, ticket.number


async def wait_done(hotline: Hotline, attempt_id: int, timeout: float = 90) -> CallbackAttempt:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        with unit_of_work(hotline.sessions) as session:
            attempt = session.get(CallbackAttempt, attempt_id)
            assert attempt is not None
            if attempt.state == AttemptState.DONE:
                return attempt
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"attempt {attempt_id} still {attempt.state}")
        await asyncio.sleep(0.5)


async def first_attempt_of(hotline: Hotline, ticket_id: int, ready, timeout: float = 90):  # type: ignore[no-untyped-def]
    """The ticket's first attempt once `ready(attempt)` holds (the robot places it)."""

    async def poll() -> CallbackAttempt:
        while True:
            with unit_of_work(hotline.sessions) as session:
                row = session.scalars(
                    select(CallbackAttempt).where(CallbackAttempt.ticket_id == ticket_id)
                ).first()
            if row is not None and ready(row):
                return row
            await asyncio.sleep(0.5)

    return await asyncio.wait_for(poll(), timeout)


def answers(hotline: Hotline, attempt_id: int) -> dict[Question, int]:
    with unit_of_work(hotline.sessions) as session:
        rows = session.scalars(select(SurveyAnswer).where(SurveyAnswer.attempt_id == attempt_id))
        return {row.question: row.answer for row in rows}
