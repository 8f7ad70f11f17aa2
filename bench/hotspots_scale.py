"""`hotline analyse --month` on the 300,000-ticket demo city, SQLite and PostgreSQL (issue 23).

    .venv/bin/python -m bench.hotspots_scale [--tickets 300000] [--month 2026-04]
                                             [--until 2026-11-30] [--seed 12345]
                                             [--backends sqlite,postgresql] [--repeats 2]
                                             [--folder test-artifacts/hotspots_scale]

For each database, the demo city (`hotline demo-data --tickets N --until U --seed S`)
is built once into --folder and reused by later runs of the same seed, size and
until (a `ready` file marks a build under the present migrations; PostgreSQL keeps
its data folder there and is started on a free loopback port for the run). Every
timed analysis runs on a fresh copy of that store (a file copy on SQLite, `CREATE
DATABASE … TEMPLATE` on PostgreSQL), so each is the month's first run, as `hotline
serve` makes it: areas filled where missing, categories suggested, surges, topics,
signals, candidates, the knowledge base's month, all stored.

In the same process, in turns with it, the baseline: what the analysis cannot do
without, written by hand:

- the one GROUP BY the weekly surges need: tickets per category x area x local day
  over the span the detector reads (two years back and the window, to the end of
  the month's last ISO week);
- jieba (a warm, plain `jieba.Tokenizer`) over the month's ticket texts, fetched by
  one SELECT.

It prints both (best of --repeats), their ratio (target <= 3x) and whether the
analysis is under 30 s, per database, with the analysing process's CPU time and the
machine's load average (a shared machine's wall times swing with the others' work),
then compares what the two databases stored
(flags, topics, signals and the run's summary, ids of runs and flags and the
timestamps left out; units by code) and says whether they are identical. The
figures also go to test-artifacts/bench-hotspots-scale.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import jieba
import yaml
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, select, text

from analysis.counts import monday_of
from analysis.farrington import WEEKS_PER_YEAR
from analysis.runs import latest_run, summary_of
from core.config import HotlineConfig, load_config
from core.periods import calendar_month
from db.models import Department, HotspotFlag, Topic, UnitSignal
from db.session import make_engine, make_session_factory, unit_of_work
from hotline.monthly import analyse_month

console = Console(width=140)
ARTIFACTS = Path("test-artifacts")
TARGET_RATIO = 3.0
TARGET_SECONDS = 30.0

# The baseline's GROUP BY, one per dialect: the local day of each ticket, as the
# detector buckets it (Asia/Shanghai keeps one offset, so whole days from local midnight).
GROUP_BY = {
    "sqlite": """
        SELECT category, area_id,
               CAST((julianday(accepted_at) - julianday(:start)) AS INTEGER) AS day,
               count(*)
        FROM tickets
        WHERE accepted_at >= :start AND accepted_at < :end AND category IS NOT NULL
        GROUP BY category, area_id, day
    """,
    "postgresql": """
        SELECT category, area_id, CAST(timezone(:zone, accepted_at) AS date) AS day, count(*)
        FROM tickets
        WHERE accepted_at >= :start AND accepted_at < :end AND category IS NOT NULL
        GROUP BY category, area_id, day
    """,
}
MONTH_TEXTS = """
    SELECT coalesce(nullif(description, ''), transcript)
    FROM tickets
    WHERE accepted_at >= :start AND accepted_at < :end
"""


def schema_stamp() -> str:
    """The migrations' text, hashed: a cached store built under other migrations is rebuilt."""
    digest = hashlib.sha256()
    for path in sorted(Path("db/migrations/versions").glob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16] + "\n"


def is_ready(folder: Path) -> bool:
    ready = folder / "ready"
    return ready.exists() and ready.read_text() == schema_stamp()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- the stores ---------------------------------------------------------------------
def write_config(folder: Path, url: str) -> HotlineConfig:
    path = folder / "config.yaml"
    path.write_text(
        yaml.safe_dump({"database": {"url": url}, "paths": {"state_dir": str(folder / "var")}})
    )
    return load_config(path)


