"""Does Asterisk's app_queue add delay of its own? Measured service level against Erlang C.

    python -m bench.acd [--quick] [--window 900] [--talk exp|fixed] [--seed 1]

One private Asterisk (own state folder, free ports, `asterisk.include_bench`)
with three queues, one per load, run side by side in the same Asterisk:

    load   K agents   occupancy   lam = occupancy * K / h
    1      3          0.60
    2      4          0.75
    3      5          0.85

K scripted agents per queue (Local/NAME@bench-agent, dialplans/bench-ivr.conf)
answer at once and talk for the citizen's drawn talk time (exponential of mean
--talk-mean s, as Erlang C assumes; `--talk fixed` for a constant), then
app_queue's wrap-up (--wrapup s) follows: h = talk + wrap-up. Citizens arrive
as a Poisson process at rate lam for --window seconds: each an AMI Originate of
Local/LOAD-SERIAL-TALK@bench-acd, which answers and enters Queue() straight
away (no IVR, no prompts, no announcements), so any delay is the queue's own.

Measured, from Asterisk's queue_log (ENTERQUEUE, CONNECT holdtime, ABANDON,
EXIT*): the service level, the share answered with holdtime <= 15 s (abandoned
and timed-out calls count as not answered in time), and the mean holdtime.
From AMI events (timestampevents: Asterisk's own microsecond clock): the exact
wait (QueueCallerJoin to AgentConnect) and the ring latency: from the moment a
call could be rung, the later of its QueueCallerJoin and the rung agent
becoming free (its last AgentComplete, plus wrap-up as app_queue counts it, in
whole seconds of time(NULL)), to the AgentCalled event of its first ring. For
a call that found an agent free this is the pop-to-ring latency; for a call
that waited, the free-to-ring latency (app_queue's head caller re-checks once
a second).

Predicted: Erlang C (bench/erlang.py) for the nominal lam and h (the process's
parameters; the sample's own offered rho is printed beside it), and an ideal
replay: the very same calls (Asterisk's join times, the drawn talk times)
through a zero-delay FCFS queue of K agents, which takes the sampling noise of
a short run out of the comparison. Calls that entered during the first
--warmup seconds (an empty centre) are left out. The ratio measured SL /
predicted SL >= 0.95 means the ACD adds no delay. Writes
test-artifacts/bench-acd.json and .svg (no matplotlib in the venv).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import html
import json
import math
import multiprocessing
import random
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from agents.queue_log import read_from
from bench.agi_worker import quantile
from bench.erlang import erlang_c, mean_wait, service_level
from bench.quiet import load_1min
from bench.stopping import cancellable
from core.config import HotlineConfig, load_config
from telephony.ami import AMIClient
from tools.local_asterisk.local import LocalAsterisk
from tools.sandbox.config import FAST_SETTINGS, write_config

SL_SECONDS = 15.0
LOADS = (("1", 3, 0.60), ("2", 4, 0.75), ("3", 5, 0.85))  # name, agents, occupancy
QUEUE_EVENTS = (
    "QueueCallerJoin",
    "AgentCalled",
    "AgentConnect",
    "AgentComplete",
    "AgentRingNoAnswer",
    "QueueCallerAbandon",
    "QueueCallerLeave",
)
GAVE_UP = ("ABANDON", "EXITWITHTIMEOUT", "EXITWITHKEY", "EXITEMPTY")
ARTIFACTS = Path("test-artifacts")


def queue_name(load: str) -> str:
    return f"bench-acd-{load}"


@dataclass
class Load:
    """One queue's offered load and, after the run, what was measured on it."""

    name: str
    agents: int
    occupancy: float
    h_nominal: float
    lam_nominal: float
    placed: int = 0
    talks: dict[str, float] = field(default_factory=dict)  # serial -> drawn talk seconds


