"""Retention as a periodic job of the queue: once per tick for the whole cluster, at the
configured interval, doing what the worker that starts it composed."""

from __future__ import annotations

from pathlib import Path

import pytest
from procrastinate import App
from procrastinate.exceptions import AlreadyEnqueued
from procrastinate.testing import InMemoryConnector

from core.config import load_config
from hotline.jobs import (
    HOUSEKEEPING,
    HOUSEKEEPING_WORK,
    HousekeepingWork,
    build_jobs_app,
    cron_every,
    register_housekeeping,
)
from tests.support.config import write_config


def periodic_crons(app: App) -> dict[str, str]:
    return {task.task.name: task.cron for task in app.periodic_registry.periodic_tasks.values()}


def test_retention_is_a_periodic_pass_at_the_configured_hours(tmp_path: Path) -> None:
    postgres = {"url": "postgresql+psycopg://hotline@127.0.0.30:5432/hotline"}
    config = load_config(
        write_config(
            tmp_path, database=postgres, cluster={}, privacy={"retention_interval_hours": 6}
        )
    )
    crons = periodic_crons(build_jobs_app(config))
    assert crons["retention"] == "0 */6 * * *"
    assert {"reconcile", "retry_stalled_jobs", "retention"} <= set(crons)


def test_intervals_of_hours_fit_the_day() -> None:
    hours = [cron_every(h * 3600) for h in (1, 5, 6, 24, 48)]
    assert hours == ["0 */1 * * *", "0 */4 * * *", "0 */6 * * *", "0 0 * * *", "0 0 * * *"]


async def test_the_retention_job_runs_the_composed_pass_once_per_tick() -> None:
    app = App(connector=InMemoryConnector())
    register_housekeeping(app, 5, retention_hours=24)
    passes: list[str] = []

    async def retention() -> None:
        passes.append("retention")

    async with app.open_async():
        await app.configure_task("retention").defer_async(timestamp=0)
        with pytest.raises(AlreadyEnqueued):  # a slow pass never piles up ticks behind it
            await app.configure_task("retention").defer_async(timestamp=1)
        await app.run_worker_async(
            queues=[HOUSEKEEPING],
            wait=False,
            install_signal_handlers=False,
            additional_context={HOUSEKEEPING_WORK: HousekeepingWork(retention=retention)},
        )
    # the worker's periodic deferrer may add a tick of its own near midnight: at least ours
    assert passes and set(passes) == {"retention"}
