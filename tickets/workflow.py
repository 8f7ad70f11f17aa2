"""Handling a ticket: dispatch, sign, return, re-dispatch, close.

Each step checks the ticket's state, changes it and records an event with who
and when, in the caller's transaction. A step that does not fit the ticket's
state raises `WorkflowError` (from `db.workflow`, where the rework step that the
robot takes too lives) and changes nothing.

双派单 / 下管一级: dispatching to a unit also sends the level above it a copy
(a `dispatched_above` event on the parent), which oversees that one level
down. A 退单 (return) that a supervisor judges improper is recorded as a
`return_rejected` event against the returning unit, which the assessment counts.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.vocabulary import ClosedAs, EventKind, TicketStatus, label
from db.models import Department, Ticket, TicketEvent, utcnow
from db.tickets import add_event
from db.workflow import WorkflowError, require

S = TicketStatus


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
    require(ticket, "dispatch", (S.ACCEPTED,))
    at = at or utcnow()
    if due_at is not None and ticket.due_at is None:
        ticket.due_at = due_at
    _send_to(session, ticket, unit, EventKind.DISPATCHED, actor, at, None)
    return ticket


def sign(session: Session, ticket: Ticket, unit: Department, actor: str) -> Ticket:
    """签收: the unit takes the ticket on; from now on it is being handled."""
    require(ticket, "sign", (S.DISPATCHED,))
    _require_unit(ticket, unit, "sign")
    ticket.status = S.SIGNED
    add_event(session, ticket, EventKind.SIGNED, actor=actor, department_id=unit.id)
    return ticket


def return_ticket(
    session: Session, ticket: Ticket, unit: Department, reason: str, actor: str
) -> Ticket:
    """退单: the unit says the ticket is not its business; a reason is required."""
    require(ticket, "return", (S.DISPATCHED, S.SIGNED))
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
    require(ticket, "re-dispatch", (S.RETURNED, S.DISPATCHED, S.SIGNED))
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


def read_closed_as(value: ClosedAs | str | None) -> ClosedAs | None:
    """How a ticket ended, from its stored value or its Chinese label (已解决/已解释/无法解决).

    None for anything else, so each caller says in its own words what was wrong.
    """
    if isinstance(value, ClosedAs):
        return value
    text = (value or "").strip()
    for member in ClosedAs:
        chinese, english = label(member)
        if text.lower() in (member.value, english) or text == chinese:
            return member
    return None


CLOSED_AS_CHOICES = ", ".join(f"{label(m)[0]} {m.value}" for m in ClosedAs)


def close(
    session: Session,
    ticket: Ticket,
    unit: Department,
    reply: str,
    actor: str,
    closed_as: ClosedAs | str | None,
    at: datetime | None = None,
) -> Ticket:
    """办结: the unit closes the ticket with its reply and says how it ended.

    `closed_as` (已解决/已解释/无法解决) is required: the accountability signals
    compare a unit's "resolved" with what the citizen says on the callback, so a
    close without it would be a close nobody can check.
    """
    require(ticket, "close", (S.SIGNED, S.IN_PROGRESS))
    _require_unit(ticket, unit, "close")
    if not reply.strip():
        raise WorkflowError(f"ticket {ticket.number}: closing needs a reply to the citizen")
    ended = read_closed_as(closed_as)
    if ended is None:
        raise WorkflowError(
            f"ticket {ticket.number}: closing needs how it ended (closed_as), one of "
            f"{CLOSED_AS_CHOICES}; got {closed_as!r}"
        )
    at = at or utcnow()
    ticket.status = S.CLOSED
    ticket.closed_at = at
    ticket.reply = reply
    ticket.closed_as = ended
    add_event(session, ticket, EventKind.CLOSED, actor=actor, at=at, department_id=unit.id)
    return ticket
