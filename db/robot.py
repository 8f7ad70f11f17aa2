"""The callback robot's rows: attempts written before dialing, answers saved as given.

One attempt row per dial, created in state `dialing` before the Originate is
sent (unique per ticket and attempt number, so a crash can never turn into a
second dial of the same attempt); exactly one outcome when it ends; each survey
answer saved the moment it is given, so a hang-up after Q1 keeps Q1.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, case, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from core.telemetry import ATTEMPTS_ENDED
from core.vocabulary import (
    AttemptOutcome,
    AttemptState,
    CallDirection,
    EventKind,
    Question,
    TicketStatus,
)
from db import workflow
from db.calls import upsert_call_start
from db.models import (
    Call,
    CallbackAttempt,
    DoNotCall,
    RobotHeartbeat,
    RobotLock,
    SurveyAnswer,
    Ticket,
    ValidCallback,
    utcnow,
)
from db.session import after_commit
from db.tickets import add_event


def create_attempt(
    session: Session, ticket_id: int, planned_at: datetime, claimed_by: str
) -> CallbackAttempt:
    """The next attempt of a ticket, in state dialing (raises IntegrityError on a race)."""
    last = (
        session.scalar(
            select(func.max(CallbackAttempt.attempt_no)).where(
                CallbackAttempt.ticket_id == ticket_id
            )
        )
        or 0
    )
    previous = session.scalar(
        select(CallbackAttempt.id).where(
            CallbackAttempt.ticket_id == ticket_id, CallbackAttempt.attempt_no == last
        )
    )
    attempt = CallbackAttempt(
        ticket_id=ticket_id,
        attempt_no=last + 1,
        previous_attempt_id=previous,
        planned_at=planned_at,
        state=AttemptState.DIALING,
        claimed_by=claimed_by,
        started_at=utcnow(),
    )
    session.add(attempt)
    session.flush()
    return attempt


class SurveyRefused(Exception):
    """A survey channel the store will not accept for an attempt; the message says why."""


def accept_survey_call(session: Session, attempt_id: int, uniqueid: str) -> CallbackAttempt:
    """The attempt, now in call on this channel; SurveyRefused when it is not its survey.

    Only an attempt still dialing becomes a survey, once: an attempt already in
    a call (a second survey for it) or finished (a late or forged answer) is
    refused and nothing changes.
    """
    attempt = session.get(CallbackAttempt, attempt_id)
    if attempt is None:
        raise SurveyRefused(f"no callback attempt {attempt_id}")
    if attempt.state != AttemptState.DIALING:
        raise SurveyRefused(
            f"attempt {attempt_id} is {attempt.state.value}"
            + (f" ({attempt.outcome.value})" if attempt.outcome else "")
            + f", not dialing: channel {uniqueid} refused"
        )
    attempt.state = AttemptState.IN_CALL
    session.flush()
    return attempt


def survey_channel_matches(session: Session, attempt_id: int, uniqueid: str) -> bool:
    """True when the attempt has no survey call yet or its survey call is this channel."""
    attempt = session.get(CallbackAttempt, attempt_id)
    if attempt is None:
        return False
    if attempt.call_id is None:
        return True
    return session.scalar(select(Call.uniqueid).where(Call.id == attempt.call_id)) == uniqueid


def save_answer(
    session: Session, attempt_id: int, question: Question, answer: int, via: str
) -> None:
    """Keep one answer per attempt and question (the first one given wins)."""
    attempt = session.get(CallbackAttempt, attempt_id)
    if attempt is None:
        raise ValueError(f"no callback attempt {attempt_id}")
    try:
        with session.begin_nested():
            session.add(
                SurveyAnswer(
                    attempt_id=attempt_id,
                    ticket_id=attempt.ticket_id,
                    question=question,
                    answer=answer,
                    via=via,
                )
            )
    except IntegrityError:
        pass  # already saved: a replay of the same answer


def answers_of(session: Session, attempt_id: int) -> dict[Question, int]:
    rows = session.scalars(select(SurveyAnswer).where(SurveyAnswer.attempt_id == attempt_id))
    return {row.question: row.answer for row in rows}


def finish_attempt(
    session: Session, attempt_id: int, outcome: AttemptOutcome, hangup_cause: str | None = None
) -> CallbackAttempt | None:
    """Give an attempt its one outcome; an attempt that already has one keeps it."""
    attempt = session.get(CallbackAttempt, attempt_id)
    if attempt is None or attempt.outcome is not None:
        return attempt
    attempt.outcome = outcome
    attempt.state = AttemptState.DONE
    attempt.ended_at = utcnow()
    attempt.hangup_cause = hangup_cause
    session.flush()
    # counted once committed: a retry or a spool replay of a failed commit counts it once
    after_commit(session, ATTEMPTS_ENDED.labels(outcome.value).inc)
    if outcome == AttemptOutcome.COMPLETED:
        ticket = session.get(Ticket, attempt.ticket_id)
        if ticket is not None:
            add_event(
                session,
                ticket,
                EventKind.SURVEYED,
                actor="robot",
                note=f"attempt {attempt.attempt_no}",
            )
            record_valid_callback(session, ticket, attempt)
    return attempt


def record_valid_callback(session: Session, ticket: Ticket, attempt: CallbackAttempt) -> None:
    """A completed survey with all three questions answered counts in the rates (有效回访)."""
    answers = answers_of(session, attempt.id)
    if not all(answers.get(question, 0) > 0 for question in Question):
        return  # a question timed out or got a wrong key: reached, but not a valid callback
    session.add(
        ValidCallback(
            ticket_id=ticket.id,
            attempt_id=attempt.id,
            department_id=ticket.department_id,
            surveyed_at=attempt.ended_at or utcnow(),
            contacted=answers[Question.CONTACTED],
            resolved=answers[Question.RESOLVED],
            satisfaction=answers[Question.SATISFACTION],
            source="robot",
        )
    )
    session.flush()


def send_back_for_rework(
    session: Session, ticket_id: int, reason: str, due_at: datetime | None = None
) -> None:
    """A 未解决 or 不满意 answer: 发回重办 and onto the follow-up list, due anew at `due_at`.

    A ticket that is already open again (a supervisor sent it back first) keeps
    its state; the answer is still recorded in the survey.
    """
    ticket = session.get(Ticket, ticket_id)
    if ticket is not None and ticket.status in (TicketStatus.CLOSED, TicketStatus.ARCHIVED):
        workflow.send_back_for_rework(session, ticket, reason, actor="robot", due_at=due_at)


def add_do_not_call(session: Session, number: str, reason: str) -> None:
    if session.get(DoNotCall, number) is None:
        session.add(DoNotCall(number=number, reason=reason))
        session.flush()


def is_do_not_call(session: Session, number: str) -> bool:
    return session.get(DoNotCall, number) is not None


def live_attempts(session: Session) -> int:
    """Attempts dialing or in a call right now (the channel cap counts these)."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(CallbackAttempt)
            .where(CallbackAttempt.state.in_((AttemptState.DIALING, AttemptState.IN_CALL)))
        )
        or 0
    )


