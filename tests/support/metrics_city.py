"""A small hand-made city for the metrics tests: five levels, peer groups, callbacks.

R  region          (peer group "region")
└─ C  city         ("city")
   ├─ D1 district  ("district") ─ S1 street ─ V1 village
   │                              S2 street, S3 street ("street"; V1 is "village")
   ├─ D2 district  ─ S4 street
   └─ D3 district
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from core.vocabulary import Level, TicketStatus
from db.departments import create_department
from db.models import Department, Ticket, ValidCallback
from db.tickets import create_ticket

TREE = [
    ("R", Level.REGION, None, "region"),
    ("C", Level.CITY, "R", "city"),
    ("D1", Level.DISTRICT, "C", "district"),
    ("D2", Level.DISTRICT, "C", "district"),
    ("D3", Level.DISTRICT, "C", "district"),
    ("S1", Level.TOWNSHIP, "D1", "street"),
    ("S2", Level.TOWNSHIP, "D1", "street"),
    ("S3", Level.TOWNSHIP, "D1", "street"),
    ("S4", Level.TOWNSHIP, "D2", "street"),
    ("V1", Level.VILLAGE, "S1", "village"),
]


def build_city(session: Session) -> dict[str, Department]:
    units: dict[str, Department] = {}
    for code, level, parent, group in TREE:
        units[code] = create_department(
            session, code, f"unit {code}", level, units.get(parent or ""), group
        )
    return units


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def add_ticket(
    session: Session,
    unit: Department,
    accepted: datetime,
    closed: bool = False,
) -> Ticket:
    ticket = create_ticket(
        session,
        caller_number="13800000000",
        local_day=accepted.date(),
        accepted_at=accepted,
        source="test",
    )
    ticket.department_id = unit.id
    if closed:
        ticket.status, ticket.closed_at = TicketStatus.CLOSED, accepted
    session.flush()
    return ticket


def add_callback(
    session: Session, unit: Department, at: datetime, answers: tuple[int, int, int]
) -> None:
    """A valid callback of a (fresh) ticket of unit, surveyed at `at` (UTC)."""
    ticket = add_ticket(session, unit, utc(2026, 1, 5, 2), closed=True)
    contacted, resolved, satisfaction = answers
    session.add(
        ValidCallback(
            ticket_id=ticket.id,
            department_id=unit.id,
            surveyed_at=at,
            contacted=contacted,
            resolved=resolved,
            satisfaction=satisfaction,
            source="test",
        )
    )
    session.flush()
