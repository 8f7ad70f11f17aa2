"""Call rows: what the hotline saw of each Asterisk call leg."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from core.uniqueid import node_of
from core.vocabulary import CallDirection
from db.models import Call, Ticket


def call_by_uniqueid(session: Session, uniqueid: str) -> Call | None:
    return session.scalars(select(Call).where(Call.uniqueid == uniqueid)).one_or_none()


def upsert_call_start(
    session: Session,
    *,
    uniqueid: str,
    caller_number: str | None,
    did: str | None,
    started_at: datetime,
    answered_at: datetime | None = None,
    linkedid: str | None = None,
    recording_path: str | None = None,
    direction: CallDirection = CallDirection.INBOUND,
    sip_call_id: str | None = None,
) -> Call:
    """Create the call row, or fill in what an earlier writer did not know.

    The node is read from the Uniqueid (`ast1-1700000000.12`: node ast1, see
    core.uniqueid), so every writer of a call row stores it, the reconciler too.
    """
    call = call_by_uniqueid(session, uniqueid)
    if call is None:
        call = Call(uniqueid=uniqueid, direction=direction, started_at=started_at)
        session.add(call)
    call.linkedid = call.linkedid or linkedid
    call.node = call.node or node_of(uniqueid)
    call.sip_call_id = call.sip_call_id or (sip_call_id or None)
    call.caller_number = call.caller_number or caller_number
    call.did = call.did or did
    call.answered_at = call.answered_at or answered_at
    call.recording_path = call.recording_path or recording_path
    call.started_at = min(call.started_at, started_at)
    session.flush()
    return call


def ensure_call(
    session: Session, *, uniqueid: str, caller_number: str | None, did: str | None, at: datetime
) -> Call:
    """The call's row, made from what a ticket's writer knows when none was written yet
    (its call_start was lost or comes later): a ticket is never without its call."""
    return call_by_uniqueid(session, uniqueid) or upsert_call_start(
        session, uniqueid=uniqueid, caller_number=caller_number, did=did, started_at=at
    )


def end_call(
    session: Session,
    uniqueid: str,
    *,
    ended_at: datetime,
    hangup_cause: str | None,
    last_step: str | None = None,
) -> Call | None:
    """Record how a call ended (idempotent: the first end time wins)."""
    call = call_by_uniqueid(session, uniqueid)
    if call is None:
        return None
    call.ended_at = call.ended_at or ended_at
    call.hangup_cause = call.hangup_cause or hangup_cause
    call.last_step = last_step or call.last_step
    session.flush()
    return call


def calls_without_ticket(session: Session, started_before: datetime) -> list[Call]:
    """Inbound calls that ended (or are older than any call can be) without a ticket."""
    return list(
        session.scalars(
            select(Call)
            .where(Call.direction == CallDirection.INBOUND, Call.ticket_id.is_(None))
            .where(or_(Call.ended_at.is_not(None), Call.started_at < started_before))
            .where(Call.started_at < started_before)
            .order_by(Call.id)
        )
    )


def known_uniqueids(session: Session, uniqueids: Iterable[str]) -> set[str]:
    wanted = list(uniqueids)
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        found.update(session.scalars(select(Call.uniqueid).where(Call.uniqueid.in_(chunk))))
    return found


def calls_with_recording(session: Session, batch: int = 1000) -> Iterable[tuple[str, str]]:
    """(uniqueid, recording path) of every call that names a recording, streamed."""
    rows = session.execute(
        select(Call.uniqueid, Call.recording_path)
        .where(Call.recording_path.is_not(None))
        .execution_options(yield_per=batch)
    )
    for uniqueid, path in rows:
        yield str(uniqueid), str(path)


def forget_empty_recording(session: Session, path: str, note: str) -> Call | None:
    """A recording removed for having no audio: the call row says so and names none."""
    call = session.scalars(select(Call).where(Call.recording_path == path)).one_or_none()
    if call is not None:
        call.recording_path = None
        call.note = note if not call.note else f"{call.note}; {note}"
    for ticket in session.scalars(select(Ticket).where(Ticket.recording_path == path)):
        ticket.recording_path = None
    session.flush()
    return call


def known_recording_paths(session: Session, paths: Iterable[str]) -> set[str]:
    """Which of these recording paths a call names (indexed lookups, in chunks)."""
    wanted = list(paths)
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        found.update(
            str(p)
            for p in session.scalars(
                select(Call.recording_path).where(Call.recording_path.in_(chunk))
            )
        )
    return found


def calls_with_recording_since(session: Session, since: datetime) -> list[tuple[str, str]]:
    """(uniqueid, recording path) of the calls started since `since` that name a recording."""
    rows = session.execute(
        select(Call.uniqueid, Call.recording_path).where(
            Call.started_at >= since, Call.recording_path.is_not(None)
        )
    )
    return [(str(uid), str(path)) for uid, path in rows]
