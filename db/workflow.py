"""Handling a ticket: dispatch, sign, return, re-dispatch, close, rework; deadlines.

Each step checks the ticket's state, changes it and records an event with who
and when, in the caller's transaction. A step that does not fit the ticket's
state raises `WorkflowError` naming the ticket, its state and what is allowed,
and changes nothing.

双派单 / 下管一级: dispatching to a unit also sends the level above it a copy
(a `dispatched_above` event on the parent), which oversees that one level
down. A 退单 (return) that a supervisor judges improper is recorded as a
`return_rejected` event against the returning unit, which the assessment counts.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.vocabulary import EventKind, TicketStatus
from db.models import Department, Ticket, TicketEvent, utcnow
from db.tickets import OPEN_STATUSES, add_event

S = TicketStatus


class WorkflowError(ValueError):
    """A step that does not fit the ticket; the message names the ticket and its state."""


def _require(ticket: Ticket, step: str, allowed: tuple[TicketStatus, ...]) -> None:
    if ticket.status not in allowed:
        raise WorkflowError(
            f"ticket {ticket.number}: cannot {step} a ticket that is {ticket.status.value} "
            f"(allowed when {' / '.join(s.value for s in allowed)})"
        )


def _require_unit(ticket: Ticket, unit: Department, step: str) -> None:
    if ticket.department_id != unit.id:
        raise WorkflowError(
            f"ticket {ticket.number}: {unit.code} cannot {step} it; it is dispatched to "
            f"{ticket.department.code if ticket.department else 'no unit'}"
        )


def _send_to(
    session: Session,
    ticket: Ticket,
    unit: Department,
    kind: EventKind,
    actor: str,
    at: datetime,
    note: str | None,
) -> None:
    ticket.department_id = unit.id
    ticket.department = unit
    ticket.status = S.DISPATCHED
    add_event(session, ticket, kind, actor=actor, at=at, department_id=unit.id, note=note)
    if unit.parent_id is not None:
        add_event(
            session,
            ticket,
            EventKind.DISPATCHED_ABOVE,
            actor=actor,
            at=at,
            department_id=unit.parent_id,
            note=f"oversees {unit.code} (双派单)",
        )


def dispatch(
    session: Session,
    ticket: Ticket,
    unit: Department,
    actor: str,
    due_at: datetime | None = None,
    at: datetime | None = None,
) -> Ticket:
    """派单: send an accepted ticket to its handling unit (and a copy to the level above)."""
    _require(ticket, "dispatch", (S.ACCEPTED,))
    at = at or utcnow()
    if due_at is not None and ticket.due_at is None:
        ticket.due_at = due_at
    _send_to(session, ticket, unit, EventKind.DISPATCHED, actor, at, None)
    return ticket


def sign(session: Session, ticket: Ticket, unit: Department, actor: str) -> Ticket:
    """签收: the unit takes the ticket on; from now on it is being handled."""
    _require(ticket, "sign", (S.DISPATCHED,))
    _require_unit(ticket, unit, "sign")
    ticket.status = S.SIGNED
    add_event(session, ticket, EventKind.SIGNED, actor=actor, department_id=unit.id)
    return ticket


def return_ticket(
    session: Session, ticket: Ticket, unit: Department, reason: str, actor: str
) -> Ticket:
    """退单: the unit says the ticket is not its business; a reason is required."""
    _require(ticket, "return", (S.DISPATCHED, S.SIGNED))
    _require_unit(ticket, unit, "return")
    if not reason.strip():
        raise WorkflowError(f"ticket {ticket.number}: a return needs a reason")
    ticket.status = S.RETURNED
    add_event(session, ticket, EventKind.RETURNED, actor=actor, department_id=unit.id, note=reason)
    return ticket


def last_returned_by(session: Session, ticket: Ticket) -> int | None:
    """The unit that returned the ticket most recently."""
    return session.scalar(
        select(TicketEvent.department_id)
        .where(TicketEvent.ticket_id == ticket.id, TicketEvent.kind == EventKind.RETURNED)
        .order_by(TicketEvent.at.desc(), TicketEvent.id.desc())
        .limit(1)
    )


def redispatch(
    session: Session,
    ticket: Ticket,
    unit: Department,
    actor: str,
    improper_return: bool = False,
    note: str | None = None,
) -> Ticket:
    """改派: send a returned (or stuck) ticket to a unit; mark the return improper if judged so."""
    _require(ticket, "re-dispatch", (S.RETURNED, S.DISPATCHED, S.SIGNED))
    if improper_return:
        if ticket.status != S.RETURNED:
            raise WorkflowError(
                f"ticket {ticket.number}: only a returned ticket has a return to judge "
                f"(it is {ticket.status.value})"
            )
        add_event(
            session,
            ticket,
            EventKind.RETURN_REJECTED,
            actor=actor,
            department_id=last_returned_by(session, ticket),
            note=note or "improper return (退单不当)",
        )
    _send_to(session, ticket, unit, EventKind.REDISPATCHED, actor, utcnow(), note)
    return ticket


def close(
    session: Session,
    ticket: Ticket,
    unit: Department,
    reply: str,
    actor: str,
    at: datetime | None = None,
) -> Ticket:
    """办结: the unit closes the ticket with its reply to the citizen."""
    _require(ticket, "close", (S.SIGNED, S.IN_PROGRESS))
    _require_unit(ticket, unit, "close")
    if not reply.strip():
        raise WorkflowError(f"ticket {ticket.number}: closing needs a reply to the citizen")
    at = at or utcnow()
    ticket.status = S.CLOSED
    ticket.closed_at = at
    ticket.reply = reply
    add_event(session, ticket, EventKind.CLOSED, actor=actor, at=at, department_id=unit.id)
    return ticket


def send_back_for_rework(
    session: Session, ticket: Ticket, reason: str, actor: str, due_at: datetime | None = None
) -> Ticket:
    """发回重办: a closed ticket goes back to its unit (a bad callback, or a supervisor)."""
    _require(ticket, "send back for rework", (S.CLOSED, S.ARCHIVED))
    ticket.status = S.IN_PROGRESS
    if due_at is not None:
        ticket.due_at = due_at
    add_event(
        session,
        ticket,
        EventKind.REWORK,
        actor=actor,
        department_id=ticket.department_id,
        note=reason,
    )
    return ticket


def deadline_lists(
    session: Session, now: datetime, warn_hours: int, escalate_hours: int, limit: int = 500
) -> dict[str, list[Ticket]]:
    """Open tickets by deadline: overdue, escalate (due within escalate_hours), warn.

    One query over open tickets due before now + warn_hours, soonest first.
    """
    horizon = now + timedelta(hours=warn_hours)
    rows = session.scalars(
        select(Ticket)
        .where(
            Ticket.status.in_(OPEN_STATUSES), Ticket.due_at.is_not(None), Ticket.due_at < horizon
        )
        .order_by(Ticket.due_at, Ticket.id)
        .limit(limit)
    )
    lists: dict[str, list[Ticket]] = {"overdue": [], "escalate": [], "warn": []}
    for ticket in rows:
        assert ticket.due_at is not None
        if ticket.due_at <= now:
            lists["overdue"].append(ticket)
        elif ticket.due_at <= now + timedelta(hours=escalate_hours):
            lists["escalate"].append(ticket)
        else:
            lists["warn"].append(ticket)
    return lists


def department_by_code(session: Session, code: str) -> Department | None:
    return session.scalars(select(Department).where(Department.code == code)).one_or_none()
