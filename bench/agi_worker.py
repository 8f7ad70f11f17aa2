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
from db.runtime import store_threads
from hotline.app import create_hotline
from hotline.priority import favour_call_path, set_session_group
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
    """Every thread of this process and its session's group at this nice value."""
    for task in os.listdir("/proc/self/task"):
        os.setpriority(os.PRIO_PROCESS, int(task), nice)
    set_session_group(nice)
    return os.getpriority(os.PRIO_PROCESS, 0)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def status_kb(field: str) -> int:
    return proc_status_kb(os.getpid(), field)


def reset_peak_rss(pid: int | str = "self") -> None:
    """Restart VmHWM from the current RSS (Linux: 5 > clear_refs)."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def proc_cpu(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds; 0 once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    parts = stat[stat.rindex(")") + 2 :].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def proc_status_kb(pid: int, field: str) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


async def serve(config_path: str, conn: Connection) -> None:
    config = load_config(Path(config_path))
    # a session of its own, as `hotline serve` has beside Asterisk under `hotline up` or as a
    # service (not the driver's): its scheduling group is then the call path's alone
    os.setsid()
    favour_call_path(config.agi.nice)  # as `hotline serve` does, before any thread
    app = create_hotline(config)
    db_latency: list[float] = []
    lag: list[float] = []
    # every flow's store work goes through the gateway (queue, retry, then spool): time it
    # there, from asking to done, as the caller waits for it
    gateway = app.store.gateway
    retried = gateway._retried

    async def timed_retried(attempt):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        try:
            return await retried(attempt)
        finally:
            db_latency.append(time.perf_counter() - start)

    gateway._retried = timed_retried  # type: ignore[method-assign]
    runtime = gateway.runtime  # the process's one store runtime: where the work runs
    in_transaction: list[float] = []  # the same work's transaction alone, on the store thread
    bare_transaction = runtime.transaction

    def timed_transaction(work):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        try:
            return bare_transaction(work)
        finally:
            in_transaction.append(time.perf_counter() - start)

    runtime.transaction = timed_transaction  # type: ignore[method-assign]
    spooled_before = gateway.spooled
    process = runtime.process
    assert process is not None, "the bench measures `hotline serve`: ivr.store_process on"
    await process.start()
    stores = {
        "process": (process, 1),  # production: the store process
        "thread": (None, store_threads(gateway.sessions.kw["bind"])),  # the store thread, here
        "threads": (None, 15),  # the 15 threads racing for SQLite's lock, before that
    }
    executors = {stores["thread"][1]: runtime.executor}

    def store_cpu() -> float:
        return proc_cpu(process.pid) if process.pid else 0.0

    def store_status_kb(field: str) -> int:
        return proc_status_kb(process.pid, field) if process.pid else 0

    def store_peak_kb() -> int:
        return store_status_kb("VmHWM")

    def store_fds() -> int:
        with contextlib.suppress(OSError):
            return len(os.listdir(f"/proc/{process.pid}/fd")) if process.pid else 0
        return 0

    await app.server.start()
    loop = asyncio.get_running_loop()

    async def probe_lag() -> None:
        while True:
            before = loop.time()
            await asyncio.sleep(LAG_TICK)
            lag.append(max(0.0, loop.time() - before - LAG_TICK))

    prober = asyncio.create_task(probe_lag())
    window_cpu = cpu_seconds() + store_cpu()
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
            if process.pid:
                reset_peak_rss(process.pid)
            process.tx_seconds.clear()
            window_cpu = cpu_seconds() + store_cpu()
            spooled_before = gateway.spooled
            conn.send("ok")
        elif request == "stats":
            count, p50, p99 = app.server.round_trips.quantiles(QUICK_COMMANDS)
            by_command: dict[str, int] = {}
            for name, _seconds in app.server.round_trips.samples:
                by_command[name] = by_command.get(name, 0) + 1
            conn.send(
                {
                    "cpu": cpu_seconds() + store_cpu() - window_cpu,
                    "agi_commands": len(app.server.round_trips.samples),
                    "by_command": by_command,
                    "rt_quick_count": count,
                    "rt_p50": p50,
                    "rt_p99": p99,
                    "lag_p99": quantile(lag, 0.99),
                    "db_writes": len(db_latency),
                    "db_p99": quantile(db_latency, 0.99),
                    "tx_p99": quantile(in_transaction + list(process.tx_seconds), 0.99),
                    "peak_rss_kb": status_kb("VmHWM") + store_peak_kb(),
                    # the FastAGI process and its store process, as the soak watches them
                    "rss_kb": status_kb("VmRSS") + store_status_kb("VmRSS"),
                    "fds": len(os.listdir("/proc/self/fd")) + store_fds(),
                    "refused": app.server.refused,
                    "spooled": gateway.spooled - spooled_before,
                    "in_progress": len(app.server._calls),
                }
            )
        elif isinstance(request, tuple) and request[0] == "store":
            # where a phase's store work runs: "process" (production), "thread", "threads"
            runtime.process, threads = stores[request[1]]
            if threads not in executors:
                executors[threads] = ThreadPoolExecutor(threads, thread_name_prefix="store")
            runtime.executor = executors[threads]
            conn.send("ok")
        elif isinstance(request, tuple) and request[0] == "nice":
            if process.pid:  # the store process's one thread
                os.setpriority(os.PRIO_PROCESS, process.pid, request[1])
            conn.send(set_priority(request[1]))
        elif isinstance(request, tuple) and request[0] == "variant":
            InboundFlow.say_number = VARIANTS[request[1]]  # type: ignore[method-assign]
            conn.send("ok")
        elif request == "stop":
            prober.cancel()
            await app.server.stop()
            await app.store.close()
            conn.send("stopped")
            return


def main(config_path: str, conn: Connection) -> None:
    """Process entry point (multiprocessing, spawn)."""
    asyncio.run(serve(config_path, conn))