@dataclass(frozen=True)
class DueRules:
    """Who may be called at `now` (all limits come from the robot's config)."""

    now: datetime
    today_start: datetime  # local midnight, as an aware datetime
    closed_before: datetime
    max_attempts: int = 3
    max_attempts_per_day: int = 1
    max_calls_per_citizen_per_day: int = 1
    retry_after_minutes: dict[str, int] = field(
        default_factory=lambda: {"no_answer": 120, "busy": 30, "failed": 60, "partial": 240}
    )
    max_unanswered: int = 3
    max_partial: int = 1
    # tickets closed before this are no longer called back (None: no limit); it bounds the
    # eligibility query by the closed_at index instead of every closed ticket ever
    closed_after: datetime | None = None


UNANSWERED = (AttemptOutcome.NO_ANSWER, AttemptOutcome.BUSY, AttemptOutcome.FAILED)
IN_FLIGHT = (AttemptState.QUEUED, AttemptState.DIALING, AttemptState.IN_CALL)


def due_tickets(
    session: Session, rules: DueRules, limit: int, among: Collection[int] | None = None
) -> list[int]:
    """Tickets the robot should call now, emergencies first, then the oldest closed.

    Due as `due_now` says; `among` (ids from an earlier search) narrows it to those.
    """
    query = due_now(rules, among)
    if query is None:
        return []
    ordered = query.order_by(
        case((Ticket.urgency == "emergency", 0), else_=1), Ticket.closed_at, Ticket.id
    )
    return list(session.scalars(ordered.limit(limit)))


def due_counts(session: Session, rules: DueRules) -> tuple[int, int]:
    """(tickets due now, of which tried before), counted in the database."""
    query = due_now(rules)
    if query is None:
        return 0, 0
    tried = exists().where(CallbackAttempt.ticket_id == Ticket.id)
    counts = query.with_only_columns(func.count(), func.count().filter(tried))
    due, tried_and_due = session.execute(counts.select_from(Ticket)).one()
    return int(due), int(tried_and_due)


