"""A console request's database work runs at most `web.request_seconds`, then it is cancelled.

A page runs in one of `web.page_workers` threads; a query that does not end
(a loop written into the department table, a runaway report) must not hold
that thread for good, or a handful of such requests stop the console, login
included. The middleware marks each console request with the limit (a context
variable, which the page's worker thread inherits); every database transaction
begun under that mark is bounded:

- SQLite: a progress handler on the connection interrupts the statement once
  the transaction is older than the limit (`sqlite3.OperationalError: interrupted`);
- PostgreSQL: `SET LOCAL statement_timeout` for the transaction (SQLSTATE 57014).

The page then answers 503. Work outside a console request (the CLI, the
robot, the IVR, `POST /api/import`, which has its own size bounds) is never
limited: the mark is absent there.
"""

from __future__ import annotations

import contextvars
import time
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

_limit: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "console_request_seconds", default=None
)
PROGRESS_STEPS = 10_000  # SQLite virtual-machine steps between two looks at the clock
UNLIMITED_PREFIXES = ("/api/",)  # the import API: bounded by size, may take minutes


def bound(engine: Engine) -> None:
    """Bound every transaction begun on engine under a console request's mark (once per engine)."""
    if engine.__dict__.get("_console_time_limit"):
        return
    engine.__dict__["_console_time_limit"] = True
    sqlite = engine.dialect.name == "sqlite"

    @event.listens_for(engine, "begin")
    def _limit_transaction(connection: Connection) -> None:
        seconds = _limit.get()
        if sqlite:
            raw: Any = connection.connection.dbapi_connection
            if seconds is None:
                raw.set_progress_handler(None, 0)  # a connection a page used before
            else:
                deadline = time.monotonic() + seconds
                raw.set_progress_handler(lambda: time.monotonic() > deadline, PROGRESS_STEPS)
        elif seconds is not None and engine.dialect.name == "postgresql":
            milliseconds = max(1, int(seconds * 1000))
            connection.exec_driver_sql(f"SET LOCAL statement_timeout = {milliseconds}")


def timed_out(exc: BaseException) -> bool:
    """Is exc a statement cancelled by the request's time limit?"""
    if not isinstance(exc, OperationalError):
        return False
    orig = exc.orig
    if getattr(orig, "sqlstate", None) == "57014":  # PostgreSQL query_canceled
        return True
    return type(orig).__module__ == "sqlite3" and "interrupted" in str(orig)


class TimeLimitMiddleware:
    """Marks each console request with `seconds` (pure ASGI: the mark reaches the page thread)."""

    def __init__(self, app: Any, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].startswith(UNLIMITED_PREFIXES):
            await self.app(scope, receive, send)
            return
        token = _limit.set(self.seconds)
        try:
            await self.app(scope, receive, send)
        finally:
            _limit.reset(token)
