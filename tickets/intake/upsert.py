"""Upserting departments and tickets that come from the main work-order platform.

Idempotent by key: a department by its code, a ticket by its external id, an
event by (kind, time, unit), a callback by its time. Importing the same record
twice finds everything already there and reports "unchanged"; a record that
changed updates the ticket and adds only the events and callbacks that are new.
The caller wraps each record in a savepoint, so a record either lands whole
or not at all.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from types import SimpleNamespace
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.vocabulary import EventKind, Urgency
from db.departments import MAX_DEPTH, department_by_code
from db.models import Department, Ticket, TicketEvent, ValidCallback
from db.tickets import add_event, create_ticket
from tickets.area import TreeIndex, resolve_area
from tickets.intake.records import DepartmentRecord, TicketRecord

Outcome = Literal["created", "updated", "unchanged"]
TICKET_FIELDS = (
    "caller_number",
    "request_type",
    "category",
    "urgency",
    "description",
    "status",
    "due_at",
    "closed_at",
    "reply",
    "closed_as",
)


class IntakeError(ValueError):
    """A record that cannot land as it is (unknown unit, wrong level ...)."""


def _department(session: Session, code: str, what: str) -> Department:
    unit = department_by_code(session, code)
    if unit is None:
        raise IntakeError(f"{what} {code!r} is not a known department (import it first)")
    return unit


def upsert_department(session: Session, record: DepartmentRecord) -> Outcome:
    """Create or update one unit; it must sit one level below its parent, never below itself.

    Levels alone do not keep the tree a tree: a batch may move a child up a
    level and then its former parent under it. The parent's chain is walked up
    (at most `MAX_DEPTH` steps, the bound every tree query has) and a unit met
    on it is refused, so no loop ever reaches the table through an import.
    """
    if record.parent_code is not None and record.parent_code == record.code:
        raise IntakeError(f"department {record.code}: parent_code names the unit itself")
    parent = _department(session, record.parent_code, "parent_code") if record.parent_code else None
    if parent is not None and record.level != parent.level + 1:
        raise IntakeError(
            f"level {record.level} cannot sit under {parent.code} (level {parent.level})"
        )
    unit = department_by_code(session, record.code)
    if unit is not None and parent is not None:
        _refuse_loop(session, unit, parent)
    wanted = {
        "name": record.name,
        "level": record.level,
        "parent_id": parent.id if parent else None,
        "peer_group": record.peer_group,
    }
    if unit is None:
        session.add(Department(code=record.code, **wanted))
        session.flush()
        return "created"
    changed = {k: v for k, v in wanted.items() if getattr(unit, k) != v}
    for key, value in changed.items():
        setattr(unit, key, value)
    session.flush()
    return "updated" if changed else "unchanged"


def _refuse_loop(session: Session, unit: Department, parent: Department) -> None:
    """Refuse parent when unit is on parent's own chain up (the tree would loop).

    By `parent_id`, not the relationship: earlier records of the batch may have
    moved a unit in this session."""
    step: Department | None = parent
    for _ in range(MAX_DEPTH + 1):
        if step is None:
            return
        if step.id == unit.id:
            raise IntakeError(
                f"department {unit.code} cannot sit under {parent.code}: {parent.code} is "
                f"below {unit.code}, the tree would loop (move {parent.code} first)"
            )
        step = session.get(Department, step.parent_id) if step.parent_id else None
    raise IntakeError(
        f"department {unit.code}: the units above {parent.code} do not end within "
        f"{MAX_DEPTH} levels (a loop in the table?)"
    )


def upsert_ticket(
    session: Session,
    record: TicketRecord,
    local_day: Callable[[datetime], date],
    due_at: Callable[[datetime, Urgency], datetime],
    tree: TreeIndex | None = None,
) -> Outcome:
    """Create or update one ticket with its events and callbacks (times must be aware).

    The ticket's area is resolved here (`tickets.area`: the record's area_code,
    else its unit or a place named in its text), with `tree` built once per
    import; a category from the platform is marked as the import's.
    """
    unit = (
        _department(session, record.department_code, "department_code")
        if record.department_code
        else None
    )
    event_units = {
        e.department_code: _department(session, e.department_code, "event department_code")
        for e in record.events
        if e.department_code
    }
    ticket = session.scalars(
        select(Ticket).where(Ticket.external_id == record.external_id)
    ).one_or_none()
    created = ticket is None
    if ticket is None:
        ticket = create_ticket(
            session,
            caller_number=record.caller_number,
            local_day=local_day(record.accepted_at),
            accepted_at=record.accepted_at,
            source="platform",
            external_id=record.external_id,
            urgency=record.urgency,
            actor="platform",
        )
    wanted = {name: getattr(record, name) for name in TICKET_FIELDS}
    wanted["due_at"] = record.due_at or ticket.due_at or due_at(record.accepted_at, record.urgency)
    wanted["department_id"] = unit.id if unit else None
    wanted["category_source"] = "import" if record.category else None
    read_from = SimpleNamespace(  # the ticket as it will be, for the area rules
        department_id=wanted["department_id"],
        description=record.description,
        transcript=ticket.transcript,
    )
    area_id, area_source = resolve_area(
        session, read_from, tree or TreeIndex.build(session), record.area_code
    )
    wanted |= {"area_id": area_id, "area_source": area_source}
    changed = [key for key, value in wanted.items() if getattr(ticket, key) != value]
    for key in changed:
        setattr(ticket, key, wanted[key])
    session.flush()
    added = _add_new_events(session, ticket, record, event_units)
    added += _add_new_callbacks(session, ticket, record)
    if created:
        return "created"
    return "updated" if changed or added else "unchanged"


def _add_new_events(
    session: Session, ticket: Ticket, record: TicketRecord, units: dict[str, Department]
) -> int:
    def key(kind: EventKind, at: datetime, unit: int | None) -> tuple[object, ...]:
        # the accepted event was written when the ticket was created, without a unit
        return (kind, at) if kind == EventKind.ACCEPTED else (kind, at, unit)

    known = {
        key(kind, at, unit)
        for kind, at, unit in session.execute(
            select(TicketEvent.kind, TicketEvent.at, TicketEvent.department_id).where(
                TicketEvent.ticket_id == ticket.id
            )
        )
    }
    added = 0
    for event in record.events:
        unit_id = units[event.department_code].id if event.department_code else None
        if key(event.kind, event.at, unit_id) in known:
            continue
        add_event(
            session,
            ticket,
            event.kind,
            actor=event.actor,
            at=event.at,
            note=event.note,
            department_id=unit_id,
        )
        known.add(key(event.kind, event.at, unit_id))
        added += 1
    return added


def _add_new_callbacks(session: Session, ticket: Ticket, record: TicketRecord) -> int:
    known = set(
        session.scalars(
            select(ValidCallback.surveyed_at).where(ValidCallback.ticket_id == ticket.id)
        )
    )
    added = 0
    for callback in record.callbacks:
        if callback.at in known:
            continue
        session.add(
            ValidCallback(
                ticket_id=ticket.id,
                department_id=ticket.department_id,
                surveyed_at=callback.at,
                contacted=callback.contacted,
                resolved=callback.resolved,
                satisfaction=callback.satisfaction,
                source="platform",
            )
        )
        known.add(callback.at)
        added += 1
    session.flush()
    return added