@dataclass
class Result:
    load: str
    agents: int
    occupancy_nominal: float
    lam_nominal: float  # calls/s
    h_nominal: float  # s
    lam_offered: float  # calls that entered after the warm-up / their time span
    h_offered: float  # mean drawn talk of those calls + wrap-up
    occupancy_offered: float
    calls: int  # entered the queue after the warm-up
    answered: int
    gave_up: int
    sl_predicted: float  # Erlang C, nominal lam and h (the process's parameters)
    sl_predicted_offered: float  # Erlang C, this sample's lam and h (0 if rho >= 1)
    sl_ideal_replay: float  # the same calls through an ideal zero-delay FCFS queue
    sl_measured: float  # queue_log: CONNECT holdtime <= 15 s, of all calls
    sl_ratio: float  # measured / Erlang C (nominal)
    sl_ratio_replay: float  # measured / ideal replay
    wait_prob_predicted: float  # Erlang C's C(K, A): the share that waits at all
    wait_prob_measured: float  # AMI: exact wait > 0.5 s
    mean_wait_predicted: float  # Erlang C's E[W], nominal
    mean_wait_ideal_replay: float
    mean_wait_measured: float  # AMI exact (QueueCallerJoin -> AgentConnect)
    mean_hold_queue_log: float  # queue_log CONNECT holdtime (whole seconds)
    ring_p50_ms: float  # pop/free-to-ring, all first rings
    ring_p99_ms: float
    ring_max_ms: float
    pop_ring_p99_ms: float  # the calls that found an agent free
    pop_ring_n: int
    free_ring_p99_ms: float  # the calls that waited for an agent
    free_ring_n: int
    ronas: int
    busy_mean_s: float  # measured: first ring to the agent free again (h as app_queue ran it)


def bench_config(folder: Path, args: argparse.Namespace) -> HotlineConfig:
    queues = [
        {
            "name": queue_name(name),
            "strategy": "leastrecent",
            "ring_seconds": 15,
            "retry_seconds": 1,
            "wrapup_seconds": args.wrapup,
            "announce_seconds": 0,
            "max_wait_seconds": 600,
            "pause_on_no_answer": False,
        }
        for name, _k, _rho in LOADS
    ]
    settings = {
        **FAST_SETTINGS,
        "queues": [*FAST_SETTINGS["queues"], *queues],  # type: ignore[list-item]
        "asterisk": {"include_bench": True},
        "robot": {"enabled": False},
    }
    return load_config(write_config(folder, **settings))


def stamp(event_fields: dict[str, str]) -> float:
    """Asterisk's own time of an event (timestampevents = yes)."""
    return float(event_fields.get("Timestamp") or time.time())


class Recorder:
    """Every queue event of the run, with Asterisk's timestamps."""

    def __init__(self, ami: AMIClient) -> None:
        self.ami = ami
        self.events: list[tuple[str, float, dict[str, str]]] = []
        self.feed = ami.subscribe(*QUEUE_EVENTS)
        self.task = asyncio.create_task(self.follow())

    async def follow(self) -> None:
        while True:
            event = await self.feed.get()
            self.events.append((event.name, stamp(event.fields), event.fields))

    def count(self, name: str, queue: str) -> int:
        return sum(1 for n, _t, f in self.events if n == name and f.get("Queue") == queue)

    def left(self, queue: str) -> int:
        """Calls that left the queue: completed, abandoned or gone unanswered."""
        done = self.count("AgentComplete", queue) + self.count("QueueCallerAbandon", queue)
        unanswered = {
            f.get("Uniqueid")
            for n, _t, f in self.events
            if n == "QueueCallerLeave" and f.get("Queue") == queue
        } - {
            f.get("Uniqueid")
            for n, _t, f in self.events
            if n in ("AgentConnect", "QueueCallerAbandon") and f.get("Queue") == queue
        }
        return done + len(unanswered)

    def stop(self) -> None:
        self.task.cancel()
        self.ami.unsubscribe(self.feed)


def agent_name(load: str, j: int) -> str:
    return f"bench{load}x{j}"


async def add_agents(ami: AMIClient, load: Load) -> None:
    for j in range(load.agents):
        name = agent_name(load.name, j)
        await ami.action(
            "QueueAdd",
            Queue=queue_name(load.name),
            Interface=f"Local/{name}@bench-agent",
            MemberName=name,
            Paused="false",
        )


