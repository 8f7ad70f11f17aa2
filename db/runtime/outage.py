"""When the store is away for now (retry, then spool), when a write is wrong; the errors."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout


class StoreUnavailable(Exception):
    """The database did not answer within the flow's retry budget (its intent is spooled)."""


class QueuedTooLong(Exception):
    """The work waited for the store's thread past the retry budget; it was not started."""


class StoreOutage(Exception):
    """The store process reported the database away, or itself died: retry, then spool."""


class StoreLate(Exception):
    """The work's deadline passed while it waited for its turn in the store process: not run."""


class StoreWorkFailed(Exception):
    """The operation raised in the store process (not an outage): the text is its traceback."""


def is_outage(exc: BaseException) -> bool:
    """True for a locked, unreachable or exhausted store; False for a write that is wrong."""
    if isinstance(exc, StoreOutage):
        return True  # the store process said so, or died
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeout):
        return True  # locked / unreachable / statement timeout; a pool checkout that timed out
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)
