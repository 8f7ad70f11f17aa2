"""Console sessions kept on the server: started at login, looked up on every request,
ended by logout, a new password, disabling and idle time.

The cookie carries a random session id; the store keeps only its SHA-256, so the table
cannot be replayed as cookies. A session is alive while its row exists, is not ended,
began less than `web.session_minutes` ago and saw a request less than `web.idle_minutes`
ago. Requests refresh `last_seen_at` at most once a minute (one write a minute per
session, not one per page); a live stream's re-checks look without refreshing, so an
open live tab alone does not keep a session alive.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from db.models import ConsoleSession

TOUCH_EVERY = timedelta(seconds=60)


def _key(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def start(
    session: Session, user_id: int, sid: str, now: datetime, address: str, lifetime: timedelta
) -> None:
    """Record a new session (and forget those that have been over for a day)."""
    forget = now - lifetime - timedelta(days=1)
    session.execute(delete(ConsoleSession).where(ConsoleSession.started_at < forget))
    session.add(
        ConsoleSession(
            id=_key(sid), user_id=user_id, started_at=now, last_seen_at=now, address=address[:64]
        )
    )
    session.flush()


def alive(
    session: Session,
    sid: str,
    user_id: int,
    now: datetime,
    lifetime: timedelta,
    idle: timedelta,
    touch: bool = True,
) -> bool:
    """Is this session alive? An idle one is ended here; a used one is refreshed if touch."""
    row = session.get(ConsoleSession, _key(sid))
    if row is None or row.user_id != user_id or row.ended_at is not None:
        return False
    if row.started_at <= now - lifetime:
        return False
    if row.last_seen_at <= now - idle:
        row.ended_at, row.ended_why = now, "idle"
        session.flush()
        return False
    if touch and row.last_seen_at <= now - TOUCH_EVERY:
        row.last_seen_at = now
        session.flush()
    return True


def end(session: Session, sid: str, now: datetime, why: str) -> None:
    """End one session (logout)."""
    session.execute(
        update(ConsoleSession)
        .where(ConsoleSession.id == _key(sid), ConsoleSession.ended_at.is_(None))
        .values(ended_at=now, ended_why=why)
    )


def end_all(session: Session, user_id: int, now: datetime, why: str) -> int:
    """End every session of an account (a new password, disabling); how many were alive."""
    ended = session.execute(
        update(ConsoleSession)
        .where(ConsoleSession.user_id == user_id, ConsoleSession.ended_at.is_(None))
        .values(ended_at=now, ended_why=why)
    )
    return int(ended.rowcount or 0)  # type: ignore[attr-defined]