async def remove_agents(ami: AMIClient, load: Load) -> None:
    for j in range(load.agents):
        with contextlib.suppress(Exception):
            await ami.action(
                "QueueRemove",
                Queue=queue_name(load.name),
                Interface=f"Local/{agent_name(load.name, j)}@bench-agent",
            )


async def offer(ami: AMIClient, load: Load, args: argparse.Namespace, seed: int) -> None:
    """Poisson arrivals at lam for the window; each citizen's talk time drawn here."""
    rng = random.Random(seed)
    loop = asyncio.get_running_loop()
    start = loop.time()
    at = rng.expovariate(load.lam_nominal)
    tasks: set[asyncio.Task[None]] = set()

    async def call(serial: int, talk: float) -> None:
        try:
            result = await ami.originate(
                f"Local/{load.name}-{serial}-{talk:.3f}@bench-acd",
                context="bench-acd-hold",
                exten="s",
                caller_id=f"139{load.name}{serial:07d}",
                timeout_ms=30000,
            )
            if not result.success:
                print(f"  load {load.name}: call {serial} not placed ({result.reason})")
        except Exception as exc:  # a failed originate shows as placed != entered
            print(f"  load {load.name}: call {serial} failed: {exc}", file=sys.stderr)

    serial = 0
    while at < args.window:
        await asyncio.sleep(max(0.0, start + at - loop.time()))
        if args.talk == "fixed":
            talk = args.talk_mean
        else:  # exponential, capped at 8 means (removes 0.03 % of the mass)
            talk = min(rng.expovariate(1 / args.talk_mean), 8 * args.talk_mean)
        serial += 1
        load.talks[str(serial)] = talk
        load.placed = serial
        task = asyncio.create_task(call(serial, talk))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        at += rng.expovariate(load.lam_nominal)
    if tasks:
        await asyncio.gather(*tasks)


async def progress(rec: Recorder, loads: list[Load], started: float, window: float) -> None:
    while True:
        await asyncio.sleep(10)
        parts = []
        for load in loads:
            q = queue_name(load.name)
            joined, answered = rec.count("QueueCallerJoin", q), rec.count("AgentConnect", q)
            parts.append(
                f"{load.name}: placed {load.placed}, answered {answered}, "
                f"waiting {joined - rec.left(q) - (answered - rec.count('AgentComplete', q))}"
            )
        elapsed = time.monotonic() - started
        print(f"  t={elapsed:4.0f}/{window:.0f} s  " + " | ".join(parts), flush=True)


def first_rings(
    events: list[tuple[str, float, dict[str, str]]], queue: str, wrapup: int
) -> tuple[dict[str, float], dict[str, tuple[float, bool]], list[float]]:
    """Per caller: join time; ring latency and whether an agent was free at join; busy spans."""
    joins: dict[str, float] = {}
    free_at: dict[str, float] = {}  # member -> when app_queue may ring it again
    rung: dict[str, float] = {}  # member -> its current call's first ring
    rings: dict[str, tuple[float, bool]] = {}
    busy: list[float] = []
    for name, at, f in sorted(events, key=lambda e: e[1]):
        if f.get("Queue") != queue:
            continue
        caller, member = f.get("Uniqueid"), f.get("MemberName")
        if name == "QueueCallerJoin":
            joins[caller] = at
        elif name == "AgentCalled" and caller in joins and caller not in rings:
            ready = free_at.get(member, 0.0)
            could = max(joins[caller], ready)
            rings[caller] = (at - could, joins[caller] >= ready)
            rung[member] = at
        elif name == "AgentComplete":
            # app_queue: lastcall = time(NULL) at hang-up; free once time(NULL) - wrapup >= it
            free_at[member] = math.floor(at) + wrapup
            if member in rung:
                busy.append(free_at[member] - rung.pop(member))
    return joins, rings, busy


