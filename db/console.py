"""Read queries of the supervisors' console: one call or ticket with what hangs off it,
scope checks for department staff, the robot's attempts and the follow-up list.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from core.vocabulary import EventKind, Question
from db.call_search import subtree
from db.models import (
    Call,
    CallbackAttempt,
    Department,
    RobotLock,
    SurveyAnswer,
    Ticket,
    TicketEvent,
)


def call_by_id(session: Session, call_id: int) -> Call | None:
    """A call with its ticket (and the ticket's unit, events and calls) loaded."""
    return session.scalar(
        select(Call)
        .where(Call.id == call_id)
        .options(
            selectinload(Call.ticket).selectinload(Ticket.events),
            selectinload(Call.ticket).selectinload(Ticket.department),
        )
    )


def ticket_by_id(session: Session, ticket_id: int) -> Ticket | None:
    return session.get(Ticket, ticket_id)


def in_subtree(session: Session, department_id: int | None, root_id: int) -> bool:
    """Is department_id root_id or below it? (None, a ticket with no unit yet: no.)"""
    if department_id is None:
        return False
    found = session.scalar(
        select(func.count()).where(subtree(root_id).subquery().c.id == department_id)
    )
    return bool(found)


def subtree_units(session: Session, root_id: int) -> list[Department]:
    """root_id and every unit below it, by level and code."""
    return list(
        session.scalars(
            select(Department)
            .where(Department.id.in_(subtree(root_id)))
            .order_by(Department.level, Department.code)
        )
    )


def department(session: Session, department_id: int) -> Department | None:
    return session.get(Department, department_id)


def department_by_code(session: Session, code: str) -> Department | None:
    return session.scalar(select(Department).where(Department.code == code))


def children(session: Session, parent_id: int | None) -> list[Department]:
    """The units one level below parent_id (the top level for None)."""
    condition = (
        Department.parent_id.is_(None) if parent_id is None else Department.parent_id == parent_id
    )
    return list(session.scalars(select(Department).where(condition).order_by(Department.code)))


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


def robot_heartbeat(session: Session) -> tuple[str | None, datetime | None]:
    """Which robot last took the claim lock, and when (every dispatcher pass takes it)."""
    row = session.execute(select(RobotLock.holder, RobotLock.taken_at)).first()
    return (row[0], row[1]) if row else (None, None)
