"""One reconciler pass at 10 k and at 1 M call rows with 100 k recordings on disk: flat.

    .venv/bin/python -m bench.reconcile_scale [--rows 10000,1000000] [--recordings 100000]

For each size: a migrated SQLite store (the product's indexes) gets `rows`
historic inbound calls, each with its ticket and recording path, spread over
the past days; the recordings tree gets `--recordings` WAV files in dated
folders (YYYY/MM/DD, ~1,000 a day) of which today's and yesterday's name
calls of today and yesterday. Then, warm, best of --repeats:

- pass: `ivr.reconcile.reconcile` (settle 0, Asterisk listing no live channel);
- tree: reading the whole recordings tree once (`recordings.scan` without
  days), what every pass did three times before issue 11.

It prints the pass time per size, its ratio to the 10 k pass (flat: ~1.0x)
and how many recording files the pass looked at versus the tree. Not a timed
test; a measurement on this machine.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import wave
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from core.config import load_config
from db.models import Call, Ticket
from db.session import make_engine, make_session_factory
from hotline.app import prepare_store
from ivr import recordings
from ivr.reconcile import reconcile
from ivr.store import IvrStore

console = Console(width=140)
PER_DAY = 1000
CHUNK = 50_000


def write_config(folder: Path) -> Path:
    path = folder / "config.yaml"
    path.write_text(
        "database: {url: 'sqlite:///var/hotline.db'}\n"
        "paths: {state_dir: var, recordings_dir: var/recordings}\n"
        "ivr: {reconcile_settle_seconds: 0}\n"
    )
    return path


def wav_bytes() -> bytes:
    probe = Path(tempfile.mkstemp(suffix=".wav")[1])
    with wave.open(str(probe), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x10\x00" * 800)
    data = probe.read_bytes()
    probe.unlink()
    return data


def fill(store: IvrStore, rows: int, files: int, now: datetime) -> None:
    """`rows` calls with a ticket each; `files` recordings, today's and yesterday's named."""
    config = store.config
    tz = config.tz
    today = now.astimezone(tz).date()
    audio = wav_bytes()
    engine = store.sessions.kw["bind"]
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"{rows:,} calls, {files:,} recordings", total=rows + files)
        with engine.begin() as conn:
            ticket_id = conn.execute(
                Ticket.__table__.insert().returning(Ticket.__table__.c.id),
                {
                    "number": "00000000001",
                    "caller_number": "1",
                    "status": "closed",
                    "accepted_at": now - timedelta(days=400),
                    "urgency": "daily_life",
                    "source": "bench",
                    "urge_count": 0,
                },
            ).scalar_one()
        for lo in range(0, rows, CHUNK):
            batch = []
            for i in range(lo, min(rows, lo + CHUNK)):
                # the newest calls are the ones with files: calls i < files map to file i
                day = today - timedelta(days=i // PER_DAY)
                folder = recordings.day_folder(config.recordings_dir, day)
                uid = f"{1_700_000_000 + i}.{i % 97}"
                at = datetime.combine(day, datetime.min.time(), tz) + timedelta(seconds=i % 80000)
                batch.append(
                    {
                        "uniqueid": uid,
                        "direction": "inbound",
                        "caller_number": f"138{i:08d}",
                        "did": "12345",
                        "started_at": at,
                        "ended_at": at,
                        "recording_path": str(folder / f"{uid}_12345_138{i:08d}.wav"),
                        "ticket_id": ticket_id,
                    }
                )
            with engine.begin() as conn:
                conn.execute(Call.__table__.insert(), batch)
            progress.advance(task, len(batch))
        for i in range(min(files, rows)):
            day = today - timedelta(days=i // PER_DAY)
            folder = recordings.day_folder(config.recordings_dir, day)
            if i % PER_DAY == 0:
                folder.mkdir(parents=True, exist_ok=True)
            uid = f"{1_700_000_000 + i}.{i % 97}"
            (folder / f"{uid}_12345_138{i:08d}.wav").write_bytes(audio)
            if i % 1000 == 0:
                progress.advance(task, 1000)


def best(work: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def run(rows: int, files: int, repeats: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="reconcile-bench-") as folder:
        config = load_config(write_config(Path(folder)))
        prepare_store(config)
        store = IvrStore(config, make_session_factory(make_engine(config.database_url)))
        now = datetime.now(UTC)
        fill(store, rows, files, now)
        first = reconcile(store, 0, live=set())  # warm; also proves the pass is clean
        assert first.clean and not first.tickets_for_calls, first
        days = recordings.recent_days(now, config.tz)
        looked = len(recordings.scan(config.recordings_dir, days))
        on_disk = len(recordings.scan(config.recordings_dir))
        return {
            "pass": best(lambda: reconcile(store, 0, live=set()), repeats),
            "tree": best(lambda: recordings.scan(config.recordings_dir), repeats),
            "looked": looked,
            "on_disk": on_disk,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="10000,1000000")
    parser.add_argument("--recordings", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    sizes = [int(x) for x in args.rows.split(",")]
    results = {rows: run(rows, min(args.recordings, rows), args.repeats) for rows in sizes}
    base = results[sizes[0]]["pass"]
    table = Table(
        "call rows",
        "recordings on disk",
        "files a pass reads",
        "pass",
        "vs first size",
        "whole-tree scan (old, x3 per pass)",
    )
    for rows, r in results.items():
        table.add_row(
            f"{rows:,}",
            f"{int(r['on_disk']):,}",
            f"{int(r['looked']):,}",
            f"{r['pass'] * 1000:.1f} ms",
            f"{r['pass'] / base:.2f}x",
            f"{r['tree'] * 1000:.0f} ms",
        )
    console.print(table)


if __name__ == "__main__":
    main()
