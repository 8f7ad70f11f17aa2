"""The robot's attempt rows: written before dialing, ended with one outcome.

One attempt row per dial, created in state `dialing` before the Originate is
sent (unique per ticket and attempt number, so a crash can never turn into a
second dial of the same attempt); exactly one outcome when it ends. A completed
survey with all three answers is a valid callback (有效回访); a 未解决 or 不满意
answer sends the ticket back for rework.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from callback_robot.answers import answers_of
from core.telemetry import ATTEMPTS_ENDED
from core.vocabulary import AttemptOutcome, AttemptState, EventKind, Question, TicketStatus
from db import workflow
from db.models import CallbackAttempt, Ticket, ValidCallback, utcnow
from db.session import after_commit
from db.tickets import add_event


def create_attempt(
    session: Session,
    ticket_id: int,
    planned_at: datetime,
    claimed_by: str,
    node: str | None = None,
) -> CallbackAttempt:
    """The next attempt of a ticket, in state dialing (raises IntegrityError on a race).

    `node`: the Asterisk node that will dial it (its systemname; None on one box).
    """
    last = (
        session.scalar(
            select(func.max(CallbackAttempt.attempt_no)).where(
                CallbackAttempt.ticket_id == ticket_id
            )
        )
        or 0
    )
    previous = session.scalar(
        select(CallbackAttempt.id).where(
            CallbackAttempt.ticket_id == ticket_id, CallbackAttempt.attempt_no == last
        )
    )
    attempt = CallbackAttempt(
        ticket_id=ticket_id,
        attempt_no=last + 1,
        previous_attempt_id=previous,
        planned_at=planned_at,
        state=AttemptState.DIALING,
        claimed_by=claimed_by,
        started_at=utcnow(),
        node=node,
    )
    session.add(attempt)
    session.flush()
    return attempt


def finish_attempt(
    session: Session,
    attempt_id: int,
    outcome: AttemptOutcome,
    hangup_cause: str | None = None,
    at: datetime | None = None,
) -> CallbackAttempt | None:
    """Give an attempt its one outcome; an attempt that already has one keeps it.

    `at`: when it ended (now when not given); the retry interval counts from it.
    """
    attempt = session.get(CallbackAttempt, attempt_id)
    if attempt is None or attempt.outcome is not None:
        return attempt
    attempt.outcome = outcome
    attempt.state = AttemptState.DONE
    attempt.ended_at = at or utcnow()
    attempt.hangup_cause = hangup_cause
    session.flush()
    # counted once committed: a retry or a spool replay of a failed commit counts it once
    # (in the serving process's /metrics when the store process commits it: it pickles)
    after_commit(session, partial(count_ended, outcome.value))
    if outcome == AttemptOutcome.COMPLETED:
        ticket = session.get(Ticket, attempt.ticket_id)
        if ticket is not None:
            add_event(
                session,
                ticket,
                EventKind.SURVEYED,
                actor="robot",
                note=f"attempt {attempt.attempt_no}",
            )
            record_valid_callback(session, ticket, attempt)
    return attempt


def count_ended(outcome: str) -> None:
    """An attempt ended with this outcome (`hotline_callback_attempts_total`)."""
    ATTEMPTS_ENDED.labels(outcome).inc()


def record_valid_callback(session: Session, ticket: Ticket, attempt: CallbackAttempt) -> None:
    """A completed survey with all three questions answered counts in the rates (有效回访)."""
    answers = answers_of(session, attempt.id)
    if not all(answers.get(question, 0) > 0 for question in Question):
        return  # a question timed out or got a wrong key: reached, but not a valid callback
    session.add(
        ValidCallback(
            ticket_id=ticket.id,
            attempt_id=attempt.id,
            department_id=ticket.department_id,
            surveyed_at=attempt.ended_at or utcnow(),
            contacted=answers[Question.CONTACTED],
            resolved=answers[Question.RESOLVED],
            satisfaction=answers[Question.SATISFACTION],
            source="robot",
        )
    )
    session.flush()


def send_back_for_rework(
    session: Session, ticket_id: int, reason: str, due_at: datetime | None = None
) -> None:
    """A 未解决 or 不满意 answer: 发回重办 and onto the follow-up list, due anew at `due_at`.

    A ticket that is already open again (a supervisor sent it back first) keeps
    its state; the answer is still recorded in the survey.
    """
    ticket = session.get(Ticket, ticket_id)
    if ticket is not None and ticket.status in (TicketStatus.CLOSED, TicketStatus.ARCHIVED):
        workflow.send_back_for_rework(session, ticket, reason, actor="robot", due_at=due_at)


def attempts_in_flight(session: Session, node: str | None = None) -> list[CallbackAttempt]:
    """Attempts dialing or in a call: all of them, or those one node dials (`node`)."""
    query = select(CallbackAttempt).where(
        CallbackAttempt.state.in_((AttemptState.DIALING, AttemptState.IN_CALL))
    )
    if node is not None:
        query = query.where(CallbackAttempt.node == node)
    return list(session.scalars(query.order_by(CallbackAttempt.id)))