def measure(
    load: Load, config: HotlineConfig, rec: Recorder, t0: float, args: argparse.Namespace
) -> Result:
    queue = queue_name(load.name)
    chunk = read_from(config.queue_log, 0, 0)
    log = [e for e in chunk.events if e.queue == queue]
    entered = {e.callid: e.at.timestamp() for e in log if e.event == "ENTERQUEUE"}
    after = {c for c, at in entered.items() if at >= math.floor(t0 + args.warmup)}
    holds = {e.callid: int(e.field(1) or 0) for e in log if e.event == "CONNECT"}
    gave_up = {e.callid for e in log if e.event in GAVE_UP} & after
    calls = len(after)
    answered = [holds[c] for c in after if c in holds]
    in_sl = sum(1 for h in answered if h <= SL_SECONDS)

    joins, rings, busy = first_rings(rec.events, queue, args.wrapup)
    connects = {
        f.get("Uniqueid"): at
        for n, at, f in rec.events
        if n == "AgentConnect" and f.get("Queue") == queue
    }
    waits = [connects[c] - joins[c] for c in after if c in connects and c in joins]
    lat = [rings[c][0] for c in after if c in rings]
    pop = [rings[c][0] for c in after if c in rings and rings[c][1]]
    freed = [rings[c][0] for c in after if c in rings and not rings[c][1]]
    by_caller = caller_talks(rec, queue, load)
    talks = [by_caller[c] for c in after if c in by_caller]
    ideal = [w for c, w in replay(joins, by_caller, load.agents, args.wrapup).items() if c in after]
    sl_ideal = sum(1 for w in ideal if w <= SL_SECONDS) / len(ideal) if ideal else 0.0

    span = args.window - args.warmup
    lam = calls / span if span > 0 else 0.0
    h = (sum(talks) / len(talks) if talks else args.talk_mean) + args.wrapup
    k, a = load.agents, lam * h
    a_nominal = load.lam_nominal * load.h_nominal
    sl_pred = service_level(k, a_nominal, load.h_nominal, SL_SECONDS)
    sl = in_sl / calls if calls else 0.0
    return Result(
        load=load.name,
        agents=k,
        occupancy_nominal=load.occupancy,
        lam_nominal=load.lam_nominal,
        h_nominal=load.h_nominal,
        lam_offered=lam,
        h_offered=h,
        occupancy_offered=a / k,
        calls=calls,
        answered=len(answered),
        gave_up=len(gave_up),
        sl_predicted=sl_pred,
        sl_predicted_offered=service_level(k, a, h, SL_SECONDS),
        sl_ideal_replay=sl_ideal,
        sl_measured=sl,
        sl_ratio=sl / sl_pred if sl_pred else 0.0,
        sl_ratio_replay=sl / sl_ideal if sl_ideal else 0.0,
        wait_prob_predicted=erlang_c(k, a_nominal),
        wait_prob_measured=sum(1 for w in waits if w > 0.5) / len(waits) if waits else 0.0,
        mean_wait_predicted=mean_wait(k, a_nominal, load.h_nominal),
        mean_wait_ideal_replay=sum(ideal) / len(ideal) if ideal else 0.0,
        mean_wait_measured=sum(waits) / len(waits) if waits else 0.0,
        mean_hold_queue_log=sum(answered) / len(answered) if answered else 0.0,
        ring_p50_ms=1000 * quantile(lat, 0.5),
        ring_p99_ms=1000 * quantile(lat, 0.99),
        ring_max_ms=1000 * max(lat, default=0.0),
        pop_ring_p99_ms=1000 * quantile(pop, 0.99),
        pop_ring_n=len(pop),
        free_ring_p99_ms=1000 * quantile(freed, 0.99),
        free_ring_n=len(freed),
        ronas=rec.count("AgentRingNoAnswer", queue),
        busy_mean_s=sum(busy) / len(busy) if busy else 0.0,
    )


