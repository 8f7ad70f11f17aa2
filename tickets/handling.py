"""The handling workflow by ticket number and unit code, with deadlines from config.

`tickets.workflow` knows states and events (rework, which the robot takes too,
is `db.workflow`'s); this layer finds the ticket and unit a person names, and
gives a dispatched or reworked ticket its due time on the working-day calendar
(`core.deadlines`). Every function raises `HandlingError` with a message naming
the ticket or unit that is wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session

from core.config import HotlineConfig
from core.deadlines import due_at
from core.vocabulary import ClosedAs
from db.departments import department_by_code
from db.models import Department, Ticket, utcnow
from db.tickets import ticket_by_number, urge_ticket
from db.workflow import WorkflowError, send_back_for_rework
from tickets import workflow


class HandlingError(ValueError):
    """A ticket or unit that does not exist, or a step that does not fit."""


def _ticket(session: Session, number: str) -> Ticket:
    ticket = ticket_by_number(session, number)
    if ticket is None:
        raise HandlingError(f"no ticket numbered {number}")
    return ticket


def _unit(session: Session, code: str) -> Department:
    unit = department_by_code(session, code)
    if unit is None:
        raise HandlingError(f"no department with code {code!r}")
    return unit


def _due_from(when: datetime, ticket: Ticket, config: HotlineConfig) -> datetime:
    return due_at(when, ticket.urgency, config.deadlines, config.tz)


def _step(work: Callable[[], Ticket]) -> Ticket:
    try:
        return work()
    except WorkflowError as exc:
        raise HandlingError(str(exc)) from None


def dispatch(
    session: Session, number: str, unit_code: str, actor: str, config: HotlineConfig
) -> Ticket:
    """派单 to unit_code (its parent gets the oversight copy); due time from urgency."""
    ticket, unit = _ticket(session, number), _unit(session, unit_code)
    due = _due_from(ticket.accepted_at, ticket, config)
    return _step(lambda: workflow.dispatch(session, ticket, unit, actor, due_at=due))


def sign(session: Session, number: str, unit_code: str, actor: str) -> Ticket:
    """签收 by the unit the ticket was dispatched to."""
    ticket, unit = _ticket(session, number), _unit(session, unit_code)
    return _step(lambda: workflow.sign(session, ticket, unit, actor))


def return_ticket(session: Session, number: str, unit_code: str, reason: str, actor: str) -> Ticket:
    """退单 with a reason."""
    ticket, unit = _ticket(session, number), _unit(session, unit_code)
    return _step(lambda: workflow.return_ticket(session, ticket, unit, reason, actor))


def redispatch(
    session: Session,
    number: str,
    unit_code: str,
    actor: str,
    improper_return: bool = False,
    note: str | None = None,
) -> Ticket:
    """改派, optionally judging the last return improper."""
    ticket, unit = _ticket(session, number), _unit(session, unit_code)
    return _step(lambda: workflow.redispatch(session, ticket, unit, actor, improper_return, note))


def close(
    session: Session,
    number: str,
    unit_code: str,
    reply: str,
    actor: str,
    closed_as: ClosedAs | str | None,
) -> Ticket:
    """办结 with the reply to the citizen and how it ended (已解决/已解释/无法解决)."""
    ticket, unit = _ticket(session, number), _unit(session, unit_code)
    return _step(lambda: workflow.close(session, ticket, unit, reply, actor, closed_as))


def rework(session: Session, number: str, reason: str, actor: str, config: HotlineConfig) -> Ticket:
    """发回重办: back to its unit with a fresh due time counted from now."""
    ticket = _ticket(session, number)
    due = _due_from(utcnow(), ticket, config)
    return _step(lambda: send_back_for_rework(session, ticket, reason, actor, due))


def urge(session: Session, number: str, actor: str) -> Ticket:
    """催办 on behalf of the citizen or a supervisor."""
    return urge_ticket(session, _ticket(session, number), actor)
