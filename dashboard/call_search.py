"""Finding calls for the recordings console: filters and keyset pagination, one call by id.

Newest first by (started_at, id): a page asks for calls strictly older than
the last row of the page before, so paging through a million calls costs one
index range scan per page (no OFFSET). Every value is a bound parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, and_, exists, func, or_, select
from sqlalchemy.orm import Session, selectinload

from core.vocabulary import AttemptOutcome, CallDirection
from db.departments import subtree
from db.models import Call, CallbackAttempt, Department, Ticket

DENSE_LEVELS = 2  # a region's or a city's subtree holds most calls


@dataclass(frozen=True)
class CallQuery:
    """What a supervisor searches by; empty fields do not filter."""

    ticket_number: str = ""
    caller: str = ""  # a prefix of the caller number (digits, an optional leading +) ...
    caller_exact: bool = False  # ... or the whole number (roles that see numbers masked)
    start: datetime | None = None  # UTC, included
    end: datetime | None = None  # UTC, excluded
    did: str = ""
    direction: CallDirection | None = None
    min_seconds: int | None = None
    max_seconds: int | None = None
    last_step: str = ""
    outcome: AttemptOutcome | None = None
    scope_root: int | None = None  # only calls of tickets in this unit's subtree
    after: tuple[datetime, int] | None = None  # keyset: older than this (started_at, id)
    limit: int = 50


@dataclass(frozen=True)
class CallHit:
    id: int
    uniqueid: str
    started_at: datetime
    ended_at: datetime | None
    direction: str
    caller: str | None
    did: str | None
    last_step: str | None
    ticket_number: str | None
    outcome: str | None
    has_recording: bool


def duration_seconds(session: Session):  # type: ignore[no-untyped-def]
    """ended_at - started_at in whole seconds, in SQL (dialect-specific arithmetic)."""
    if session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", Call.ended_at - Call.started_at)
    return (func.julianday(Call.ended_at) - func.julianday(Call.started_at)) * 86400.0


def _statement(session: Session, q: CallQuery) -> Select:  # type: ignore[type-arg]
    statement = (
        select(
            Call.id,
            Call.uniqueid,
            Call.started_at,
            Call.ended_at,
            Call.direction,
            Call.caller_number,
            Call.did,
            Call.last_step,
            Ticket.number,
            Call.recording_path,
        )
        .outerjoin(Ticket, Ticket.id == Call.ticket_id)
        .order_by(Call.started_at.desc(), Call.id.desc())
        .limit(q.limit)
    )
    conditions = []
    if q.ticket_number:
        conditions.append(Ticket.number == q.ticket_number)
    if q.caller and q.caller_exact:
        conditions.append(Call.caller_number == q.caller)
    elif q.caller:  # digits only (checked at the edge): a range on the number
        # a long prefix is a handful of calls: the number's index finds them; a short one
        # matches many, which the walk down the start-time index meets soonest unaided
        number = Call.caller_number if len(q.caller) >= 7 else func.coalesce(Call.caller_number, "")
        conditions.append(number >= q.caller)
        conditions.append(number < q.caller[:-1] + chr(ord(q.caller[-1]) + 1))
    if q.start is not None:
        conditions.append(Call.started_at >= q.start)
    if q.end is not None:
        conditions.append(Call.started_at < q.end)
    if q.did:
        conditions.append(Call.did == q.did)
    if q.direction is not None:
        conditions.append(Call.direction == q.direction)
    if q.min_seconds is not None:
        conditions.append(duration_seconds(session) >= q.min_seconds)
    if q.max_seconds is not None:
        conditions.append(duration_seconds(session) <= q.max_seconds)
    if q.last_step:
        conditions.append(Call.last_step == q.last_step)
    if q.outcome is not None:
        conditions.append(
            exists().where(CallbackAttempt.call_id == Call.id, CallbackAttempt.outcome == q.outcome)
        )
    if q.scope_root is not None:
        root = session.get(Department, q.scope_root)
        if root is not None and root.level <= DENSE_LEVELS:  # most calls are in scope:
            conditions.append(Ticket.department_id.in_(subtree(q.scope_root)))  # walk by time
        else:  # a district or below: its tickets first, then their calls by ticket
            tickets = select(Ticket.id).where(Ticket.department_id.in_(subtree(q.scope_root)))
            conditions.append(Call.ticket_id.in_(tickets))
    if q.after is not None:
        at, call_id = q.after
        conditions.append(or_(Call.started_at < at, and_(Call.started_at == at, Call.id < call_id)))
    return statement.where(*conditions)


def _outcomes(session: Session, call_ids: list[int]) -> dict[int, str]:
    """The survey outcome of each of these calls that was a robot attempt (one page's worth)."""
    if not call_ids:
        return {}
    rows = session.execute(
        select(CallbackAttempt.call_id, CallbackAttempt.outcome).where(
            CallbackAttempt.call_id.in_(call_ids), CallbackAttempt.outcome.is_not(None)
        )
    )
    return {call_id: AttemptOutcome(outcome).value for call_id, outcome in rows}


def search_calls(session: Session, query: CallQuery) -> list[CallHit]:
    """One page of calls matching query, newest first (their outcomes in a second query)."""
    rows = session.execute(_statement(session, query)).all()
    outcomes = _outcomes(session, [row[0] for row in rows])
    return [
        CallHit(
            id=row[0],
            uniqueid=row[1],
            started_at=row[2],
            ended_at=row[3],
            direction=CallDirection(row[4]).value,
            caller=row[5],
            did=row[6],
            last_step=row[7],
            ticket_number=row[8],
            outcome=outcomes.get(row[0]),
            has_recording=bool(row[9]),
        )
        for row in rows
    ]


def distinct_steps(session: Session) -> list[str]:
    """The last steps calls have ended in (for the search form's choices)."""
    return [s for s in session.scalars(select(Call.last_step).distinct()) if s]


def call_by_id(session: Session, call_id: int) -> Call | None:
    """A call with its ticket (and the ticket's unit, events and calls) loaded."""
    return session.scalar(
        select(Call)
        .where(Call.id == call_id)
        .options(
            selectinload(Call.ticket).selectinload(Ticket.events),
            selectinload(Call.ticket).selectinload(Ticket.department),
        )
    )
