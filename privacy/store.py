"""The store's side of retention: which recordings an open ticket still needs, forgetting the
rest, old transcripts, and the audit of every deletion."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from core.vocabulary import TicketStatus, TranscriptStatus
from db.models import Call, RetentionDeletion, Ticket

DONE = (TicketStatus.CLOSED, TicketStatus.ARCHIVED)


def recordings_of_open_tickets(session: Session, paths: Iterable[str]) -> set[str]:
    """Those of `paths` that belong to a ticket not yet closed (its own or one of its calls')."""
    wanted = list(paths)
    kept: set[str] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        kept |= set(
            session.scalars(
                select(Ticket.recording_path).where(
                    Ticket.recording_path.in_(chunk), Ticket.status.not_in(DONE)
                )
            )
        )
        kept |= set(
            session.scalars(
                select(Call.recording_path)
                .join(Ticket, Call.ticket_id == Ticket.id)
                .where(Call.recording_path.in_(chunk), Ticket.status.not_in(DONE))
            )
        )
    return {p for p in kept if p}


def forget_recording(session: Session, path: str, note: str, key: str | None = None) -> None:
    """A deleted recording: calls and tickets stop naming it, by its path or its store key
    (the call says why); audited once, under its path."""
    names = [path] if key is None or key == path else [path, key]
    for call in session.scalars(select(Call).where(Call.recording_path.in_(names))):
        call.recording_path = None
        call.note = note if not call.note else f"{call.note}; {note}"
    for ticket in session.scalars(select(Ticket).where(Ticket.recording_path.in_(names))):
        ticket.recording_path = None
    record_deletion(session, "recording", path, note)


def expire_transcripts(session: Session, accepted_before: datetime, note: str) -> list[str]:
    """Transcripts of closed tickets accepted before the cutoff are cleared; their numbers."""
    tickets = session.scalars(
        select(Ticket).where(
            Ticket.accepted_at < accepted_before,
            Ticket.status.in_(DONE),
            or_(Ticket.transcript.is_not(None), Ticket.transcript_status == TranscriptStatus.DONE),
        )
    ).all()
    for ticket in tickets:
        ticket.transcript = None
        ticket.transcript_status = TranscriptStatus.SKIPPED
        record_deletion(session, "transcript", ticket.number, note)
    session.flush()
    return [t.number for t in tickets]


def record_deletion(session: Session, kind: str, target: str, detail: str | None) -> None:
    """One audit row for one deletion."""
    session.add(RetentionDeletion(kind=kind, target=target[:500], detail=(detail or "")[:500]))


def deletions(session: Session, kind: str | None = None) -> list[RetentionDeletion]:
    """The audit of deletions, newest first."""
    query = select(RetentionDeletion).order_by(RetentionDeletion.id.desc())
    if kind:
        query = query.where(RetentionDeletion.kind == kind)
    return list(session.scalars(query))
