"""The console's heaviest pages at city scale, as a ratio to a static file from the same server.

    .venv/bin/python -m bench.console_pages [--tickets 300000] [--calls 1000000] [--runs 25]
                                            [--folder DIR]  (keep the filled store for reruns)

Fills an empty SQLite store with `hotline demo-data --tickets N` (the demo city:
~740 units, the seed city's callbacks) and --calls call rows (those of the first
N tickets linked to their ticket and caller, the rest citizen calls and robot
surveys without one), spread over the demo's 2.5 years. Then serves the console
with uvicorn on loopback (its own thread, as `hotline serve` does), logs in as a
supervisor and times, warm, in turns in the same run:

- baseline: a 30 KB static file served by the same app (Starlette StaticFiles);
- the recordings search, first page (the newest 50 calls of a million);
- the recordings search by caller prefix, and its 20th page (keyset);
- the three-rate page for the last full month (ranks, drill-down table, snail seat,
  overdue lists) and its CSV export.

It prints the median and 90th percentile wall time per request (client side,
over loopback) and the ratio of the medians to the static file. The goal is
<= 150 ms median for the recordings page and the month's three-rate page.
"""

from __future__ import annotations

import argparse
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import yaml
from fastapi.staticfiles import StaticFiles
from rich.console import Console
from rich.table import Table
from sqlalchemy import text

from core.config import load_config
from dashboard.app import create_app
from dashboard.auth import hash_password
from dashboard.users import add_user, user_by_name
from db.departments import department_by_code
from db.migrate import upgrade
from db.session import make_engine, make_session_factory, unit_of_work
from tools.sandbox.console import serve_console  # the same loopback server as the browser tests

console = Console(width=140)
PASSWORD = "bench password 1"

# The benchmark's own fixture: calls generated in SQL (SQLite), linked to tickets 1..N.
FILL_CALLS = """
WITH RECURSIVE n(i) AS (SELECT :first UNION ALL SELECT i + 1 FROM n WHERE i < :last)
INSERT INTO calls (uniqueid, direction, caller_number, did, started_at, answered_at,
                   ended_at, recording_path, ticket_id, last_step)
SELECT '17' || n.i || '.' || n.i,
       CASE WHEN n.i % 5 = 0 THEN 'outbound' ELSE 'inbound' END,
       coalesce(t.caller_number, '13' || substr('000000000' || ((n.i * 7919) % 1000000000), -9)),
       CASE WHEN n.i % 5 = 0 THEN NULL WHEN n.i % 7 = 0 THEN '12345001' ELSE '12345' END,
       strftime('%Y-%m-%d %H:%M:%S', :start, '+' || (n.i * :step) || ' seconds') || '.000000',
       strftime('%Y-%m-%d %H:%M:%S', :start, '+' || (n.i * :step + 5) || ' seconds') || '.000000',
       strftime('%Y-%m-%d %H:%M:%S', :start, '+' || (n.i * :step + 5 + n.i % 300) || ' seconds')
         || '.000000',
       '/var/recordings/bench/' || n.i || '.wav',
       t.id,
       CASE n.i % 6 WHEN 0 THEN 'readback' WHEN 1 THEN 'menu' WHEN 2 THEN 'recording'
                    WHEN 3 THEN 'greeting' WHEN 4 THEN 'queue' ELSE 'type' END
FROM n LEFT JOIN tickets t ON t.id = n.i AND n.i <= :tickets
"""


def fill(folder: Path, tickets: int, calls: int) -> Path:
    """A config and store in folder with the demo city and the calls; the config's path."""
    config_path = folder / "config.yaml"
    config_path.write_text(
        yaml.safe_dump(
            {
                "database": {"url": f"sqlite:///{folder / 'hotline.db'}"},
                "paths": {"state_dir": str(folder / "var")},
                "metrics": {"min_valid_callbacks": 5},
            }
        )
    )
    config = load_config(config_path)
    upgrade(config.database_url)
    until = datetime.now(config.tz).date()
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-m", "hotline.cli", "demo-data", "--tickets", str(tickets),
         "--until", str(until), "-c", str(config_path)],
        check=True,
    )  # fmt: skip
    console.print(f"demo city: {time.monotonic() - started:.0f} s")
    engine = make_engine(config.database_url)
    start = until - timedelta(days=int(2.5 * 365))
    step = max(1, int(2.5 * 365 * 86400 / calls))
    started = time.monotonic()
    with engine.begin() as connection:
        for first in range(1, calls + 1, 200_000):
            connection.execute(
                text(FILL_CALLS),
                {"first": first, "last": min(first + 199_999, calls), "start": str(start),
                 "step": step, "tickets": tickets},
            )  # fmt: skip
        # every fifth call is a robot survey: the demo's attempts get those calls
        connection.execute(
            text("UPDATE callback_attempts SET call_id = id * 5 WHERE id * 5 <= :calls"),
            {"calls": calls},
        )
        connection.execute(text("ANALYZE"))
    with unit_of_work(make_session_factory(engine)) as session:
        add_user(session, "bench", hash_password(PASSWORD), "supervisor", None)
        counted = session.execute(text("SELECT count(*) FROM calls")).scalar()
    engine.dispose()
    console.print(f"{counted:,} calls: {time.monotonic() - started:.0f} s")
    return config_path


