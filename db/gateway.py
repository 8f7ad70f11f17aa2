"""One way into the store for every call flow: off the loop, retried, bounded, else spooled.

The IVR, the survey, survey-end and the dialer all write through a
`StoreGateway`: work runs in one transaction on a thread pool of the engine's
own (on PostgreSQL as many threads as the connection pool has connections, so
a thread never queues for a connection it cannot get; on SQLite one thread,
see `store_threads`); a store that is locked,
unreachable or out of connections (a pool timeout) is retried until
`retry_seconds`; then the intent is written to the durable spool off the
event loop and applied later. The engine is built with every per-attempt
timeout bounded by the same budget (see `db.session.make_engine`), so no
single try outlives it. A gateway given a `StoreProcess` runs its registered
operations there instead (`perform`), under the same budget, deadline and spool.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from core.telemetry import SPOOLED_INTENTS
from db.outage import is_outage
from db.session import unit_of_work
from db.spool import Spool
from db.store_process import StoreLate, StoreOutage, StoreProcess

log = logging.getLogger(__name__)
T = TypeVar("T")
Applier = Callable[[Session, dict[str, Any]], None]

_executors: weakref.WeakKeyDictionary[Engine, ThreadPoolExecutor] = weakref.WeakKeyDictionary()


class StoreUnavailable(Exception):
    """The database did not answer within the retry budget."""


class QueuedTooLong(Exception):
    """The work waited for the store's thread past the retry budget; it was not started."""


def pool_capacity(engine: Engine) -> int:
    """How many connections the engine's pool hands out at most (size + overflow)."""
    pool = engine.pool
    size = getattr(pool, "size", lambda: 5)()
    overflow = max(getattr(pool, "_max_overflow", 0), 0)
    return max(1, size + overflow)


def store_threads(engine: Engine) -> int:
    """How many threads run one process's store work on this engine at once.

    SQLite lets one writer in at a time, so on SQLite the flows of a process
    take turns on one thread: threads racing for the file lock only lose
    time, and under load they lose calls. A deferred transaction that has
    read gets "database is locked" at once, without waiting, when another
    connection commits first (WAL snapshots), and a writer starved of CPU
    holds the lock while the others sleep through their busy timeout. The
    capacity bench found tickets spooled that way at 600 callers; in one
    queue they wait their turn instead. The busy timeout still covers the
    other processes (robot, console, reconciler) that share the file.
    """
    if engine.dialect.name == "sqlite":
        return 1
    return pool_capacity(engine)


def executor_for(engine: Engine) -> ThreadPoolExecutor:
    """The thread pool of the flows' store work on this engine (one per engine)."""
    executor = _executors.get(engine)
    if executor is None:
        executor = ThreadPoolExecutor(store_threads(engine), thread_name_prefix="store")
        _executors[engine] = executor
    return executor


class StoreGateway:
    """Retried, bounded, spooled access to the store for one flow's intents."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        retry_seconds: float,
        spool: Spool,
        process: StoreProcess | None = None,
    ) -> None:
        self.sessions = sessions
        self.process = process  # where `perform` runs operations; None: on the store thread
        self.retry_seconds = retry_seconds
        self.spool = spool
        self.appliers: dict[str, Applier] = {}
        self.spooled = 0  # intents spooled by this process (for /metrics)
        engine = sessions.kw["bind"]
        self.executor = executor_for(engine)

    def register(self, kind: str, applier: Applier) -> None:
        """How the operation `kind` runs: `perform`, and the spool's replay of such intents."""
        self.appliers[kind] = applier

    def transaction(self, work: Callable[[Session], T]) -> T:
        with unit_of_work(self.sessions) as session:
            return work(session)

    async def attempt(self, work: Callable[[Session], T], deadline: float) -> T:
        """One try on the store's thread, unless it waited in the queue past the deadline.

        On a machine past its capacity the store's queue grows, and a caller
        would wait in silence for as long as it is: work not started by the
        deadline is given up (it will not run when its turn comes) and the
        flow spools its intent. Work already running is waited for (each try
        is bounded by the engine's own timeouts).
        """
        started = threading.Event()

        def when_its_turn_comes() -> T:
            if time.monotonic() > deadline:
                raise QueuedTooLong(f"waited over {self.retry_seconds:g} s for the store")
            started.set()
            return self.transaction(work)

        future = asyncio.get_running_loop().run_in_executor(self.executor, when_its_turn_comes)
        try:
            return await asyncio.wait_for(
                asyncio.shield(future), max(0.0, deadline - time.monotonic())
            )
        except TimeoutError:
            if started.is_set():
                return await future
            future.add_done_callback(lambda done: done.exception())  # gives up at its turn
            raise QueuedTooLong(f"waited over {self.retry_seconds:g} s for the store") from None

    async def run(self, work: Callable[[Session], T]) -> T:
        """Work in one transaction off the loop; an outage is retried, then StoreUnavailable."""
        return await self._retried(lambda deadline: self.attempt(work, deadline))

    async def perform(self, kind: str, payload: dict[str, Any]) -> Any:
        """The registered operation `kind`, in the store process if there is one; as `run`."""
        process = self.process
        if process is None:
            applier = self.appliers[kind]
            return await self.run(lambda session: applier(session, payload))
        return await self._retried(lambda deadline: process.attempt(kind, payload, deadline))

    async def _retried(self, attempt: Callable[[float], Awaitable[T]]) -> T:
        """Tries until the budget's deadline: an outage is retried, then StoreUnavailable."""
        deadline = time.monotonic() + self.retry_seconds
        delay = 0.1
        while True:
            try:
                return await attempt(deadline)
            except (QueuedTooLong, StoreLate) as exc:
                raise StoreUnavailable(str(exc)) from None
            except Exception as exc:
                if not (isinstance(exc, StoreOutage) or is_outage(exc)):
                    raise
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                if time.monotonic() + delay > deadline:
                    raise StoreUnavailable(reason) from None
                log.warning("database busy or unreachable (%s); retrying", reason)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    async def write(
        self, kind: str, payload: dict[str, Any], work: Callable[[Session], T] | None = None
    ) -> T | Any | None:
        """Apply an intent now, or spool it when the store stays away; None when spooled.

        Without `work` the intent's registered operation applies it (`perform`).
        """
        try:
            return await (self.perform(kind, payload) if work is None else self.run(work))
        except StoreUnavailable as exc:
            await self.put(kind, payload)
            call = f"[{payload['uniqueid']}] " if "uniqueid" in payload else ""
            log.error("%s%s spooled (database unavailable: %s)", call, kind, exc)
            return None

    async def put(self, kind: str, payload: dict[str, Any]) -> None:
        """Spool an intent durably, off the event loop (fsync may take a while)."""
        await asyncio.to_thread(self.spool.put, kind, payload)
        self.spooled += 1
        SPOOLED_INTENTS.labels(kind).inc()

    def apply(self, kind: str, payload: dict[str, Any]) -> None:
        """Apply one spooled intent (raises on database trouble so replay stops there)."""
        applier = self.appliers.get(kind)
        if applier is None:
            raise ValueError(f"unknown spooled intent kind {kind!r}")
        self.transaction(lambda session: applier(session, payload))

    def replay(self) -> tuple[int, int]:
        """Apply what was spooled, in order (synchronous: run it in a thread)."""
        return self.spool.replay(self.apply)
