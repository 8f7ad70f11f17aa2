"""The wallboard under load: event-to-screen latency, and the console's CPU per AMI event.

    python -m bench.wallboard [--quick] [--callers 400] [--agents 50] [--ramp 20] [--talk-mean 20]

One private Asterisk (own state folder, free ports, `asterisk.include_bench`,
brought up as `bench.acd` does) with one queue, `bench-acd-9`, which the
wallboard shows beside the configured ones. --agents scripted agents
(Local/NAME@bench-agent, dialplans/bench-ivr.conf: answer at once, talk for the
citizen's drawn time, exponential of mean --talk-mean s; wrap-up --wrapup s)
and --callers scripted citizens, Poisson arrivals over --ramp seconds, each an
AMI Originate of Local/9-SERIAL-TALK@bench-acd that answers and enters Queue()
at once (bench.acd's machinery). Arrivals far above what the agents serve make
the peak: most callers wait at the same time, then the agents drain them.

Two processes follow the same AMI events during the same peak:

- the console: `hotline web` as an operator starts it, with a supervisor
  watching /wallboard/events (server-sent events), so `dashboard.wallboard`
  follows AMI, reads queue_log into the store and recomputes and pushes the
  figures;
- the baseline: `python -m bench.wallboard --count-only CONFIG`, an AMI client
  built the same way (`links.ami.ami_client`), subscribed to the same events,
  which only counts them.

Event-to-screen latency: from Asterisk's own timestamp of an AMI event
(timestampevents) to the moment the bench receives the first pushed board
whose figure shows it: the k-th QueueCallerJoin of the queue against `offered`
(its ENTERQUEUE line) reaching k, the k-th AgentConnect against `answered`
(CONNECT). CPU: each process's user + system seconds (/proc/PID/stat) from the
first call to the end of the drain, divided by the wallboard's AMI events
(`Waiting.EVENTS` and the member events) in that span, as the bench's own AMI
link counted them. Prints both, their ratio, and writes
test-artifacts/bench-wallboard.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

from agents.figures import Waiting
from bench.acd import QUEUE_EVENTS, Load, Recorder, add_agents, offer, queue_name, remove_agents
from bench.agi_worker import quantile
from bench.quiet import load_1min
from bench.stopping import cancellable
from core.config import HotlineConfig, load_config
from dashboard.auth import hash_password
from dashboard.users import add_user
from dashboard.wallboard import MEMBER_EVENTS
from db.session import make_engine, make_session_factory, unit_of_work
from hotline.app import prepare_store
from links.ami import ami_client
from telephony.ami import AMIClient
from tools.local_asterisk.local import LocalAsterisk
from tools.sandbox.config import FAST_SETTINGS, write_config

LOAD = "9"  # the queue bench-acd-9 (bench-acd's extensions start with a digit)
QUEUE = queue_name(LOAD)
BOARD_EVENTS = (*Waiting.EVENTS, *MEMBER_EVENTS)  # what the wallboard follows
SUPERVISOR, PASSWORD = "bench-boss", "bench password 1"
ARTIFACTS = Path("test-artifacts")
CLOCK_TICK = os.sysconf("SC_CLK_TCK")


@dataclass
class Result:
    callers: int
    agents: int
    peak_callers: int  # the most callers in the queue or on a call at once (AMI)
    peak_waiting: int  # the most callers the board showed waiting at once
    events: int  # the wallboard's AMI events in the measured span (bench's own link)
    events_counted_by_baseline: int  # the baseline's total (from its start)
    span_s: float
    pushes: int  # boards pushed to the bench's stream in the span
    join_p50_ms: float
    join_p99_ms: float
    join_max_ms: float
    join_n: int
    connect_p50_ms: float
    connect_p99_ms: float
    connect_max_ms: float
    connect_n: int
    console_cpu_s: float
    baseline_cpu_s: float
    console_cpu_ms_per_event: float
    baseline_cpu_ms_per_event: float
    cpu_ratio: float  # console / baseline
    missed: list[str] = field(default_factory=list)  # events no pushed board ever showed


def bench_config(folder: Path, args: argparse.Namespace) -> HotlineConfig:
    queue = {
        "name": QUEUE,
        "strategy": "leastrecent",
        "ring_seconds": 15,
        "retry_seconds": 1,
        "wrapup_seconds": args.wrapup,
        "announce_seconds": 0,
        "max_wait_seconds": 600,
        "pause_on_no_answer": False,
    }
    settings = {
        **FAST_SETTINGS,
        "queues": [*FAST_SETTINGS["queues"], queue],  # type: ignore[list-item]
        "asterisk": {"include_bench": True},
        "robot": {"enabled": False},
        "web": {"host": "127.0.0.1"},
    }
    return load_config(write_config(folder, **settings))


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICK  # utime, stime


# -- the baseline: the same AMI events, only counted ---------------------------------------
async def count_only(config_path: Path) -> int:
    """Count the wallboard's AMI events until SIGTERM; print the count."""
    config = load_config(config_path)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    client = ami_client(config)
    await client.connect()
    feed = client.subscribe(*BOARD_EVENTS)
    counted = 0

    async def count() -> None:
        nonlocal counted
        while True:
            await feed.get()
            counted += 1

    counter = asyncio.create_task(count())
    await stop.wait()
    counter.cancel()
    await client.close()
    print(counted, flush=True)
    return 0