def replay(
    joins: dict[str, float], talks: dict[str, float], agents: int, wrapup: int
) -> dict[str, float]:
    """The wait of each call in an ideal FCFS queue fed the very same calls: no ACD delay.

    The same join times (Asterisk's) and drawn talk times, K agents, each free
    again talk + wrap-up after taking a call: the sample's own Erlang C, without
    its sampling noise.
    """
    free = [0.0] * agents
    waits = {}
    for caller, at in sorted(joins.items(), key=lambda item: item[1]):
        if caller not in talks:
            continue
        j = min(range(agents), key=free.__getitem__)
        start = max(at, free[j])
        waits[caller] = start - at
        free[j] = start + talks[caller] + wrapup
    return waits


def caller_talks(rec: Recorder, queue: str, load: Load) -> dict[str, float]:
    """Each caller's drawn talk time (its Local channel is named LOAD-SERIAL-TALK)."""
    talks = {}
    for name, _at, f in rec.events:
        if name == "QueueCallerJoin" and f.get("Queue") == queue:
            parts = f.get("Channel", "").split("/", 1)[-1].split("@", 1)[0].split("-")
            if len(parts) >= 2 and parts[1] in load.talks:
                talks[f.get("Uniqueid")] = load.talks[parts[1]]
    return talks


# -- output ------------------------------------------------------------------------------
def format_table(results: list[Result]) -> str:
    head = (
        "| load | K | lam /s | h s | rho nominal (sample) | calls | SL Erlang C | SL ideal replay "
        "| SL measured | ratio Erlang C (replay) | P(wait) pred/meas | E[W] Erlang C s | "
        "W ideal replay s | W measured s (queue_log) | ring p50/p99/max ms | "
        "pop-ring p99 (n) | free-ring p99 (n) |"
    )
    lines = [head, "|" + "---|" * 17]
    for r in results:
        lines.append(
            f"| {r.load} | {r.agents} | {r.lam_nominal:.3f} | {r.h_nominal:.2f} | "
            f"{r.occupancy_nominal:.2f} ({r.occupancy_offered:.2f}) | {r.calls} | "
            f"{r.sl_predicted:.3f} | {r.sl_ideal_replay:.3f} | "
            f"{r.sl_measured:.3f} | {r.sl_ratio:.3f} ({r.sl_ratio_replay:.3f}) | "
            f"{r.wait_prob_predicted:.2f}/{r.wait_prob_measured:.2f} | "
            f"{r.mean_wait_predicted:.2f} | {r.mean_wait_ideal_replay:.2f} | "
            f"{r.mean_wait_measured:.2f} ({r.mean_hold_queue_log:.2f}) | "
            f"{r.ring_p50_ms:.0f}/{r.ring_p99_ms:.0f}/{r.ring_max_ms:.0f} | "
            f"{r.pop_ring_p99_ms:.0f} ({r.pop_ring_n}) | "
            f"{r.free_ring_p99_ms:.0f} ({r.free_ring_n}) |"
        )
    return "\n".join(lines)


