"""Everything an import can touch, in a comparable form (for idempotence checks)."""

from __future__ import annotations

from sqlalchemy import select

from db.models import Department, Ticket, TicketEvent, TicketSequence, ValidCallback
from db.session import unit_of_work


def snapshot(sessions) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """Everything an import can touch, in a comparable form."""
    with unit_of_work(sessions) as session:
        return {
            "departments": session.execute(
                select(
                    Department.code,
                    Department.name,
                    Department.level,
                    Department.parent_id,
                    Department.peer_group,
                ).order_by(Department.code)
            ).all(),
            "tickets": session.execute(
                select(
                    Ticket.external_id,
                    Ticket.number,
                    Ticket.status,
                    Ticket.department_id,
                    Ticket.due_at,
                    Ticket.closed_at,
                    Ticket.reply,
                ).order_by(Ticket.external_id)
            ).all(),
            "events": session.execute(
                select(
                    TicketEvent.ticket_id,
                    TicketEvent.kind,
                    TicketEvent.at,
                    TicketEvent.department_id,
                ).order_by(TicketEvent.id)
            ).all(),
            "callbacks": session.execute(
                select(
                    ValidCallback.ticket_id,
                    ValidCallback.surveyed_at,
                    ValidCallback.contacted,
                    ValidCallback.resolved,
                    ValidCallback.satisfaction,
                ).order_by(ValidCallback.id)
            ).all(),
            "sequences": session.execute(select(TicketSequence.day, TicketSequence.last)).all(),
        }
