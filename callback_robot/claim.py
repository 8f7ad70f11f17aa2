"""Claiming calls: the channel cap and the pace, counted in the store, under the robot lock.

The robot-lock row serialises the claims: two robots (and the agent-first
callback dialer, which takes the same lock) never pick at the same time, so the
cap and the pace hold across processes and no ticket gets two attempts.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from callback_robot.attempts import create_attempt
from callback_robot.eligibility import DueRules, due_tickets
from db.callbacks import outbound_load
from db.models import RobotLock, Ticket


def free_budget(
    session: Session, now: datetime, *, max_channels: int, calls_per_minute: int
) -> int:
    """How many calls may start now: free channels, within the calls-per-minute pace.

    The agent-first callbacks (回拨未接来电) dial on the same trunk under the same caps:
    their live calls and those started in the last minute are counted with the
    robot's attempts, by the one query the callback dialer also uses.
    """
    load = outbound_load(session, now - timedelta(minutes=1))
    return min(max_channels - load.live, calls_per_minute - load.started)


def claim_due(
    session: Session,
    rules: DueRules,
    *,
    max_channels: int,
    calls_per_minute: int,
    robot_id: str,
    candidates: Collection[int] | None = None,
    node: str | None = None,
) -> list[tuple[int, int, str]]:
    """Pick the tickets to call now and write their attempts, as one serialised step.

    The robot-lock row is updated first, which holds a row lock on PostgreSQL and
    the write lock on SQLite until commit: two robots never pick at the same
    time, so the channel cap and the pace hold across robots and no ticket gets
    two attempts. One call per citizen per pass. Returns (attempt id, ticket id,
    caller number) to dial; each attempt names `node`, the Asterisk node that dials it.

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
        attempt = create_attempt(session, ticket_id, now, robot_id, node)
        attempt.started_at = now
        numbers.add(number)
        claimed.append((attempt.id, ticket_id, number))
        if len(claimed) == budget:
            break
    session.flush()
    return claimed
