"""The IVR's way into the ticket store: off the event loop, retried, never dropped.

Call flows run on the asyncio loop; database work runs in worker threads so a
locked SQLite file or a slow PostgreSQL stalls one call, not all of them. A
write that still fails after `ivr.db_retry_seconds` is written to the durable
spool and applied later (on start and by the reconciler). Every write is
idempotent, keyed by the call's Uniqueid.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from db.calls import call_by_uniqueid, end_call, upsert_call_start
from db.models import RequestType, TicketStatus, TranscriptStatus, Urgency, utcnow
from db.session import unit_of_work
from db.tickets import (
    create_ticket_for_call,
    line_by_did,
    open_tickets_for_caller,
    ticket_by_number,
    ticket_for_call,
    urge_ticket,
)
from hotline.config import HotlineConfig
from hotline.deadlines import due_at
from ivr.recordings import has_audio
from ivr.spool import Spool

log = logging.getLogger(__name__)
T = TypeVar("T")


class StoreUnavailable(Exception):
    """The database did not answer within the retry budget."""


@dataclass
class CallStart:
    uniqueid: str
    caller: str
    did: str
    recording: str | None
    linkedid: str | None = None
    started_at: datetime = field(default_factory=utcnow)


@dataclass
class TicketRequest:
    uniqueid: str
    caller: str
    did: str
    recording: str | None
    request_type: str | None = None
    urgency: str = Urgency.DAILY_LIFE.value
    source: str = "ivr"
    description: str | None = None
    accepted_at: datetime = field(default_factory=utcnow)
    transcribe: bool = True  # a request recording (not a whole call with prompts in it)


@dataclass
class CallEnd:
    uniqueid: str
    caller: str
    did: str
    recording: str | None
    request_recordings: list[str]
    hangup_cause: str | None
    last_step: str | None
    ended_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class TicketView:
    number: str
    status: TicketStatus
    unit: str | None
    due_at: datetime | None


def _parse_time(value: object) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


class IvrStore:
    """Async, retried, spooled access to the store for call flows."""

    def __init__(
        self, config: HotlineConfig, sessions: sessionmaker[Session], spool: Spool | None = None
    ) -> None:
        self.config = config
        self.sessions = sessions
        self.spool = spool or Spool(config.spool_dir)

    # -- plumbing ---------------------------------------------------------------
    async def _run(self, work: Callable[[Session], T]) -> T:
        """Run work in one transaction in a thread; retry transient failures, then give up."""
        deadline = time.monotonic() + self.config.ivr.db_retry_seconds
        delay = 0.1
        while True:
            try:
                return await asyncio.to_thread(self.transaction, work)
            except OperationalError as exc:
                if time.monotonic() + delay > deadline:
                    raise StoreUnavailable(str(exc).splitlines()[0]) from None
                log.warning("database busy or unreachable (%s); retrying", str(exc).splitlines()[0])
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    def transaction(self, work: Callable[[Session], T]) -> T:
        with unit_of_work(self.sessions) as session:
            return work(session)

    # -- writes (spooled when the database is away) -------------------------------
    async def call_started(self, start: CallStart) -> None:
        try:
            await self._run(lambda s: self.apply_call_start(s, asdict(start)))
        except StoreUnavailable as exc:
            self.spool.put("call_start", asdict(start))
            log.error("[%s] call start spooled: %s", start.uniqueid, exc)

    async def ticket_for_call(self, request: TicketRequest) -> str | None:
        """The call's ticket number; None when the ticket had to be spooled."""
        try:
            return await self._run(lambda s: self.apply_ticket(s, asdict(request)))
        except StoreUnavailable as exc:
            self.spool.put("ticket", asdict(request))
            log.error("[%s] ticket spooled (database unavailable: %s)", request.uniqueid, exc)
            return None

    async def call_ended(self, end: CallEnd) -> str | None:
        """Record the end; make sure the call has a ticket. Returns its number if known."""
        try:
            return await self._run(lambda s: self.apply_call_end(s, asdict(end)))
        except StoreUnavailable as exc:
            self.spool.put("call_end", asdict(end))
            log.error("[%s] call end spooled: %s", end.uniqueid, exc)
            return None

    # -- reads ------------------------------------------------------------------
    async def lookup(self, number: str) -> TicketView | None:
        def read(session: Session) -> TicketView | None:
            ticket = ticket_by_number(session, number)
            if ticket is None:
                return None
            unit = ticket.department.name if ticket.department else None
            return TicketView(ticket.number, ticket.status, unit, ticket.due_at)

        return await self._run(read)

    async def urge_latest(self, caller: str) -> str | None:
        """Urge the caller's newest open ticket; its number, or None if there is none."""

        def urge(session: Session) -> str | None:
            tickets = open_tickets_for_caller(session, caller)
            if not tickets:
                return None
            return urge_ticket(session, tickets[0], actor=caller).number

        return await self._run(urge)

    # -- the idempotent writes themselves (also used by spool replay) ----------
    def apply(self, kind: str, payload: dict[str, object]) -> None:
        """Apply one spooled intent (raises on database trouble so replay stops)."""
        action = {
            "call_start": self.apply_call_start,
            "ticket": self.apply_ticket,
            "call_end": self.apply_call_end,
        }[kind]
        self.transaction(lambda s: action(s, payload))

    def apply_call_start(self, session: Session, p: dict[str, object]) -> None:
        started = _parse_time(p["started_at"])
        upsert_call_start(
            session,
            uniqueid=str(p["uniqueid"]),
            caller_number=str(p["caller"]),
            did=str(p["did"]),
            started_at=started,
            answered_at=started,
            linkedid=p.get("linkedid"),  # type: ignore[arg-type]
            recording_path=p.get("recording"),
        )  # type: ignore[arg-type]

    def apply_ticket(self, session: Session, p: dict[str, object]) -> str:
        uniqueid = str(p["uniqueid"])
        accepted = _parse_time(p["accepted_at"])
        if call_by_uniqueid(session, uniqueid) is None:
            upsert_call_start(
                session,
                uniqueid=uniqueid,
                caller_number=str(p["caller"]),
                did=str(p["did"]),
                started_at=accepted,
            )
        urgency = Urgency(str(p.get("urgency") or Urgency.DAILY_LIFE.value))
        recording = p.get("recording")
        request_type = p.get("request_type")
        ticket, _created = create_ticket_for_call(
            session,
            uniqueid,
            caller_number=str(p["caller"]),
            local_day=accepted.astimezone(self.config.tz).date(),
            accepted_at=accepted,
            due_at=due_at(accepted, urgency, self.config.deadlines, self.config.tz),
            line=line_by_did(session, str(p["did"])),
            request_type=RequestType(str(request_type)) if request_type else None,
            urgency=urgency,
            description=p.get("description"),
            recording_path=recording,
            source=str(p.get("source") or "ivr"),
            transcript_status=TranscriptStatus.PENDING
            if p.get("transcribe", True) and has_audio(recording)  # type: ignore[arg-type]
            else None,
        )
        return ticket.number

    def apply_call_end(self, session: Session, p: dict[str, object]) -> str:
        uniqueid = str(p["uniqueid"])
        ended = _parse_time(p["ended_at"])
        recording = p.get("recording")
        if recording and not Path(str(recording)).exists():
            recording = None  # never answered, so MixMonitor never started
        call = upsert_call_start(
            session,
            uniqueid=uniqueid,
            caller_number=str(p["caller"]),
            did=str(p["did"]),
            started_at=ended,
            recording_path=recording,
        )  # type: ignore[arg-type]
        end_call(
            session,
            uniqueid,
            ended_at=ended,
            hangup_cause=p.get("hangup_cause"),  # type: ignore[arg-type]
            last_step=p.get("last_step"),
        )  # type: ignore[arg-type]
        existing = ticket_for_call(session, uniqueid)
        if existing is not None:
            return existing.number
        requests = [r for r in p.get("request_recordings") or [] if has_audio(r)]  # type: ignore[union-attr]
        # MixMonitor may still be flushing the call recording: attach it if it exists at all
        audio = requests[0] if requests else (call.recording_path or None)
        step = p.get("last_step") or "before the IVR answered"
        return self.apply_ticket(
            session,
            {
                "uniqueid": uniqueid,
                "caller": p["caller"],
                "did": p["did"],
                "recording": audio,
                "accepted_at": call.started_at,
                "source": "ivr-fallback" if step == "fallback" else "ivr-hangup",
                "transcribe": bool(requests),
                "description": f"caller hung up at step: {step}"
                + ("" if requests else "; no request recording, the call recording is attached"),
            },
        )
