"""Read queries of the console's robot page: the robot's attempts with their answers and the
follow-up list (the recordings page shows a call's attempts too).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.vocabulary import EventKind, Question
from db.departments import subtree
from db.models import (
    CallbackAttempt,
    Department,
    SurveyAnswer,
    Ticket,
    TicketEvent,
)


@dataclass(frozen=True)
class AttemptLine:
    """One robot attempt with its answers and the survey call (if answered)."""

    id: int
    ticket_id: int
    ticket_number: str
    caller: str
    attempt_no: int
    started_at: datetime | None
    state: str
    outcome: str | None
    call_id: int | None
    answers: dict[str, int]


def attempts(
    session: Session,
    start: datetime,
    end: datetime,
    limit: int = 50,
    ticket_id: int | None = None,
    scope_root: int | None = None,
) -> list[AttemptLine]:
    """Attempts started in [start, end) (or every attempt of one ticket), newest first."""
    statement = (
        select(CallbackAttempt, Ticket.number, Ticket.caller_number)
        .join(Ticket, Ticket.id == CallbackAttempt.ticket_id)
        .order_by(CallbackAttempt.id.desc())
        .limit(limit)
    )
    if ticket_id is not None:
        statement = statement.where(CallbackAttempt.ticket_id == ticket_id)
    else:
        statement = statement.where(
            CallbackAttempt.started_at >= start, CallbackAttempt.started_at < end
        )
    if scope_root is not None:
        statement = statement.where(Ticket.department_id.in_(subtree(scope_root)))
    rows = session.execute(statement).all()
    ids = [attempt.id for attempt, _, _ in rows]
    answers: dict[int, dict[str, int]] = {}
    if ids:
        for answer in session.scalars(select(SurveyAnswer).where(SurveyAnswer.attempt_id.in_(ids))):
            answers.setdefault(answer.attempt_id, {})[Question(answer.question).value] = (
                answer.answer
            )
    return [
        AttemptLine(
            id=attempt.id,
            ticket_id=attempt.ticket_id,
            ticket_number=number,
            caller=caller,
            attempt_no=attempt.attempt_no,
            started_at=attempt.started_at,
            state=attempt.state.value,
            outcome=attempt.outcome.value if attempt.outcome else None,
            call_id=attempt.call_id,
            answers=answers.get(attempt.id, {}),
        )
        for attempt, number, caller in rows
    ]


@dataclass(frozen=True)
class FollowUp:
    """A ticket sent back for rework after a bad callback (差评回访整改)."""

    ticket_id: int
    number: str
    unit: str
    status: str
    reworked_at: datetime
    reason: str | None


def follow_ups(
    session: Session, since: datetime, limit: int = 100, scope_root: int | None = None
) -> list[FollowUp]:
    """Tickets with a rework event since `since`, newest first, with their status now."""
    statement = (
        select(TicketEvent, Ticket, Department.name)
        .join(Ticket, Ticket.id == TicketEvent.ticket_id)
        .outerjoin(Department, Department.id == Ticket.department_id)
        .where(TicketEvent.kind == EventKind.REWORK, TicketEvent.at >= since)
        .order_by(TicketEvent.at.desc(), TicketEvent.id.desc())
        .limit(limit)
    )
    if scope_root is not None:
        statement = statement.where(Ticket.department_id.in_(subtree(scope_root)))
    return [
        FollowUp(ticket.id, ticket.number, unit or "-", ticket.status.value, event.at, event.note)
        for event, ticket, unit in session.execute(statement)
    ]
