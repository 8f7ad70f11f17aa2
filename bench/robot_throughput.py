"""The robot's throughput, and what one dispatcher pass costs at a million closed tickets.

    python -m bench.robot_throughput [--tickets 60] [--channels 10] [--query-tickets 1000000]

Part 1, a campaign through the real Asterisk (private state folder and ports):
`--tickets` closed tickets whose citizens (scripted Local-channel legs behind
1990+id numbers) answer and key 1-1-1 as soon as each question starts, surveyed
by `run_robot` with `max_channels` C, twice in one run: first with only the
periodic pass every 10 s (the robot before this change), then with the pass
that follows a freed channel (`Dispatcher.follow`). Per run: surveys completed,
wall time from the first claim to the last end, L (median channel time of a
completed survey) and the figure of merit surveys/hour / (C * 3600 / L).

Part 2, the store alone (SQLite, `--query-tickets` closed tickets over two
years, 72 % surveyed, the rest exhausted or in progress, see bench/robot_store.py):
the eligibility query and a whole claim as they were (six correlated
subqueries over every closed ticket, searched while holding the robot lock)
against as they are now (bounded by `robot.survey_within_days` on the closed_at
index, searched before the lock, only the candidates checked under it), in
turns (`--turns`), plus how long the robot lock is held. `--store DIR` keeps
the big store for the next run (filling it takes a minute or two).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import and_, case, exists, func, or_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, aliased

from bench.quiet import load_1min
from bench.robot_store import fill
from bench.stopping import cancellable
from callback_robot.attempts import create_attempt
from callback_robot.claim import claim_due
from callback_robot.dispatcher import Dispatcher, due_rules
from callback_robot.eligibility import IN_FLIGHT, UNANSWERED, DueRules, due_tickets
from callback_robot.runner import run_robot
from core.config import HotlineConfig, load_config
from core.vocabulary import AttemptOutcome, AttemptState, TicketStatus
from db.migrate import upgrade
from db.models import CallbackAttempt, DoNotCall, RobotLock, Ticket, ValidCallback
from db.session import make_engine, make_session_factory, unit_of_work
from hotline.app import create_hotline, prepare_store
from telephony.ami import AMIClient
from tools.local_asterisk.local import LocalAsterisk
from tools.sandbox.config import FAST_SETTINGS as TEST_SETTINGS
from tools.sandbox.config import write_config

# the citizen keys 1, 1, 1 as each question starts (tests/test_survey_calls.py's persona)
PERSONA = "w11|d1|w2|d1|w2|d1"


# -- part 2: the query, as it was and as it is --------------------------------------------
def legacy_due_tickets(session: Session, rules: DueRules, limit: int) -> list[int]:
    """due_tickets before this change (kept here to measure against)."""
    other = aliased(CallbackAttempt)
    sibling = aliased(Ticket)

    def count(*conditions):  # type: ignore[no-untyped-def]
        return (
            select(func.count())
            .select_from(other)
            .where(other.ticket_id == Ticket.id, *conditions)
            .scalar_subquery()
        )

    settled = exists().where(
        other.ticket_id == Ticket.id,
        or_(
            other.outcome.in_((AttemptOutcome.COMPLETED, AttemptOutcome.OPTED_OUT)),
            other.state.in_(IN_FLIGHT),
        ),
    )
    last_no = (
        select(func.max(other.attempt_no)).where(other.ticket_id == Ticket.id).scalar_subquery()
    )
    last = aliased(CallbackAttempt)
    too_soon = exists().where(
        last.ticket_id == Ticket.id,
        last.attempt_no == last_no,
        or_(
            *[
                and_(
                    last.outcome == AttemptOutcome(outcome),
                    last.ended_at > rules.now - timedelta(minutes=minutes),
                )
                for outcome, minutes in rules.retry_after_minutes.items()
            ]
        ),
    )
    citizen_attempts = (
        select(func.count())
        .select_from(other)
        .join(sibling, other.ticket_id == sibling.id)
        .where(sibling.caller_number == Ticket.caller_number)
    )
    citizen_today = citizen_attempts.where(other.started_at >= rules.today_start)
    citizen_busy = citizen_attempts.where(other.state.in_(IN_FLIGHT))
    blocked = exists().where(DoNotCall.number == Ticket.caller_number)
    surveyed = exists().where(ValidCallback.ticket_id == Ticket.id)
    query = (
        select(Ticket.id)
        .where(Ticket.status == TicketStatus.CLOSED, Ticket.closed_at <= rules.closed_before)
        .where(~settled, ~surveyed, ~blocked, ~too_soon)
        .where(
            count() < rules.max_attempts,
            count(other.started_at >= rules.today_start) < rules.max_attempts_per_day,
            count(other.outcome.in_(UNANSWERED)) < rules.max_unanswered,
            count(other.outcome == AttemptOutcome.PARTIAL) < rules.max_partial,
            citizen_today.scalar_subquery() < rules.max_calls_per_citizen_per_day,
            citizen_busy.scalar_subquery() == 0,
        )
        .order_by(case((Ticket.urgency == "emergency", 0), else_=1), Ticket.closed_at, Ticket.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def legacy_claim(session: Session, rules: DueRules, budget: int) -> tuple[int, float]:
    """The claim as it was: lock first, then search; returns (claimed, seconds locked)."""
    start = time.perf_counter()
    session.execute(
        update(RobotLock).where(RobotLock.id == 1).values(holder="b", taken_at=rules.now)
    )
    claimed = 0
    for ticket_id in legacy_due_tickets(session, rules, budget * 4)[:budget]:
        create_attempt(session, ticket_id, rules.now, "bench")
        claimed += 1
    session.flush()
    return claimed, time.perf_counter() - start


def new_claim(sessions, rules: DueRules, budget: int) -> tuple[int, float]:  # type: ignore[no-untyped-def]
    """The claim as Dispatcher.claim does it now; returns (claimed, seconds locked).

    Rolled back like the legacy one, so every turn sees the same data.
    """
    with sessions() as session, session.begin():
        candidates = due_tickets(session, rules, limit=budget * 4)
    with sessions() as session:
        session.begin()
        start = time.perf_counter()
        claimed = claim_due(
            session,
            rules,
            max_channels=budget,
            calls_per_minute=10**6,
            robot_id="bench",
            candidates=candidates,
        )
        locked = time.perf_counter() - start
        session.rollback()
    return len(claimed), locked


def capped_run(session: Session, cap: float, work):  # type: ignore[no-untyped-def]
    """work() on SQLite, interrupted after `cap` seconds (then None)."""
    raw = session.connection().connection.dbapi_connection
    timer = threading.Timer(cap, raw.interrupt)  # type: ignore[union-attr]
    timer.start()
    try:
        return work()
    except OperationalError as exc:
        if "interrupted" not in str(exc):
            raise
        session.rollback()
        return None
    finally:
        timer.cancel()


def query_bench(folder: Path, tickets: int, turns: int = 3, cap: float = 120.0) -> None:
    """Old and new eligibility query and claim on one store, in turns (see the docstring).

    A store kept in `folder` from an earlier run with the same size is reused:
    its tickets were closed relative to the time it was filled, so `now` is that time.
    """
    folder.mkdir(parents=True, exist_ok=True)
    database, stamp = folder / "robot.db", folder / f"filled-{tickets}.txt"
    url = f"sqlite:///{database}"
    if not stamp.exists():
        database.unlink(missing_ok=True)
        upgrade(url)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    if stamp.exists():
        now = datetime.fromisoformat(stamp.read_text().strip())
        print(f"store: reusing {database} ({tickets} closed tickets, filled at {now})")
    else:
        now = datetime.now(UTC).replace(microsecond=0)
        started = time.monotonic()
        with unit_of_work(sessions) as session:
            counts = fill(session, tickets, now)
        stamp.write_text(now.isoformat())
        print(f"store: {counts} in {time.monotonic() - started:.0f} s")
    config = load_config(write_config(folder / "cfg"))
    rules = due_rules(config, now)
    legacy_rules = DueRules(**{**rules.__dict__, "closed_after": None})
    budget = config.robot.max_channels
    names = [f"{age} {what}" for what in ("query", "lock", "claim") for age in ("old", "new")]
    times: dict[str, list[float]] = {name: [] for name in names}
    found = {}
    capped: set[str] = set()
    for turn in range(turns):
        print(f"  turn {turn + 1}/{turns}", flush=True)
        with sessions() as session:
            t = time.perf_counter()
            found["old"] = capped_run(
                session, cap, lambda s=session: legacy_due_tickets(s, legacy_rules, budget * 4)
            )
            times["old query"].append(time.perf_counter() - t)
            if found["old"] is None:
                capped.add("old query")
            print(f"    old query {times['old query'][-1]:.2f} s", flush=True)
        with sessions() as session:
            t = time.perf_counter()
            found["new"] = due_tickets(session, rules, budget * 4)
            times["new query"].append(time.perf_counter() - t)
            print(f"    new query {times['new query'][-1]:.3f} s", flush=True)
        with sessions() as session:
            session.begin()
            t = time.perf_counter()
            claimed = capped_run(
                session, cap, lambda s=session: legacy_claim(s, legacy_rules, budget)
            )
            times["old claim"].append(time.perf_counter() - t)
            times["old lock"].append(claimed[1] if claimed else time.perf_counter() - t)
            if claimed is None:
                capped |= {"old claim", "old lock"}
            session.rollback()
        t = time.perf_counter()
        _n, locked = new_claim(sessions, rules, budget)
        times["new claim"].append(time.perf_counter() - t)
        times["new lock"].append(locked)
    engine.dispose()
    same = found["old"] == found["new"] if found["old"] is not None else "not known (capped)"
    print(f"same tickets found by both: {same} ({len(found['new'])} due)")
    print(f"| measure (SQLite, {tickets} closed tickets) | best | median |")
    print("|---|---|---|")
    for name, values in times.items():
        more = "> " if name in capped else ""
        best, median = min(values) * 1000, statistics.median(values) * 1000
        print(f"| {name} | {more}{best:.1f} ms | {more}{median:.1f} ms |")
    for what in ("query", "lock", "claim"):
        old, new = statistics.median(times[f"old {what}"]), statistics.median(times[f"new {what}"])
        more = "> " if f"old {what}" in capped else ""
        print(f"{what}: old / new = {more}{old / new:.0f}x" if new else f"{what}: n/a")


# -- part 1: the campaign -----------------------------------------------------------------
def campaign_config(folder: Path, channels: int) -> HotlineConfig:
    settings = {
        **TEST_SETTINGS,  # the test suite's prompt speed: the persona's key times fit it
        "robot": {
            **TEST_SETTINGS["robot"],  # type: ignore[dict-item]
            "max_channels": channels,
            # the pace above what C channels can use (C * 60 / L): the dispatcher is measured
            "calls_per_minute": 10 * channels,
            "call_windows": [{"start": "00:00", "end": "23:59"}],
            "min_hours_after_close": 0,
        },
    }
    return load_config(write_config(folder, **settings))


def closed_tickets(config: HotlineConfig, numbers: list[str]) -> list[int]:
    engine = make_engine(config.database_url)
    ids = []
    from db.tickets import create_ticket

    with unit_of_work(make_session_factory(engine)) as session:
        for number in numbers:
            now = datetime.now(UTC)
            ticket = create_ticket(
                session,
                caller_number=number,
                local_day=now.date(),
                accepted_at=now - timedelta(days=2),
            )
            ticket.status = TicketStatus.CLOSED
            ticket.closed_at = now - timedelta(hours=1)
            ids.append(ticket.id)
    engine.dispose()
    return ids


def campaign_figures(config: HotlineConfig, ids: list[int]) -> tuple[int, float, float, int]:
    """(completed, wall seconds first claim -> last end, median channel seconds, passes).

    Passes: the distinct claim times (one pass claims all its attempts at one `now`).
    """
    engine = make_engine(config.database_url)
    with unit_of_work(make_session_factory(engine)) as session:
        rows = session.execute(
            select(
                CallbackAttempt.started_at, CallbackAttempt.ended_at, CallbackAttempt.outcome
            ).where(CallbackAttempt.ticket_id.in_(ids))
        ).all()
    engine.dispose()
    done = [(s, e) for s, e, o in rows if o == AttemptOutcome.COMPLETED and s and e]
    if not done:
        return 0, 0.0, 0.0, 0
    wall = (max(e for _s, e in done) - min(s for s, _e, _o in rows if s)).total_seconds()
    hold = statistics.median((e - s).total_seconds() for s, e in done)
    return len(done), wall, hold, len({s for s, _e, _o in rows})


async def run_campaign(config: HotlineConfig, ami: AMIClient, ids: list[int], follow: bool) -> None:
    original = Dispatcher.follow

    async def periodic_only(self, dispatch):  # type: ignore[no-untyped-def]
        await asyncio.Event().wait()  # the robot before this change: no pass on a freed channel

    if not follow:
        Dispatcher.follow = periodic_only  # type: ignore[method-assign]
    stop = asyncio.Event()
    robot = asyncio.create_task(run_robot(config, stop))
    try:
        deadline = time.monotonic() + 60 + 60 * len(ids)
        while time.monotonic() < deadline:
            await asyncio.sleep(2)
            engine = make_engine(config.database_url)
            with unit_of_work(make_session_factory(engine)) as session:
                left = session.scalar(
                    select(func.count())
                    .select_from(Ticket)
                    .where(
                        Ticket.id.in_(ids),
                        ~exists().where(
                            CallbackAttempt.ticket_id == Ticket.id,
                            CallbackAttempt.state == AttemptState.DONE,
                        ),
                    )
                )
            engine.dispose()
            if not left:
                break
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(robot, 60)
        Dispatcher.follow = original  # type: ignore[method-assign]


async def campaign_bench(folder: Path, tickets: int, channels: int) -> None:
    config = campaign_config(folder, channels)
    from prompts.build import build_all

    await asyncio.to_thread(build_all, config)
    prepare_store(config)
    local = LocalAsterisk(config)
    hotline = None
    ami = None
    try:
        await asyncio.to_thread(local.up)
        hotline = create_hotline(config)
        await hotline.server.start()
        cfg = config.asterisk.ami
        ami = AMIClient(cfg.host, cfg.port, cfg.test_username, config.ami_test_secret())
        await ami.connect()
        results = []
        for index, follow in enumerate((False, True)):
            numbers = []
            for i in range(tickets):
                script_id = 1000 * (index + 1) + i
                await ami.action("DBPut", Family="sim", Key=f"{script_id:07d}", Val=PERSONA)
                numbers.append(f"1990{script_id:07d}")
            ids = await asyncio.to_thread(closed_tickets, config, numbers)
            await run_campaign(config, ami, ids, follow)
            done, wall, hold, passes = await asyncio.to_thread(campaign_figures, config, ids)
            per_hour = done / wall * 3600 if wall else 0.0
            ideal = channels * 3600 / hold if hold else 0.0
            name = "pass on a freed channel" if follow else "periodic pass only (before)"
            results.append((name, done, wall, hold, per_hour, ideal, passes))
            print(f"  {name}: {done}/{tickets} in {wall:.0f} s, {passes} claiming passes")
    finally:
        if ami is not None:
            await ami.close()
        if hotline is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(hotline.server.stop(), 10)
        await asyncio.to_thread(local.down)
    print(
        f"| robot (C={channels}, {tickets} tickets each) | completed | wall | L (median) "
        "| surveys/h | C*3600/L | ratio | claiming passes |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, done, wall, hold, per_hour, ideal, passes in results:
        ratio = per_hour / ideal if ideal else 0.0
        cells = [name, str(done), f"{wall:.0f} s", f"{hold:.1f} s", f"{per_hour:.0f}"]
        print("| " + " | ".join([*cells, f"{ideal:.0f}", f"{ratio:.2f}", str(passes)]) + " |")


async def run(args: argparse.Namespace) -> int:
    print(f"load at start: {load_1min():.2f}")
    with tempfile.TemporaryDirectory(prefix="hotline-robot-bench-") as tmp:
        folder = Path(tmp)
        folder.chmod(0o755)
        if args.tickets:
            await campaign_bench(folder / "campaign", args.tickets, args.channels)
        if args.query_tickets:
            store = Path(args.store) if args.store else folder / "store"
            await asyncio.to_thread(query_bench, store, args.query_tickets, args.turns, args.cap)
    print(f"load at end: {load_1min():.2f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=60, help="campaign size (0: skip)")
    parser.add_argument("--channels", type=int, default=10, help="robot.max_channels C")
    parser.add_argument("--query-tickets", type=int, default=1_000_000, help="0: skip")
    parser.add_argument("--turns", type=int, default=3, help="old and new, in turns")
    parser.add_argument("--store", default="", help="keep the big store here and reuse it")
    parser.add_argument("--cap", type=float, default=120.0, help="stop an old query after S s")
    args = parser.parse_args(argv)
    return asyncio.run(cancellable(run(args)))


if __name__ == "__main__":
    sys.exit(main())
