"""The ticket store's tables, as typed SQLAlchemy 2 models.

Time is stored as UTC and returned timezone-aware on every database (SQLite
has no time zones, so `UTCDateTime` does the conversion). Enumerations are
stored as short strings with a CHECK constraint, which reads well in SQL and
migrates the same way on SQLite and PostgreSQL.
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from core.vocabulary import (
    AgentState,
    AttemptOutcome,
    AttemptState,
    CallDirection,
    ClosedAs,
    EventKind,
    Handling,
    Question,
    RequestType,
    TicketStatus,
    TranscriptStatus,
    Urgency,
)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the ticket store; use an aware one")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def str_enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(
        cls,
        name=name,
        native_enum=False,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
        length=24,
        create_constraint=True,
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Department(Base):
    __tablename__ = "departments"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    level: Mapped[int] = mapped_column(Integer)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"), index=True)
    peer_group: Mapped[str] = mapped_column(String(64), default="default")

    parent: Mapped[Department | None] = relationship(
        remote_side="Department.id", back_populates="children"
    )
    children: Mapped[list[Department]] = relationship(back_populates="parent")


class Line(Base):
    """A hotline number (the main 12345 or a dedicated line) with its greeting."""

    __tablename__ = "lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    did: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    greeting: Mapped[str] = mapped_column(String(100))
    default_category: Mapped[str | None] = mapped_column(String(100))


class Ticket(Base):
    __tablename__ = "tickets"
    # completion (办结率) counts a period's accepted tickets per unit from this index alone
    __table_args__ = (
        Index("ix_tickets_accepted_department_status", "accepted_at", "department_id", "status"),
        # the monthly analysis places tickets with no area yet: a partial index finds the
        # few among millions without a scan (fill_areas, 0.1 s -> 0.01 s on 300,000)
        Index(
            "ix_tickets_area_unplaced",
            "id",
            sqlite_where=text("area_source IS NULL"),
            postgresql_where=text("area_source IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    source: Mapped[str] = mapped_column(String(24), default="ivr")
    external_id: Mapped[str | None] = mapped_column(String(100), unique=True)
    caller_number: Mapped[str] = mapped_column(String(40), index=True)
    line_id: Mapped[int | None] = mapped_column(ForeignKey("lines.id"))
    request_type: Mapped[RequestType | None] = mapped_column(str_enum(RequestType, "request_type"))
    category: Mapped[str | None] = mapped_column(String(100))
    urgency: Mapped[Urgency] = mapped_column(
        str_enum(Urgency, "urgency"), default=Urgency.DAILY_LIFE
    )
    description: Mapped[str | None] = mapped_column(Text)
    transcript: Mapped[str | None] = mapped_column(Text)
    recording_path: Mapped[str | None] = mapped_column(String(500))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"), index=True)
    status: Mapped[TicketStatus] = mapped_column(
        str_enum(TicketStatus, "ticket_status"), default=TicketStatus.ACCEPTED, index=True
    )
    accepted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    urge_count: Mapped[int] = mapped_column(Integer, default=0)
    # The call that produced the ticket: at most one ticket per call, whoever writes it
    # (the IVR, the hang-up handler, the spool replay or the reconciler).
    origin_uniqueid: Mapped[str | None] = mapped_column(String(64), unique=True)
    transcript_status: Mapped[TranscriptStatus | None] = mapped_column(
        str_enum(TranscriptStatus, "transcript_status"), index=True
    )
    reply: Mapped[str | None] = mapped_column(Text)  # the unit's answer when it closed the ticket
    # who answered the call it came from (issue 20): cut the three rates by agent and queue
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"), index=True)
    queue: Mapped[str | None] = mapped_column(String(64))
    wait_seconds: Mapped[int | None] = mapped_column(Integer)  # in the queue, from queue_log
    talk_seconds: Mapped[int | None] = mapped_column(Integer)
    handling: Mapped[Handling | None] = mapped_column(str_enum(Handling, "handling"))
    closed_as: Mapped[ClosedAs | None] = mapped_column(str_enum(ClosedAs, "closed_as"))
    # 保密: the number and the text are masked for every role but the agent who filed it
    confidential: Mapped[bool] = mapped_column(Boolean, default=False)
    place: Mapped[str | None] = mapped_column(String(200))
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    # 未诉先办 (issue 23): where the problem is, and who set the category how surely
    area_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"), index=True)
    area_source: Mapped[str | None] = mapped_column(String(8))  # import | unit | text | unknown
    category_source: Mapped[str | None] = mapped_column(String(8))  # line|import|staff|model
    category_confidence: Mapped[float | None] = mapped_column(Float)

    line: Mapped[Line | None] = relationship()
    department: Mapped[Department | None] = relationship(foreign_keys=[department_id])
    events: Mapped[list[TicketEvent]] = relationship(
        back_populates="ticket", order_by="TicketEvent.id"
    )
    calls: Mapped[list[Call]] = relationship(back_populates="ticket")


class TicketEvent(Base):
    """One step of a ticket's life: who did what, when."""

    __tablename__ = "ticket_events"
    __table_args__ = (
        Index("ix_ticket_events_ticket_at", "ticket_id", "at"),
        Index("ix_ticket_events_kind_at", "kind", "at"),  # counts of returns etc. per period
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    kind: Mapped[EventKind] = mapped_column(str_enum(EventKind, "event_kind"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(100), default="system")
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    note: Mapped[str | None] = mapped_column(Text)

    ticket: Mapped[Ticket] = relationship(back_populates="events")


class TicketSequence(Base):
    """The last ticket number handed out per day (numbers are YYMMDD + sequence)."""

    __tablename__ = "ticket_sequences"

    day: Mapped[str] = mapped_column(String(8), primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)


class Call(Base):
    """One Asterisk call leg as the hotline saw it, inbound or robot-placed."""

    __tablename__ = "calls"
    __table_args__ = (Index("ix_calls_started_id", "started_at", "id"),)  # keyset paging

    id: Mapped[int] = mapped_column(primary_key=True)
    uniqueid: Mapped[str] = mapped_column(String(64), unique=True)
    linkedid: Mapped[str | None] = mapped_column(String(64), index=True)
    direction: Mapped[CallDirection] = mapped_column(str_enum(CallDirection, "call_direction"))
    caller_number: Mapped[str | None] = mapped_column(String(40), index=True)
    did: Mapped[str | None] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    recording_path: Mapped[str | None] = mapped_column(String(500))
    hangup_cause: Mapped[str | None] = mapped_column(String(64))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    last_step: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    # scale-out (issue 22): which Asterisk node carried the call, and its SIP Call-ID
    node: Mapped[str | None] = mapped_column(String(32), index=True)
    sip_call_id: Mapped[str | None] = mapped_column(String(200))

    ticket: Mapped[Ticket | None] = relationship(back_populates="calls")


class CallbackAttempt(Base):
    """One robot dial attempt, written before the call is placed."""

    __tablename__ = "callback_attempts"
    __table_args__ = (
        UniqueConstraint("ticket_id", "attempt_no", name="uq_callback_attempts_ticket_attempt"),
        Index("ix_callback_attempts_state_planned", "state", "planned_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    attempt_no: Mapped[int] = mapped_column(Integer)
    previous_attempt_id: Mapped[int | None] = mapped_column(ForeignKey("callback_attempts.id"))
    planned_at: Mapped[datetime] = mapped_column(UTCDateTime)
    state: Mapped[AttemptState] = mapped_column(
        str_enum(AttemptState, "attempt_state"), default=AttemptState.QUEUED
    )
    outcome: Mapped[AttemptOutcome | None] = mapped_column(
        str_enum(AttemptOutcome, "attempt_outcome"), index=True
    )
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    hangup_cause: Mapped[str | None] = mapped_column(String(64))
    call_id: Mapped[int | None] = mapped_column(ForeignKey("calls.id"), index=True)
    node: Mapped[str | None] = mapped_column(String(32))  # the node that dialled (issue 22)


class SurveyAnswer(Base):
    """One answer to one survey question; saved the moment it is given."""

    __tablename__ = "survey_answers"
    __table_args__ = (
        UniqueConstraint("attempt_id", "question", name="uq_survey_answers_attempt_question"),
        Index("ix_survey_answers_ticket_question", "ticket_id", "question"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("callback_attempts.id"))
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    question: Mapped[Question] = mapped_column(str_enum(Question, "survey_question"))
    # 1/2/3 as pressed or spoken; -1 no answer in time, -2 invalid key (vendor convention)
    answer: Mapped[int] = mapped_column(Integer)
    via: Mapped[str] = mapped_column(String(16), default="dtmf")
    answered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ValidCallback(Base):
    """有效回访: a callback in which the citizen was reached and answered all three questions.

    The three rates are computed over these rows alone, so they are written once,
    when a survey completes (or a callback made on the main platform is
    imported), with the unit that handled the ticket at that moment: a later
    re-dispatch does not move an old callback to another unit's figures.
    """

    __tablename__ = "valid_callbacks"
    __table_args__ = (
        UniqueConstraint("ticket_id", "surveyed_at", name="uq_valid_callbacks_ticket_surveyed"),
        # one range scan over a period answers the whole three-rate report (covering index)
        Index(
            "ix_valid_callbacks_period",
            "surveyed_at",
            "department_id",
            "contacted",
            "resolved",
            "satisfaction",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"))
    attempt_id: Mapped[int | None] = mapped_column(ForeignKey("callback_attempts.id"), unique=True)
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    surveyed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    contacted: Mapped[int] = mapped_column(Integer)  # 1 contacted in time, 2 not
    resolved: Mapped[int] = mapped_column(Integer)  # 1 resolved, 2 not
    satisfaction: Mapped[int] = mapped_column(Integer)  # 1 satisfied, 2 basically, 3 not
    source: Mapped[str] = mapped_column(String(24), default="robot")


class RobotLock(Base):
    """One row that robots lock while they pick and claim calls (serialises them on any DB)."""

    __tablename__ = "robot_lock"

    id: Mapped[int] = mapped_column(primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(100))
    taken_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class DoNotCall(Base):
    """Numbers the robot must never call again (a citizen who opted out)."""

    __tablename__ = "do_not_call"

    number: Mapped[str] = mapped_column(String(40), primary_key=True)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    reason: Mapped[str | None] = mapped_column(String(200))


class RetentionDeletion(Base):
    """What the retention job removed, when and why: personal data is deleted on the record."""

    __tablename__ = "retention_deletions"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(String(24))  # recording, transcript, cdr, log
    target: Mapped[str] = mapped_column(String(500))  # a path, or a ticket number
    detail: Mapped[str | None] = mapped_column(String(500))


class User(Base):
    """A person who logs in to the supervisors' console.

    Staff see their department's subtree only. `session_version` goes up with a
    new password or a disabled account, which ends every session issued before.
    `failed_logins` counts wrong passwords in a row; past the free ones each sets
    `login_delay_until`, before which no password is even looked at (a growing
    delay, never a lock; an admin clears it).
    """

    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('admin', 'supervisor', 'staff', 'agent')", name="role"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))  # admin | supervisor | staff
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    login_delay_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    department: Mapped[Department | None] = relationship()


class ConsoleSession(Base):
    """One login to the console, kept on the server: the cookie names it, and it is dead
    once ended (logout, a new password, a disabled account) or idle too long.

    Keyed by a hash of the session id, so the table alone cannot be replayed as cookies.
    """

    __tablename__ = "console_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the session id
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_why: Mapped[str | None] = mapped_column(String(16))  # logout, password, disabled, idle
    address: Mapped[str | None] = mapped_column(String(64))


class AuditEntry(Base):
    """Who did what to personal data, when and from where (every listen and download).

    Numbers appear here masked only; the object is named by its id.
    """

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_user_at", "username", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    username: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(32))  # play, download, login, sign, export ...
    object_kind: Mapped[str | None] = mapped_column(String(32))
    object_id: Mapped[int | None] = mapped_column(Integer)
    address: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(String(500))


# Reliability (issue 11): the reconciler looks calls up by their recording's path.
Index("ix_calls_recording_path", Call.recording_path)


class RobotHeartbeat(Base):
    """A robot's last successful dispatch pass: a silent robot is a stalled robot."""

    __tablename__ = "robot_heartbeats"

    robot_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    beat_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class Agent(Base):
    """A console user who answers calls, bound to their own PJSIP seat (core.seats)."""

    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    endpoint: Mapped[str] = mapped_column(String(32), unique=True)  # agent-w001
    phone: Mapped[str] = mapped_column(String(8))  # webrtc | desk
    # the queues the agent logs in to (comma-separated names of config `queues`)
    queues: Mapped[str] = mapped_column(String(400))
    team: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User] = relationship()

    @property
    def queue_names(self) -> list[str]:
        return [name for name in self.queues.split(",") if name]


class AgentStateChange(Base):
    """One change of an agent's state, with its time and reason (a pause's reason)."""

    __tablename__ = "agent_states"

    id: Mapped[int] = mapped_column(primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    state: Mapped[AgentState] = mapped_column(str_enum(AgentState, "agent_state"))
    reason: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    uniqueid: Mapped[str | None] = mapped_column(String(64))  # the call, for ringing/on call

    __table_args__ = (Index("ix_agent_states_agent_at", "agent_id", "at"),)


class QueueLogEntry(Base):
    """One line of Asterisk's queue_log, as Asterisk wrote it: every queue figure's source."""

    __tablename__ = "queue_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    callid: Mapped[str] = mapped_column(String(64), index=True)  # the caller's Uniqueid
    queue: Mapped[str] = mapped_column(String(64))
    agent: Mapped[str] = mapped_column(String(64))  # the member name (an agent's login)
    event: Mapped[str] = mapped_column(String(32))
    data1: Mapped[str | None] = mapped_column(String(200))
    data2: Mapped[str | None] = mapped_column(String(200))
    data3: Mapped[str | None] = mapped_column(String(200))
    data4: Mapped[str | None] = mapped_column(String(200))
    data5: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (Index("ix_queue_log_queue_at", "queue", "at"),)


class QueueLogPosition(Base):
    """How far queue_log has been read (the file's inode and byte offset), kept with its rows.

    One box: one row, no node. A cluster: one row per node whose queue_log is read
    (issue 22), named by `node`.
    """

    __tablename__ = "queue_log_position"

    id: Mapped[int] = mapped_column(primary_key=True)
    inode: Mapped[int] = mapped_column(BigInteger)
    offset: Mapped[int] = mapped_column(BigInteger)
    node: Mapped[str | None] = mapped_column(String(32), unique=True)


class TicketDraft(Base):
    """The agent's ticket form while the call lasts: saved as typed, bound to the call."""

    __tablename__ = "ticket_drafts"

    id: Mapped[int] = mapped_column(primary_key=True)
    uniqueid: Mapped[str] = mapped_column(String(64), unique=True)  # the citizen's call
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    body: Mapped[str] = mapped_column(Text)  # the form's fields as JSON
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CallLeg(Base):
    """A transfer or a three-way call's extra party, on the citizen call's record."""

    __tablename__ = "call_legs"

    id: Mapped[int] = mapped_column(primary_key=True)
    uniqueid: Mapped[str] = mapped_column(String(64), index=True)  # the citizen's call
    kind: Mapped[str] = mapped_column(String(16))  # blind | three_way
    target: Mapped[str] = mapped_column(String(64))  # a queue, an agent or a directory number
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    channel: Mapped[str | None] = mapped_column(String(100))
    recording_path: Mapped[str | None] = mapped_column(String(500))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CallbackTask(Base):
    """A citizen to call back: a message left in the queue or a missed call (回拨未接来电)."""

    __tablename__ = "callback_tasks"

    id: Mapped[int] = mapped_column(primary_key=True)
    uniqueid: Mapped[str] = mapped_column(String(64), unique=True)  # the call it comes from
    caller_number: Mapped[str] = mapped_column(String(40), index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    reason: Mapped[str] = mapped_column(String(24))  # message | abandoned | refused
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_why: Mapped[str | None] = mapped_column(String(64))
    # the agent-first callback (issue 21): who called back, when, how it went
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    last_outcome: Mapped[str | None] = mapped_column(String(24))  # an AttemptOutcome value
    called_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the first callback dialled
    reached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the citizen answered
    callback_uniqueid: Mapped[str | None] = mapped_column(String(64))  # the callback's call


class QualityScore(Base):
    """A supervisor's score of one recorded agent call against the configured checklist."""

    __tablename__ = "quality_scores"

    id: Mapped[int] = mapped_column(primary_key=True)
    uniqueid: Mapped[str] = mapped_column(String(64), index=True)  # the scored call
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id"), index=True)
    scored_by: Mapped[str] = mapped_column(String(64))
    scored_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    items: Mapped[str] = mapped_column(Text)  # {checklist item: points} as JSON
    total: Mapped[float] = mapped_column(Float)  # 0-100
    note: Mapped[str | None] = mapped_column(Text)


class ListenSession(Base):
    """A supervisor listening in on a live agent call (监听 / 耳语 / 强插), audited."""

    __tablename__ = "listen_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    supervisor: Mapped[str] = mapped_column(String(64))
    uniqueid: Mapped[str] = mapped_column(String(64), index=True)  # the citizen's call
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))
    mode: Mapped[str] = mapped_column(String(8))  # listen | whisper | barge
    phone: Mapped[str] = mapped_column(String(64))  # the supervisor's phone rung
    channel: Mapped[str | None] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AnalysisRun(Base):
    """One monthly analysis (or one day's early warning): what it read it says here."""

    __tablename__ = "analysis_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    month: Mapped[str] = mapped_column(String(7), index=True)  # 2026-10, the local month
    kind: Mapped[str] = mapped_column(String(8), default="month")  # month | daily
    day: Mapped[date | None] = mapped_column(Date)  # the daily warning's day
    config: Mapped[str] = mapped_column(Text)  # the analysis settings used, as JSON
    code_version: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(8), default="running")  # running|done|failed
    # the month's category lines (环比/同比/主要反映) and 每月一题 candidates, as JSON
    summary: Mapped[str | None] = mapped_column(Text)


class HotspotFlag(Base):
    """A series that rose beyond its season: category x area x week (or day), with its band."""

    __tablename__ = "hotspot_flags"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("analysis_runs.id", ondelete="CASCADE"))
    category: Mapped[str] = mapped_column(String(100))
    area_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    level: Mapped[str] = mapped_column(String(8))  # district | township
    period: Mapped[str] = mapped_column(String(4))  # week | day
    period_start: Mapped[date] = mapped_column(Date)  # the ISO week's Monday, or the day
    method: Mapped[str] = mapped_column(String(16))  # farrington | ears_c2 | ewma
    observed: Mapped[int] = mapped_column(Integer)
    expected: Mapped[float] = mapped_column(Float)
    upper: Mapped[float] = mapped_column(Float)  # the alarm threshold
    p_value: Mapped[float] = mapped_column(Float)
    q_value: Mapped[float | None] = mapped_column(Float)  # after Benjamini-Hochberg
    state: Mapped[str] = mapped_column(String(8))  # watch (one week) | alert (two running)
    review: Mapped[str | None] = mapped_column(String(12))  # confirmed | dismissed
    reviewed_by: Mapped[str | None] = mapped_column(String(64))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_hotspot_flags_run", "run_id", "category"),)


class Topic(Base):
    """主要反映: one topic of a category's requests in a month, labelled by its top terms."""

    __tablename__ = "topics"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("analysis_runs.id", ondelete="CASCADE"))
    month: Mapped[str] = mapped_column(String(7), index=True)
    category: Mapped[str] = mapped_column(String(100))
    label: Mapped[str] = mapped_column(String(200))
    terms: Mapped[str] = mapped_column(Text)  # [[term, weight], ...] as JSON
    size: Mapped[int] = mapped_column(Integer)  # tickets whose main topic this is
    typical_ticket_ids: Mapped[str] = mapped_column(Text)  # the three most typical, JSON
    is_new: Mapped[bool] = mapped_column(Boolean, default=False)


class UnitSignal(Base):
    """谎报瞒报 / 推诿扯皮: evidence about one unit in one month, to be reviewed by people."""

    __tablename__ = "unit_signals"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("analysis_runs.id", ondelete="CASCADE"))
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    # contradicted_resolved | repeat_after_close | bounced | ping_pong | pair_bounce
    kind: Mapped[str] = mapped_column(String(24))
    other_department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    category: Mapped[str | None] = mapped_column(String(100))
    observed: Mapped[int] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(Integer)
    peer_rate: Mapped[float | None] = mapped_column(Float)
    p_value: Mapped[float | None] = mapped_column(Float)
    q_value: Mapped[float | None] = mapped_column(Float)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    hours_lost: Mapped[float | None] = mapped_column(Float)
    ticket_ids: Mapped[str] = mapped_column(Text)  # the evidence, as a JSON list


class GovernanceTopic(Base):
    """每月一题: a frequent, hard problem adopted for a lead unit, tracked month by month."""

    __tablename__ = "governance_topics"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    category: Mapped[str | None] = mapped_column(String(100))
    keywords: Mapped[str] = mapped_column(Text)  # JSON list
    lead_department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    start_month: Mapped[str] = mapped_column(String(7))
    end_month: Mapped[str | None] = mapped_column(String(7))  # ended; still tracked after
    ended_by: Mapped[str | None] = mapped_column(String(64))
    goal: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class KbEntry(Base):
    """智能知识库: one answer, its phrasings and keywords, versioned and reviewed."""

    __tablename__ = "kb_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), index=True)  # stable across versions
    version: Mapped[int] = mapped_column(Integer, default=1)
    title: Mapped[str] = mapped_column(String(200))
    phrasings: Mapped[str] = mapped_column(Text)  # JSON list, 3 or more
    keywords: Mapped[str] = mapped_column(Text)  # JSON list
    answer_zh: Mapped[str] = mapped_column(Text)
    answer_en: Mapped[str | None] = mapped_column(Text)
    category: Mapped[str | None] = mapped_column(String(100))
    lines: Mapped[str] = mapped_column(Text, default="[]")  # DIDs, JSON; empty: all lines
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    owner_department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(12), default="draft")  # draft|published|retired
    updated_by: Mapped[str] = mapped_column(String(64), default="system")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("key", "version", name="uq_kb_entries_key_version"),)


