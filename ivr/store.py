"""The IVR's way into the ticket store: off the event loop, retried, never dropped.

Call flows run on the asyncio loop; database work runs in worker threads so a
locked SQLite file or a slow PostgreSQL stalls one call, not all of them. A
write that still fails after `ivr.db_retry_seconds` is written to the durable
spool and applied later (on start and by the reconciler). Every write is
idempotent, keyed by the call's Uniqueid. The retry-then-spool path is the
IVR's gateway on the process's store runtime (`db.runtime`), the one the
survey, the dialer and the robot share.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from core.config import HotlineConfig
from core.deadlines import due_at
from core.telemetry import TICKETS_CREATED
from core.vocabulary import CallStep, RequestType, TicketStatus, TranscriptStatus, Urgency
from db.callbacks import open_callback_task
from db.calls import end_call, ensure_call, upsert_call_start
from db.models import utcnow
from db.runtime import Operation, Spool, StoreRuntime, read_time
from db.session import unit_of_work
from db.tickets import (
    create_ticket_for_call,
    line_by_did,
    open_tickets_for_caller,
    ticket_by_number,
    ticket_for_call,
    urge_ticket,
)
from ivr.recordings import has_audio

T = TypeVar("T")
# a SIP Call-ID: RFC 3261 word characters, at most the column's 200
SIP_CALL_ID = re.compile(r"[A-Za-z0-9.!%*_+`'~()<>:\\\"/\[\]?{}@-]{1,200}")


@dataclass
class CallStart:
    """Intent: a citizen's call began (its row, with the whole-call recording's path)."""

    uniqueid: str
    caller: str
    did: str
    recording: str | None
    linkedid: str | None = None
    started_at: datetime = field(default_factory=utcnow)
    # the inbound INVITE's Call-ID (PJSIP calls only); spooled intents from before it lack it
    sip_call_id: str | None = None

    @classmethod
    def from_payload(cls, p: dict[str, Any]) -> CallStart:
        """The intent as read back from the spool's JSON."""
        return cls(**{**p, "started_at": read_time(p["started_at"])})


@dataclass
class TicketRequest:
    """Intent: the call's ticket, with its request recording and what the caller keyed."""

    uniqueid: str
    caller: str
    did: str
    recording: str | None
    request_type: RequestType | None = None
    urgency: Urgency = Urgency.DAILY_LIFE
    source: str = "ivr"
    description: str | None = None
    accepted_at: datetime = field(default_factory=utcnow)
    transcribe: bool = True  # a request recording (not a whole call with prompts in it)
    callback: str | None = None  # why the citizen is to be called back (a message left)

    @classmethod
    def from_payload(cls, p: dict[str, Any]) -> TicketRequest:
        """The intent as read back from the spool's JSON."""
        kind = p.get("request_type")
        return cls(
            **{
                **p,
                "request_type": RequestType(kind) if kind else None,
                "urgency": Urgency(p.get("urgency") or Urgency.DAILY_LIFE),
                "accepted_at": read_time(p["accepted_at"]),
            }
        )


@dataclass
class CallEnd:
    """Intent: the call ended (where the caller left, why); it gets a ticket if it has none."""

    uniqueid: str
    caller: str
    did: str
    recording: str | None
    request_recordings: list[str]
    hangup_cause: str | None
    last_step: str | None  # a CallStep value as the channel had it (None: before the IVR)
    ended_at: datetime = field(default_factory=utcnow)
    agent: str | None = None  # the agent who answered (their login), if one did

    @classmethod
    def from_payload(cls, p: dict[str, Any]) -> CallEnd:
        """The intent as read back from the spool's JSON."""
        return cls(**{**p, "ended_at": read_time(p["ended_at"])})


def sip_call_id_of(value: str) -> str | None:
    """A SIP Call-ID as the dialplan passed it (RFC 3261 word characters), or None.

    Anything else (empty on a Local channel, or mangled on its way through the
    AGI's arguments) is not kept: a call row's Call-ID is for finding the
    INVITE in a SIP trace, and a wrong one would mislead.
    """
    value = value.strip()
    return value if SIP_CALL_ID.fullmatch(value) else None


Intent = CallStart | TicketRequest | CallEnd
INTENT_KINDS: dict[str, type[CallStart] | type[TicketRequest] | type[CallEnd]] = {
    "call_start": CallStart,
    "ticket": TicketRequest,
    "call_end": CallEnd,
}
KIND_OF = {cls: kind for kind, cls in INTENT_KINDS.items()}


