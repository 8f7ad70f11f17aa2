"""The hotline's FastAGI server in its own process, instrumented for the capacity bench.

The bench drives calls from its parent process; this child runs exactly what
`hotline serve` runs for the IVR (`create_hotline`: every route, the store
with its retry and spool) so that its CPU time, memory and open files are the
product's alone. It answers the parent's requests over a pipe: `reset` starts
a new measurement window, `stats` returns the window's figures, `stop` ends it,
`("variant", "digitwise")` puts back the read-back as it was before the bench's
fix (one STREAM FILE per digit) so before and after run in one table.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import time
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from pathlib import Path

from core.config import load_config
from db.gateway import store_threads
from hotline.app import create_hotline
from hotline.priority import favour_call_path
from ivr.inbound import CitizenCall, InboundFlow
from telephony.agi import QUICK_COMMANDS

LAG_TICK = 0.05  # the lag probe's own wake-ups cost CPU: 20 a second


def quantile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else 0.0


JOINED_READBACK = InboundFlow.say_number


async def digitwise_readback(self: InboundFlow, call: CitizenCall, number: str) -> None:
    """The read-back before the bench's fix: one STREAM FILE per digit."""
    for digit in number:
        await self.play(call, f"digit_{digit}")


VARIANTS = {"joined": JOINED_READBACK, "digitwise": digitwise_readback}


def set_priority(nice: int) -> int:
    """Every thread of this process at this nice value (Linux: nice is per thread)."""
    for task in os.listdir("/proc/self/task"):
        os.setpriority(os.PRIO_PROCESS, int(task), nice)
    return os.getpriority(os.PRIO_PROCESS, 0)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def reset_peak_rss() -> None:
    """Restart VmHWM from the current RSS (Linux: 5 > clear_refs)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


async def serve(config_path: str, conn: Connection) -> None:
    config = load_config(Path(config_path))
    favour_call_path(config.agi.nice)  # as `hotline serve` does, before any thread
    app = create_hotline(config)
    db_latency: list[float] = []
    lag: list[float] = []
    # every flow's store work goes through the gateway (queue, retry, then spool): time it
    # there, from asking to done, as the caller waits for it
    gateway = app.store.gateway
    original = gateway.run

    async def timed_run(work):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        try:
            return await original(work)
        finally:
            db_latency.append(time.perf_counter() - start)

    gateway.run = timed_run  # type: ignore[method-assign]
    in_transaction: list[float] = []  # the same work's transaction alone, on the store thread
    bare_transaction = gateway.transaction

    def timed_transaction(work):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        try:
            return bare_transaction(work)
        finally:
            in_transaction.append(time.perf_counter() - start)

    gateway.transaction = timed_transaction  # type: ignore[method-assign]
    spooled_before = gateway.spooled
    executors = {store_threads(gateway.sessions.kw["bind"]): gateway.executor}
    await app.server.start()
    loop = asyncio.get_running_loop()

    async def probe_lag() -> None:
        while True:
            before = loop.time()
            await asyncio.sleep(LAG_TICK)
            lag.append(max(0.0, loop.time() - before - LAG_TICK))

    prober = asyncio.create_task(probe_lag())
    window_cpu = cpu_seconds()
    conn.send({"port": app.server.port, "pid": os.getpid()})
    while True:
        request = await asyncio.to_thread(conn.recv)
        if request == "reset":
            db_latency.clear()
            in_transaction.clear()
            lag.clear()
            app.server.round_trips.samples.clear()
            app.server.refused = 0
            reset_peak_rss()
            window_cpu = cpu_seconds()
            spooled_before = gateway.spooled
            conn.send("ok")
        elif request == "stats":
            count, p50, p99 = app.server.round_trips.quantiles(QUICK_COMMANDS)
            by_command: dict[str, int] = {}
            for name, _seconds in app.server.round_trips.samples:
                by_command[name] = by_command.get(name, 0) + 1
            conn.send(
                {
                    "cpu": cpu_seconds() - window_cpu,
                    "agi_commands": len(app.server.round_trips.samples),
                    "by_command": by_command,
                    "rt_quick_count": count,
                    "rt_p50": p50,
                    "rt_p99": p99,
                    "lag_p99": quantile(lag, 0.99),
                    "db_writes": len(db_latency),
                    "db_p99": quantile(db_latency, 0.99),
                    "tx_p99": quantile(in_transaction, 0.99),
                    "peak_rss_kb": status_kb("VmHWM"),
                    "rss_kb": status_kb("VmRSS"),
                    "fds": len(os.listdir("/proc/self/fd")),
                    "refused": app.server.refused,
                    "spooled": gateway.spooled - spooled_before,
                    "in_progress": len(app.server._calls),
                }
            )
        elif isinstance(request, tuple) and request[0] == "store-threads":
            # a phase with the store work on this many threads (the engine's own pool: 1 on SQLite)
            if request[1] not in executors:
                executors[request[1]] = ThreadPoolExecutor(request[1], thread_name_prefix="store")
            gateway.executor = executors[request[1]]
            conn.send("ok")
        elif isinstance(request, tuple) and request[0] == "nice":
            conn.send(set_priority(request[1]))
        elif isinstance(request, tuple) and request[0] == "variant":
            InboundFlow.say_number = VARIANTS[request[1]]  # type: ignore[method-assign]
            conn.send("ok")
        elif request == "stop":
            prober.cancel()
            await app.server.stop()
            conn.send("stopped")
            return


def main(config_path: str, conn: Connection) -> None:
    """Process entry point (multiprocessing, spawn)."""
    asyncio.run(serve(config_path, conn))
