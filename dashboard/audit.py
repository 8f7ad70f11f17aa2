"""The audit trail: who listened to, downloaded or changed what, when and from where.

Rows name objects by id and carry masked numbers only; the admin's search
pages newest first by id (keyset).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import AuditEntry


def audit(
    session: Session,
    username: str,
    role: str,
    action: str,
    object_kind: str | None = None,
    object_id: int | None = None,
    address: str | None = None,
    detail: str | None = None,
) -> AuditEntry:
    """Write one audit row (in the caller's transaction)."""
    entry = AuditEntry(
        username=username,
        role=role,
        action=action,
        object_kind=object_kind,
        object_id=object_id,
        address=(address or "")[:64] or None,
        detail=(detail or "")[:500] or None,
    )
    session.add(entry)
    session.flush()
    return entry


def count_actions(session: Session, username: str, action: str, since: datetime) -> int:
    """How often username did action since then (a rate limit read from the trail)."""
    return int(
        session.scalar(
            select(func.count()).where(
                AuditEntry.username == username,
                AuditEntry.at >= since,
                AuditEntry.action == action,
            )
        )
        or 0
    )


@dataclass(frozen=True)
class AuditQuery:
    username: str = ""
    action: str = ""
    object_id: int | None = None
    start: datetime | None = None
    end: datetime | None = None
    before_id: int | None = None  # keyset: rows older than this id
    limit: int = 50


def search_audit(session: Session, query: AuditQuery) -> list[AuditEntry]:
    """Audit rows matching every given field, newest first."""
    statement = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(query.limit)
    if query.username:
        statement = statement.where(AuditEntry.username == query.username)
    if query.action:
        statement = statement.where(AuditEntry.action == query.action)
    if query.object_id is not None:
        statement = statement.where(AuditEntry.object_id == query.object_id)
    if query.start is not None:
        statement = statement.where(AuditEntry.at >= query.start)
    if query.end is not None:
        statement = statement.where(AuditEntry.at < query.end)
    if query.before_id is not None:
        statement = statement.where(AuditEntry.id < query.before_id)
    return list(session.scalars(statement))
