"""The agents' state sync: from a node's queue event to the state written on the other node.

    python -m bench.agent_sync [--agents 200] [--calls 2000] [--rate 50] [--nodes 2]

Issue 22 asks that an agent's shared device state be equal on every node
within 1 s. Here each node is a loopback AMI manager of our own (real TCP, the
real `telephony.ami.AMIClient` and `agents.state_sync.DeviceStateSync`, no
Asterisk): node 1 sends queue calls' events (AgentCalled, AgentConnect,
AgentComplete for --calls calls over --agents agents, --rate calls a second:
a big city's peak is about 10; 0 sends them all at once), every node answers
each Setvar, and the bench times each write from the event's own Timestamp to
its arrival at each node. Prints the
median, 99th percentile and worst latency per node and writes
test-artifacts/bench-agent-sync.json. The goal: the worst well under 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path

from agents.state_sync import DeviceStateSync
from telephony.ami import AMIClient
from tools.sandbox.config import free_port

BANNER = b"Asterisk Call Manager/11.0.0\r\n"
ARTIFACT = Path("test-artifacts/bench-agent-sync.json")


class Node:
    """A manager that answers every action, records each Setvar's arrival, and can send events."""

    def __init__(self, name: str) -> None:
        self.name, self.port = name, free_port()
        self.arrivals: dict[tuple[str, str], list[float]] = {}
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(BANNER)
        self.writers.append(writer)
        try:
            while True:
                block = (await reader.readuntil(b"\r\n\r\n")).decode()
                fields = dict(line.split(": ", 1) for line in block.split("\r\n") if ": " in line)
                if fields.get("Action") == "Setvar":
                    key = (fields["Variable"], fields["Value"])
                    self.arrivals.setdefault(key, []).append(time.time())
                if fields.get("Action") == "CoreShowChannels":
                    writer.write(b"Event: CoreShowChannelsComplete\r\n\r\n")
                writer.write(
                    f"Response: Success\r\nActionID: {fields.get('ActionID', '')}\r\n\r\n".encode()
                )
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    def send_event(self, name: str, fields: dict[str, str]) -> None:
        text = f"Event: {name}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items())
        for writer in self.writers:
            writer.write((text + "\r\n").encode())


def call_events(call: int, seat: str) -> list[tuple[str, dict[str, str]]]:
    base = {"Queue": "hotline-agents", "Interface": f"PJSIP/{seat}@sip-front"}
    base |= {"MemberName": f"agent-{seat}", "Uniqueid": f"ast1-1700000000.{call}"}
    return [(name, dict(base)) for name in ("AgentCalled", "AgentConnect", "AgentComplete")]


async def run(agents: int, calls: int, nodes: int, rate: float) -> dict[str, object]:
    managers = [Node(f"ast{i + 1}") for i in range(nodes)]
    for manager in managers:
        await manager.start()
    links = {
        m.name: AMIClient("127.0.0.1", m.port, "bench", "x", ping_interval=60) for m in managers
    }
    sync = DeviceStateSync(links)
    stop = asyncio.Event()
    task = asyncio.create_task(sync.run(stop))
    while not all(w.up for w in sync.watch.values()):
        await asyncio.sleep(0.05)
    # (variable, value) -> when each event calling for that write was sent, in order
    sent: dict[tuple[str, str], list[float]] = {}
    states = {"AgentCalled": "RINGING", "AgentConnect": "INUSE", "AgentComplete": "NOT_INUSE"}
    began = time.monotonic()
    for call in range(calls):
        if rate > 0:
            await asyncio.sleep(max(0.0, began + call / rate - time.monotonic()))
        seat = f"b{call % agents:04d}"
        for name, fields in call_events(call, seat):
            stamp = time.time()
            managers[0].send_event(name, fields | {"Timestamp": f"{stamp:.6f}"})
            key = (f"DEVICE_STATE(Custom:agent-{seat})", states[name])
            sent.setdefault(key, []).append(stamp)
        if rate <= 0 and call % 50 == 0:
            await asyncio.sleep(0)  # let the loop read and write as a live node would
    expected = calls * 3  # every event changes its agent's state: one write each
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(
        sum(len(v) for v in m.arrivals.values()) < expected for m in managers
    ):
        await asyncio.sleep(0.1)
    stop.set()
    await task
    for link in links.values():
        await link.close()
    report: dict[str, object] = {"agents": agents, "calls": calls, "nodes": nodes, "rate": rate}
    for manager in managers:
        lags = [
            arrival - stamp
            for key, arrivals in manager.arrivals.items()
            for arrival, stamp in zip(arrivals, sent.get(key, []), strict=False)
        ]
        report[manager.name] = {
            "writes": sum(len(v) for v in manager.arrivals.values()),
            "median_ms": round(statistics.median(lags) * 1000, 1),
            "p99_ms": round(statistics.quantiles(lags, n=100)[98] * 1000, 1),
            "worst_ms": round(max(lags) * 1000, 1),
        }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=200, help="agents the calls go to")
    parser.add_argument("--calls", type=int, default=2000, help="queue calls sent by node 1")
    parser.add_argument("--nodes", type=int, default=2, help="nodes the states are written to")
    parser.add_argument("--rate", type=float, default=50, help="calls a second (0: all at once)")
    args = parser.parse_args()
    report = asyncio.run(run(args.agents, args.calls, args.nodes, args.rate))
    ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
    ARTIFACT.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