# -- the console's side: a supervisor's stream ---------------------------------------------
class BoardStream:
    """A supervisor's /wallboard/events, read in a thread of its own: (received, queue row)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.boards: list[tuple[float, dict[str, object]]] = []
        self.stopping = threading.Event()
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._read, name="board-stream", daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            with httpx.Client(base_url=self.base, timeout=httpx.Timeout(60.0)) as client:
                token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
                assert token, "no CSRF token on /login"
                done = client.post(
                    "/login", data={"username": SUPERVISOR, "password": PASSWORD, "csrf": token[1]}
                )
                assert done.status_code == 303, done.text[:300]
                with client.stream("GET", "/wallboard/events", timeout=None) as response:
                    board = False
                    for line in response.iter_lines():
                        if self.stopping.is_set():
                            return
                        if line.startswith("event: "):
                            board = line == "event: board"
                        elif board and line.startswith("data: "):
                            received = time.time()
                            payload = json.loads(line[6:])
                            row = next(r for r in payload["queues"] if r["queue"] == QUEUE)
                            self.boards.append((received, row))
                            self.ready.set()
        except BaseException as exc:  # the run reports it; the thread must not die silently
            self.error = exc
            self.ready.set()


def latencies(
    events: list[tuple[str, float, dict[str, str]]],
    boards: list[tuple[float, dict[str, object]]],
    event: str,
    figure: str,
) -> tuple[list[float], int]:
    """Seconds from the k-th such event to the first board whose figure reached k; missed."""
    times = sorted(at for name, at, f in events if name == event and f.get("Queue") == QUEUE)
    base = int(boards[0][1][figure]) if boards else 0  # type: ignore[call-overload]
    shown = [(at, int(row[figure]) - base) for at, row in boards]  # type: ignore[call-overload]
    found: list[float] = []
    j = 0
    for k, at in enumerate(times, 1):
        while j < len(shown) and shown[j][1] < k:
            j += 1
        if j == len(shown):
            return found, len(times) - len(found)
        found.append(shown[j][0] - at)
    return found, 0


# -- the run -------------------------------------------------------------------------------
async def run(args: argparse.Namespace) -> int:
    h = args.talk_mean + args.wrapup
    load = Load(LOAD, args.agents, 0.0, h, args.callers / args.ramp)
    load_start = load_1min()
    print(
        f"wallboard bench: {args.callers} callers over {args.ramp:.0f} s (Poisson), "
        f"{args.agents} agents, talk exp mean {args.talk_mean:g} s + wrap-up {args.wrapup} s"
    )
    with tempfile.TemporaryDirectory(prefix="hotline-bench-wallboard-") as tmp:
        folder = Path(tmp)
        folder.chmod(0o755)
        config = bench_config(folder, args)
        config_path = folder / "config.yaml"
        prepare_store(config)
        engine = make_engine(config.database_url)
        with unit_of_work(make_session_factory(engine)) as session:
            add_user(session, SUPERVISOR, hash_password(PASSWORD), "supervisor", None)
        engine.dispose()
        local = LocalAsterisk(config)
        ami: AMIClient | None = None
        rec: Recorder | None = None
        children: list[subprocess.Popen[str]] = []
        stream: BoardStream | None = None
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
            for name in {*QUEUE_EVENTS, *BOARD_EVENTS, "OriginateResponse"}:
                await ami.action("Filter", Operation="Add", Filter=f"Event: {name}")
            rec = Recorder(ami)
            board_events: list[float] = []
            seen = ami.subscribe(*BOARD_EVENTS)

            async def note_board_events() -> None:
                while True:
                    await seen.get()
                    board_events.append(time.time())

            noting = asyncio.create_task(note_board_events())
            env = {**os.environ, "PYTHONPATH": str(Path.cwd())}
            console = subprocess.Popen(
                [sys.executable, "-m", "hotline.cli", "web", "-c", str(config_path)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=(folder / "web.stderr").open("w"),
                text=True,
                start_new_session=True,
            )
            children.append(console)
            baseline = subprocess.Popen(
                [sys.executable, "-m", "bench.wallboard", "--count-only", str(config_path)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=(folder / "count.stderr").open("w"),
                text=True,
                start_new_session=True,
            )
            children.append(baseline)
            await wait_for_port(config.web.port, console)
            stream = BoardStream(f"http://127.0.0.1:{config.web.port}")
            if not await asyncio.to_thread(stream.ready.wait, 60) or stream.error:
                raise RuntimeError(f"no board from the console: {stream.error}")
            await add_agents(ami, load)
            await asyncio.sleep(3)  # members' states settle and the board shows them
            t0, cpu0 = time.time(), (cpu_seconds(console.pid), cpu_seconds(baseline.pid))
            ticker = asyncio.create_task(progress(rec, stream, load, started=time.monotonic()))
            try:
                await offer(ami, load, args, args.seed)
                deadline = time.monotonic() + args.drain
                while time.monotonic() < deadline and rec.left(QUEUE) < load.placed:
                    await asyncio.sleep(1)
                await asyncio.sleep(2)  # the last figures are pushed
            finally:
                ticker.cancel()
            t1, cpu1 = time.time(), (cpu_seconds(console.pid), cpu_seconds(baseline.pid))
            noting.cancel()
            ami.unsubscribe(seen)
            await remove_agents(ami, load)
            baseline.send_signal(signal.SIGTERM)
            out, _ = await asyncio.to_thread(baseline.communicate, timeout=30)
            counted = int(out.strip() or 0)
            stream.stopping.set()
            result = measure(
                args, rec, stream, [t for t in board_events if t0 <= t <= t1], counted,
                (t0, t1), (cpu1[0] - cpu0[0], cpu1[1] - cpu0[1]),
            )  # fmt: skip
        finally:
            if stream is not None:
                stream.stopping.set()
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
                    try:
                        await asyncio.to_thread(child.wait, 30)
                    except subprocess.TimeoutExpired:
                        child.kill()
            if rec is not None:
                rec.stop()
            if ami is not None:
                await ami.close()
            await asyncio.to_thread(local.down)
    load_end = load_1min()
    report(result, args, (load_start, load_end))
    return 0 if not result.missed and result.join_n else 1


async def wait_for_port(port: int, process: subprocess.Popen[str], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"hotline web ended with {process.returncode}") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on {port}") from None
            await asyncio.sleep(0.2)


async def progress(rec: Recorder, stream: BoardStream, load: Load, started: float) -> None:
    while True:
        await asyncio.sleep(10)
        row = stream.boards[-1][1] if stream.boards else {}
        print(
            f"  t={time.monotonic() - started:4.0f} s  placed {load.placed}, "
            f"joined {rec.count('QueueCallerJoin', QUEUE)}, "
            f"answered {rec.count('AgentConnect', QUEUE)}, left {rec.left(QUEUE)} | board: "
            f"waiting {row.get('waiting')}, offered {row.get('offered')}, "
            f"answered {row.get('answered')}",
            flush=True,
        )


def peak_callers(events: list[tuple[str, float, dict[str, str]]]) -> int:
    """The most callers in the system at once: joined, not yet completed or abandoned."""
    now = peak = 0
    for name, _at, f in sorted(events, key=lambda e: e[1]):
        if f.get("Queue") != QUEUE:
            continue
        if name == "QueueCallerJoin":
            now += 1
        elif name in ("AgentComplete", "QueueCallerAbandon"):
            now -= 1
        peak = max(peak, now)
    return peak


def measure(
    args: argparse.Namespace,
    rec: Recorder,
    stream: BoardStream,
    board_events: list[float],
    counted: int,
    span: tuple[float, float],
    cpu: tuple[float, float],
) -> Result:
    boards = list(stream.boards)
    joins, joins_missed = latencies(rec.events, boards, "QueueCallerJoin", "offered")
    connects, connects_missed = latencies(rec.events, boards, "AgentConnect", "answered")
    events = len(board_events)
    missed = []
    if joins_missed:
        missed.append(f"{joins_missed} QueueCallerJoin")
    if connects_missed:
        missed.append(f"{connects_missed} AgentConnect")
    per_event = [1000 * c / events if events else 0.0 for c in cpu]
    return Result(
        callers=args.callers,
        agents=args.agents,
        peak_callers=peak_callers(rec.events),
        peak_waiting=max((int(row.get("waiting") or 0) for _, row in boards), default=0),  # type: ignore[call-overload]
        events=events,
        events_counted_by_baseline=counted,
        span_s=span[1] - span[0],
        pushes=sum(1 for at, _ in boards if span[0] <= at <= span[1]),
        join_p50_ms=1000 * quantile(joins, 0.5),
        join_p99_ms=1000 * quantile(joins, 0.99),
        join_max_ms=1000 * max(joins, default=0.0),
        join_n=len(joins),
        connect_p50_ms=1000 * quantile(connects, 0.5),
        connect_p99_ms=1000 * quantile(connects, 0.99),
        connect_max_ms=1000 * max(connects, default=0.0),
        connect_n=len(connects),
        console_cpu_s=cpu[0],
        baseline_cpu_s=cpu[1],
        console_cpu_ms_per_event=per_event[0],
        baseline_cpu_ms_per_event=per_event[1],
        cpu_ratio=cpu[0] / cpu[1] if cpu[1] else 0.0,
        missed=missed,
    )


def report(r: Result, args: argparse.Namespace, loads: tuple[float, float]) -> None:
    print()
    print(f"machine: {multiprocessing.cpu_count()} cores; load {loads[0]:.2f} -> {loads[1]:.2f}")
    print(
        f"load: {r.callers} callers, {r.agents} agents; up to {r.peak_callers} callers at "
        f"once, the board showed up to {r.peak_waiting} waiting; "
        f"{r.events} wallboard AMI events in {r.span_s:.0f} s "
        f"(the baseline counted {r.events_counted_by_baseline} in all); "
        f"{r.pushes} boards pushed"
    )
    print("| event -> figure on the stream | n | p50 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|")
    print(f"| QueueCallerJoin -> offered | {r.join_n} | {r.join_p50_ms:.0f} | "
          f"{r.join_p99_ms:.0f} | {r.join_max_ms:.0f} |")  # fmt: skip
    print(f"| AgentConnect -> answered | {r.connect_n} | {r.connect_p50_ms:.0f} | "
          f"{r.connect_p99_ms:.0f} | {r.connect_max_ms:.0f} |")  # fmt: skip
    print()
    print("| process | CPU s | CPU ms per event |")
    print("|---|---|---|")
    print(f"| console (hotline web, wallboard streaming) | {r.console_cpu_s:.2f} | "
          f"{r.console_cpu_ms_per_event:.3f} |")  # fmt: skip
    print(f"| baseline (the same events, counted) | {r.baseline_cpu_s:.2f} | "
          f"{r.baseline_cpu_ms_per_event:.3f} |")  # fmt: skip
    print(f"ratio console / baseline: {r.cpu_ratio:.1f}")
    if r.missed:
        print(f"never shown on a pushed board: {', '.join(r.missed)}")
    ARTIFACTS.mkdir(exist_ok=True)
    out = Path(args.json or ARTIFACTS / "bench-wallboard.json")
    meta = {**vars(args), "cores": multiprocessing.cpu_count(), "load_avg": list(loads)}
    out.write_text(json.dumps({"meta": meta, "result": asdict(r)}, indent=1))
    print(f"numbers: {out}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 callers, 15 agents")
    parser.add_argument("--callers", type=int, default=0, help="scripted citizens (400)")
    parser.add_argument("--agents", type=int, default=0, help="scripted agents (50)")
    parser.add_argument("--ramp", type=float, default=0.0, help="seconds of arrivals (20)")
    parser.add_argument("--talk", choices=["exp", "fixed"], default="exp")
    parser.add_argument("--talk-mean", type=float, default=20.0, help="mean talk time, s")
    parser.add_argument("--wrapup", type=int, default=1, help="app_queue wrapuptime, s")
    parser.add_argument("--drain", type=float, default=600.0, help="wait this long at most")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", default="")
    parser.add_argument("--count-only", default="", metavar="CONFIG", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.callers = args.callers or (100 if args.quick else 400)
    args.agents = args.agents or (15 if args.quick else 50)
    args.ramp = args.ramp or (15.0 if args.quick else 20.0)
    args.window = args.ramp  # bench.acd's offer() reads the arrivals' span from here
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.count_only:
        return asyncio.run(count_only(Path(args.count_only)))
    return asyncio.run(cancellable(run(args)))


if __name__ == "__main__":
    sys.exit(main())