class KbOffer(Base):
    """An entry offered to a caller or an agent: heard, accepted, and the ticket it made."""

    __tablename__ = "kb_offers"

    id: Mapped[int] = mapped_column(primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("kb_entries.id"), index=True)
    channel: Mapped[str] = mapped_column(String(8))  # queue | menu | speech | agent
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id"))  # channel agent
    caller_number: Mapped[str | None] = mapped_column(String(40), index=True)
    uniqueid: Mapped[str | None] = mapped_column(String(64))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    query: Mapped[str | None] = mapped_column(Text)  # what was said or typed
    score: Mapped[float | None] = mapped_column(Float)
    offered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    heard: Mapped[bool] = mapped_column(Boolean, default=False)
    accepted: Mapped[bool] = mapped_column(Boolean, default=False)


class ClusterNode(Base):
    """What the cluster decided about one Asterisk node (issue 22): draining, or lost.

    A draining node takes no new robot calls (`hotline cluster drain`); a lost node's
    attempts in flight were settled once, at `lost_since`, and are never settled again
    until the node has rejoined (`lost_since` cleared).
    """

    __tablename__ = "cluster_nodes"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    draining_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lost_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CdrRecord(Base):
    """One line of a node's Master.csv, shipped into the store by its node daemon.

    (node, line_key) names the line: `line_key` is a hash of the values the row
    keeps (db.cdr.cdr_line_key), so a line read twice is written once, whether
    from the same place (a crash between the rows and their position) or from a
    new file that holds it again (retention rewrote Master.csv: a new inode, read
    from its start). The inode and offset only say where it was first read; a
    byte offset does not survive a rewrite, and an inode number is reused.
    """

    __tablename__ = "cdr_records"

    id: Mapped[int] = mapped_column(primary_key=True)
    node: Mapped[str] = mapped_column(String(32))
    inode: Mapped[int] = mapped_column(BigInteger)
    offset: Mapped[int] = mapped_column(BigInteger)
    line_key: Mapped[str] = mapped_column(String(64))
    uniqueid: Mapped[str | None] = mapped_column(String(64), index=True)
    linkedid: Mapped[str | None] = mapped_column(String(64))
    src: Mapped[str | None] = mapped_column(String(80))
    dst: Mapped[str | None] = mapped_column(String(80))
    dcontext: Mapped[str | None] = mapped_column(String(80))
    channel: Mapped[str | None] = mapped_column(String(200))
    dstchannel: Mapped[str | None] = mapped_column(String(200))
    lastapp: Mapped[str | None] = mapped_column(String(80))
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    duration: Mapped[int | None] = mapped_column(Integer)
    billsec: Mapped[int | None] = mapped_column(Integer)
    disposition: Mapped[str | None] = mapped_column(String(20))
    userfield: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (UniqueConstraint("node", "line_key", name="uq_cdr_records_node_line_key"),)


class CdrPosition(Base):
    """How far each node's Master.csv has been shipped (its inode and byte offset)."""

    __tablename__ = "cdr_positions"

    node: Mapped[str] = mapped_column(String(32), primary_key=True)
    inode: Mapped[int] = mapped_column(BigInteger)
    offset: Mapped[int] = mapped_column(BigInteger)
