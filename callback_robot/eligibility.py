"""Who the robot may call now: the due rules as one query over the closed tickets.

The same conditions pick the tickets to call (`due_tickets`) and count the
queue for `hotline robot status` and the console (`due_counts`,
`waiting_to_retry`), in the database however long the queue is.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Exists, Select, and_, case, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from core.vocabulary import KB_ANSWERED_SOURCE, AttemptOutcome, AttemptState, TicketStatus
from db.models import CallbackAttempt, DoNotCall, Ticket, ValidCallback


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
    not answered by the knowledge base; not validly surveyed and not opted out; nothing
    in flight for the ticket or its citizen; under the per-ticket, per-day,
    per-citizen, not-answered and answered-but-unfinished limits; the last
    attempt's retry interval (by its outcome) over; not on the do-not-call list.
    """
    limits = (rules.max_attempts, rules.max_attempts_per_day, rules.max_unanswered)
    if min(*limits, rules.max_partial, rules.max_calls_per_citizen_per_day) <= 0:
        return None
    return (
        select(Ticket.id)
        .where(_closed(rules, among), Ticket.closed_at <= rules.closed_before)
        .where(Ticket.source != KB_ANSWERED_SOURCE)  # a recorded answer is not surveyed
        .where(*_not_settled(), ~_over_limits(rules), ~_too_soon(rules))
        .where(*_citizen_free(rules))
        .where(*_within(rules, among))
    )


def _horizon(rules: DueRules, among: Collection[int] | None) -> datetime | None:
    """The oldest close still called back; none for candidates (they were within it)."""
    return rules.closed_after if among is None else None


def _closed(rules: DueRules, among: Collection[int] | None) -> ColumnElement[bool]:
    """Closed, said so that the planner walks the index that bounds the search."""
    if _horizon(rules, among) is None and among is None:
        return Ticket.status == TicketStatus.CLOSED
    # walk the closed_at index over the horizon, or the candidates by id; the status
    # index (every closed ticket ever) must not look cheaper to a planner without
    # statistics
    return func.coalesce(Ticket.status, TicketStatus.CLOSED.value) == TicketStatus.CLOSED.value


def _within(rules: DueRules, among: Collection[int] | None) -> list[ColumnElement[bool]]:
    """Closed after the horizon, or among the candidates."""
    horizon = _horizon(rules, among)
    within = [] if horizon is None else [Ticket.closed_at > horizon]
    return within if among is None else [*within, Ticket.id.in_(list(among))]


def _not_settled() -> list[ColumnElement[bool]]:
    """Nothing in flight, not surveyed (here or elsewhere), not opted out, not blocked."""
    other = aliased(CallbackAttempt)
    settled = exists().where(
        other.ticket_id == Ticket.id,
        or_(
            other.outcome.in_((AttemptOutcome.COMPLETED, AttemptOutcome.OPTED_OUT)),
            other.state.in_(IN_FLIGHT),
        ),
    )
    blocked = exists().where(DoNotCall.number == Ticket.caller_number)
    # surveyed elsewhere (a callback imported from the main platform) counts as settled too
    surveyed = exists().where(ValidCallback.ticket_id == Ticket.id)
    return [~settled, ~surveyed, ~blocked]


def _over_limits(rules: DueRules) -> Exists:
    """The ticket's own attempts, in one grouped look-up by ticket_id (its index).

    Four correlated counts used to let SQLite pick the outcome index for one of
    them and read every partial attempt once per closed ticket.
    """
    other = aliased(CallbackAttempt)

    def tally(condition):  # type: ignore[no-untyped-def]
        return func.sum(case((condition, 1), else_=0))

    return (
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


def _too_soon(rules: DueRules) -> Exists:
    """The last attempt's retry interval, by its outcome, is not over yet."""
    other = aliased(CallbackAttempt)
    # correlated to the outer ticket explicitly: inside the EXISTS below it would
    # otherwise be the highest attempt number of any ticket
    last_no = (
        select(func.max(other.attempt_no))
        .where(other.ticket_id == Ticket.id)
        .correlate(Ticket)
        .scalar_subquery()
    )
    last = aliased(CallbackAttempt)
    return exists().where(
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


def _citizen_free(rules: DueRules) -> list[ColumnElement[bool]]:
    """The citizen (all their tickets) under the calls per day, with no call in flight."""
    other = aliased(CallbackAttempt)
    sibling = aliased(Ticket)
    citizen_attempts = (
        select(func.count())
        .select_from(other)
        .join(sibling, other.ticket_id == sibling.id)
        .where(sibling.caller_number == Ticket.caller_number)
    )
    citizen_today = citizen_attempts.where(other.started_at >= rules.today_start)
    citizen_busy = citizen_attempts.where(other.state.in_(IN_FLIGHT))
    return [
        citizen_today.scalar_subquery() < rules.max_calls_per_citizen_per_day,
        citizen_busy.scalar_subquery() == 0,
    ]


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
