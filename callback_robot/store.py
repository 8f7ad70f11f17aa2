"""The robot's way into the store: the survey, survey-end and the dialer write intents.

The same path as the IVR's (`db.gateway.StoreGateway`): each write is tried
off the event loop for `robot.db_retry_seconds` (a locked SQLite, an unreachable
PostgreSQL, an exhausted pool), then spooled durably in
`var/spool/robot` and applied later — by the robot before every recovery
pass, so an attempt is never settled from Asterisk's records while the
citizen's own answers still wait in the spool. Every intent is idempotent:
one answer per attempt and question, one outcome per attempt.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from callback_robot.answers import add_do_not_call, link_survey_call, save_answer
from callback_robot.attempts import finish_attempt, send_back_for_rework
from core.config import HotlineConfig
from core.deadlines import due_at
from core.vocabulary import AttemptOutcome, Question
from db.gateway import StoreGateway
from db.models import Ticket, utcnow
from db.spool import Spool, read_time

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class SurveyLinked:
    """Intent: the survey call's row, linked to its attempt."""

    attempt_id: int
    uniqueid: str
    number: str
    recording: str | None
    linkedid: str | None


@dataclass
class SurveyAnswerGiven:
    """Intent: one answer, as the citizen gave it."""

    attempt_id: int
    question: str  # a Question value
    answer: int
    via: str
    at: datetime = field(default_factory=utcnow)


@dataclass
class SurveyCompleted:
    """Intent: all three questions asked; a bad answer sends the ticket back for rework."""

    attempt_id: int
    ticket_id: int
    answers: dict[str, int]  # Question value -> answer
    at: datetime = field(default_factory=utcnow)


@dataclass
class SurveyOptedOut:
    """Intent: the citizen pressed the opt-out key."""

    attempt_id: int
    ticket_id: int
    at: datetime = field(default_factory=utcnow)


@dataclass
class AttemptEnded:
    """Intent: an attempt's one outcome (survey-end, or the dialer's OriginateResponse)."""

    attempt_id: int
    outcome: str  # an AttemptOutcome value
    cause: str | None
    at: datetime = field(default_factory=utcnow)


RobotIntent = SurveyLinked | SurveyAnswerGiven | SurveyCompleted | SurveyOptedOut | AttemptEnded
KINDS: dict[str, type[RobotIntent]] = {
    "survey_link": SurveyLinked,
    "survey_answer": SurveyAnswerGiven,
    "survey_completed": SurveyCompleted,
    "survey_opt_out": SurveyOptedOut,
    "attempt_end": AttemptEnded,
}
KIND_OF = {cls: kind for kind, cls in KINDS.items()}


def from_payload(kind: str, payload: dict[str, Any]) -> RobotIntent:
    """An intent as read back from the spool's JSON (times parsed)."""
    cls = KINDS[kind]
    values = dict(payload)
    if "at" in values:
        values["at"] = read_time(values["at"])
    return cls(**values)


class RobotStore:
    """Retried, spooled writes of the survey and the dialer."""

    def __init__(
        self, config: HotlineConfig, sessions: sessionmaker[Session], spool: Spool | None = None
    ) -> None:
        self.config = config
        self.sessions = sessions
        self.gateway = StoreGateway(
            sessions, config.robot.db_retry_seconds, spool or Spool(config.robot_spool_dir)
        )
        self.spool = self.gateway.spool
        for kind in KINDS:
            self.gateway.register(
                kind,
                lambda session, payload, kind=kind: self.apply(  # type: ignore[misc]
                    session, from_payload(kind, payload)
                ),
            )

    async def read(self, work: Callable[[Session], T]) -> T:
        """A read (or a write that needs its answer now): retried, raises StoreUnavailable."""
        return await self.gateway.run(work)

    async def record(self, intent: RobotIntent) -> bool:
        """Apply an intent now, or spool it; True when it is in the store already.

        Intents of one attempt must land in order (a survey's completion before
        the hang-up's "partial"): while earlier ones wait in the spool and cannot
        be applied yet, this one queues behind them.
        """
        kind = KIND_OF[type(intent)]
        if self.spool.pending():
            _applied, left = await asyncio.to_thread(self.gateway.replay)
            if left:
                await self.gateway.put(kind, asdict(intent))
                return False
        done = await self.gateway.write(
            kind, asdict(intent), lambda session: self.apply(session, intent) or True
        )
        return bool(done)

    def replay(self) -> tuple[int, int]:
        """Apply the spooled intents in order (synchronous: run it in a thread)."""
        applied, left = self.gateway.replay()
        if applied or left:
            log.warning("robot spool: %d intents applied, %d left for later", applied, left)
        return applied, left

    def apply(self, session: Session, intent: RobotIntent) -> None:
        """Apply an intent of any kind, idempotently."""
        if isinstance(intent, SurveyLinked):
            link_survey_call(
                session,
                intent.attempt_id,
                intent.uniqueid,
                intent.number,
                intent.recording,
                intent.linkedid,
            )
        elif isinstance(intent, SurveyAnswerGiven):
            save_answer(
                session, intent.attempt_id, Question(intent.question), intent.answer, intent.via
            )
        elif isinstance(intent, SurveyCompleted):
            self.complete(session, intent)
        elif isinstance(intent, SurveyOptedOut):
            ticket = session.get(Ticket, intent.ticket_id)
            if ticket is not None:
                add_do_not_call(
                    session, ticket.caller_number, f"opted out on attempt {intent.attempt_id}"
                )
            finish_attempt(session, intent.attempt_id, AttemptOutcome.OPTED_OUT)
        else:
            finish_attempt(session, intent.attempt_id, AttemptOutcome(intent.outcome), intent.cause)

    def complete(self, session: Session, intent: SurveyCompleted) -> None:
        """The survey's end: completed, and 发回重办 with a new due time on a bad answer."""
        finish_attempt(session, intent.attempt_id, AttemptOutcome.COMPLETED)
        answers = {Question(q): a for q, a in intent.answers.items()}
        if answers.get(Question.RESOLVED) == 2:
            reason = "citizen says: not resolved (未解决)"
        elif answers.get(Question.SATISFACTION) == 3:
            reason = "citizen says: not satisfied (不满意)"
        else:
            return
        ticket = session.get(Ticket, intent.ticket_id)
        if ticket is None:
            return
        # the same step as a supervisor's rework: the due time is counted afresh
        due = due_at(intent.at, ticket.urgency, self.config.deadlines, self.config.tz)
        send_back_for_rework(session, intent.ticket_id, reason, due)
