"""Every node's call records (its Master.csv lines) and how far each node's file was read.

A node daemon reads the lines its Asterisk appended since the last pass and
writes them with the new position in one transaction: a daemon killed before
the commit reads the same lines again, and one killed after it reads on from
there. A line is named by (node, inode, offset), unique in the store, so a
line read twice is written once even if the position were ever behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy import String, select
from sqlalchemy.orm import Session

from db.models import CdrPosition, CdrRecord


@dataclass(frozen=True)
class CdrLine:
    """One Master.csv line as the store keeps it, at its byte offset in the file."""

    offset: int
    uniqueid: str | None = None
    linkedid: str | None = None
    src: str | None = None
    dst: str | None = None
    dcontext: str | None = None
    channel: str | None = None
    dstchannel: str | None = None
    lastapp: str | None = None
    started_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    duration: int | None = None
    billsec: int | None = None
    disposition: str | None = None
    userfield: str | None = None


@dataclass(frozen=True)
class CdrFilePosition:
    """Where a node's Master.csv was read to: the file (its inode) and the byte after the line."""

    inode: int
    offset: int


def cdr_position(session: Session, node: str) -> CdrFilePosition | None:
    """The node's position, locked until the transaction ends (one reader per node at a time)."""
    row = session.scalars(
        select(CdrPosition).where(CdrPosition.node == node).with_for_update()
    ).one_or_none()
    return None if row is None else CdrFilePosition(row.inode, row.offset)


def set_cdr_position(session: Session, node: str, position: CdrFilePosition) -> None:
    """The node's file is read up to `position` (written with the lines read, in one commit)."""
    row = session.get(CdrPosition, node)
    if row is None:
        session.add(CdrPosition(node=node, inode=position.inode, offset=position.offset))
    else:
        row.inode, row.offset = position.inode, position.offset
    session.flush()


def add_cdr_lines(session: Session, node: str, inode: int, lines: Sequence[CdrLine]) -> int:
    """Store the lines the store does not have yet; how many were new."""
    if not lines:
        return 0
    offsets = [line.offset for line in lines]
    have = set(
        session.scalars(
            select(CdrRecord.offset).where(
                CdrRecord.node == node,
                CdrRecord.inode == inode,
                CdrRecord.offset.between(min(offsets), max(offsets)),
            )
        )
    )
    new = [line for line in lines if line.offset not in have]
    session.add_all(CdrRecord(node=node, inode=inode, **_fitted(line)) for line in new)
    session.flush()
    return len(new)


def cdr_records_of(session: Session, uniqueid: str) -> list[CdrRecord]:
    """The call records of one channel (a call has one per leg), oldest first."""
    return list(
        session.scalars(
            select(CdrRecord).where(CdrRecord.uniqueid == uniqueid).order_by(CdrRecord.id)
        )
    )


def _fitted(line: CdrLine) -> dict[str, object]:
    """The line's values, strings cut to their columns (PostgreSQL refuses a longer one)."""
    values: dict[str, object] = {}
    for field in fields(line):
        value = getattr(line, field.name)
        column = CdrRecord.__table__.columns[field.name]
        if isinstance(value, str) and isinstance(column.type, String) and column.type.length:
            value = value[: column.type.length]
        values[field.name] = value
    return values
