"""The ticket steps more than one feature takes, and the error every step raises.

发回重办 (rework) is taken by the callback robot after a 未解决 or 不满意 answer
and by a supervisor (`tickets.handling`), so it lives below both; the other
handling steps are the tickets feature's own (`tickets.workflow`). A step that
does not fit the ticket's state raises `WorkflowError` naming the ticket, its
state and what is allowed, and changes nothing.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from core.vocabulary import EventKind, TicketStatus
from db.models import Ticket
from db.tickets import add_event

S = TicketStatus


class WorkflowError(ValueError):
    """A step that does not fit the ticket; the message names the ticket and its state."""


def require(ticket: Ticket, step: str, allowed: tuple[TicketStatus, ...]) -> None:
    if ticket.status not in allowed:
        raise WorkflowError(
            f"ticket {ticket.number}: cannot {step} a ticket that is {ticket.status.value} "
            f"(allowed when {' / '.join(s.value for s in allowed)})"
        )


def send_back_for_rework(
    session: Session, ticket: Ticket, reason: str, actor: str, due_at: datetime | None = None
) -> Ticket:
    """发回重办: a closed ticket goes back to its unit (a bad callback, or a supervisor)."""
    require(ticket, "send back for rework", (S.CLOSED, S.ARCHIVED))
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
