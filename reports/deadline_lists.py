"""The deadline lists: open tickets overdue, to escalate, or to warn about."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Ticket
from db.tickets import OPEN_STATUSES


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
