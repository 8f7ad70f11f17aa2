"""Citizens to call back: a message left in the queue, a missed call (回拨未接来电)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import CallbackTask, Ticket


def open_callback_task(
    session: Session,
    *,
    uniqueid: str,
    caller_number: str,
    ticket: Ticket | None,
    reason: str,
    created_at: datetime,
) -> CallbackTask:
    """The call's callback task, made once (a replayed write finds the first one)."""
    task = session.scalars(select(CallbackTask).where(CallbackTask.uniqueid == uniqueid)).first()
    if task is None:
        task = CallbackTask(
            uniqueid=uniqueid,
            caller_number=caller_number,
            ticket_id=ticket.id if ticket is not None else None,
            reason=reason,
            created_at=created_at,
        )
        session.add(task)
        session.flush()
    return task
