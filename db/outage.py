"""Which database errors mean "the store is away for now" (retry, then spool) and which not."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout


def is_outage(exc: BaseException) -> bool:
    """True for a locked, unreachable or exhausted store; False for a write that is wrong."""
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeout):
        return True  # locked / unreachable / statement timeout; a pool checkout that timed out
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)
