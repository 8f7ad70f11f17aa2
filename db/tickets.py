"""Tickets: numbers, creation with their first event, look-ups, events.

Ticket numbers are the acceptance day (YYMMDD, hotline time zone) followed by
a per-day sequence, e.g. 26112500042: short enough to read back digit by digit
and unique under any concurrency, because the sequence row is incremented
with a single UPDATE (row-locked on PostgreSQL, file-locked on SQLite).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from db.models import (
    EventKind,
    Line,
    RequestType,
    Ticket,
    TicketEvent,
    TicketSequence,
    TicketStatus,
    Urgency,
    utcnow,
)

SEQUENCE_DIGITS = 5


def next_ticket_number(session: Session, day: date) -> str:
    """Hand out the next ticket number of day; never the same one twice."""
    key = day.strftime("%y%m%d")
    for _ in range(3):
        bumped = session.execute(
            update(TicketSequence)
            .where(TicketSequence.day == key)
            .values(last=TicketSequence.last + 1)
            .returning(TicketSequence.last)
        ).scalar_one_or_none()
        if bumped is not None:
            return f"{key}{bumped:0{SEQUENCE_DIGITS}d}"
        try:
            with session.begin_nested():
                session.execute(insert(TicketSequence).values(day=key, last=1))
            return f"{key}{1:0{SEQUENCE_DIGITS}d}"
        except IntegrityError:
            continue  # another writer created the day's row first: bump it instead
    raise RuntimeError(f"could not allocate a ticket number for {key}")


def create_ticket(
    session: Session,
    *,
    caller_number: str,
    local_day: date,
    accepted_at: datetime | None = None,
    due_at: datetime | None = None,
    line: Line | None = None,
    request_type: RequestType | None = None,
    category: str | None = None,
    urgency: Urgency = Urgency.DAILY_LIFE,
    description: str | None = None,
    recording_path: str | None = None,
    source: str = "ivr",
    external_id: str | None = None,
    actor: str = "ivr",
) -> Ticket:
    """Create a ticket with its number and its 'accepted' event."""
    accepted_at = accepted_at or utcnow()
    ticket = Ticket(
        number=next_ticket_number(session, local_day),
        caller_number=caller_number or "unknown",
        line=line,
        request_type=request_type,
        category=category or (line.default_category if line else None),
        urgency=urgency,
        description=description,
        recording_path=recording_path,
        source=source,
        external_id=external_id,
        status=TicketStatus.ACCEPTED,
        accepted_at=accepted_at,
        due_at=due_at,
    )
    session.add(ticket)
    session.flush()
    add_event(session, ticket, EventKind.ACCEPTED, actor=actor, at=accepted_at)
    return ticket


def add_event(
    session: Session,
    ticket: Ticket,
    kind: EventKind,
    *,
    actor: str = "system",
    at: datetime | None = None,
    note: str | None = None,
    department_id: int | None = None,
) -> TicketEvent:
    """Record one step of a ticket's life."""
    event = TicketEvent(
        ticket_id=ticket.id,
        kind=kind,
        actor=actor,
        at=at or utcnow(),
        note=note,
        department_id=department_id,
    )
    session.add(event)
    session.flush()
    return event


def ticket_by_number(session: Session, number: str) -> Ticket | None:
    """The ticket with this human number, with its events and calls loaded."""
    return session.scalars(
        select(Ticket)
        .where(Ticket.number == number)
        .options(selectinload(Ticket.events), selectinload(Ticket.calls))
    ).one_or_none()


def line_by_did(session: Session, did: str) -> Line | None:
    return session.scalars(select(Line).where(Line.did == did)).one_or_none()
