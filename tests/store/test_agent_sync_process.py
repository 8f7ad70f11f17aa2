"""The agents' state sync in a running process: the seats it reads, the one process that writes."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from agents.cluster_control import seats_by_login
from core.config import HotlineConfig, load_config
from dashboard.agent_accounts import add_agent
from db.session import make_engine, make_session_factory, unit_of_work
from hotline.agent_sync import SeatBook, run_agent_sync
from tests.support.config import free_port, write_config
from tests.support.events import eventually

LEADS = "this process writes the agents' states"


def cluster_config(folder: Path) -> HotlineConfig:
    """Two nodes whose managers never answer (a port nothing listens on)."""
    port = free_port()
    nodes = [
        {"name": f"ast{i}", "address": f"127.0.0.{214 + i}", "ami_port": port}
        | {"rtp_start": 41000 + 1000 * i, "rtp_end": 41999 + 1000 * i}
        for i in (1, 2)
    ]
    cluster = {
        "front": {"address": "127.0.0.219"},
        "nodes": nodes,
        "workers": [{"name": "agi1", "address": "127.0.0.218"}],
    }
    return load_config(write_config(folder, cluster=cluster))


def test_the_sync_knows_each_agents_seat_by_login(
    store: sessionmaker[Session], tmp_path: Path
) -> None:
    config = load_config(write_config(tmp_path))
    with unit_of_work(store) as session:
        wang = add_agent(session, config, "wang", "!", phone="desk").endpoint
        li = add_agent(session, config, "li", "!", phone="webrtc").endpoint
    with unit_of_work(store) as session:
        assert seats_by_login(session) == {"wang": wang, "li": li}
    book = SeatBook(store)

    async def refreshed() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(book.keep_fresh(stop))
        await eventually(lambda: book.seats or None, timeout=10)
        stop.set()
        await task

    asyncio.run(refreshed())
    assert (book.seat_of("wang"), book.seat_of("li"), book.seat_of("zhao")) == (wang, li, None)


async def test_one_box_runs_no_sync(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path))
    stop, before = asyncio.Event(), asyncio.all_tasks()
    await asyncio.wait_for(run_agent_sync(config, stop), 5)  # returns though never stopped
    assert not stop.is_set() and asyncio.all_tasks() == before  # and left nothing running


async def test_one_process_of_the_cluster_writes_and_another_takes_over(
    postgres_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hotline.agent_sync")
    config = cluster_config(tmp_path)
    engine = make_engine(postgres_url)
    sessions = make_session_factory(engine)
    first_stop, second_stop = asyncio.Event(), asyncio.Event()
    first = asyncio.create_task(run_agent_sync(config, first_stop, sessions))

    def leaders() -> int:
        return sum(LEADS in record.getMessage() for record in caplog.records)

    await eventually(lambda: leaders() == 1 or None, timeout=20, what="the first leader")
    second = asyncio.create_task(run_agent_sync(config, second_stop, sessions))
    await asyncio.sleep(1)
    assert leaders() == 1  # the second stands by
    first_stop.set()
    await asyncio.wait_for(first, 20)
    await eventually(lambda: leaders() == 2 or None, timeout=30, what="the second taking over")
    second_stop.set()
    await asyncio.wait_for(second, 20)
    engine.dispose()
