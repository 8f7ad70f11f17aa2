"""A locked database during a survey call (real Asterisk): answers spooled, then applied.

The survey, survey-end and the dialer go through the same retry-then-spool
path as the IVR; nothing the citizen pressed is lost while SQLite is locked.
A bad answer then sends the ticket back for rework with a new due time.
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta

from callback_robot.dialer import Dialer
from callback_robot.store import RobotStore
from core.vocabulary import AttemptOutcome, Question, TicketStatus
from db.models import CallbackAttempt
from db.session import unit_of_work
from db.tickets import ticket_by_number
from hotline.app import Hotline
from telephony.ami import AMIClient
from tests.support.survey import answers, closed_ticket, number_for, wait_done


async def test_a_locked_database_during_a_survey_spools_the_answers_then_applies_them(
    hotline: Hotline, ami: AMIClient
) -> None:
    assert hotline.config.database_url.startswith("sqlite")
    robot_store = RobotStore(hotline.config, hotline.sessions)
    ticket_id, ticket_number = closed_ticket(hotline, await number_for(ami, "answers_2_2_3"))
    with unit_of_work(hotline.sessions) as session:
        ticket = session.get(type(ticket_by_number(session, ticket_number)), ticket_id)
        assert ticket is not None
        ticket.due_at = datetime(2026, 11, 21, 1, tzinfo=UTC)  # long past, as usual
    dialer = Dialer(hotline.config, ami, hotline.sessions, "lock-test")
    started = datetime.now(UTC)
    attempt_id = await dialer.dial(ticket_id, started - timedelta(seconds=1))

    async def linked() -> None:  # the survey has begun: its call row is written
        while True:
            with unit_of_work(hotline.sessions) as session:
                attempt = session.get(CallbackAttempt, attempt_id)
                if attempt is not None and attempt.call_id is not None:
                    return
            await asyncio.sleep(0.2)

    await asyncio.wait_for(linked(), 30)
    locker = sqlite3.connect(hotline.config.database_url.removeprefix("sqlite:///"), timeout=0)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        # hold the lock through the three questions and the hang-up
        deadline = asyncio.get_running_loop().time() + 60
        while not any("attempt_end" in p.name for p in robot_store.spool.pending()):
            if asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.5)
        spooled = sorted(p.name.split("-")[1] for p in robot_store.spool.pending())
    finally:
        locker.rollback()
        locker.close()
    assert spooled.count("survey_answer") == 3, spooled
    assert "survey_completed" in spooled
    applied, left = await asyncio.to_thread(robot_store.replay)
    assert left == 0 and applied == len(spooled)
    attempt = await wait_done(hotline, attempt_id, timeout=10)
    assert attempt.outcome == AttemptOutcome.COMPLETED
    assert answers(hotline, attempt_id) == {
        Question.CONTACTED: 2,
        Question.RESOLVED: 2,
        Question.SATISFACTION: 3,
    }
    with unit_of_work(hotline.sessions) as session:
        reworked = ticket_by_number(session, ticket_number)
        assert reworked is not None and reworked.status == TicketStatus.IN_PROGRESS
        # 发回重办 through the workflow step: a new due time counted from the survey
        assert reworked.due_at is not None and reworked.due_at > started