@dataclass(frozen=True)
class TicketView:
    """What the progress query speaks about a ticket."""

    number: str
    status: TicketStatus
    unit: str | None
    due_at: datetime | None
    caller: str  # whose ticket it is: only they hear its status without the code


@dataclass(frozen=True)
class Filed:
    """What writing a call's ticket did: its number, and its source if this write created it."""

    number: str
    created: str | None = None


class IvrOperations:
    """The IVR's idempotent writes and its reads, each in one transaction: the store's side.

    They run wherever the store work runs: in the store process
    (`db.runtime.process`, `ivr_operations`), on the store thread, or in the
    spool's replay. They return plain values, so that a ticket created in the
    store process is counted in the serving process's /metrics.
    """

    def __init__(self, config: HotlineConfig) -> None:
        self.config = config

    def table(self) -> dict[str, Operation]:
        """Operations by kind: the spooled intents' kinds, and the two reads."""
        return {
            "call_start": lambda s, p: self.call_start(s, CallStart.from_payload(p)),
            "ticket": lambda s, p: self.ticket(s, TicketRequest.from_payload(p)),
            "call_end": lambda s, p: self.call_end(s, CallEnd.from_payload(p)),
            "lookup": lambda s, p: self.lookup(s, p["number"]),
            "urge": lambda s, p: self.urge(s, p["caller"]),
        }

    def call_start(self, session: Session, start: CallStart) -> None:
        upsert_call_start(
            session,
            uniqueid=start.uniqueid,
            caller_number=start.caller,
            did=start.did,
            started_at=start.started_at,
            answered_at=start.started_at,
            linkedid=start.linkedid,
            recording_path=start.recording,
            sip_call_id=start.sip_call_id,
        )

    def ticket(self, session: Session, request: TicketRequest) -> Filed:
        accepted = request.accepted_at
        ensure_call(
            session,
            uniqueid=request.uniqueid,
            caller_number=request.caller,
            did=request.did,
            at=accepted,
        )
        ticket, created = create_ticket_for_call(
            session,
            request.uniqueid,
            caller_number=request.caller,
            local_day=accepted.astimezone(self.config.tz).date(),
            accepted_at=accepted,
            due_at=due_at(accepted, request.urgency, self.config.deadlines, self.config.tz),
            line=line_by_did(session, request.did),
            request_type=request.request_type,
            urgency=request.urgency,
            description=request.description,
            recording_path=request.recording,
            source=request.source,
            transcript_status=TranscriptStatus.PENDING
            if request.transcribe and has_audio(request.recording)
            else None,
        )
        if request.callback:
            open_callback_task(
                session,
                uniqueid=request.uniqueid,
                caller_number=request.caller,
                ticket=ticket,
                reason=request.callback,
                created_at=accepted,
            )
        return Filed(ticket.number, request.source if created else None)

    def call_end(self, session: Session, end: CallEnd) -> Filed:
        recording = end.recording
        if recording and not Path(recording).exists():
            recording = None  # never answered, so MixMonitor never started
        call = upsert_call_start(
            session,
            uniqueid=end.uniqueid,
            caller_number=end.caller,
            did=end.did,
            started_at=end.ended_at,
            recording_path=recording,
        )
        end_call(
            session,
            end.uniqueid,
            ended_at=end.ended_at,
            hangup_cause=end.hangup_cause,
            last_step=CallStep.read(end.last_step).value if end.last_step else None,
        )
        existing = ticket_for_call(session, end.uniqueid)
        if existing is not None:
            return Filed(existing.number)
        if end.agent:  # a conversation: the agent's form completes this ticket (same call)
            return self.ticket(
                session,
                TicketRequest(
                    uniqueid=end.uniqueid,
                    caller=end.caller,
                    did=end.did,
                    recording=call.recording_path or None,
                    accepted_at=call.started_at,
                    source="agent",
                    transcribe=False,
                    description=f"answered by agent {end.agent}; the call ended before "
                    "the agent filed the ticket",
                ),
            )
        requests = [r for r in end.request_recordings if has_audio(r)]
        # MixMonitor may still be flushing the call recording: attach it if it exists at all
        audio = requests[0] if requests else (call.recording_path or None)
        step = CallStep.read(end.last_step) if end.last_step else None
        where = step.describe() if step else "before the IVR answered"
        return self.ticket(
            session,
            TicketRequest(
                uniqueid=end.uniqueid,
                caller=end.caller,
                did=end.did,
                recording=audio,
                accepted_at=call.started_at,
                source="ivr-fallback" if step == CallStep.FALLBACK else "ivr-hangup",
                transcribe=bool(requests),
                description=f"caller hung up at step: {where}"
                + ("" if requests else "; no request recording, the call recording is attached"),
            ),
        )

    def lookup(self, session: Session, number: str) -> TicketView | None:
        ticket = ticket_by_number(session, number)
        if ticket is None:
            return None
        unit = ticket.department.name if ticket.department else None
        return TicketView(ticket.number, ticket.status, unit, ticket.due_at, ticket.caller_number)

    def urge(self, session: Session, caller: str) -> str | None:
        """Urge the caller's newest open ticket; its number, or None if there is none."""
        tickets = open_tickets_for_caller(session, caller)
        if not tickets:
            return None
        return urge_ticket(session, tickets[0], actor=caller).number


