"""Rows that named a recording on a node's disk name its key in the store once it is shipped.

The FastAGI worker writes the path the node's dialplan gave (the node's own
disk); after the node daemon has copied the file into the store, the call,
its ticket and its transferred legs keep the store-relative key instead
(core.recording_keys). The rows are found through the indexed columns (the
call's Uniqueid, which the file name carries, and calls' recording paths),
never by scanning every ticket.
"""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from core.vocabulary import TranscriptStatus
from db.models import Call, CallLeg, Ticket


def point_at_store(session: Session, local: str, key: str, uniqueid: str | None) -> list[int]:
    """Rows naming `local` name `key` now; the tickets waiting to hear that recording.

    Safe to run again (a daemon killed after the copy, before deleting the
    node's file): rows already on the key stay, and the waiting tickets are
    returned again, for a deferral the queue's lock makes once.
    """
    match = [Call.recording_path == local]
    if uniqueid is not None:
        match.append(Call.uniqueid == uniqueid)
    calls = list(session.scalars(select(Call).where(or_(*match))))
    ticket_ids = {c.ticket_id for c in calls if c.ticket_id is not None}
    found = [Ticket.id.in_(ticket_ids)] if ticket_ids else []
    if uniqueid is not None:
        found.append(Ticket.origin_uniqueid == uniqueid)
    tickets = list(session.scalars(select(Ticket).where(or_(*found)))) if found else []
    legs = (
        list(session.scalars(select(CallLeg).where(CallLeg.uniqueid == uniqueid)))
        if uniqueid is not None
        else []
    )
    for row in [*calls, *tickets, *legs]:
        if row.recording_path == local:
            row.recording_path = key
    session.flush()
    return sorted(
        t.id
        for t in tickets
        if t.recording_path == key and t.transcript_status == TranscriptStatus.PENDING
    )
