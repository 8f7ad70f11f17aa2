"""Staff see their unit's subtree only: the scope checks and the unit pickers of the console.

Every walk down the tree is `db.departments.subtree`, the one recursive query.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.departments import subtree
from db.models import Call, CallbackAttempt, Department, Ticket


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


def children(session: Session, parent_id: int | None) -> list[Department]:
    """The units one level below parent_id (the top level for None)."""
    condition = (
        Department.parent_id.is_(None) if parent_id is None else Department.parent_id == parent_id
    )
    return list(session.scalars(select(Department).where(condition).order_by(Department.code)))


def live_in_subtree(
    session: Session, root_id: int, uniqueids: list[str], attempt_ids: list[int]
) -> tuple[set[str], set[int]]:
    """Of these calls in progress, the ones of a ticket in root_id's subtree: channels by
    uniqueid (the citizen's call that made the ticket, or a call recorded against it)
    and survey calls by attempt id. A call with no ticket yet belongs to no unit."""
    units = subtree(root_id)
    channels: set[str] = set()
    if uniqueids:
        channels.update(
            session.scalars(
                select(Ticket.origin_uniqueid).where(
                    Ticket.origin_uniqueid.in_(uniqueids), Ticket.department_id.in_(units)
                )
            )
        )
        channels.update(
            session.scalars(
                select(Call.uniqueid)
                .join(Ticket, Ticket.id == Call.ticket_id)
                .where(Call.uniqueid.in_(uniqueids), Ticket.department_id.in_(units))
            )
        )
    attempts: set[int] = set()
    if attempt_ids:
        attempts.update(
            session.scalars(
                select(CallbackAttempt.id)
                .join(Ticket, Ticket.id == CallbackAttempt.ticket_id)
                .where(CallbackAttempt.id.in_(attempt_ids), Ticket.department_id.in_(units))
            )
        )
    return {c for c in channels if c}, attempts