def build_demo(config_path: Path, args: argparse.Namespace) -> None:
    """`hotline demo-data` into the store the config names (migrates it first)."""
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "hotline.cli", "demo-data", "--tickets", str(args.tickets),
         "--until", args.until, "--seed", str(args.seed), "-c", str(config_path)],
        check=True,
    )  # fmt: skip
    console.print(f"demo city built: {time.monotonic() - started:.0f} s")


@contextmanager
def sqlite_store(folder: Path, args: argparse.Namespace) -> Iterator[Callable[[str], str]]:
    """The cached demo store; yields a function giving a fresh copy's URL per name."""
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / "hotline.db"
    if not is_ready(folder):
        source.unlink(missing_ok=True)
        write_config(folder, f"sqlite:///{source}")
        build_demo(folder / "config.yaml", args)
        (folder / "ready").write_text(schema_stamp())
    copies = folder / "copies"
    copies.mkdir(exist_ok=True)

    def fresh(name: str) -> str:
        target = copies / f"{name}.db"
        shutil.copyfile(source, target)
        return f"sqlite:///{target}"

    try:
        yield fresh
    finally:
        shutil.rmtree(copies, ignore_errors=True)


def _pg_bin() -> Path:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "pg_ctl").exists():
            return candidate
    raise SystemExit("PostgreSQL is not installed (see the README's test command)")


@contextmanager
def postgres_store(folder: Path, args: argparse.Namespace) -> Iterator[Callable[[str], str]]:
    """A server on the cached data folder (built once); fresh copies are template databases."""
    import psycopg

    bindir = _pg_bin()
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "data"
    run_as: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        run_as = ["runuser", "-u", "postgres", "--"]
    built = is_ready(folder)
    if not built:
        shutil.rmtree(data, ignore_errors=True)
        if run_as:
            shutil.chown(folder, "postgres", "postgres")
        initdb = [str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "hotline"]
        subprocess.run([*run_as, *initdb, "--no-sync"], check=True, capture_output=True)
    port = free_port()
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off"
    pg_ctl = [*run_as, str(bindir / "pg_ctl"), "-D", str(data)]
    subprocess.run(
        [*pg_ctl, "-o", options, "-w", "-l", str(folder / "pg.log"), "start"],
        check=True,
        capture_output=True,
    )
    admin = f"postgresql://hotline@127.0.0.1:{port}/postgres"
    url = f"postgresql+psycopg://hotline@127.0.0.1:{port}"
    try:
        if not built:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute("DROP DATABASE IF EXISTS hotline")
                conn.execute("CREATE DATABASE hotline")
            write_config(folder, f"{url}/hotline")
            build_demo(folder / "config.yaml", args)
            with psycopg.connect(f"postgresql://hotline@127.0.0.1:{port}/hotline") as conn:
                conn.autocommit = True
                conn.execute("VACUUM ANALYZE")
            (folder / "ready").write_text(schema_stamp())
        made: list[str] = []

        def fresh(name: str) -> str:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE hotline')
            made.append(name)
            return f"{url}/{name}"

        yield fresh
        with psycopg.connect(admin, autocommit=True) as conn:
            for name in made:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        subprocess.run([*pg_ctl, "-m", "fast", "stop"], check=False, capture_output=True)


# -- what is timed ------------------------------------------------------------------
def detector_span(month: str, years_back: int, window_weeks: int) -> tuple[date, date]:
    """The local days [first, end) the weekly detector reads for the month (as surges does)."""
    period = calendar_month(month)
    mondays = [
        day
        for day in (monday_of(period.first) + timedelta(days=7 * k) for k in range(6))
        if period.first <= day < period.end
    ]
    look_back = mondays[0] - timedelta(days=7)
    first = look_back - timedelta(days=7 * (WEEKS_PER_YEAR * years_back + window_weeks))
    return first, mondays[-1] + timedelta(days=7)


def baseline(engine: Engine, config: HotlineConfig, month: str, splitter: jieba.Tokenizer) -> int:
    """The hand-written GROUP BY plus jieba over the month's texts; returns words cut."""
    f = config.hotspots.farrington
    first, end = detector_span(month, f.years_back, f.window_weeks)
    tz = config.tz
    start_utc = _utc(first, config)
    end_utc = _utc(end, config)
    month_start, month_end = calendar_month(month).utc_range(config.timezone)
    with engine.connect() as conn:
        sql = GROUP_BY[engine.dialect.name]
        cells = conn.execute(text(sql), {"start": start_utc, "end": end_utc, "zone": tz.key}).all()
        assert cells, "the GROUP BY found no tickets: is the month inside the demo's span?"
        texts = conn.execute(text(MONTH_TEXTS), {"start": month_start, "end": month_end})
        words = 0
        for (body,) in texts:
            if body:
                words += len(splitter.lcut(body, HMM=False))
    return words