def due_now(rules: DueRules, among: Collection[int] | None = None) -> Select[tuple[int]] | None:
    """The ids of the tickets due now, unordered; None when a limit of 0 lets nobody be due.

    Due: closed long enough ago (and not before the horizon, `closed_after`);
    not validly surveyed and not opted out; nothing
    in flight for the ticket or its citizen; under the per-ticket, per-day,
    per-citizen, not-answered and answered-but-unfinished limits; the last
    attempt's retry interval (by its outcome) over; not on the do-not-call list.
    """
    limits = (rules.max_attempts, rules.max_attempts_per_day, rules.max_unanswered)
    if min(*limits, rules.max_partial, rules.max_calls_per_citizen_per_day) <= 0:
        return None
    other = aliased(CallbackAttempt)
    sibling = aliased(Ticket)

    def tally(condition):  # type: ignore[no-untyped-def]
        return func.sum(case((condition, 1), else_=0))

    # The ticket's own attempts, in one grouped look-up by ticket_id (its index): the
    # per-ticket limits. Four correlated counts used to let SQLite pick the outcome
    # index for one of them and read every partial attempt once per closed ticket.
    over_limits = (
        select(other.ticket_id)
        .where(other.ticket_id == Ticket.id)
        .group_by(other.ticket_id)
        .having(
            or_(
                func.count() >= rules.max_attempts,
                tally(other.started_at >= rules.today_start) >= rules.max_attempts_per_day,
                tally(other.outcome.in_(UNANSWERED)) >= rules.max_unanswered,
                tally(other.outcome == AttemptOutcome.PARTIAL) >= rules.max_partial,
            )
        )
        .exists()
    )
    settled = exists().where(
        other.ticket_id == Ticket.id,
        or_(
            other.outcome.in_((AttemptOutcome.COMPLETED, AttemptOutcome.OPTED_OUT)),
            other.state.in_(IN_FLIGHT),
        ),
    )
    # correlated to the outer ticket explicitly: inside the EXISTS below it would
    # otherwise be the highest attempt number of any ticket
    last_no = (
        select(func.max(other.attempt_no))
        .where(other.ticket_id == Ticket.id)
        .correlate(Ticket)
        .scalar_subquery()
    )
    last = aliased(CallbackAttempt)
    too_soon = exists().where(
        last.ticket_id == Ticket.id,
        last.attempt_no == last_no,
        or_(
            *[
                and_(
                    last.outcome == AttemptOutcome(outcome),
                    last.ended_at > rules.now - timedelta(minutes=minutes),
                )
                for outcome, minutes in rules.retry_after_minutes.items()
            ]
        ),
    )
    citizen_attempts = (
        select(func.count())
        .select_from(other)
        .join(sibling, other.ticket_id == sibling.id)
        .where(sibling.caller_number == Ticket.caller_number)
    )
    citizen_today = citizen_attempts.where(other.started_at >= rules.today_start)
    citizen_busy = citizen_attempts.where(other.state.in_(IN_FLIGHT))
    blocked = exists().where(DoNotCall.number == Ticket.caller_number)
    # surveyed elsewhere (a callback imported from the main platform) counts as settled too
    surveyed = exists().where(ValidCallback.ticket_id == Ticket.id)
    status = Ticket.status == TicketStatus.CLOSED
    horizon = rules.closed_after if among is None else None  # the candidates were within it
    if horizon is not None or among is not None:
        # walk the closed_at index over the horizon, or the candidates by id; the status
        # index (every closed ticket ever) must not look cheaper to a planner without
        # statistics
        status = (
            func.coalesce(Ticket.status, TicketStatus.CLOSED.value) == TicketStatus.CLOSED.value
        )
    query = (
        select(Ticket.id)
        .where(status, Ticket.closed_at <= rules.closed_before)
        .where(~settled, ~surveyed, ~blocked, ~over_limits, ~too_soon)
        .where(
            citizen_today.scalar_subquery() < rules.max_calls_per_citizen_per_day,
            citizen_busy.scalar_subquery() == 0,
        )
    )
    if horizon is not None:
        query = query.where(Ticket.closed_at > horizon)
    if among is not None:
        query = query.where(Ticket.id.in_(list(among)))
    return query


