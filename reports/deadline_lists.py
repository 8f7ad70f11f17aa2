"""The deadline lists: open tickets overdue, to escalate, or to warn about.

Three windows over an open ticket's due time: overdue (due by now), escalate
(due within `escalate_hours`), warn (due within `warn_hours`). Each can be
counted and read a page at a time, soonest due first, limited to a set of
units (a staff member's subtree) in SQL.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session

from db.models import Ticket
from db.tickets import OPEN_STATUSES

LISTS = ("overdue", "escalate", "warn")
Units = Collection[int] | Select[Any] | None  # department ids, or a query of them


def _conditions(
    now: datetime, warn_hours: int, escalate_hours: int, which: str | None, units: Units
) -> list[ColumnElement[bool]]:
    escalate = now + timedelta(hours=escalate_hours)
    horizon = now + timedelta(hours=warn_hours)
    conditions = [
        Ticket.status.in_(OPEN_STATUSES),
        Ticket.due_at.is_not(None),
        Ticket.due_at < horizon,
    ]
    if which == "overdue":
        conditions.append(Ticket.due_at <= now)
    elif which == "escalate":
        conditions += [Ticket.due_at > now, Ticket.due_at <= escalate]
    elif which == "warn":
        conditions.append(Ticket.due_at > escalate)
    elif which is not None:
        raise ValueError(f"no deadline list {which!r}: one of {', '.join(LISTS)}")
    if units is not None:
        conditions.append(Ticket.department_id.in_(units))
    return conditions


def deadline_lists(
    session: Session,
    now: datetime,
    warn_hours: int,
    escalate_hours: int,
    limit: int = 500,
    units: Units = None,
) -> dict[str, list[Ticket]]:
    """Open tickets by deadline: overdue, escalate (due within escalate_hours), warn.

    One query over open tickets due before now + warn_hours, soonest first.
    """
    rows = session.scalars(
        select(Ticket)
        .where(*_conditions(now, warn_hours, escalate_hours, None, units))
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


def deadline_counts(
    session: Session, now: datetime, warn_hours: int, escalate_hours: int, units: Units = None
) -> dict[str, int]:
    """How many tickets each list holds."""
    return {
        which: session.scalar(
            select(func.count())
            .select_from(Ticket)
            .where(*_conditions(now, warn_hours, escalate_hours, which, units))
        )
        or 0
        for which in LISTS
    }


def deadline_page(
    session: Session,
    now: datetime,
    warn_hours: int,
    escalate_hours: int,
    which: str,
    offset: int,
    limit: int,
    units: Units = None,
) -> list[Ticket]:
    """One page of one list, soonest due first (ties by id, so pages never overlap)."""
    return list(
        session.scalars(
            select(Ticket)
            .where(*_conditions(now, warn_hours, escalate_hours, which, units))
            .order_by(Ticket.due_at, Ticket.id)
            .offset(offset)
            .limit(limit)
        )
    )
