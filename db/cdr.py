"""Every node's call records (its Master.csv lines) and how far each node's file was read.

A node daemon reads the lines its Asterisk appended since the last pass and
writes them with the new position in one transaction: a daemon killed before
the commit reads the same lines again, and one killed after it reads on from
there. A line is named by its node and a hash of its values (`cdr_line_key`),
unique in the store and written with ON CONFLICT DO NOTHING, so a line read
twice is written once: a position behind, or a Master.csv that retention
rewrote (a new inode, read again from its start), stores nothing twice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime

from sqlalchemy import String, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from db.models import CdrPosition, CdrRecord

# the values a line's key is made of, in this order: everything the row keeps of the line
# but where it was read (migration 0015 keeps its own copy of this recipe, as it was then)
KEY_FIELDS = (
    "uniqueid",
    "linkedid",
    "src",
    "dst",
    "dcontext",
    "channel",
    "dstchannel",
    "lastapp",
    "started_at",
    "answered_at",
    "ended_at",
    "duration",
    "billsec",
    "disposition",
    "userfield",
)
KEY_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


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
    """Store the lines the store does not have yet; how many were new.

    A line the store has (the same node and key) is skipped by the database
    itself (ON CONFLICT DO NOTHING), so two daemons racing, or one reading a
    rewritten file again, never fail nor write it twice.
    """
    rows = []
    for line in lines:
        values = _fitted(line)
        rows.append({"node": node, "inode": inode, **values, "line_key": cdr_line_key(values)})
    if not rows:
        return 0
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(CdrRecord)
        .on_conflict_do_nothing(index_elements=["node", "line_key"])
        .returning(CdrRecord.id)
    )
    return len(session.scalars(statement, rows).all())


def cdr_line_key(values: Mapping[str, object]) -> str:
    """The line's name in the store (with its node): a hash of the values a row keeps.

    Not the raw bytes: a rewrite by retention quotes every field (Asterisk leaves
    numbers bare), and the parsed values are what both copies share.
    """
    parts = [_key_part(values.get(name)) for name in KEY_FIELDS]
    text = json.dumps(parts, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _key_part(value: object) -> object:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime(KEY_TIME_FORMAT)
    return value


def delete_cdr_records_ended_before(session: Session, before: datetime) -> int:
    """Call records that ended before `before` deleted from the store (retention); how many.

    A record with no end time is kept: Asterisk writes one on every line, so
    none is expected, and an unknown age is no reason to delete.
    """
    result = session.execute(
        delete(CdrRecord).where(CdrRecord.ended_at < before),
        execution_options={"synchronize_session": False},
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


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