def ivr_operations(config: HotlineConfig) -> dict[str, Operation]:
    """The store process's operations (`functools.partial(ivr_operations, config)` pickles)."""
    return IvrOperations(config).table()


def counted(result: object) -> object:
    """A result as the flows see it; a ticket this write created is counted for /metrics."""
    if isinstance(result, Filed):
        if result.created:
            TICKETS_CREATED.labels(result.created).inc()
        return result.number
    return result


class IvrStore:
    """Async, retried, spooled access to the store for call flows."""

    def __init__(
        self,
        config: HotlineConfig,
        sessions: sessionmaker[Session],
        spool: Spool | None = None,
        runtime: StoreRuntime | None = None,
    ) -> None:
        """On the process's store runtime (`hotline serve`'s); else one of its own on `sessions`."""
        self.config = config
        self.sessions = sessions
        self.runtime = runtime or StoreRuntime(sessions)
        self.gateway = self.runtime.gateway(
            config.ivr.db_retry_seconds, spool or Spool(config.spool_dir)
        )
        self.spool = self.gateway.spool
        self.operations = IvrOperations(config)
        for kind, operation in self.operations.table().items():
            self.runtime.register(
                kind,
                lambda session, payload, operation=operation: counted(operation(session, payload)),
            )

    # -- plumbing ---------------------------------------------------------------
    def transaction(self, work: Callable[[Session], T]) -> T:
        with unit_of_work(self.sessions) as session:
            return work(session)

    async def close(self) -> None:
        """Stop the store process, if any, once what it was given is written."""
        await self.runtime.close()

    # -- writes (spooled when the database is away) -------------------------------
    async def _write(self, intent: Intent) -> Any:
        """An intent applied now (a created ticket counted), or spooled: then None."""
        return counted(await self.gateway.write(KIND_OF[type(intent)], asdict(intent)))

    async def call_started(self, start: CallStart) -> None:
        await self._write(start)

    async def ticket_for_call(self, request: TicketRequest) -> str | None:
        """The call's ticket number; None when the ticket had to be spooled."""
        return await self._write(request)

    async def call_ended(self, end: CallEnd) -> str | None:
        """Record the end; make sure the call has a ticket. Returns its number if known."""
        return await self._write(end)

    async def spool_intent(self, intent: Intent) -> None:
        """Keep an intent durably until the database is back (written off the event loop)."""
        await self.gateway.put(KIND_OF[type(intent)], asdict(intent))

    # -- reads ------------------------------------------------------------------
    async def lookup(self, number: str) -> TicketView | None:
        return await self.gateway.perform("lookup", {"number": number})

    async def urge_latest(self, caller: str) -> str | None:
        """Urge the caller's newest open ticket; its number, or None if there is none."""
        return await self.gateway.perform("urge", {"caller": caller})

    # -- the idempotent writes, in this process (spool replay, reconciler, tests) ----
    def apply(self, kind: str, payload: dict[str, Any]) -> None:
        """Apply one spooled intent (raises on database trouble so replay stops)."""
        self.gateway.apply(kind, payload)

    def apply_call_start(self, session: Session, start: CallStart) -> None:
        self.operations.call_start(session, start)

    def apply_ticket(self, session: Session, request: TicketRequest) -> str:
        return str(counted(self.operations.ticket(session, request)))

    def apply_call_end(self, session: Session, end: CallEnd) -> str:
        return str(counted(self.operations.call_end(session, end)))
