"""Tickets: numbers, creation with their first event, look-ups, events.

Ticket numbers are the acceptance day (YYMMDD, hotline time zone) followed by
a per-day sequence, e.g. 26112500042: short enough to read back digit by digit
and unique under any concurrency, because the sequence row is incremented
with a single UPDATE (row-locked on PostgreSQL, file-locked on SQLite).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from core.vocabulary import EventKind, RequestType, TicketStatus, TranscriptStatus, Urgency
from db.calls import call_by_uniqueid
from db.models import Line, Ticket, TicketEvent, TicketSequence, utcnow

OPEN_STATUSES = (
    TicketStatus.ACCEPTED,
    TicketStatus.DISPATCHED,
    TicketStatus.SIGNED,
    TicketStatus.IN_PROGRESS,
    TicketStatus.RETURNED,
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
    origin_uniqueid: str | None = None,
    transcript_status: TranscriptStatus | None = None,
    actor: str = "ivr",
) -> Ticket:
    """Create a ticket with its number and its 'accepted' event."""
    accepted_at = accepted_at or utcnow()
    line_category = line.default_category if line and not category else None
    ticket = Ticket(
        number=next_ticket_number(session, local_day),
        caller_number=caller_number or "unknown",
        line=line,
        request_type=request_type,
        category=category or line_category,
        category_source="line" if line_category else None,  # the dedicated line's own topic
        urgency=urgency,
        description=description,
        recording_path=recording_path,
        source=source,
        external_id=external_id,
        origin_uniqueid=origin_uniqueid,
        transcript_status=transcript_status,
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


def ticket_for_call(session: Session, uniqueid: str) -> Ticket | None:
    """The ticket a call produced, if any."""
    return session.scalars(select(Ticket).where(Ticket.origin_uniqueid == uniqueid)).one_or_none()


def create_ticket_for_call(
    session: Session, uniqueid: str, **fields: object
) -> tuple[Ticket, bool]:
    """The call's ticket, created once whoever asks (IVR, hang-up, spool, reconciler).

    Returns the ticket and whether this call created it. The call row, if there
    is one, is linked to the ticket.
    """
    existing = ticket_for_call(session, uniqueid)
    created = False
    if existing is None:
        try:
            with session.begin_nested():
                existing = create_ticket(session, origin_uniqueid=uniqueid, **fields)  # type: ignore[arg-type]
            created = True
        except IntegrityError:  # another writer made it between our look-up and insert
            existing = ticket_for_call(session, uniqueid)
            assert existing is not None
    call = call_by_uniqueid(session, uniqueid)
    if call is not None and call.ticket_id is None:
        call.ticket_id = existing.id
        session.flush()
    return existing, created


def open_tickets_for_caller(session: Session, caller_number: str) -> list[Ticket]:
    """The caller's tickets that are not closed yet, newest first."""
    return list(
        session.scalars(
            select(Ticket)
            .where(Ticket.caller_number == caller_number, Ticket.status.in_(OPEN_STATUSES))
            .order_by(Ticket.accepted_at.desc(), Ticket.id.desc())
        )
    )


def urge_ticket(session: Session, ticket: Ticket, actor: str) -> Ticket:
    """催办: count the urge and record it as an event."""
    ticket.urge_count = (ticket.urge_count or 0) + 1
    add_event(session, ticket, EventKind.URGED, actor=actor)
    return ticket


def tickets_needing_transcript(session: Session, limit: int = 20) -> list[Ticket]:
    """Tickets whose request recording has not been transcribed yet (oldest first)."""
    return list(
        session.scalars(
            select(Ticket)
            .where(Ticket.transcript_status == TranscriptStatus.PENDING)
            .order_by(Ticket.id)
            .limit(limit)
        )
    )


def list_tickets(
    session: Session,
    limit: int = 50,
    status: TicketStatus | None = None,
    caller_number: str | None = None,
) -> list[Ticket]:
    query = select(Ticket).order_by(Ticket.id.desc()).limit(limit)
    if status is not None:
        query = query.where(Ticket.status == status)
    if caller_number:
        query = query.where(Ticket.caller_number == caller_number)
    return list(session.scalars(query))


def set_transcript(
    session: Session, ticket_id: int, text: str | None, status: TranscriptStatus
) -> None:
    """Store a request recording's transcript (or why there is none)."""
    ticket = session.get(Ticket, ticket_id)
    if ticket is not None:
        ticket.transcript = text
        ticket.transcript_status = status
        session.flush()


def count_needing_transcript(session: Session) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Ticket)
            .where(Ticket.transcript_status == TranscriptStatus.PENDING)
        )
        or 0
    )