def attempts_started_since(session: Session, since: datetime) -> int:
    """Attempts started since a moment (the calls-per-minute pacing counts these)."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(CallbackAttempt)
            .where(CallbackAttempt.started_at >= since)
        )
        or 0
    )


def _local_day(column, dialect: str, tz: str):  # type: ignore[no-untyped-def]
    """The local calendar day of a UTC timestamp column, computed in SQL."""
    if dialect == "postgresql":
        return func.to_char(func.timezone(tz, column), "YYYY-MM-DD")
    offset = datetime.now(ZoneInfo(tz)).utcoffset()
    hours = int(offset.total_seconds() // 3600) if offset else 0
    return func.date(column, f"{hours:+d} hours")


REACHED = (AttemptOutcome.COMPLETED, AttemptOutcome.PARTIAL, AttemptOutcome.OPTED_OUT)


@dataclass(frozen=True)
class RobotFigures:
    """The robot's work over a period: calls, outcomes, per-ticket reach, outcomes per day."""

    placed: int
    reached: int
    completed: int
    tickets: int
    tickets_completed_within: int
    within_attempts: int
    outcome_mix: dict[str, int]
    by_day: dict[str, dict[str, int]]  # local day "YYYY-MM-DD" -> outcome value -> calls

    @property
    def success_rate(self) -> float | None:
        """Completed surveys / calls placed (the robot's success rate); None without calls."""
        return self.completed / self.placed if self.placed else None

    @property
    def reach_rate(self) -> float | None:
        """Calls answered by the citizen / calls placed."""
        return self.reached / self.placed if self.placed else None

    @property
    def ticket_rate(self) -> float | None:
        """Tickets completed within `within_attempts` calls / tickets called."""
        return self.tickets_completed_within / self.tickets if self.tickets else None


def robot_figures(
    session: Session, start: datetime, end: datetime, tz: str, within_attempts: int = 3
) -> RobotFigures:
    """Calls placed, reached, completed, success rate and the outcome mix per local day."""
    dialect = session.get_bind().dialect.name
    in_range = (
        CallbackAttempt.started_at >= start,
        CallbackAttempt.started_at < end,
        CallbackAttempt.outcome.is_not(None),
    )
    day = _local_day(CallbackAttempt.started_at, dialect, tz).label("day")
    rows = session.execute(
        select(day, CallbackAttempt.outcome, func.count())
        .where(*in_range)
        .group_by(day, CallbackAttempt.outcome)
        .order_by(day)
    ).all()
    by_day: dict[str, dict[str, int]] = {}
    for day_value, outcome, count in rows:
        by_day.setdefault(str(day_value), {})[AttemptOutcome(outcome).value] = int(count)
    placed = sum(sum(v.values()) for v in by_day.values())
    reached = sum(v.get(o.value, 0) for v in by_day.values() for o in REACHED)
    completed = sum(v.get(AttemptOutcome.COMPLETED.value, 0) for v in by_day.values())
    tickets = (
        session.scalar(
            select(func.count(func.distinct(CallbackAttempt.ticket_id))).where(*in_range)
        )
        or 0
    )
    reached_tickets = (
        session.scalar(
            select(func.count(func.distinct(CallbackAttempt.ticket_id))).where(
                *in_range,
                CallbackAttempt.outcome == AttemptOutcome.COMPLETED,
                CallbackAttempt.attempt_no <= within_attempts,
            )
        )
        or 0
    )
    mix: dict[str, int] = {}
    for counts in by_day.values():
        for outcome_name, count in counts.items():
            mix[outcome_name] = mix.get(outcome_name, 0) + count
    return RobotFigures(
        placed=placed,
        reached=reached,
        completed=completed,
        tickets=int(tickets),
        tickets_completed_within=int(reached_tickets),
        within_attempts=within_attempts,
        outcome_mix=mix,
        by_day=by_day,
    )


def attempt_state_counts(session: Session) -> dict[AttemptState, int]:
    """How many attempts are in each state now (every state present, zero if none)."""
    rows = session.execute(
        select(CallbackAttempt.state, func.count()).group_by(CallbackAttempt.state)
    ).all()
    counts = dict.fromkeys(AttemptState, 0)
    counts.update({AttemptState(state): int(count) for state, count in rows})
    return counts


def attempts_in_flight(session: Session) -> list[CallbackAttempt]:
    return list(
        session.scalars(
            select(CallbackAttempt).where(
                CallbackAttempt.state.in_((AttemptState.DIALING, AttemptState.IN_CALL))
            )
        )
    )


