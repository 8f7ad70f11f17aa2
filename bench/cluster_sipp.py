"""bench/cluster.py --sipp: the split between the nodes and the failover, on a running cluster.

    python -m bench.cluster --sipp CONFIG [--calls 20] [--rate 2] [--kill ast2]

The cluster is the one `hotline cluster up -c CONFIG` started. SIPp citizens
(bench/sipp/cluster_request.xml: RTP, keys 1, 3, 2 as RFC 4733 events,
voice, #; a fresh caller number each) call the front at `rate` calls a
second; the store's call rows say which node took each. With `--kill NODE`
a second run at the same rate has the node's Asterisk SIGKILLed half way:
the failover time is from the kill until the front marks the node inactive,
and a UDP socket bound on the node's SIP port counts the INVITEs that still
reach it. `hotline cluster up` starts the node again and the time until the
front has it active again is the rejoin time. The callers' address is
127.0.0.100 (all of 127/8 answers on `lo`).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from bench.sipp.cluster import InviteTrap, SippCitizens, SippResult
from core.config import HotlineConfig, load_config
from core.paths import project_dir
from db.models import Call
from db.session import make_engine, make_session_factory
from telephony.kamailio import dispatcher_list
from tools.cluster.layout import DEBIAN_ASTERISK_MODULES, cluster_of, default_layout
from tools.cluster.status import front_node_of

CALLERS = "127.0.0.100"
SETTLE = 120.0  # seconds for the last call rows to be written after SIPp ends


@dataclass(frozen=True)
class Failover:
    """What a node kill under load showed."""

    inactive_after: float  # s from the kill until the front had the node inactive
    invites_after: list[float]  # s from the kill of each INVITE the dead node still got
    rejoined_after: float  # s from `hotline cluster up` until the front had it active again
    sipp: SippResult


def front_state(config: HotlineConfig, node: str) -> str:
    cluster = cluster_of(config)
    layout = default_layout(config, config.state_dir, DEBIAN_ASTERISK_MODULES)
    wanted = next(n for n in cluster.nodes if n.name == node)
    found = front_node_of(dispatcher_list(layout.kamailio_ctl(), timeout=5.0), wanted)
    return found.state if found else "missing"


async def wait_state(config: HotlineConfig, node: str, state: str, timeout: float) -> float:
    """Seconds until the front has node in state (TimeoutError after timeout)."""
    begun = time.monotonic()
    while front_state(config, node) != state:
        if time.monotonic() - begun > timeout:
            raise TimeoutError(f"{node} not {state} at the front within {timeout:.0f} s")
        await asyncio.sleep(0.1)
    return time.monotonic() - begun


def split(config: HotlineConfig, callers: list[str]) -> Counter[str]:
    """How many of these callers' calls each node took, from the store's call rows."""
    engine = make_engine(config.database_url)
    try:
        with make_session_factory(engine)() as session:
            nodes = session.scalars(select(Call.node).where(Call.caller_number.in_(callers)))
            return Counter(node or "?" for node in nodes)
    finally:
        engine.dispose()


def fresh_callers(count: int, run: int) -> list[str]:
    """Caller numbers no earlier run used: the run's clock in the middle digits."""
    stamp = int(time.time()) % 100_000
    return [f"13{run}{stamp:05d}{i:03d}" for i in range(count)]


def asterisk_pid(config: HotlineConfig, node: str) -> int:
    book = json.loads((config.state_dir / "cluster" / "processes.json").read_text())
    found = (p["pid"] for p in book["processes"] if (p["role"], p["name"]) == ("asterisk", node))
    return int(next(found))


def cluster_up(config: HotlineConfig) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hotline.cli", "cluster", "up", "-c", str(config.source)],
        capture_output=True,
        text=True,
        cwd=project_dir(),
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"hotline cluster up failed:\n{done.stdout[-2000:]}{done.stderr}")


async def kill_under_load(
    config: HotlineConfig, folder: Path, node: str, callers: list[str], rate: float
) -> Failover:
    """Calls at `rate`; the node's Asterisk SIGKILLed half way through; restarted after."""
    address = next(n for n in cluster_of(config).nodes if n.name == node)
    citizens = SippCitizens(folder, cluster_of(config).front.address, CALLERS, callers, rate,
                            tag="kill")  # fmt: skip
    run = asyncio.create_task(citizens.run())
    await asyncio.sleep(len(callers) / rate / 2)
    os.kill(asterisk_pid(config, node), signal.SIGKILL)
    killed = time.monotonic()
    trap = InviteTrap(address.address, address.sip_port)
    await asyncio.to_thread(trap.bind)
    try:
        await wait_state(config, node, "inactive", 60)
        inactive = time.monotonic() - killed
        sipp = await run
    finally:
        trap.close()
    restarted = time.monotonic()
    await asyncio.to_thread(cluster_up, config)
    await wait_state(config, node, "active", 120)
    rejoined = time.monotonic() - restarted
    return Failover(inactive, [at - killed for at, _id in trap.invites], rejoined, sipp)


async def measure(config_path: Path, calls: int, rate: float, kill: str | None) -> int:
    config = load_config(config_path)
    cluster = cluster_of(config)
    folder = config.state_dir / "bench-sipp"
    folder.mkdir(parents=True, exist_ok=True)
    callers = fresh_callers(calls, 9)
    print(f"{calls} SIPp calls at {rate:g}/s to {cluster.front.address}", flush=True)
    sipp = await SippCitizens(folder, cluster.front.address, CALLERS, callers, rate,
                              tag="split").run()  # fmt: skip
    await asyncio.sleep(5)  # the last rows
    counts = split(config, callers)
    print(f"  {sipp.summary}")
    print("| node | calls | share |")
    print("|---|---|---|")
    for node in cluster.nodes:
        share = counts[node.name] / max(sum(counts.values()), 1)
        print(f"| {node.name} | {counts[node.name]} | {share:.0%} |")
    if kill is None:
        return 0 if sipp.failed == 0 else 1
    front = cluster.front
    print(
        f"\nkilling {kill} half way through {calls} calls at {rate:g}/s (probing every "
        f"{front.probing_interval_seconds} s, threshold {front.probing_threshold}, fr_timer "
        f"{front.fr_timer_ms} ms)",
        flush=True,
    )
    failover = await kill_under_load(config, folder, kill, fresh_callers(calls, 8), rate)
    late = ", ".join(f"{s:.1f} s" for s in failover.invites_after) or "none"
    print(f"  {failover.sipp.summary} (the calls {kill} carried at the kill fail)")
    print(f"  failover: {kill} inactive at the front {failover.inactive_after:.1f} s after it")
    print(f"  INVITEs that reached {kill} after the kill: {late}")
    print(f"  rejoined {failover.rejoined_after:.1f} s after `hotline cluster up`")
    return 0
