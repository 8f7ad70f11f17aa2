"""`hotline serve`'s store work in a process of its own, fed over a pipe from the event loop.

Why a process and not a thread: at 500 callers on two cores the FastAGI
process's store thread spent 5 to 9 s of every 10 runnable but waiting for a
CPU, in about 40 slices per transaction (`/proc/<pid>/task/*/schedstat`,
bench/ivr_capacity.py). sqlite3 hands the GIL back around every call into
SQLite, and each time the event loop took it the store thread had to wait for
its next turn on a CPU that 200 of Asterisk's threads were queueing for. A
transaction that takes 3 ms alone took 300 ms (p99), the queue grew past the
flows' retry budget and most tickets were spooled instead of read back to
the caller. Alone in its process, the store's one thread keeps the GIL
through a transaction: one wake-up per request instead of forty.

The protocol is private to this module: length-prefixed pickle frames on the
child's stdin and stdout (parent and child are the same program, nothing else
writes to these pipes). The first frame is the `StoreRecipe`; each request is
`(id, kind, payload, deadline)` and is answered by `("started", id)` then
`("ok", id, result, seconds, effects)`, `("late", id, reason)` (its deadline passed
before its turn: not run), `("outage", id, reason)` (locked, unreachable:
retry, then spool) or `("failed", id, text)` (a bug or a wrong write). The
`ok` reply also carries what the transaction asked to do once committed
(`db.session.after_commit`, a metric counted): it is done in the parent, so
`/metrics` of the serving process counts it. The child runs the operations the
composition layer hands it in the recipe (a picklable callable that builds
them: `combined` joins every flow's table), so this module imports no feature.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import signal
import struct
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, Any

from sqlalchemy.orm import Session

from db.runtime.outage import StoreLate, StoreOutage, StoreWorkFailed, is_outage
from db.session import deferred_after_commit, make_engine, make_session_factory, unit_of_work

log = logging.getLogger(__name__)
Operation = Callable[[Session, dict[str, Any]], Any]
HEADER = struct.Struct("!I")
START_SECONDS = 60.0  # importing SQLAlchemy and the features on a machine at its capacity


@dataclass(frozen=True)
class StoreRecipe:
    """Everything the child needs, pickled: the engine's settings and how to build its operations.

    `operations` must pickle by reference (a module-level function, or a
    functools.partial of one with picklable arguments).
    """

    url: str
    busy_timeout_ms: int
    attempt_seconds: float
    threads: int  # how many transactions at once (1 on SQLite, see store_threads)
    operations: Callable[[], dict[str, Operation]]


def combined(tables: Iterable[Callable[[], dict[str, Operation]]]) -> dict[str, Operation]:
    """Every flow's operations in one table (`functools.partial(combined, [...])` pickles)."""
    operations: dict[str, Operation] = {}
    for table in tables:
        for kind, operation in table().items():
            if kind in operations:
                raise ValueError(f"two flows name an operation {kind!r}")
            operations[kind] = operation
    return operations


def encode(message: object) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(data)) + data