def free_budget(
    session: Session, now: datetime, *, max_channels: int, calls_per_minute: int
) -> int:
    """How many calls may start now: free channels, within the calls-per-minute pace."""
    free = max_channels - live_attempts(session)
    paced = calls_per_minute - attempts_started_since(session, now - timedelta(minutes=1))
    return min(free, paced)


def claim_due(
    session: Session,
    rules: DueRules,
    *,
    max_channels: int,
    calls_per_minute: int,
    robot_id: str,
    candidates: Collection[int] | None = None,
) -> list[tuple[int, int, str]]:
    """Pick the tickets to call now and write their attempts, as one serialised step.

    The robot-lock row is updated first, which holds a row lock on PostgreSQL and
    the write lock on SQLite until commit: two robots never pick at the same
    time, so the channel cap and the pace hold across robots and no ticket gets
    two attempts. One call per citizen per pass. Returns (attempt id, ticket id,
    caller number) to dial.

    `candidates` (from `due_tickets` in an earlier, read-only transaction) keeps
    the lock short: under it only those tickets are checked again, instead of
    searching every closed ticket while the IVR waits for the SQLite write lock.
    """
    now = rules.now
    session.execute(
        update(RobotLock).where(RobotLock.id == 1).values(holder=robot_id, taken_at=now)
    )
    budget = free_budget(session, now, max_channels=max_channels, calls_per_minute=calls_per_minute)
    if budget <= 0:
        return []
    claimed: list[tuple[int, int, str]] = []
    numbers: set[str] = set()
    for ticket_id in due_tickets(session, rules, limit=budget * 4, among=candidates):
        number = str(session.scalar(select(Ticket.caller_number).where(Ticket.id == ticket_id)))
        if number in numbers:
            continue  # the citizen's other ticket waits for a later, spaced call
        attempt = create_attempt(session, ticket_id, now, robot_id)
        attempt.started_at = now
        numbers.add(number)
        claimed.append((attempt.id, ticket_id, number))
        if len(claimed) == budget:
            break
    session.flush()
    return claimed


def link_survey_call(
    session: Session,
    attempt_id: int,
    uniqueid: str,
    number: str,
    recording: str | None,
    linkedid: str | None,
) -> None:
    """The survey's call row (outbound, with its recording), linked to the attempt."""
    attempt = session.get(CallbackAttempt, attempt_id)
    if attempt is None:
        return
    ticket = session.get(Ticket, attempt.ticket_id)
    call = upsert_call_start(
        session,
        uniqueid=uniqueid,
        caller_number=ticket.caller_number if ticket else number,
        did=None,
        started_at=attempt.started_at or utcnow(),
        answered_at=utcnow(),
        linkedid=linkedid,
        recording_path=recording,
        direction=CallDirection.OUTBOUND,
    )
    call.ticket_id = attempt.ticket_id
    attempt.call_id = call.id
    session.flush()


def waiting_to_retry(session: Session, tried_and_due: int) -> int:
    """Tickets tried but not yet surveyed, with nothing in flight, that are not due now.

    Those tried and idle, less `tried_and_due` (from `due_counts`): a due ticket is
    closed, unsettled and has nothing in flight, so it is always among them.
    """
    other = CallbackAttempt
    tried = exists().where(other.ticket_id == Ticket.id)
    settled = exists().where(
        other.ticket_id == Ticket.id,
        other.outcome.in_((AttemptOutcome.COMPLETED, AttemptOutcome.OPTED_OUT)),
    )
    busy = exists().where(other.ticket_id == Ticket.id, other.state.in_(IN_FLIGHT))
    idle = session.scalar(
        select(func.count())
        .select_from(Ticket)
        .where(Ticket.status == TicketStatus.CLOSED, tried, ~settled, ~busy)
    )
    return int(idle or 0) - tried_and_due


def record_heartbeat(session: Session, robot_id: str, started_at: datetime, at: datetime) -> None:
    """A robot's successful dispatch pass (one row per robot process, updated in place)."""
    row = session.get(RobotHeartbeat, robot_id)
    if row is None:
        session.add(RobotHeartbeat(robot_id=robot_id, started_at=started_at, beat_at=at))
    else:
        row.beat_at = at
    session.flush()


def latest_heartbeat(session: Session) -> RobotHeartbeat | None:
    """The most recent dispatch pass of any robot, or None if no robot ever ran."""
    return session.scalars(
        select(RobotHeartbeat).order_by(RobotHeartbeat.beat_at.desc()).limit(1)
    ).first()
