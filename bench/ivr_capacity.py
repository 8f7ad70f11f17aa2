"""How many citizens at once: the FastAGI IVR against the same call in pure dialplan.

    python -m bench.ivr_capacity [--levels 50,100,200,400,600,800] [--citizens local|sipp]

One private Asterisk (own state folder, own free ports, `asterisk.include_bench`
on) and the hotline's FastAGI server in a child process (`bench/agi_worker.py`,
exactly the routes `hotline serve` runs), so the CPU time, memory and files of
each are measured apart from this driver. For each N the new-request call
(greeting -> 1 -> type -> urgency -> a few seconds of voice -> ticket -> read-back)
is placed N at once in two forms, one after the other, alternating which goes
first:

  (a) fastagi   `hotline-in`: the production dialplan and our FastAGI IVR;
  (b) dialplan  `bench-in`: the same prompts, keys and recording in pure
                dialplan (dialplans/bench-ivr.conf), no Python: the ceiling.

The citizens are scripted Local-channel legs (sim-citizen) or SIPp phones over
UDP on loopback (`--citizens sipp`, bench/sipp/). A call is complete when (a)
its ticket exists with its request recording on disk, (b) its request recording
is on disk. The run stops rising after a level where a form lost calls. It
prints one table and the two headline ratios, measured side by side in this run,
and draws an SVG chart. Everything it made (state folder, database, recordings)
lives in a temporary folder that is removed at the end, also after a crash.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import re
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from sqlalchemy import select

from bench.agi_worker import proc_cpu, proc_status_kb, quantile
from bench.quiet import load_1min, wait_for_quiet
from bench.stopping import cancellable
from core.config import HotlineConfig, load_config
from dashboard.charts import Series, line_chart
from db.models import Ticket
from db.session import make_engine, make_session_factory, unit_of_work
from hotline.app import prepare_store
from hotline.priority import favour_call_path
from telephony.ami import AMIClient
from tools.local_asterisk.local import LocalAsterisk
from tools.sandbox.config import FAST_SETTINGS as TEST_SETTINGS
from tools.sandbox.config import write_config

FORMS = {"fastagi": "hotline-in", "dialplan": "bench-in"}
# optional extra form: the FastAGI IVR as it was before the read-back fix (before/after)
VARIANT_FORMS = {"fastagi-digitwise": ("fastagi", "digitwise")}
# optional extra form: the FastAGI process at nice 0, as before `agi.nice` (before/after)
NICE_FORMS = {"fastagi-nice0": 0}
# optional extra forms: the store work in the FastAGI process, on its one store thread (as
# before the store process) or on 15 threads racing for SQLite's lock (before that)
STORE_FORMS = {"fastagi-thread": "thread", "fastagi-threads": "threads"}
# every extra form is the FastAGI IVR's production dialplan, set up differently
CONTEXTS = FORMS | {f: FORMS["fastagi"] for f in (*VARIANT_FORMS, *NICE_FORMS, *STORE_FORMS)}
DID = "12345"
SCRIPT_ID = "900001"
# the citizen, as the IVR tests' new request: 1 (new request) during the greeting,
# 3 complaint, 2 daily life, then speak and press #; stay until the hotline hangs up
SCRIPT = "w1.5|d1|w1.5|d3|w1.5|d2|w7|p{voice}|w1|d#"
VOICE_TEXT = "안녕하세요 우리 동네 가로등이 사흘째 꺼져 있습니다 빨리 고쳐 주세요"
HEAVY = 50  # above this many calls at once, wait for a quiet machine first
DRIVER_EVENTS = ("OriginateResponse", "Newchannel", "Hangup")


@dataclass
class Row:
    """One form at one N: what the table prints and the parser reads back."""

    form: str
    n: int
    completed: int
    lost: int
    spooled: int  # intents spooled (call starts, tickets, call ends: they land later)
    ast_cpu_ms: float  # Asterisk CPU per call
    py_cpu_ms: float  # the FastAGI process's CPU per call
    rt_p50_ms: float  # AGI round trip of the quick commands, in the server
    rt_p99_ms: float
    lag_p99_ms: float  # event-loop lag
    db_p99_ms: float  # store work of a flow, from asking to done (queue, retries)
    tx_p99_ms: float  # the same work's transaction alone, on the store thread
    py_peak_mb: float
    ast_peak_mb: float
    agi_per_call: float  # AGI commands per call
    agi_timeouts: int  # FastAGI connections Asterisk gave up on (its 2 s connect limit)
    call_p50_s: float  # how long the hotline's leg of a call lasted, Newchannel to Hangup
    call_p95_s: float
    wall_s: float

    @property
    def cpu_ms(self) -> float:
        return self.ast_cpu_ms + self.py_cpu_ms


HEADER = "| " + " | ".join(f.name for f in fields(Row)) + " |"


def format_table(rows: list[Row]) -> str:
    """The result table as Markdown (the README's form); `parse_table` reads it back."""
    lines = [HEADER, "|" + "---|" * len(fields(Row))]
    for row in rows:
        values = [f"{v:.2f}" if isinstance(v, float) else str(v) for v in asdict(row).values()]
        lines.append("| " + " | ".join(values) + " |")
    return "\n".join(lines)


def parse_table(text: str) -> list[Row]:
    """The rows of the table in a bench's output (the lines after its header)."""
    rows: list[Row] = []
    lines = text.splitlines()
    try:
        start = lines.index(HEADER) + 2
    except ValueError:
        return rows
    for line in lines[start:]:
        if not line.startswith("| "):
            break
        cells = [c.strip() for c in line.strip("| ").split(" | ")]
        values = [
            cell if f.type == "str" else (int(cell) if f.type == "int" else float(cell))
            for f, cell in zip(fields(Row), cells, strict=True)
        ]
        rows.append(Row(*values))
    return rows


ON_TIME = 1.25  # a call lasting longer than this times its length alone was not served on time


@dataclass
class Headline:
    clean_max: dict[str, int]
    on_time_max: dict[str, int]  # also: 95 % of calls within ON_TIME x the lowest level's median
    on_time_ratio: float | None
    cpu_at: int  # the N at which the CPU ratio is taken: the largest clean for both
    cpu_ratio: float | None
    max_ratio: float | None


def headline(rows: list[Row]) -> Headline:
    """Clean maximum per form (largest N without a lost call) and the two ratios."""
    clean = {f: max((r.n for r in rows if r.form == f and r.lost == 0), default=0) for f in FORMS}
    both = [
        n
        for n in {r.n for r in rows}
        if all(any(r.form == f and r.n == n and r.lost == 0 for r in rows) for f in FORMS)
    ]
    at = max(both, default=0)
    by = {(r.form, r.n): r for r in rows}
    cpu_ratio = None
    if at and by[("dialplan", at)].cpu_ms > 0:
        cpu_ratio = by[("fastagi", at)].cpu_ms / by[("dialplan", at)].cpu_ms
    max_ratio = clean["fastagi"] / clean["dialplan"] if clean["dialplan"] else None
    on_time = {f: max((r.n for r in rows if r.form == f and served_on_time(r, rows)), default=0)
               for f in FORMS}  # fmt: skip
    on_time_ratio = on_time["fastagi"] / on_time["dialplan"] if on_time["dialplan"] else None
    return Headline(clean, on_time, on_time_ratio, at, cpu_ratio, max_ratio)


def served_on_time(row: Row, rows: list[Row]) -> bool:
    """No call lost, and 95 % of them no longer than ON_TIME x the form's lowest level's median.

    On a machine past its capacity Asterisk falls behind the clock: every prompt
    and pause of a call lasts longer, so a call may complete yet have sounded
    broken all along. Scripted Local-channel citizens live inside the same
    Asterisk and slow down with it, so only the call's length shows it.
    """
    same = [r for r in rows if r.form == row.form and r.call_p50_s > 0]
    if row.lost or not same:
        return False
    alone = min(same, key=lambda r: r.n).call_p50_s
    return row.call_p95_s <= ON_TIME * alone


def format_headline(h: Headline) -> str:
    def ratio(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.2f}"

    return (
        f"clean maximum: fastagi {h.clean_max['fastagi']}, dialplan {h.clean_max['dialplan']}"
        f" -> (a)/(b) = {ratio(h.max_ratio)} (goal >= 0.9; the highest level tried caps both)\n"
        f"on time (also 95 % of calls within {ON_TIME:g}x the lowest level's median length): "
        f"fastagi {h.on_time_max['fastagi']}, dialplan {h.on_time_max['dialplan']} -> (a)/(b) = "
        f"{ratio(h.on_time_ratio)}\n"
        f"Asterisk+Python CPU per call at N={h.cpu_at}: (a)/(b) = {ratio(h.cpu_ratio)}"
        " (goal <= 1.2)"
    )


# -- measuring Asterisk from outside -----------------------------------------------------
def reset_peak(pid: int) -> None:
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


# -- the run ---------------------------------------------------------------------------
def bench_config(folder: Path) -> HotlineConfig:
    """A private config: free ports, the test suite's short prompts and key waits, bench on.

    The store keeps the production budget (busy timeout, write retries): the
    bench measures what a city's hotline would hold, not the tests' fail-fast.
    """
    defaults = HotlineConfig.model_validate({})
    settings = {
        **TEST_SETTINGS,
        "ivr": {**TEST_SETTINGS["ivr"], "db_retry_seconds": defaults.ivr.db_retry_seconds},  # type: ignore[dict-item]
        "database": {
            **TEST_SETTINGS["database"],  # type: ignore[dict-item]
            "busy_timeout_ms": defaults.database.busy_timeout_ms,
        },
        "asterisk": {"include_bench": True},
        "robot": {"enabled": False},
    }
    return load_config(write_config(folder, **settings))


def voice_file(folder: Path) -> str:
    """A few seconds of a citizen's voice (espeak-ng, Korean), 8 kHz WAV; path w/o extension."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / "request-voice"
    raw = folder / "raw.wav"
    subprocess.run(["espeak-ng", "-v", "ko", "-s", "140", "-w", str(raw), VOICE_TEXT], check=True)
    subprocess.run(
        ["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", f"{stem}.wav"], check=True
    )
    raw.unlink()
    stem.parent.chmod(0o755)
    Path(f"{stem}.wav").chmod(0o644)
    return str(stem)


class Worker:
    """The FastAGI child process and its pipe."""

    def __init__(self, config: HotlineConfig) -> None:
        from bench.agi_worker import main

        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=main, args=(str(config.source), child), daemon=True)
        self.proc.start()
        if not self.conn.poll(120):
            raise RuntimeError("the FastAGI worker did not start")
        self.info = self.conn.recv()

    def ask(self, request: object) -> object:
        self.conn.send(request)
        if not self.conn.poll(60):
            raise RuntimeError(f"the FastAGI worker did not answer {request!r}")
        return self.conn.recv()

    def stop(self) -> None:
        if self.proc.is_alive():
            with contextlib.suppress(Exception):
                self.ask("stop")
            self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)


def asterisk_log(local: LocalAsterisk) -> Path:
    return local.state / "log" / "messages.log"


def agi_timeouts(local: LocalAsterisk, offset: int) -> int:
    """FastAGI connects that Asterisk gave up on since offset in its log."""
    with asterisk_log(local).open("rb") as log:
        log.seek(offset)
        text = log.read().decode("utf-8", "replace")
    return len(re.findall(r"FastAGI connection to .* timed out|Connection refused", text))


def completed_calls(
    config: HotlineConfig, form: str, uniqueids: list[str], burst: bool = False
) -> int:
    """Calls that left what their form must leave (see the module's docstring).

    After a hang-up burst a call may have been cut at any step: then any ticket
    with its audio on disk (a), or the call's own recording (b), counts.
    """

    def has_audio(path: str | None) -> bool:
        return bool(path) and Path(str(path)).is_file() and Path(str(path)).stat().st_size > 1000

    if form.startswith("fastagi"):
        engine = make_engine(config.database_url)
        try:
            with unit_of_work(make_session_factory(engine)) as session:
                paths = session.execute(
                    select(Ticket.origin_uniqueid, Ticket.recording_path).where(
                        Ticket.origin_uniqueid.in_(uniqueids)
                    )
                ).all()
        finally:
            engine.dispose()
        wanted = [p for _u, p in paths if burst or str(p).endswith("-request.wav")]
        return sum(1 for p in wanted if has_audio(p))
    pattern = "*.wav" if burst else "*-request.wav"
    found = {p.name.split("_", 1)[0]: p for p in (config.recordings_dir / "bench").rglob(pattern)}
    return sum(1 for u in uniqueids if u in found and has_audio(str(found[u])))


async def place_local_calls(
    ami: AMIClient, form: str, n: int, args: argparse.Namespace, tag: int, timeout: float = 180
) -> tuple[list[str], int]:
    """N Local-channel citizens started over `ramp` seconds; wait until every one hung up.

    With --burst S, every citizen hangs up at the same moment, S seconds after the
    last one was started (the hang-up burst: N `call-end` connections at once).
    """
    ramp = args.ramp
    hangups = ami.subscribe("Hangup")
    loop = asyncio.get_running_loop()
    start = loop.time()

    async def one(i: int) -> str | None:
        await asyncio.sleep(ramp * i / max(n, 1))
        try:
            result = await ami.originate(
                f"Local/script{SCRIPT_ID}@sim-citizen",
                context=CONTEXTS[form],
                exten=DID,
                caller_id=f"13{tag % 10}{n % 1000:03d}{i:05d}",
                timeout_ms=30000,
            )
        except Exception as exc:  # a failed originate is a lost call
            print(f"  originate failed: {exc}", file=sys.stderr)
            return None
        return result.uniqueid if result.success else None

    try:
        ids = await asyncio.gather(*(one(i) for i in range(n)))
        placed = [u for u in ids if u]
        if args.burst:
            await asyncio.sleep(args.burst)
            await ami.action("Hangup", Channel=f"/^Local\\/script{SCRIPT_ID}@sim-citizen-/")
        waiting = set(placed)
        deadline = start + ramp + timeout
        seen: set[str] = set()
        while waiting - seen and loop.time() < deadline:
            with contextlib.suppress(TimeoutError):
                event = await asyncio.wait_for(hangups.get(), max(0.1, deadline - loop.time()))
                seen.add(event.get("Uniqueid"))
        return placed, len(waiting - seen)
    finally:
        ami.unsubscribe(hangups)


class CallLengths:
    """How long each channel lived (Newchannel to Hangup, as the driver saw them)."""

    def __init__(self, ami: AMIClient) -> None:
        self.ami = ami
        self.events = ami.subscribe("Newchannel", "Hangup")
        self.born: dict[str, float] = {}
        self.lived: dict[str, float] = {}
        self.task = asyncio.create_task(self.follow())

    async def follow(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            event = await self.events.get()
            uniqueid = event.get("Uniqueid")
            if event.name == "Newchannel":
                self.born[uniqueid] = loop.time()
            elif uniqueid in self.born:
                self.lived[uniqueid] = loop.time() - self.born[uniqueid]

    def of(self, uniqueids: list[str]) -> list[float]:
        """The lengths of these calls (those seen begin and end); stops following."""
        self.task.cancel()
        self.ami.unsubscribe(self.events)
        return [self.lived[u] for u in uniqueids if u in self.lived]


async def wait_quiet_asterisk(local: LocalAsterisk, worker: Worker, timeout: float = 60) -> int:
    """Wait until Asterisk has no channel and FastAGI no call; return channels left."""
    deadline = time.monotonic() + timeout
    left = -1
    while time.monotonic() < deadline:
        out = await asyncio.to_thread(local.rx, "core show channels count")
        match = re.search(r"(\d+) active channel", out)
        left = int(match.group(1)) if match else -1
        stats = worker.ask("stats")
        if left == 0 and stats["in_progress"] == 0:  # type: ignore[index]
            return 0
        await asyncio.sleep(1)
    return left


async def run_level(
    local: LocalAsterisk,
    worker: Worker,
    ami: AMIClient,
    form: str,
    n: int,
    args: argparse.Namespace,
    tag: int,
    idle: tuple[float, float],
) -> Row:
    pid = local.running_pid()
    assert pid is not None
    worker.ask(("variant", VARIANT_FORMS.get(form, ("", "joined"))[1]))
    worker.ask(("nice", NICE_FORMS.get(form, local.config.agi.nice)))
    worker.ask(("store", STORE_FORMS.get(form, "process")))
    worker.ask("reset")
    reset_peak(pid)
    ast_before = proc_cpu(pid)
    log_start = asterisk_log(local).stat().st_size
    started = time.monotonic()
    lengths = CallLengths(ami)
    if args.citizens == "sipp":
        from bench.sipp import place_sipp_calls

        uniqueids, unfinished = await place_sipp_calls(local, ami, form, n, args, tag)
    else:
        uniqueids, unfinished = await place_local_calls(ami, form, n, args, tag)
    left = await wait_quiet_asterisk(local, worker)
    wall = time.monotonic() - started
    call_seconds = lengths.of(uniqueids)
    stats = worker.ask("stats")
    assert isinstance(stats, dict)
    # what the two processes burn doing nothing (timers, the lag probe) is not the calls' cost
    ast_cpu = max(0.0, proc_cpu(pid) - ast_before - idle[0] * wall)
    py_cpu = max(0.0, stats["cpu"] - idle[1] * wall)
    done = await asyncio.to_thread(completed_calls, local.config, form, uniqueids, bool(args.burst))
    if unfinished or left:
        print(f"  {form} N={n}: {unfinished} calls did not hang up, {left} channels left")
    return Row(
        form=form,
        n=n,
        completed=done,
        lost=n - done,
        spooled=stats["spooled"],
        ast_cpu_ms=1000 * ast_cpu / n,
        py_cpu_ms=1000 * py_cpu / n,
        rt_p50_ms=1000 * stats["rt_p50"],
        rt_p99_ms=1000 * stats["rt_p99"],
        lag_p99_ms=1000 * stats["lag_p99"],
        db_p99_ms=1000 * stats["db_p99"],
        tx_p99_ms=1000 * stats["tx_p99"],
        py_peak_mb=stats["peak_rss_kb"] / 1024,
        ast_peak_mb=proc_status_kb(pid, "VmHWM") / 1024,
        agi_per_call=stats["agi_commands"] / n,
        agi_timeouts=agi_timeouts(local, log_start),
        call_p50_s=quantile(call_seconds, 0.5),
        call_p95_s=quantile(call_seconds, 0.95),
        wall_s=wall,
    )


SOAK_RSS_MB = 30.0  # the FastAGI process may grow this much after its first minute
SOAK_FDS = 20  # open files may end this far above where they started


def proc_fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def soak(local: LocalAsterisk, worker: Worker, ami: AMIClient, n: int, minutes: float) -> str:
    """N FastAGI calls at a time for `minutes` (a new call whenever one ends); the verdict."""
    pid = local.running_pid()
    assert pid is not None
    base = worker.ask("stats")
    assert isinstance(base, dict)
    hangups = ami.subscribe("Hangup")
    loop = asyncio.get_running_loop()
    end = loop.time() + minutes * 60
    placed: list[str] = []
    live: set[str] = set()
    counter = iter(range(10**7))
    samples = []
    starting: set[asyncio.Task[None]] = set()

    async def start_one() -> None:
        i = next(counter)
        with contextlib.suppress(Exception):  # a failed originate shows as calls != tickets
            result = await ami.originate(
                f"Local/script{SCRIPT_ID}@sim-citizen",
                context=FORMS["fastagi"],
                exten=DID,
                caller_id=f"139{i:08d}",
                timeout_ms=30000,
            )
            if result.success:
                placed.append(result.uniqueid)
                live.add(result.uniqueid)

    async def sample() -> None:
        while True:
            await asyncio.sleep(60)
            stats = worker.ask("stats")
            assert isinstance(stats, dict)
            samples.append(
                (len(samples) + 1, len(live), stats["rss_kb"] / 1024, stats["fds"],
                 proc_rss_mb(pid), proc_fds(pid))
            )  # fmt: skip
            print(f"  soak minute {samples[-1][0]}: {samples[-1][1:]}", flush=True)

    sampler = asyncio.create_task(sample())
    try:
        await asyncio.gather(*(start_one() for _ in range(n)))
        while loop.time() < end or live:
            with contextlib.suppress(TimeoutError):
                event = await asyncio.wait_for(hangups.get(), 5)
                if event.get("Uniqueid") in live:
                    live.discard(event.get("Uniqueid"))
                    if loop.time() < end:
                        task = asyncio.create_task(start_one())
                        starting.add(task)
                        task.add_done_callback(starting.discard)
            if loop.time() > end + 300:
                break
    finally:
        sampler.cancel()
        ami.unsubscribe(hangups)
    left = await wait_quiet_asterisk(local, worker)
    final = worker.ask("stats")
    assert isinstance(final, dict)
    done = await asyncio.to_thread(completed_calls, local.config, "fastagi", placed)
    first_rss = samples[0][2] if samples else base["rss_kb"] / 1024
    growth = final["rss_kb"] / 1024 - first_rss
    fd_growth = final["fds"] - base["fds"]
    ok = left == 0 and done == len(placed) and growth <= SOAK_RSS_MB and fd_growth <= SOAK_FDS
    lines = [
        f"soak: {n} FastAGI calls at a time for {minutes:g} min",
        "| minute | calls live | Python RSS MB | Python fds | Asterisk RSS MB | Asterisk fds |",
        "|---|---|---|---|---|---|",
        *(f"| {m} | {c} | {r:.1f} | {f} | {ar:.1f} | {af} |" for m, c, r, f, ar, af in samples),
        f"calls placed {len(placed)}, tickets with their recording {done}, channels left {left}",
        f"Python RSS after the first minute +{growth:.1f} MB (bound {SOAK_RSS_MB:g}); "
        f"open files {base['fds']} -> {final['fds']} (bound +{SOAK_FDS})",
        "soak: PASS" if ok else "soak: FAIL",
    ]
    return "\n".join(lines)


async def idle_rates(
    local: LocalAsterisk, worker: Worker, seconds: float = 10.0
) -> tuple[float, float]:
    """CPU seconds per second that Asterisk and the FastAGI process use with no call."""
    pid = local.running_pid()
    assert pid is not None
    worker.ask("reset")
    before = proc_cpu(pid)
    await asyncio.sleep(seconds)
    stats = worker.ask("stats")
    assert isinstance(stats, dict)
    return (proc_cpu(pid) - before) / seconds, stats["cpu"] / seconds


def draw_chart(rows: list[Row], path: Path) -> None:
    """Completed share per N for both forms, and CPU per call relative to the largest."""
    levels = sorted({r.n for r in rows})
    by = {(r.form, r.n): r for r in rows}
    top = max((r.cpu_ms for r in rows), default=1.0) or 1.0

    def share(form: str, value) -> list[float | None]:  # type: ignore[no-untyped-def]
        return [value(by[(form, n)]) if (form, n) in by else None for n in levels]

    series = [
        Series("fastagi completed", "#1f77b4", share("fastagi", lambda r: r.completed / r.n)),
        Series("dialplan completed", "#2ca02c", share("dialplan", lambda r: r.completed / r.n)),
        Series("fastagi CPU/call (of max)", "#d62728", share("fastagi", lambda r: r.cpu_ms / top)),
        Series(
            "dialplan CPU/call (of max)", "#9467bd", share("dialplan", lambda r: r.cpu_ms / top)
        ),
    ]
    svg = line_chart([str(n) for n in levels], series, width=720, height=260)
    legend = "".join(
        f'<text x="60" y="{16 + 14 * i}" font-size="11" fill="{s.colour}">{s.label}</text>'
        for i, s in enumerate(series)
    )
    svg = svg.replace("</svg>", legend + "</svg>", 1)
    path.write_text(svg, encoding="utf-8")


async def run(args: argparse.Namespace) -> int:
    levels = [int(x) for x in args.levels.split(",")]
    soak_report = ""
    under_load = False
    if (max(levels) > HEAVY or args.minutes >= 5) and not args.no_wait and not args.no_wait:
        under_load = not await asyncio.to_thread(wait_for_quiet, 1.0, 30.0, args.wait_timeout)
    load_start = load_1min()
    # the citizens' side (originates, hang-ups) must keep up: what is measured is the hotline
    favour_call_path(HotlineConfig.model_validate({}).agi.nice)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="hotline-bench-") as tmp:
        folder = Path(tempfile.mkdtemp(prefix="hotline-bench-kept-")) if args.keep else Path(tmp)
        folder.chmod(0o755)
        config = bench_config(folder)
        from prompts.build import build_all

        await asyncio.to_thread(build_all, config)
        prepare_store(config)
        local = LocalAsterisk(config)
        worker: Worker | None = None
        ami: AMIClient | None = None
        try:
            await asyncio.to_thread(local.up)
            worker = Worker(config)
            voice = voice_file(config.state_dir / "voices")
            cfg = config.asterisk.ami
            ami = AMIClient(
                cfg.host, cfg.port, cfg.test_username, config.ami_test_secret(), ping_interval=5
            )
            await ami.connect()
            # only the events the driver waits for: on a machine at its capacity a driver
            # that reads every call event falls behind and Asterisk closes its session
            await ami.action("Events", EventMask="call")
            for event in DRIVER_EVENTS:
                await ami.action("Filter", Operation="Add", Filter=f"Event: {event}")
            await ami.action("DBPut", Family="sim", Key=SCRIPT_ID, Val=SCRIPT.format(voice=voice))
            idle = await idle_rates(local, worker)
            print(
                f"idle CPU: Asterisk {idle[0] * 1000:.1f} ms/s, FastAGI {idle[1] * 1000:.1f} ms/s"
            )
            if args.minutes:
                soak_report = await soak(local, worker, ami, levels[-1], args.minutes)
                levels = []
            order = args.forms.split(",")
            for index, n in enumerate(levels):
                level_rows = []
                for form in order if index % 2 == 0 else order[::-1]:
                    row = await run_level(local, worker, ami, form, n, args, index, idle)
                    print(f"  {form:8} N={n:4}: {row.completed}/{n} completed, "
                          f"{row.cpu_ms:.0f} ms CPU per call", flush=True)  # fmt: skip
                    level_rows.append(row)
                    await asyncio.sleep(args.pause)
                rows += level_rows
                if any(r.lost for r in level_rows) and not args.keep_going:
                    break
        finally:
            if ami is not None:
                await ami.close()
            if worker is not None:
                worker.stop()
            await asyncio.to_thread(local.down)
    load_end = load_1min()
    if soak_report:
        print()
        print(f"machine: {multiprocessing.cpu_count()} cores; load {load_start:.2f} -> "
              f"{load_end:.2f}" + ("; RAN UNDER LOAD" if under_load else ""))  # fmt: skip
        print(soak_report)
        return 0 if "FAIL" not in soak_report else 1
    print()
    print(f"machine: {multiprocessing.cpu_count()} cores, {socket.gethostname()}; "
          f"citizens: {args.citizens}; load {load_start:.2f} -> {load_end:.2f}"
          + ("; RAN UNDER LOAD" if under_load else ""))  # fmt: skip
    print(format_table(rows))
    print()
    print(format_headline(headline(rows)))
    if args.chart:
        draw_chart(rows, Path(args.chart))
        print(f"chart: {args.chart}")
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in rows], indent=1))
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--levels", default="50,100,200,400,600,800", help="N calls at once")
    parser.add_argument("--citizens", choices=["local", "sipp"], default="local")
    parser.add_argument(
        "--forms",
        default="fastagi,dialplan",
        help="add fastagi-digitwise for the read-back as it was (one prompt per digit)",
    )
    parser.add_argument("--ramp", type=float, default=5.0, help="seconds to start N calls")
    parser.add_argument("--pause", type=float, default=3.0, help="seconds between phases")
    parser.add_argument(
        "--burst",
        type=float,
        default=0.0,
        help="all citizens hang up together S s after the last start",
    )
    parser.add_argument(
        "--minutes", type=float, default=0.0, help="soak: the last level's N at a time this long"
    )
    parser.add_argument("--keep", action="store_true", help="keep the state folder (debugging)")
    parser.add_argument("--keep-going", action="store_true", help="rise past a level with losses")
    parser.add_argument("--no-wait", action="store_true", help="do not wait for a quiet machine")
    parser.add_argument("--wait-timeout", type=float, default=900.0)
    parser.add_argument("--chart", default="ivr_capacity.svg", help="SVG chart ('' for none)")
    parser.add_argument("--json", default="", help="also write the rows as JSON here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return asyncio.run(cancellable(run(args)))


if __name__ == "__main__":
    sys.exit(main())
