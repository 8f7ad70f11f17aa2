"""The cluster's decisions about its nodes, kept in the store every host shares (issue 22).

`hotline cluster drain` marks a node draining: no robot picks it for a new call.
A node found lost is marked once, and its attempts in flight are settled in the same
transaction, so two robots that notice the loss together settle them once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.models import ClusterNode


def _node(session: Session, name: str, at: datetime) -> ClusterNode:
    """The node's row, locked for this transaction (made on first use).

    Two transactions may make a node's first row at once (`cluster drain` beside a
    robot settling it): the row is inserted in a savepoint, and the one that loses
    the race reads the winner's row instead of failing.
    """
    query = select(ClusterNode).where(ClusterNode.name == name).with_for_update()
    row = session.scalars(query).one_or_none()
    if row is not None:
        return row
    try:
        with session.begin_nested():
            session.add(ClusterNode(name=name, updated_at=at))
    except IntegrityError:
        pass  # made meanwhile by another transaction: read (and lock) theirs
    return session.scalars(query.execution_options(populate_existing=True)).one()


def mark_draining(session: Session, name: str, at: datetime) -> None:
    """From now on the node takes no new robot calls (kept if already draining)."""
    row = _node(session, name, at)
    if row.draining_since is None:
        row.draining_since = at
    row.updated_at = at


def end_draining(session: Session, name: str, at: datetime) -> bool:
    """The node takes robot calls again; whether it was draining."""
    row = _node(session, name, at)
    was = row.draining_since is not None
    row.draining_since = None
    row.updated_at = at
    return was


def draining_nodes(session: Session) -> set[str]:
    """The names of the nodes now draining."""
    return set(
        session.scalars(select(ClusterNode.name).where(ClusterNode.draining_since.is_not(None)))
    )


def mark_lost(session: Session, name: str, at: datetime) -> bool:
    """Mark the node lost; True only for the transaction that marked it (settle once)."""
    row = _node(session, name, at)
    if row.lost_since is not None:
        return False
    row.lost_since = at
    row.updated_at = at
    return True


def mark_rejoined(session: Session, name: str, at: datetime) -> bool:
    """The node answers again; whether it had been lost."""
    done = session.execute(
        update(ClusterNode)
        .where(ClusterNode.name == name, ClusterNode.lost_since.is_not(None))
        .values(lost_since=None, updated_at=at)
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]


def lost_nodes(session: Session) -> set[str]:
    """The names of the nodes marked lost and not rejoined."""
    return set(session.scalars(select(ClusterNode.name).where(ClusterNode.lost_since.is_not(None))))
