"""A cluster robot runs the agent-first callback dialer beside its own dispatch.

A cluster runs no `hotline serve`, so `hotline robot run` with a `cluster:`
section is where missed callers are called back: a dialer pass every few
seconds while the robot runs, none with callbacks off, none after it stops.
The nodes' AMI ports here answer nobody: the dialer finds no free agent and
still closes the tasks that may never be called.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from agents import callback_dialer
from agents.callback_dialer import NOT_A_NUMBER, CallbackDialer
from core.config import HotlineConfig, load_config
from db.callbacks import open_callback_task
from db.models import CallbackTask
from db.session import make_engine, make_session_factory, unit_of_work
from hotline.cli.robot import agent_callbacks
from tests.support.config import free_port, write_config
from tests.support.events import eventually


def cluster_config(folder: Path, database_url: str, enabled: bool = True) -> HotlineConfig:
    nodes = [
        {
            "name": name,
            "address": f"127.0.0.{11 + n}",
            "ami_port": free_port(),
            "rtp_start": 10000 + 1000 * n,
            "rtp_end": 10999 + 1000 * n,
        }
        for n, name in enumerate(("ast1", "ast2"))
    ]
    return load_config(
        write_config(
            folder,
            cluster={"nodes": nodes},
            callback={"enabled": enabled},
            database={"url": database_url},
        )
    )


async def test_the_dialer_passes_run_while_the_robot_runs_and_a_failed_one_is_not_the_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    passes: list[CallbackDialer] = []

    async def one_pass(dialer: CallbackDialer) -> int:
        passes.append(dialer)
        if len(passes) == 1:
            raise RuntimeError("the store went away for a moment")
        return 0

    monkeypatch.setattr(callback_dialer, "run_once", one_pass)
    config = cluster_config(tmp_path, f"sqlite:///{tmp_path / 'store.db'}")
    async with agent_callbacks(config, every=0.01):
        await eventually(lambda: len(passes) >= 3, timeout=30, what="three dialer passes")
    assert passes[0].links.cluster and set(passes[0].links.links) == {"ast1", "ast2"}
    stopped = len(passes)
    await asyncio.sleep(0.1)
    assert len(passes) == stopped  # none after the robot stops


async def test_with_callbacks_off_no_dialer_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    passes: list[CallbackDialer] = []

    async def one_pass(dialer: CallbackDialer) -> int:
        passes.append(dialer)
        return 0

    monkeypatch.setattr(callback_dialer, "run_once", one_pass)
    config = cluster_config(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", enabled=False)
    async with agent_callbacks(config, every=0.01):
        await asyncio.sleep(0.1)
    assert passes == []


def task_closed_why(sessions: sessionmaker[Session]) -> str | None:
    with unit_of_work(sessions) as session:
        return session.scalars(select(CallbackTask.closed_why)).one()


async def test_the_real_dialer_works_the_store_with_every_node_unreachable(
    migrated_url: str, tmp_path: Path
) -> None:
    config = cluster_config(tmp_path, migrated_url)
    engine = make_engine(migrated_url)
    sessions = make_session_factory(engine)
    with unit_of_work(sessions) as session:
        open_callback_task(
            session,
            uniqueid="ast1-1796464800.1",
            caller_number="anonymous",  # never dialled: closed by the first pass
            ticket=None,
            reason="abandoned",
            created_at=datetime(2026, 12, 5, 2, 0, tzinfo=UTC),
        )
    try:
        async with agent_callbacks(config, every=0.05):
            assert (
                await eventually(
                    lambda: task_closed_why(sessions), timeout=60, what="the dialer's pass"
                )
                == NOT_A_NUMBER
            )
    finally:
        engine.dispose()