def _utc(day: date, config: HotlineConfig) -> Any:
    from analysis.counts import local_midnight

    return local_midnight(day, config.tz)


def ours(url: str, config: HotlineConfig, month: str) -> tuple[float, float, dict[str, Any]]:
    """`analyse_month` on a fresh store: (seconds, its CPU seconds, what it stored,
    comparable). On a shared machine the wall time swings with the others' load; the
    CPU time (all threads of this process and the topics worker it forks; SQLite's
    work included, a PostgreSQL server's not) says what the analysis itself costs."""
    engine = make_engine(url)
    try:
        factory = make_session_factory(engine)
        started, cpu = time.perf_counter(), _cpu_seconds()
        analyse_month(factory, config, month)
        seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
        with unit_of_work(factory) as session:
            stored = stored_results(session, month)
    finally:
        engine.dispose()
    return seconds, cpu, stored


def _cpu_seconds() -> float:
    """This process's CPU time and its ended children's (the topics worker is one)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def stored_results(session: Any, month: str) -> dict[str, Any]:
    """The run's rows and summary without ids and timestamps; units by code."""
    run = latest_run(session, month)
    assert run is not None and run.status == "done", "the analysis stored no finished run"
    code = {row.id: row.code for row in session.execute(select(Department.id, Department.code))}

    def unit(value: int | None) -> str | None:
        return None if value is None else code.get(value, f"#{value}")

    flags = [
        {
            "category": f.category,
            "area": unit(f.area_id),
            "level": f.level,
            "period_start": f.period_start.isoformat(),
            "method": f.method,
            "observed": f.observed,
            "expected": _round(f.expected),
            "upper": _round(f.upper),
            "p": _round(f.p_value),
            "q": _round(f.q_value),
            "state": f.state,
        }
        for f in session.scalars(
            select(HotspotFlag).where(HotspotFlag.run_id == run.id).order_by(HotspotFlag.id)
        )
    ]
    topics = [
        {
            "category": t.category,
            "label": t.label,
            "terms": _round(json.loads(t.terms)),
            "size": t.size,
            "typical": json.loads(t.typical_ticket_ids),
            "is_new": t.is_new,
        }
        for t in session.scalars(select(Topic).where(Topic.run_id == run.id).order_by(Topic.id))
    ]
    signals = [
        {
            "unit": unit(s.department_id),
            "other": unit(s.other_department_id),
            "kind": s.kind,
            "category": s.category,
            "observed": s.observed,
            "total": s.total,
            "peer_rate": _round(s.peer_rate),
            "p": _round(s.p_value),
            "q": _round(s.q_value),
            "flagged": s.flagged,
            "hours_lost": _round(s.hours_lost),
            "tickets": json.loads(s.ticket_ids),
        }
        for s in session.scalars(
            select(UnitSignal).where(UnitSignal.run_id == run.id).order_by(UnitSignal.id)
        )
    ]
    summary = summary_of(run)
    # the charts are keyed by flag id: in flag order instead
    series = summary.get("series", {})
    summary["series"] = [series[k] for k in sorted(series, key=int)]
    for topic in summary.get("governance", []):
        topic.pop("id", None)
    return {"flags": flags, "topics": topics, "signals": signals, "summary": _round(summary)}


def _round(value: Any) -> Any:
    """Floats to 9 significant digits: the same counts give the same figures on both."""
    if isinstance(value, float):
        return float(f"{value:.9g}")
    if isinstance(value, list | tuple):
        return [_round(v) for v in value]
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    return value


