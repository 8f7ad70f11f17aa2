"""The robot's way into the store: the survey, survey-end, the dialer, the claim and the heartbeat.

Its gateway on the process's store runtime (`db.runtime`), beside the IVR's:
inside `hotline serve` the robot's writes take turns with the calls' on one
queue (the store process, or the store thread), never racing them for
SQLite's lock; `hotline robot run` has a runtime of its own on its own engine.
Each piece of work is an operation named here (`RobotOperations`, built in the
store process from `robot_operations`), tried for `robot.db_retry_seconds` (a
locked SQLite, an unreachable PostgreSQL, an exhausted pool). The survey's
intents are then spooled durably in `var/spool/robot` and applied later — by
the robot before every recovery pass, so an attempt is never settled from
Asterisk's records while the citizen's own answers still wait in the spool;
every intent is idempotent: one answer per attempt and question, one outcome
per attempt. A claim, a heartbeat or a recovery pass that cannot reach the
store fails its pass (StoreUnavailable), logged; the next pass tries again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from callback_robot.answers import (
    SurveyRefused,
    accept_survey_call,
    add_do_not_call,
    link_survey_call,
    save_answer,
    survey_channel_matches,
)
from callback_robot.attempts import create_attempt, finish_attempt, send_back_for_rework
from callback_robot.claim import ClaimedCall, claim_due
from callback_robot.eligibility import DueRules
from callback_robot.heartbeat import record_heartbeat
from callback_robot.lost import rejoin_node, settle_lost_node
from callback_robot.nodes import NodeView
from callback_robot.recovery import settle
from core.config import HotlineConfig
from core.deadlines import due_at
from core.vocabulary import AttemptOutcome, Question
from db.models import Ticket, utcnow
from db.runtime import Operation, Spool, StoreRuntime, read_time

log = logging.getLogger(__name__)
Claimed = list[ClaimedCall]  # the calls to place: attempt, ticket, caller number, node


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


class RobotOperations:
    """The robot's store work by name, each in one transaction: the store's side.

    It runs wherever the store work runs: in the store process
    (`robot_operations`), on the store thread, or in the spool's replay. Every
    operation takes and returns plain values (they cross the store process's pipe).
    """

    def __init__(self, config: HotlineConfig) -> None:
        self.config = config

    def table(self) -> dict[str, Operation]:
        """Operations by kind: the spooled intents' kinds, then the robot's own work."""
        table: dict[str, Operation] = {
            kind: lambda s, p, kind=kind: self.apply(s, from_payload(kind, p)) or True  # type: ignore[misc]
            for kind in KINDS
        }
        table.update(
            {
                "survey_accept": lambda s, p: self.accept(s, p["attempt_id"], p["uniqueid"]),
                "survey_channel": lambda s, p: survey_channel_matches(
                    s, p["attempt_id"], p["uniqueid"]
                ),
                "attempt_begin": lambda s, p: self.begin(
                    s, p["ticket_id"], p["planned_at"], p["robot_id"]
                ),
                "robot_claim": lambda s, p: claim_due(
                    s,
                    p["rules"],
                    max_channels=p["max_channels"],
                    calls_per_minute=p["calls_per_minute"],
                    robot_id=p["robot_id"],
                    candidates=p["candidates"],
                    node=self.config.asterisk.systemname,
                    view=p.get("view"),
                ),
                "robot_heartbeat": lambda s, p: record_heartbeat(
                    s, p["robot_id"], p["started_at"], p["at"]
                ),
                "robot_recover": lambda s, p: settle(
                    s, p["live"], p["started_before"], p["records"], p.get("node")
                ),
                "robot_node_lost": lambda s, p: settle_lost_node(
                    s, p["node"], p["at"], p["robot_id"]
                ),
                "robot_node_rejoined": lambda s, p: rejoin_node(s, p["node"], p["at"]),
            }
        )
        return table

    def accept(self, session: Session, attempt_id: int, uniqueid: str) -> dict[str, Any]:
        """The survey channel accepted (`ticket_id`), or why it is `refused` (nothing changed)."""
        try:
            return {"ticket_id": accept_survey_call(session, attempt_id, uniqueid).ticket_id}
        except SurveyRefused as exc:
            return {"refused": str(exc)}

    def begin(
        self, session: Session, ticket_id: int, planned_at: datetime, robot_id: str
    ) -> tuple[int, str] | None:
        """A ticket's next attempt, dialing: (attempt id, number); None without such a ticket."""
        ticket = session.get(Ticket, ticket_id)
        if ticket is None:
            return None
        node = self.config.asterisk.systemname  # the node this robot dials through
        attempt = create_attempt(session, ticket_id, planned_at, robot_id, node)
        return attempt.id, ticket.caller_number

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


def robot_operations(config: HotlineConfig) -> dict[str, Operation]:
    """The store process's robot operations (`functools.partial(robot_operations, config)`)."""
    return RobotOperations(config).table()


class RobotStore:
    """The robot's gateway: retried work; the survey's intents spooled when the store is away."""

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
            config.robot.db_retry_seconds, spool or Spool(config.robot_spool_dir)
        )
        self.spool = self.gateway.spool
        self.operations = RobotOperations(config)
        for kind, operation in self.operations.table().items():
            self.runtime.register(kind, operation)

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
        return bool(await self.gateway.write(kind, asdict(intent)))

    # -- work that needs its answer now: retried, then StoreUnavailable --------------
    async def accept_survey(self, attempt_id: int, uniqueid: str) -> int:
        """The attempt, now in call on this channel: its ticket id; else SurveyRefused."""
        accepted = await self.gateway.perform(
            "survey_accept", {"attempt_id": attempt_id, "uniqueid": uniqueid}
        )
        if "refused" in accepted:
            raise SurveyRefused(accepted["refused"])
        return int(accepted["ticket_id"])

    async def survey_channel_matches(self, attempt_id: int, uniqueid: str) -> bool:
        """True when the attempt has no survey call yet or its survey call is this channel."""
        return bool(
            await self.gateway.perform(
                "survey_channel", {"attempt_id": attempt_id, "uniqueid": uniqueid}
            )
        )

    async def begin_attempt(
        self, ticket_id: int, planned_at: datetime, robot_id: str
    ) -> tuple[int, str]:
        """A ticket's next attempt, written dialing: (attempt id, caller number)."""
        begun = await self.gateway.perform(
            "attempt_begin",
            {"ticket_id": ticket_id, "planned_at": planned_at, "robot_id": robot_id},
        )
        if begun is None:
            raise ValueError(f"no ticket {ticket_id}")
        attempt_id, number = begun
        return attempt_id, number

    async def claim(
        self,
        rules: DueRules,
        *,
        max_channels: int,
        calls_per_minute: int,
        robot_id: str,
        candidates: Collection[int],
        view: NodeView | None = None,
    ) -> Claimed:
        """`callback_robot.claim.claim_due` under the robot lock, among the candidates.

        `view`: a cluster's nodes as this robot sees them; each call's node is chosen
        in the claim.
        """
        claimed = await self.gateway.perform(
            "robot_claim",
            {
                "rules": rules,
                "max_channels": max_channels,
                "calls_per_minute": calls_per_minute,
                "robot_id": robot_id,
                "candidates": list(candidates),
                "view": view,
            },
        )
        return [ClaimedCall(*row) for row in claimed]

    async def heartbeat(self, robot_id: str, started_at: datetime, at: datetime) -> None:
        """A successful dispatch pass of this robot."""
        await self.gateway.perform(
            "robot_heartbeat", {"robot_id": robot_id, "started_at": started_at, "at": at}
        )

    async def settle_in_flight(
        self,
        live: set[int],
        started_before: datetime | None,
        records: dict[int, str] | None,
        node: str | None = None,
    ) -> list[tuple[int, str]]:
        """`callback_robot.recovery.settle`: orphaned attempts given an outcome.

        `node` (a cluster): only that node's attempts, `records` None to read its
        call records from the store.
        """
        settled = await self.gateway.perform(
            "robot_recover",
            {
                "live": set(live),
                "started_before": started_before,
                "records": None if records is None else dict(records),
                "node": node,
            },
        )
        return [tuple(row) for row in settled]  # type: ignore[misc]

    async def node_lost(
        self, node: str, at: datetime, robot_id: str = "robot"
    ) -> list[tuple[int, str]] | None:
        """`callback_robot.lost.settle_lost_node`: marked lost and settled once (None: already)."""
        settled = await self.gateway.perform(
            "robot_node_lost", {"node": node, "at": at, "robot_id": robot_id}
        )
        return None if settled is None else [tuple(row) for row in settled]  # type: ignore[misc]

    async def node_rejoined(self, node: str, at: datetime) -> bool:
        """`callback_robot.lost.rejoin_node`: whether the node had been lost."""
        return bool(await self.gateway.perform("robot_node_rejoined", {"node": node, "at": at}))

    # -- the spool ---------------------------------------------------------------------
    def replay(self) -> tuple[int, int]:
        """Apply the spooled intents in order (synchronous: run it in a thread)."""
        applied, left = self.gateway.replay()
        if applied or left:
            log.warning("robot spool: %d intents applied, %d left for later", applied, left)
        return applied, left

    def apply(self, session: Session, intent: RobotIntent) -> None:
        """Apply an intent of any kind, idempotently, in this session."""
        self.operations.apply(session, intent)
