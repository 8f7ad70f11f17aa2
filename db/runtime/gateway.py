"""The store runtime's interface: one queue per process, and each flow's gateway onto it.

A process builds one `StoreRuntime` on its engine: the store's thread (on
SQLite one per process, on PostgreSQL as many as the pool has connections,
see `store_threads`), the store process when it has one, and the operations
every flow registered by name. Each flow opens its `StoreGateway` on it with
its own retry budget and spool: `perform` runs a registered operation where the
runtime runs its work (in the store process if there is one, else on the store
thread), `write` does the same for an intent and spools it when the store stays
away, `run` runs a function on the store thread (work that cannot be named,
such as a health probe), `replay` applies the flow's spool. A store that is
locked, unreachable or out of connections (a pool timeout) is retried until
the flow's `retry_seconds`, then StoreUnavailable (and `write` spools). The
engine is built with every per-attempt timeout bounded by the same budget (see
`db.session.make_engine`), so no single try outlives it.
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
from db.runtime.outage import QueuedTooLong, StoreLate, StoreUnavailable, is_outage
from db.runtime.process import Operation, StoreProcess
from db.runtime.spool import Spool
from db.session import unit_of_work

log = logging.getLogger(__name__)
T = TypeVar("T")

_executors: weakref.WeakKeyDictionary[Engine, ThreadPoolExecutor] = weakref.WeakKeyDictionary()


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
    writers outside this queue: other processes (a standalone robot, `hotline
    web`, the command line) and this process's own sessions (the console's
    forms, transcription, retention, the reconciler, the spools' replay).
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


class StoreRuntime:
    """One process's store work on one engine: the queue every flow's gateway shares.

    `process`: where registered operations run (`db.runtime.process`); None:
    on the store thread. Its child must build the same operations by kind.
    """

    def __init__(
        self, sessions: sessionmaker[Session], process: StoreProcess | None = None
    ) -> None:
        self.sessions = sessions
        self.process = process
        self.executor = executor_for(sessions.kw["bind"])
        self.operations: dict[str, Operation] = {}

    def register(self, kind: str, operation: Operation) -> None:
        """How the operation `kind` runs here (on the store thread, and in a spool's replay)."""
        self.operations[kind] = operation

    def gateway(self, retry_seconds: float, spool: Spool) -> StoreGateway:
        """A flow's way in: its retry budget, its spool."""
        return StoreGateway(self, retry_seconds, spool)

    def transaction(self, work: Callable[[Session], T]) -> T:
        """Work in one transaction, in the calling thread."""
        with unit_of_work(self.sessions) as session:
            return work(session)

    async def close(self) -> None:
        """Stop the store process, if any, once what it was given is written."""
        if self.process is not None:
            await self.process.close()


class StoreGateway:
    """One flow's retried, bounded, spooled way into the store, on the process's runtime."""

    def __init__(self, runtime: StoreRuntime, retry_seconds: float, spool: Spool) -> None:
        self.runtime = runtime
        self.retry_seconds = retry_seconds
        self.spool = spool
        self.spooled = 0  # intents spooled by this flow in this process (for /metrics)

    @property
    def sessions(self) -> sessionmaker[Session]:
        return self.runtime.sessions

    @property
    def process(self) -> StoreProcess | None:
        return self.runtime.process

    def transaction(self, work: Callable[[Session], T]) -> T:
        """Work in one transaction, in the calling thread (spool replay, tests)."""
        return self.runtime.transaction(work)

    async def attempt(self, work: Callable[[Session], T], deadline: float) -> T:
        """One try on the store's thread, unless it waited in the queue past the deadline.

        On a machine past its capacity the store's queue grows, and a caller
        would wait in silence for as long as it is: work not started by the
        deadline is given up (it will not run when its turn comes) and the
        flow spools its intent. Work already running is waited for (each try
        is bounded by the engine's own timeouts).
        """
        started = threading.Event()
        runtime = self.runtime

        def when_its_turn_comes() -> T:
            if time.monotonic() > deadline:
                raise QueuedTooLong(f"waited over {self.retry_seconds:g} s for the store")
            started.set()
            return runtime.transaction(work)

        future = asyncio.get_running_loop().run_in_executor(runtime.executor, when_its_turn_comes)
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
        """Work in one transaction on the store thread; an outage retried, then StoreUnavailable."""
        return await self._retried(lambda deadline: self.attempt(work, deadline))

    async def perform(self, kind: str, payload: dict[str, Any]) -> Any:
        """The registered operation `kind`: in the store process if there is one, else as `run`."""
        process = self.runtime.process
        if process is None:
            operation = self.runtime.operations[kind]
            return await self.run(lambda session: operation(session, payload))
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
                if not is_outage(exc):
                    raise
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                if time.monotonic() + delay > deadline:
                    raise StoreUnavailable(reason) from None
                log.warning("database busy or unreachable (%s); retrying", reason)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    async def write(self, kind: str, payload: dict[str, Any]) -> Any:
        """Apply an intent now (its registered operation, as `perform`), or spool it: then None."""
        try:
            return await self.perform(kind, payload)
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
        """Apply one spooled intent in this thread (raises on database trouble: replay stops)."""
        operation = self.runtime.operations.get(kind)
        if operation is None:
            raise ValueError(f"unknown spooled intent kind {kind!r}")
        self.transaction(lambda session: operation(session, payload))

    def replay(self) -> tuple[int, int]:
        """Apply what was spooled, in order (synchronous: run it in a thread)."""
        return self.spool.replay(self.apply)
