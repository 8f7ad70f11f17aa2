"""Engines and sessions: one session per unit of work (one AGI request, one job run).

SQLite runs in WAL mode with a busy timeout so the IVR, the robot and the
dashboard can share one file; foreign keys are switched on (SQLite's default
is off).
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 5000
_AFTER_COMMIT = "after_commit"  # session.info key: what to do once the transaction commits
_deferred = threading.local()  # .effects: this thread collects after-commit actions, not runs


def make_engine(
    url: str,
    echo: bool = False,
    busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS,
    attempt_seconds: float | None = None,
) -> Engine:
    """An engine for url with the pragmas and pool settings the hotline relies on.

    With `attempt_seconds` (the call flows' retry budget) no single try can
    outlive it: SQLite's busy timeout, the pool's checkout timeout and
    PostgreSQL's connect and statement timeouts are all bounded by it.
    """
    if attempt_seconds is not None:
        busy_timeout_ms = min(busy_timeout_ms, int(attempt_seconds * 1000))
    bounded: dict[str, float] = {} if attempt_seconds is None else {"pool_timeout": attempt_seconds}
    if url.startswith("sqlite"):
        engine = create_engine(
            url, echo=echo, connect_args={"timeout": busy_timeout_ms / 1000}, **bounded
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()
            owner_only(engine.url.database)

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    if attempt_seconds is None:
        return create_engine(url, echo=echo, pool_pre_ping=True)
    limits = {
        "connect_timeout": max(1, math.ceil(attempt_seconds)),
        "options": f"-c statement_timeout={max(1, int(attempt_seconds * 1000))}",
    }
    return create_engine(url, echo=echo, pool_pre_ping=True, connect_args=limits, **bounded)


def owner_only(database: str | None) -> None:
    """The SQLite file and its WAL/SHM companions: readable by the hotline's user only."""
    if not database or database == ":memory:":
        return
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(database + suffix, 0o600)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session that commits when the block ends and rolls back if it raises."""
    with factory() as session, session.begin():
        yield session


def after_commit(session: Session, action: Callable[[], None]) -> None:
    """Do `action` once the session's transaction has committed; never if it rolls back.

    For effects outside the database, such as a metric: done inside the
    transaction they would happen again each time work whose commit failed is
    retried or replayed from a spool.
    """
    session.info.setdefault(_AFTER_COMMIT, []).append(action)


@contextmanager
def deferred_after_commit() -> Iterator[list[Callable[[], None]]]:
    """The after-commit actions of this thread's transactions collected in a list, not done.

    The store process hands them to the process it serves: a metric counted
    there is counted in that process's `/metrics` (they must pickle: a
    module-level function, or a functools.partial of one).
    """
    effects: list[Callable[[], None]] = []
    outer = getattr(_deferred, "effects", None)
    _deferred.effects = effects
    try:
        yield effects
    finally:
        _deferred.effects = outer


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint released: the transaction itself may still roll back
    actions = session.info.pop(_AFTER_COMMIT, [])
    deferred = getattr(_deferred, "effects", None)
    if deferred is not None:
        deferred.extend(actions)
        return
    for action in actions:
        action()


@event.listens_for(Session, "after_transaction_end")
def _ended(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_AFTER_COMMIT, None)  # rolled back: its actions never happen