def draw_chart(results: list[Result], path: Path, title: str) -> None:
    """Hand-made SVG: SL predicted vs measured, and mean wait predicted vs measured, per load."""
    width, height, pad = 760, 300, 50
    panel = (width - 3 * pad) / 2
    plot_h = height - 2 * pad - 20
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="11">',
        f'<text x="{pad}" y="18" font-size="13">{html.escape(title)}</text>',
    ]
    colours = ("#9ecae1", "#08519c")

    def panel_svg(x0: float, label: str, pairs: list[tuple[float, float]], top: float) -> None:
        y0 = pad + plot_h
        out.append(f'<text x="{x0}" y="{pad - 12}">{html.escape(label)}</text>')
        out.append(f'<line x1="{x0}" y1="{y0}" x2="{x0 + panel}" y2="{y0}" stroke="#333"/>')
        out.append(f'<line x1="{x0}" y1="{pad}" x2="{x0}" y2="{y0}" stroke="#333"/>')
        for tick in range(5):
            value = top * tick / 4
            y = y0 - plot_h * tick / 4
            out.append(f'<text x="{x0 - 4}" y="{y + 4:.1f}" text-anchor="end">{value:.2g}</text>')
        group = panel / max(len(pairs), 1)
        for i, (pred, meas) in enumerate(pairs):
            for j, value in enumerate((pred, meas)):
                bar_h = plot_h * min(value / top, 1.0) if top else 0.0
                x = x0 + i * group + group * (0.15 + 0.35 * j)
                out.append(
                    f'<rect x="{x:.1f}" y="{y0 - bar_h:.1f}" width="{group * 0.33:.1f}" '
                    f'height="{bar_h:.1f}" fill="{colours[j]}"/>'
                )
                out.append(
                    f'<text x="{x + group * 0.16:.1f}" y="{y0 - bar_h - 3:.1f}" '
                    f'text-anchor="middle" font-size="9">{value:.2f}</text>'
                )
            r = results[i]
            out.append(
                f'<text x="{x0 + (i + 0.5) * group:.1f}" y="{y0 + 14}" text-anchor="middle">'
                f"K={r.agents} rho={r.occupancy_offered:.2f}</text>"
            )

    panel_svg(pad, f"service level (wait <= {SL_SECONDS:g} s)",
              [(r.sl_predicted, r.sl_measured) for r in results], 1.0)  # fmt: skip
    top = max([r.mean_wait_predicted for r in results] + [r.mean_wait_measured for r in results])
    panel_svg(2 * pad + panel, "mean wait, s", [(r.mean_wait_predicted, r.mean_wait_measured)
              for r in results], max(top, 0.1) * 1.15)  # fmt: skip
    for j, label in enumerate(("Erlang C", "measured (Asterisk app_queue)")):
        x = pad + 200 * j
        out.append(f'<rect x="{x}" y="{height - 16}" width="10" height="10" fill="{colours[j]}"/>')
        out.append(f'<text x="{x + 14}" y="{height - 7}">{label}</text>')
    out.append("</svg>")
    path.write_text("\n".join(out) + "\n", encoding="utf-8")