def measure(
    name: str, fresh: Callable[[str], str], config: HotlineConfig, args: argparse.Namespace
) -> dict[str, Any]:
    """Baseline and ours in turns, --repeats times each, on this database."""
    splitter = jieba.Tokenizer()
    splitter.initialize()  # warm: the baseline pays no dictionary load
    source_url = fresh("bench_base")
    base_engine = make_engine(source_url)
    base_times, our_times, our_cpu, loads, words = [], [], [], [], 0
    stored: dict[str, Any] = {}
    try:
        for turn in range(args.repeats):
            started = time.perf_counter()
            words = baseline(base_engine, config, args.month, splitter)
            base_times.append(time.perf_counter() - started)
            url = fresh(f"bench_run{turn}")
            loads.append(os.getloadavg()[0])
            seconds, cpu, stored = ours(url, config, args.month)
            our_times.append(seconds)
            our_cpu.append(cpu)
            console.print(
                f"{name} turn {turn + 1}: baseline {base_times[-1]:.2f} s, analyse {seconds:.2f} s"
                f" (cpu {cpu:.2f} s, load {loads[-1]:.1f})"
            )
    finally:
        base_engine.dispose()
    best_base, best_ours = min(base_times), min(our_times)
    return {
        "database": name,
        "baseline_s": round(best_base, 3),
        "analyse_s": round(best_ours, 3),
        "analyse_first_s": round(our_times[0], 3),
        "analyse_cpu_s": round(our_cpu[our_times.index(best_ours)], 3),
        "load": round(max(loads), 2),
        "ratio": round(best_ours / best_base, 2),
        "words_cut": words,
        "flags": len(stored["flags"]),
        "topics": len(stored["topics"]),
        "signals": len(stored["signals"]),
        "stored": stored,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=300_000)
    parser.add_argument("--until", default="2026-11-30")
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--month", default="2026-04")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--folder", type=Path, default=ARTIFACTS / "hotspots_scale")
    args = parser.parse_args()
    stores = {"sqlite": sqlite_store, "postgresql": postgres_store}
    results = []
    for name in args.backends.split(","):
        folder = (args.folder / f"{name}-s{args.seed}-t{args.tickets}-u{args.until}").absolute()
        with ExitStack() as stack:
            fresh = stack.enter_context(stores[name](folder, args))
            config = load_config(folder / "config.yaml")  # the settings (zone, hotspots)
            results.append(measure(name, fresh, config, args))
    report(results, args)


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    table = Table(
        "database", "tickets", "month", "baseline", "analyse (best)", "its cpu", "first run",
        "ratio", "<= 3x", "< 30 s", "load", "flags", "topics", "signals",
        title="hotline analyse --month vs the hand-written GROUP BY + jieba (same run)",
    )  # fmt: skip
    for r in results:
        table.add_row(
            r["database"], f"{args.tickets:,}", args.month, f"{r['baseline_s']:.2f} s",
            f"{r['analyse_s']:.2f} s", f"{r['analyse_cpu_s']:.2f} s",
            f"{r['analyse_first_s']:.2f} s", f"{r['ratio']:.2f}x",
            "yes" if r["ratio"] <= TARGET_RATIO else "NO",
            "yes" if r["analyse_s"] < TARGET_SECONDS else "NO", f"{r['load']:.1f}",
            str(r["flags"]), str(r["topics"]), str(r["signals"]),
        )  # fmt: skip
    console.print(table)
    same: bool | None = None
    if len(results) > 1:
        first = results[0]["stored"]
        differing = [
            part
            for r in results[1:]
            for part in first
            if json.dumps(first[part], sort_keys=True, ensure_ascii=False)
            != json.dumps(r["stored"][part], sort_keys=True, ensure_ascii=False)
        ]
        same = not differing
        console.print(
            "identical results on "
            + " and ".join(r["database"] for r in results)
            + " (flags, topics, signals, summary)"
            if same
            else f"results DIFFER between the databases in: {', '.join(sorted(set(differing)))}"
        )
    ARTIFACTS.mkdir(exist_ok=True)
    out = ARTIFACTS / "bench-hotspots-scale.json"
    out.write_text(
        json.dumps(
            {
                "tickets": args.tickets,
                "until": args.until,
                "seed": args.seed,
                "month": args.month,
                "identical": same,
                "results": results,
            },
            ensure_ascii=False,
            indent=1,
        )
    )
    console.print(f"written to {out}")


if __name__ == "__main__":
    main()
