"""The robot's figures from its attempt rows: calls, outcomes per local day, reach.

Aggregated in SQL (the local day computed by the database) for
`hotline robot report`, the robot's reporting job and the console.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from core.vocabulary import AttemptOutcome, AttemptState
from db.models import CallbackAttempt, Ticket


def _local_day(column, dialect: str, tz: str):  # type: ignore[no-untyped-def]
    """The local calendar day of a UTC timestamp column, computed in SQL."""
    if dialect == "postgresql":
        return func.to_char(func.timezone(tz, column), "YYYY-MM-DD")
    offset = datetime.now(ZoneInfo(tz)).utcoffset()
    hours = int(offset.total_seconds() // 3600) if offset else 0
    return func.date(column, f"{hours:+d} hours")


REACHED = (AttemptOutcome.COMPLETED, AttemptOutcome.PARTIAL, AttemptOutcome.OPTED_OUT)


@dataclass(frozen=True)
class RobotFigures:
    """The robot's work over a period: calls, outcomes, per-ticket reach, outcomes per day."""

    placed: int
    reached: int
    completed: int
    tickets: int
    tickets_completed_within: int
    within_attempts: int
    outcome_mix: dict[str, int]
    by_day: dict[str, dict[str, int]]  # local day "YYYY-MM-DD" -> outcome value -> calls

    @property
    def success_rate(self) -> float | None:
        """Completed surveys / calls placed (the robot's success rate); None without calls."""
        return self.completed / self.placed if self.placed else None

    @property
    def reach_rate(self) -> float | None:
        """Calls answered by the citizen / calls placed."""
        return self.reached / self.placed if self.placed else None

    @property
    def ticket_rate(self) -> float | None:
        """Tickets completed within `within_attempts` calls / tickets called."""
        return self.tickets_completed_within / self.tickets if self.tickets else None


def robot_figures(
    session: Session,
    start: datetime,
    end: datetime,
    tz: str,
    within_attempts: int = 3,
    units: Select[Any] | None = None,
) -> RobotFigures:
    """Calls placed, reached, completed, success rate and the outcome mix per local day.

    `units` (department ids, a staff member's subtree) counts the attempts of those
    departments' tickets only; None counts every attempt (the city-wide figures).
    """
    dialect = session.get_bind().dialect.name
    in_range: tuple[Any, ...] = (
        CallbackAttempt.started_at >= start,
        CallbackAttempt.started_at < end,
        CallbackAttempt.outcome.is_not(None),
    )
    if units is not None:
        own = select(Ticket.id).where(Ticket.department_id.in_(units))
        in_range = (*in_range, CallbackAttempt.ticket_id.in_(own))
    day = _local_day(CallbackAttempt.started_at, dialect, tz).label("day")
    rows = session.execute(
        select(day, CallbackAttempt.outcome, func.count())
        .where(*in_range)
        .group_by(day, CallbackAttempt.outcome)
        .order_by(day)
    ).all()
    by_day: dict[str, dict[str, int]] = {}
    for day_value, outcome, count in rows:
        by_day.setdefault(str(day_value), {})[AttemptOutcome(outcome).value] = int(count)
    placed = sum(sum(v.values()) for v in by_day.values())
    reached = sum(v.get(o.value, 0) for v in by_day.values() for o in REACHED)
    completed = sum(v.get(AttemptOutcome.COMPLETED.value, 0) for v in by_day.values())
    tickets = (
        session.scalar(
            select(func.count(func.distinct(CallbackAttempt.ticket_id))).where(*in_range)
        )
        or 0
    )
    reached_tickets = (
        session.scalar(
            select(func.count(func.distinct(CallbackAttempt.ticket_id))).where(
                *in_range,
                CallbackAttempt.outcome == AttemptOutcome.COMPLETED,
                CallbackAttempt.attempt_no <= within_attempts,
            )
        )
        or 0
    )
    mix: dict[str, int] = {}
    for counts in by_day.values():
        for outcome_name, count in counts.items():
            mix[outcome_name] = mix.get(outcome_name, 0) + count
    return RobotFigures(
        placed=placed,
        reached=reached,
        completed=completed,
        tickets=int(tickets),
        tickets_completed_within=int(reached_tickets),
        within_attempts=within_attempts,
        outcome_mix=mix,
        by_day=by_day,
    )


def attempt_state_counts(session: Session) -> dict[AttemptState, int]:
    """How many attempts are in each state now (every state present, zero if none)."""
    rows = session.execute(
        select(CallbackAttempt.state, func.count()).group_by(CallbackAttempt.state)
    ).all()
    counts = dict.fromkeys(AttemptState, 0)
    counts.update({AttemptState(state): int(count) for state, count in rows})
    return counts