# -- the run -----------------------------------------------------------------------------
async def run(args: argparse.Namespace) -> int:
    h = args.talk_mean + args.wrapup
    loads = [Load(n, k, rho, h, rho * k / h) for n, k, rho in LOADS]
    load_start = load_1min()
    print(
        f"ACD bench: {len(loads)} queues side by side, {args.window:.0f} s of Poisson arrivals "
        f"(first {args.warmup:.0f} s left out), talk {args.talk} mean {args.talk_mean:g} s "
        f"+ wrap-up {args.wrapup} s = h {h:g} s"
    )
    for load in loads:
        calls = load.lam_nominal * args.window
        print(f"  load {load.name}: K={load.agents}, rho={load.occupancy}, "
              f"lam={load.lam_nominal:.3f}/s (~{calls:.0f} calls)")  # fmt: skip
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="hotline-bench-acd-") as tmp:
        folder = Path(tmp)
        folder.chmod(0o755)
        config = bench_config(folder, args)
        local = LocalAsterisk(config)
        ami: AMIClient | None = None
        rec: Recorder | None = None
        try:
            started = time.monotonic()
            await asyncio.to_thread(local.up)
            print(f"Asterisk up in {time.monotonic() - started:.1f} s", flush=True)
            cfg = config.asterisk.ami
            ami = AMIClient(
                cfg.host, cfg.port, cfg.test_username, config.ami_test_secret(), ping_interval=5
            )
            await ami.connect()
            await ami.action("Events", EventMask="call,agent")
            for event in (*QUEUE_EVENTS, "OriginateResponse"):
                await ami.action("Filter", Operation="Add", Filter=f"Event: {event}")
            rec = Recorder(ami)
            for load in loads:
                await add_agents(ami, load)
            await asyncio.sleep(2)  # members' device states settle
            t0 = time.time()
            started = time.monotonic()
            ticker = asyncio.create_task(progress(rec, loads, started, args.window))
            try:
                await asyncio.gather(
                    *(offer(ami, load, args, args.seed * 10 + i) for i, load in enumerate(loads))
                )
                deadline = time.monotonic() + args.drain
                while time.monotonic() < deadline:
                    if all(
                        rec.left(queue_name(x.name)) >= x.placed
                        for x in loads  # every placed call has entered and left
                    ):
                        break
                    await asyncio.sleep(1)
            finally:
                ticker.cancel()
            await asyncio.sleep(1.5)  # the last queue_log lines reach the file
            for load in loads:
                q = queue_name(load.name)
                print(f"  load {load.name}: placed {load.placed}, entered "
                      f"{rec.count('QueueCallerJoin', q)}, answered "
                      f"{rec.count('AgentConnect', q)}, left {rec.left(q)}")  # fmt: skip
            results = [measure(load, config, rec, t0, args) for load in loads]
            for load in loads:
                await remove_agents(ami, load)
        finally:
            if rec is not None:
                rec.stop()
            if ami is not None:
                await ami.close()
            await asyncio.to_thread(local.down)
    load_end = load_1min()
    print()
    print(f"machine: {multiprocessing.cpu_count()} cores; load {load_start:.2f} -> {load_end:.2f}")
    print(format_table(results))
    worst = min((r.sl_ratio for r in results), default=0.0)
    ring = max((r.ring_p99_ms for r in results), default=0.0)
    print()
    print(f"service level measured / Erlang C: worst {worst:.3f} (goal >= 0.95); "
          f"ring latency p99 (worst load) {ring:.0f} ms")  # fmt: skip
    ARTIFACTS.mkdir(exist_ok=True)
    meta = {
        "window_s": args.window,
        "warmup_s": args.warmup,
        "talk": args.talk,
        "talk_mean_s": args.talk_mean,
        "wrapup_s": args.wrapup,
        "sl_seconds": SL_SECONDS,
        "seed": args.seed,
        "cores": multiprocessing.cpu_count(),
        "load_avg": [load_start, load_end],
        "worst_sl_ratio": worst,
    }
    out = Path(args.json or ARTIFACTS / "bench-acd.json")
    out.write_text(json.dumps({"meta": meta, "loads": [asdict(r) for r in results]}, indent=1))
    chart = Path(args.chart or ARTIFACTS / "bench-acd.svg")
    draw_chart(results, chart, f"app_queue vs Erlang C ({args.talk} talk, h={h:g} s, "
               f"{args.window:.0f} s per load)")  # fmt: skip
    print(f"numbers: {out}; chart: {chart}")
    return 0 if results and all(r.calls for r in results) else 1


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="90 s of arrivals (~2.5 min)")
    parser.add_argument("--window", type=float, default=0.0, help="seconds of arrivals per load")
    parser.add_argument("--warmup", type=float, default=-1.0, help="leave out the first S s")
    parser.add_argument("--talk", choices=["exp", "fixed"], default="exp")
    parser.add_argument("--talk-mean", type=float, default=4.0, help="mean talk time, s")
    parser.add_argument("--wrapup", type=int, default=1, help="app_queue wrapuptime, s")
    parser.add_argument("--drain", type=float, default=120.0, help="wait this long at most")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", default="")
    parser.add_argument("--chart", default="")
    parser.add_argument("--redraw", default="", help="only redraw the chart from this JSON")
    args = parser.parse_args(argv)
    if not args.window:
        args.window = 90.0 if args.quick else 900.0
    if args.warmup < 0:
        args.warmup = 15.0 if args.quick else 60.0
    return args


def redraw(source: Path, chart: Path) -> None:
    """The chart again from a run's JSON (no Asterisk)."""
    data = json.loads(source.read_text())
    meta = data["meta"]
    h = meta["talk_mean_s"] + meta["wrapup_s"]
    title = (
        f"app_queue vs Erlang C ({meta['talk']} talk, h={h:g} s, {meta['window_s']:.0f} s per load)"
    )
    draw_chart([Result(**r) for r in data["loads"]], chart, title)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.redraw:
        redraw(Path(args.redraw), Path(args.chart or ARTIFACTS / "bench-acd.svg"))
        return 0
    return asyncio.run(cancellable(run(args)))


if __name__ == "__main__":
    sys.exit(main())
