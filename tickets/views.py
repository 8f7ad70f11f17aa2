"""Tickets as people read them: rows for a list, one ticket with its calls and history.

The CLI prints these and the web app can render them; times are already in the
hotline's local time zone, minutes only, so no caller does time arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo

from sqlalchemy.orm import Session

from db.models import Ticket
from db.tickets import list_tickets, ticket_by_number


def local_minutes(value: datetime | None, tz: tzinfo) -> str:
    """A stored UTC time as local time, minutes only; '' for none."""
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M") if value is not None else ""


@dataclass(frozen=True)
class TicketRow:
    """One line of a ticket list."""

    number: str
    accepted: str
    caller: str
    line: str | None
    type: str | None
    category: str | None
    urgency: str
    status: str
    due: str
    source: str
    recording: str | None


@dataclass(frozen=True)
class CallLine:
    """One call of a ticket (the citizen's, or a survey)."""

    uniqueid: str
    direction: str
    caller: str
    started: str
    ended: str
    hangup_cause: str | None
    last_step: str | None
    recording: str | None
    note: str | None


@dataclass(frozen=True)
class EventLine:
    """One step of a ticket's history."""

    at: str
    kind: str
    actor: str
    note: str | None


@dataclass(frozen=True)
class TicketDetail:
    """A ticket with everything a supervisor asks about it."""

    number: str
    status: str
    fields: dict[str, str]
    calls: list[CallLine]
    events: list[EventLine]


def _row(ticket: Ticket, tz: tzinfo) -> TicketRow:
    return TicketRow(
        number=ticket.number,
        accepted=local_minutes(ticket.accepted_at, tz),
        caller=ticket.caller_number,
        line=ticket.line.did if ticket.line else None,
        type=ticket.request_type.value if ticket.request_type else None,
        category=ticket.category,
        urgency=ticket.urgency.value,
        status=ticket.status.value,
        due=local_minutes(ticket.due_at, tz),
        source=ticket.source,
        recording=ticket.recording_path,
    )


def ticket_rows(
    session: Session, tz: tzinfo, limit: int = 30, caller: str | None = None
) -> list[TicketRow]:
    """The newest tickets (of one caller, if given), newest first."""
    return [_row(t, tz) for t in list_tickets(session, limit, caller_number=caller or None)]


def ticket_detail(session: Session, number: str, tz: tzinfo) -> TicketDetail | None:
    """One ticket by its number with calls and events, or None if there is none."""
    ticket = ticket_by_number(session, number)
    if ticket is None:
        return None
    transcript = ticket.transcript or (
        f"({ticket.transcript_status.value if ticket.transcript_status else 'none'})"
    )
    fields = {
        "caller": ticket.caller_number,
        "line": f"{ticket.line.did} {ticket.line.name}" if ticket.line else "-",
        "type": ticket.request_type.value if ticket.request_type else "-",
        "category": ticket.category or "-",
        "urgency": ticket.urgency.value,
        "accepted": local_minutes(ticket.accepted_at, tz),
        "due": local_minutes(ticket.due_at, tz),
        "unit": ticket.department.name if ticket.department else "-",
        "urged": str(ticket.urge_count),
        "source": ticket.source,
        "description": ticket.description or "-",
        "reply": ticket.reply or "-",
        "recording": ticket.recording_path or "-",
        "transcript": transcript,
    }
    calls = [
        CallLine(
            uniqueid=call.uniqueid,
            direction=call.direction.value,
            caller=call.caller_number,
            started=local_minutes(call.started_at, tz),
            ended=local_minutes(call.ended_at, tz),
            hangup_cause=call.hangup_cause,
            last_step=call.last_step,
            recording=call.recording_path,
            note=call.note,
        )
        for call in ticket.calls
    ]
    events = [
        EventLine(local_minutes(e.at, tz), e.kind.value, e.actor, e.note) for e in ticket.events
    ]
    return TicketDetail(ticket.number, ticket.status.value, fields, calls, events)


def step_summary(ticket: Ticket, tz: tzinfo) -> str:
    """One line on a ticket after a handling step: its status, unit and due time."""
    unit = ticket.department.code if ticket.department else "-"
    due = local_minutes(ticket.due_at, tz) or "-"
    return f"ticket {ticket.number}: {ticket.status.value}, unit {unit}, due {due}"