class StoreProcess:
    """The parent's side: starts the child on first use, again after it died."""

    def __init__(self, recipe: StoreRecipe) -> None:
        self.recipe = recipe
        self.proc: asyncio.subprocess.Process | None = None
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.started: set[int] = set()
        self.ids = iter(range(1, 1 << 62))
        self.reader_task: asyncio.Task[None] | None = None
        self.starting: asyncio.Task[None] | None = None
        self.tx_seconds: deque[float] = deque(maxlen=100_000)  # each transaction, in the child
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def alive(self) -> bool:
        return (
            self.proc is not None
            and self.proc.returncode is None
            and self.reader_task is not None
            and not self.reader_task.done()
        )

    async def start(self, deadline: float | None = None) -> None:
        """The child, running; StoreOutage when it is not up by the deadline (it goes on starting).

        One start serves every flow that finds the child missing; a flow whose
        budget ends first spools, and the next one finds the child ready.
        """
        if self.alive():
            return
        if self.starting is None or self.starting.done():
            self.starting = asyncio.create_task(self._start(), name="store-process-start")
            self.starting.add_done_callback(lambda task: task.cancelled() or task.exception())
        wait = START_SECONDS if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            await asyncio.wait_for(asyncio.shield(self.starting), wait)
        except TimeoutError:
            raise StoreOutage("the store process is still starting") from None

    async def _start(self) -> None:
        if self.proc is not None:
            await self._reap()
            self.restarts += 1
            log.error("the store process had ended; starting a new one")
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "db.runtime",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=1 << 24,
        )
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(encode(self.recipe))
        try:
            ready = await asyncio.wait_for(self._read(proc.stdout), START_SECONDS)
        except (TimeoutError, asyncio.IncompleteReadError, OSError) as exc:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise StoreOutage(f"the store process did not start ({exc!r})") from None
        self.proc = proc
        self.reader_task = asyncio.create_task(self._follow(proc), name="store-replies")
        if ready != ("ready",):
            raise StoreOutage(f"the store process did not start: {ready!r}")

    @staticmethod
    async def _read(stream: asyncio.StreamReader) -> Any:
        (size,) = HEADER.unpack(await stream.readexactly(HEADER.size))
        return pickle.loads(await stream.readexactly(size))

    async def _follow(self, proc: asyncio.subprocess.Process) -> None:
        """Hand each reply to its waiting flow; when the child dies, fail them all as an outage."""
        assert proc.stdout is not None
        try:
            while True:
                reply = await self._read(proc.stdout)
                status, rid = reply[0], reply[1]
                if status == "started":
                    self.started.add(rid)
                    continue
                self.started.discard(rid)
                future = self.pending.pop(rid, None)
                if status == "ok":
                    self.tx_seconds.append(reply[3])
                    done_after_commit(reply[4])  # committed, whether its flow waits or not
                if future is None or future.done():
                    continue  # its flow gave up at the deadline (idempotent work: harmless)
                if status == "ok":
                    future.set_result(reply[2])
                elif status == "late":
                    future.set_exception(StoreLate(reply[2]))
                elif status == "outage":
                    future.set_exception(StoreOutage(reply[2]))
                else:
                    future.set_exception(StoreWorkFailed(reply[2]))
        except (asyncio.IncompleteReadError, OSError, pickle.UnpicklingError) as exc:
            ended = isinstance(exc, asyncio.IncompleteReadError)
            reason = "the store process ended" if ended else repr(exc)
            for future in self.pending.values():
                if not future.done():
                    future.set_exception(StoreOutage(reason))
            self.pending.clear()
            self.started.clear()

    async def attempt(self, kind: str, payload: dict[str, Any], deadline: float) -> Any:
        """One try of an operation; work still waiting for its turn at the deadline is dropped.

        Work already running is waited for, as on the store thread (each try
        is bounded by the engine's own timeouts, and a child that dies fails it).
        """
        await self.start(deadline)
        assert self.proc is not None and self.proc.stdin is not None
        rid = next(self.ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending[rid] = future
        try:
            self.proc.stdin.write(encode((rid, kind, payload, deadline)))
        except (ConnectionError, RuntimeError) as exc:
            self.pending.pop(rid, None)
            raise StoreOutage(f"the store process is gone ({exc!r})") from None
        try:
            return await asyncio.wait_for(
                asyncio.shield(future), max(0.0, deadline - time.monotonic())
            )
        except TimeoutError:
            if rid in self.started:
                return await future
            self.pending.pop(rid, None)  # the child skips it at its turn: its deadline passed
            future.cancel()
            raise StoreLate("waited past the retry budget for the store process") from None

    async def _reap(self) -> None:
        if self.proc is None:
            return
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
        await self.proc.wait()
        if self.reader_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self.reader_task

    async def close(self) -> None:
        """Let the child finish what it was given (end of input), then reap it."""
        proc = self.proc
        if proc is None:
            return
        if proc.stdin is not None and proc.returncode is None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        if self.reader_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self.reader_task
        self.proc = None


def done_after_commit(effects: list[Callable[[], None]]) -> None:
    """What the child's committed transaction left to do here (a metric counted)."""
    for effect in effects:
        try:
            effect()
        except Exception:
            log.exception("an after-commit action of the store process failed")


# -- the child ---------------------------------------------------------------------------
def read_frame(stream: IO[bytes]) -> Any:
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None  # the parent closed our input: finish
    (size,) = HEADER.unpack(header)
    return pickle.loads(stream.read(size))


def serve(source: IO[bytes], sink: IO[bytes]) -> None:
    """Answer requests until the parent closes the pipe (or dies)."""
    recipe: StoreRecipe = read_frame(source)
    engine = make_engine(
        recipe.url, False, recipe.busy_timeout_ms, attempt_seconds=recipe.attempt_seconds
    )
    sessions = make_session_factory(engine)
    operations = recipe.operations()
    writing = threading.Lock()

    def send(message: object) -> None:
        with writing:
            sink.write(encode(message))
            sink.flush()

    def perform(rid: int, kind: str, payload: dict[str, Any], deadline: float) -> None:
        if time.monotonic() > deadline:
            send(("late", rid, "waited past the retry budget for its turn"))
            return
        send(("started", rid))
        began = time.perf_counter()
        try:
            with deferred_after_commit() as effects, unit_of_work(sessions) as session:
                result = operations[kind](session, payload)
        except Exception as exc:
            if is_outage(exc):
                send(("outage", rid, str(exc).splitlines()[0] if str(exc) else type(exc).__name__))
            else:
                send(("failed", rid, traceback.format_exc()))
            return
        seconds = time.perf_counter() - began
        try:
            reply = encode(("ok", rid, result, seconds, effects))
        except Exception:  # an action that does not pickle: done here, lost to the parent
            done_after_commit(effects)
            try:
                reply = encode(("ok", rid, result, seconds, []))
            except Exception:
                send(("failed", rid, f"the result of {kind!r} does not pickle (committed)"))
                return
        with writing:
            sink.write(reply)
            sink.flush()

    send(("ready",))
    pool = ThreadPoolExecutor(recipe.threads) if recipe.threads > 1 else None
    while (request := read_frame(source)) is not None:
        if pool is None:
            perform(*request)  # one thread: it keeps the GIL through the transaction
        else:
            pool.submit(perform, *request)
    if pool is not None:
        pool.shutdown(wait=True)
    engine.dispose()


def main() -> None:
    """`python -m db.runtime`: frames on stdin, replies on stdout, logs on stderr."""
    logging.basicConfig(level=logging.INFO, format="store process: %(levelname)s %(message)s")
    # the parent ends us by closing our input once its calls are done: a Ctrl-C or a
    # service manager's SIGTERM to the whole group must not cut their last writes
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sink = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print must not corrupt the replies
    with contextlib.suppress(BrokenPipeError):  # the parent is gone: nobody to answer
        serve(sys.stdin.buffer, sink)