def ensure_staff(config, unit: str) -> None:  # type: ignore[no-untyped-def]
    """A staff account of unit (a district of the demo city) for the scoped search."""
    engine = make_engine(config.database_url)
    with unit_of_work(make_session_factory(engine)) as session:
        if user_by_name(session, "bench-staff") is None:
            department = department_by_code(session, unit)
            assert department is not None, f"no unit {unit} in the demo city"
            add_user(session, "bench-staff", hash_password(PASSWORD), "staff", department.id)
    engine.dispose()


def log_in(client: httpx.Client, username: str) -> None:
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
    assert token
    done = client.post(
        "/login", data={"username": username, "password": PASSWORD, "csrf": token[1]}
    )
    assert done.status_code == 303, done.text[:300]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def timed(client: httpx.Client, url: str) -> float:
    begun = time.perf_counter()
    response = client.get(url)
    elapsed = time.perf_counter() - begun
    assert response.status_code == 200, (url, response.status_code, response.text[:300])
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=300_000)
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=25)
    parser.add_argument(
        "--folder", type=Path, help="Keep the filled store here (and reuse it on the next run)."
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
        folder = args.folder or Path(tmp)
        if (folder / "config.yaml").exists():  # filled by an earlier run: reuse it
            config = load_config(folder / "config.yaml")
            upgrade(config.database_url)
        else:
            folder.mkdir(parents=True, exist_ok=True)
            config = load_config(fill(folder, args.tickets, args.calls))
        ensure_staff(config, "D01")
        static = folder / "static"
        static.mkdir(exist_ok=True)
        (static / "page.html").write_text("<p>" + "静态页面 static page " * 1500 + "</p>")
        app = create_app(config)
        app.mount("/bench-static", StaticFiles(directory=static))
        today = datetime.now(config.tz).date()
        month = (today.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
        with (
            serve_console(app, free_port()) as base,
            httpx.Client(base_url=base) as client,
            httpx.Client(base_url=base) as staff,
        ):
            log_in(client, "bench")
            log_in(staff, "bench-staff")
            cursor_url, walked = "/calls?caller=138", 1
            for _ in range(19):  # walk to the 20th page by keyset (or the last one)
                page = client.get(cursor_url).text
                found = re.search(r'id="next-page" href="([^"]+)"', page)
                if not found:
                    break
                cursor_url, walked = found[1].replace("&amp;", "&"), walked + 1
            pages = {
                "static file (baseline)": "/bench-static/page.html",
                "recordings search, page 1": "/calls",
                "recordings by caller prefix 138": "/calls?caller=138",
                f"recordings by caller, page {walked}": cursor_url,
                "recordings search, district staff": "staff:/calls",
                f"three rates {month} (page)": f"/rates?month={month}",
                f"three rates {month} (CSV export)": f"/rates/export/three-rates.csv?month={month}",
            }
            times: dict[str, list[float]] = {name: [] for name in pages}

            def get(url: str) -> float:
                if url.startswith("staff:"):
                    return timed(staff, url[len("staff:") :])
                return timed(client, url)

            for url in pages.values():
                get(url)  # warm
            for _ in range(args.runs):
                for name, url in pages.items():
                    times[name].append(get(url))
    base_median = statistics.median(times["static file (baseline)"])
    table = Table(title=f"{args.calls:,} calls, {args.tickets:,} tickets, {args.runs} runs each")
    for column in ("page", "median ms", "p90 ms", "ratio to static", "goal 150 ms"):
        table.add_column(column)
    for name, values in times.items():
        median = statistics.median(values)
        p90 = statistics.quantiles(values, n=10)[-1]
        table.add_row(
            name,
            f"{median * 1000:.1f}",
            f"{p90 * 1000:.1f}",
            f"{median / base_median:.1f}x",
            "" if name.startswith("static") else ("ok" if median <= 0.150 else "over"),
        )
    console.print(table)


if __name__ == "__main__":
    main()
