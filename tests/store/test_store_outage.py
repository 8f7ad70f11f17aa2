"""One way into the store: a pool exhausted counts as an outage, a poisoned spool entry is
quarantined and the good ones after it still land. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from core.config import load_config
from db.session import make_engine, make_session_factory, unit_of_work
from db.tickets import ticket_for_call
from hotline.app import prepare_store
from ivr.store import CallStart, IvrStore, TicketRequest
from tests.support.config import write_config


def small_pool_store(tmp_path: Path, database_url: str) -> IvrStore:
    """The IVR's store on an engine with one connection, given up on after 0.3 s."""
    config = load_config(
        write_config(
            tmp_path,
            database={"url": database_url},
            ivr={"reconcile_settle_seconds": 0, "db_retry_seconds": 1.0},
        )
    )
    prepare_store(config)
    url = config.database_url.replace("postgresql://", "postgresql+psycopg://")
    engine = create_engine(url, pool_size=1, max_overflow=0, pool_timeout=0.3)
    return IvrStore(config, make_session_factory(engine))


async def test_an_exhausted_pool_is_an_outage_the_call_start_is_spooled(
    tmp_path: Path, database_url: str
) -> None:
    store = small_pool_store(tmp_path, database_url)
    engine = store.sessions.kw["bind"]
    held = threading.Event()
    release = threading.Event()

    def hold_the_only_connection() -> None:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold_the_only_connection)
    holder.start()
    try:
        held.wait(5)
        start = CallStart("1700000100.1", "13800000100", "12345", None)
        await store.call_started(start)  # must neither raise nor be lost
        assert [p.name.split("-")[1] for p in store.spool.pending()] == ["call_start"]
    finally:
        release.set()
        holder.join()
    applied, left = await asyncio.to_thread(store.spool.replay, store.apply)
    assert (applied, left) == (1, 0)


def test_a_poisoned_spool_entry_is_quarantined_and_the_next_ones_land(
    tmp_path: Path, database_url: str
) -> None:
    store = small_pool_store(tmp_path, database_url)
    spool = store.spool
    good_before = CallStart("1700000200.1", "13800000200", "12345", None)
    spool.put("call_start", vars(good_before))
    # an intent written by another version: a field this one does not know
    spool.put("call_start", {**vars(CallStart("1700000201.1", "1", "12345", None)), "colour": 1})
    # a uniqueid far longer than the column (PostgreSQL refuses it, SQLite does not check)
    spool.put("call_start", vars(CallStart("9" * 80, "13800000202", "12345", None)))
    spool.put(
        "ticket",
        vars(TicketRequest("1700000203.1", "13800000203", "12345", None, description="after")),
    )
    applied, left = spool.replay(store.apply)
    assert left == 0
    quarantined = spool.quarantined()
    assert applied + len(quarantined) == 4 and len(quarantined) >= 1
    reasons = [p.with_suffix(".reason").read_text() for p in quarantined]
    assert any("colour" in r for r in reasons), reasons
    assert all(json.loads(p.read_text())["kind"] == "call_start" for p in quarantined)
    with unit_of_work(store.sessions) as session:
        ticket = ticket_for_call(session, "1700000203.1")  # the good one after the poison
        assert ticket is not None and ticket.caller_number == "13800000203"
    assert spool.replay(store.apply) == (0, 0)  # quarantined entries are not retried


def test_no_single_try_outlives_the_retry_budget(database_url: str) -> None:
    from db.migrate import upgrade
    from db.session import make_engine

    upgrade(database_url)
    engine = make_engine(database_url, busy_timeout_ms=5000, attempt_seconds=1.5)
    try:
        assert engine.pool.timeout() == 1.5  # type: ignore[attr-defined]
        with engine.connect() as connection:
            if database_url.startswith("sqlite"):
                assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 1500
            else:
                assert connection.exec_driver_sql("SHOW statement_timeout").scalar() == "1500ms"
    finally:
        engine.dispose()


async def test_a_postgresql_that_never_answers_is_given_up_on_within_the_budget(
    tmp_path: Path,
) -> None:
    """A server that accepts TCP and says nothing: without a connect timeout, a call hangs."""
    from hotline.app import create_hotline
    from tests.support.config import free_port

    port = free_port()
    silent = await asyncio.start_server(lambda r, w: None, "127.0.0.1", port)
    try:
        config = load_config(
            write_config(
                tmp_path,
                database={"url": f"postgresql://hotline@127.0.0.1:{port}/hotline"},
                ivr={"db_retry_seconds": 3},
            )
        )
        store = create_hotline(config).store
        loop = asyncio.get_running_loop()
        started = loop.time()
        start = CallStart("1700000600.1", "13800000600", "12345", None)
        await asyncio.wait_for(store.call_started(start), 20)
        assert loop.time() - started < 8  # one try of at most the budget, then the spool
        assert [p.name.split("-")[1] for p in store.spool.pending()] == ["call_start"]
    finally:
        silent.close()


async def test_one_process_takes_turns_on_sqlite_and_works_in_parallel_on_postgresql(
    tmp_path: Path, database_url: str
) -> None:
    """SQLite lets one writer in: a process's flows queue on one thread instead of racing.

    Racing threads lost tickets to the spool at 600 callers in the capacity bench
    ("database is locked" at once for a transaction whose snapshot went stale,
    or after the busy timeout behind a writer starved of CPU).
    """
    config = load_config(write_config(tmp_path, database={"url": database_url}))
    prepare_store(config)
    engine = make_engine(config.database_url, attempt_seconds=config.ivr.db_retry_seconds)
    store = IvrStore(config, make_session_factory(engine))
    inside = 0
    most_inside = 0

    def work(session: Session) -> None:
        nonlocal inside, most_inside
        inside += 1
        most_inside = max(most_inside, inside)
        session.execute(text("SELECT 1"))
        time.sleep(0.02)
        inside -= 1

    await asyncio.gather(*(store.gateway.run(work) for _ in range(12)))
    engine.dispose()
    if database_url.startswith("sqlite"):
        assert most_inside == 1
    else:
        assert most_inside > 1


async def test_a_store_queue_longer_than_the_budget_spools_instead_of_keeping_the_caller_waiting(
    tmp_path: Path,
) -> None:
    """Past its capacity the store thread's queue grows; nobody waits on it past the budget."""
    config = load_config(
        write_config(tmp_path, ivr={"reconcile_settle_seconds": 0, "db_retry_seconds": 0.5})
    )
    prepare_store(config)
    engine = make_engine(config.database_url, attempt_seconds=config.ivr.db_retry_seconds)
    store = IvrStore(config, make_session_factory(engine))

    def slow(session: Session) -> None:
        session.execute(text("SELECT 1"))
        time.sleep(1.5)  # one long transaction ahead in the queue

    ahead = asyncio.create_task(store.gateway.run(slow))
    await asyncio.sleep(0.1)
    request = TicketRequest("1700000300.1", "13800000300", "12345", None, description="queued")
    number = await store.ticket_for_call(request)
    given_up_first = not ahead.done()  # at the budget, before the slow work ahead ended
    await ahead
    assert given_up_first
    assert number is None  # the caller hears that the number follows, not silence
    assert [p.name.split("-")[1] for p in store.spool.pending()] == ["ticket"]
    applied, left = await asyncio.to_thread(store.spool.replay, store.apply)
    assert (applied, left) == (1, 0)
    with unit_of_work(store.sessions) as session:
        assert ticket_for_call(session, "1700000300.1") is not None
    engine.dispose()
