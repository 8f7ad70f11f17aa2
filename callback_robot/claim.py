"""Claiming calls: the channel cap and the pace, counted in the store, under the robot lock.

The robot-lock row serialises the claims: two robots (and the agent-first
callback dialer, which takes the same lock) never pick at the same time, so the
cap and the pace hold across processes and no ticket gets two attempts.

In a cluster (issue 22) the same transaction picks each call's node: among the
nodes this robot sees healthy, those neither draining nor lost (read under the
lock), the one with the most free slots under the per-node cap, counted from
the attempts in flight on each node (`callback_robot.nodes`).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from callback_robot.attempts import create_attempt
from callback_robot.eligibility import DueRules, due_tickets
from callback_robot.nodes import NodeView, assign_nodes, free_slots
from db.callbacks import in_flight_by_node, outbound_load
from db.cluster import draining_nodes, lost_nodes
from db.models import RobotLock, Ticket


class ClaimedCall(NamedTuple):
    """A call claimed to be placed now: its attempt (written, dialing) and where it goes."""

    attempt_id: int
    ticket_id: int
    number: str  # the citizen's number
    node: str | None  # the Asterisk node that dials it (None on one box)


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


def take_robot_lock(session: Session, robot_id: str, at: datetime) -> None:
    """Hold the robot-lock row until this transaction ends: robots' claims take turns.

    Its first statement is a write, so SQLite takes its write lock at once (waiting
    out the busy timeout) instead of failing to upgrade a read later.
    """
    session.execute(update(RobotLock).where(RobotLock.id == 1).values(holder=robot_id, taken_at=at))


def node_slots(session: Session, view: NodeView) -> dict[str, int]:
    """Free slots per usable node, from the store's counts and this robot's view of the nodes."""
    in_flight = in_flight_by_node(session)
    return free_slots(view, in_flight, draining_nodes(session), lost_nodes(session))


def claim_due(
    session: Session,
    rules: DueRules,
    *,
    max_channels: int,
    calls_per_minute: int,
    robot_id: str,
    candidates: Collection[int] | None = None,
    node: str | None = None,
    view: NodeView | None = None,
) -> list[ClaimedCall]:
    """Pick the tickets to call now and write their attempts, as one serialised step.

    The robot-lock row is updated first, which holds a row lock on PostgreSQL and
    the write lock on SQLite until commit: two robots never pick at the same
    time, so the channel cap and the pace hold across robots and no ticket gets
    two attempts. One call per citizen per pass. Each attempt names `node`, the
    Asterisk node that dials it; with a `view` of a cluster's nodes, each call's
    node is chosen here instead (`node_slots`), and with no usable node nothing
    is claimed.

    `candidates` (from `due_tickets` in an earlier, read-only transaction) keeps
    the lock short: under it only those tickets are checked again, instead of
    searching every closed ticket while the IVR waits for the SQLite write lock.
    """
    now = rules.now
    take_robot_lock(session, robot_id, now)
    budget = free_budget(session, now, max_channels=max_channels, calls_per_minute=calls_per_minute)
    slots = node_slots(session, view) if view is not None else {}
    if view is not None:
        budget = min(budget, sum(slots.values()))
    if budget <= 0:
        return []
    picked: dict[str, int] = {}  # caller number -> ticket: one call per citizen per pass
    for ticket_id in due_tickets(session, rules, limit=budget * 4, among=candidates):
        number = str(session.scalar(select(Ticket.caller_number).where(Ticket.id == ticket_id)))
        if number in picked:
            continue  # the citizen's other ticket waits for a later, spaced call
        picked[number] = ticket_id
        if len(picked) == budget:
            break
    nodes = assign_nodes(slots, len(picked)) if view is not None else [node] * len(picked)
    claimed: list[ClaimedCall] = []
    for (number, ticket_id), on_node in zip(picked.items(), nodes, strict=True):
        attempt = create_attempt(session, ticket_id, now, robot_id, on_node)
        attempt.started_at = now
        claimed.append(ClaimedCall(attempt.id, ticket_id, number, on_node))
    session.flush()
    return claimed
