"""A write that changes nothing: proves the store takes writes now (for /healthz)."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.orm import Session

from db.models import RobotLock


def probe_write(session: Session) -> None:
    """Take the write path without changing a row (SQLite's write lock, PostgreSQL read-write)."""
    session.execute(update(RobotLock).where(RobotLock.id == -1).values(holder=None))
