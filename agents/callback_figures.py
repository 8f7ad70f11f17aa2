"""The missed-call figures of a period (回拨未接来电): from the callback tasks alone.

- missed: tasks made in the period for missed callers (abandoned in the queue,
  refused), the messages left in the queue counted apart (`messages`);
- reached_an_agent: of those, closed because the caller reached an agent by
  calling again;
- called_back: an agent-first callback was dialled;
- reached: the citizen answered a callback;
- within: called back within `callback.within_minutes` of the missed call;
- open: still to be called back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import CallbackTask

MISSED_REASONS = ("abandoned", "refused")
REACHED_AN_AGENT = "reached an agent"


@dataclass(frozen=True)
class CallbackFigures:
    missed: int
    messages: int
    reached_an_agent: int
    called_back: int
    reached: int
    within: int
    within_minutes: int
    open: int


def callback_figures(
    session: Session, start: datetime, end: datetime, within_minutes: int
) -> CallbackFigures:
    """The figures of the missed calls made in [start, end)."""
    tasks = session.scalars(
        select(CallbackTask).where(CallbackTask.created_at >= start, CallbackTask.created_at < end)
    ).all()
    missed = [task for task in tasks if task.reason in MISSED_REASONS]
    goal = timedelta(minutes=within_minutes)
    return CallbackFigures(
        missed=len(missed),
        messages=len(tasks) - len(missed),
        reached_an_agent=sum(task.closed_why == REACHED_AN_AGENT for task in missed),
        called_back=sum(task.called_at is not None for task in missed),
        reached=sum(task.reached_at is not None for task in missed),
        within=sum(
            task.called_at is not None and task.called_at - task.created_at <= goal
            for task in missed
        ),
        within_minutes=within_minutes,
        open=sum(task.closed_at is None for task in missed),
    )
