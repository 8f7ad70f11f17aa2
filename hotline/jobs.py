"""The job queue (procrastinate) built from the config: its tasks, its periodic passes, its workers.

A hotline on PostgreSQL with jobs on (`jobs_enabled`) hands transcription and
the periodic passes to the queue instead of `hotline serve`'s own threads:
any number of `hotline jobs worker` processes on any hosts take the jobs, and
each periodic pass is deferred once per tick across all of them (procrastinate
writes each tick's deferral under a unique key, so two workers' clocks give
one job). Retention is one of them: the store's call records of every node
go once per tick for the cluster, not once per node or per console. One box
(SQLite) has no queue: `hotline serve` transcribes (and runs retention)
in-process, through the same `ivr.transcribe.transcribe_ticket`.

Workers beat every `HEARTBEAT_SECONDS`; a worker silent for `STALLED_SECONDS`
is taken for dead, and `retry_stalled_jobs` puts its running jobs back in the
queue (`JobTimers`: `cluster.jobs.stalled_seconds` sets them).
The transcript is written once all the same: a retried job finds the ticket
no longer waiting when the dead worker had already written it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from procrastinate import App, JobContext, PsycopgConnector
from procrastinate.exceptions import UniqueViolation
from procrastinate.jobs import Status
from sqlalchemy.engine import make_url

from core.config import HotlineConfig
from db.jobs import JOBS_SEARCH_PATH
from ivr.jobs import QUEUE as TRANSCRIPTION
from ivr.jobs import register_transcription

log = logging.getLogger(__name__)

HOUSEKEEPING = "housekeeping"
QUEUES = (TRANSCRIPTION, HOUSEKEEPING)
HEARTBEAT_SECONDS = 5.0
STALLED_SECONDS = 20.0  # four missed beats: the worker is dead, its jobs go back in the queue
STALLED_CRON = "* * * * * */10"  # every 10 s (croniter: seconds are the sixth field)
# jobs on a PostgreSQL store without `cluster:` too (a bigger single box) when it is "1"
JOBS_SWITCH = "HOTLINE_JOBS"


@dataclass(frozen=True)
class JobTimers:
    """How often workers beat, when a silent one is dead, how often its jobs are looked for."""

    heartbeat_seconds: float = HEARTBEAT_SECONDS
    stalled_seconds: float = STALLED_SECONDS
    recovery_cron: str = STALLED_CRON

    @classmethod
    def for_config(cls, config: HotlineConfig) -> JobTimers:
        """`cluster.jobs.stalled_seconds` (beats at a quarter of it, as 5 s of 20, and the
        recovery twice within it); the defaults without `cluster:`."""
        if config.cluster is None:
            return cls()
        stalled = config.cluster.jobs.stalled_seconds
        return cls(stalled / 4, stalled, cron_every(stalled / 2))


def jobs_enabled(config: HotlineConfig, environ: Mapping[str, str] = os.environ) -> bool:
    """Jobs on: a PostgreSQL store, and a `cluster:` section or HOTLINE_JOBS=1.

    One box (SQLite, no `cluster:`) never: it transcribes in-process as before.
    """
    wanted = config.cluster is not None or environ.get(JOBS_SWITCH) == "1"
    return config.database_url.startswith("postgresql") and wanted


@dataclass(frozen=True)
class HousekeepingWork:
    """What a worker's periodic passes call: composed by whoever starts the worker."""

    reconcile: Callable[[], Awaitable[object]] | None = None
    retention: Callable[[], Awaitable[object]] | None = None
    extra: dict[str, object] = field(default_factory=dict)


HOUSEKEEPING_WORK = "housekeeping"  # its key in the worker's additional context


def conninfo(database_url: str) -> str:
    """The store's SQLAlchemy URL as libpq connection info for procrastinate's pool."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(False)


def cron_every(seconds: float) -> str:
    """A cron line (seconds as the sixth field) for a pass every `seconds`, rounded to fit."""
    whole = max(1, round(seconds))
    if whole < 60:  # the longest step that divides a minute, so the ticks stay even
        return f"* * * * * */{max(s for s in range(1, whole + 1) if 60 % s == 0)}"
    if whole >= 3600:  # hours: the longest step that divides a day, at the hour's start
        hours = max(h for h in range(1, min(whole // 3600, 24) + 1) if 24 % h == 0)
        return "0 0 * * *" if hours == 24 else f"0 */{hours} * * *"
    minutes = max(m for m in range(1, min(whole // 60, 60) + 1) if 60 % m == 0)
    return f"*/{minutes} * * * *"


def build_jobs_app(config: HotlineConfig, max_connections: int = 4) -> App:
    """The queue on the store's PostgreSQL, with every task and periodic pass registered."""
    connector = PsycopgConnector(
        conninfo=conninfo(config.database_url),
        kwargs={"options": JOBS_SEARCH_PATH},  # procrastinate's tables live in their own schema
        min_size=1,
        max_size=max_connections,
    )
    app = App(connector=connector)
    register_transcription(app)
    register_housekeeping(
        app,
        config.ivr.reconcile_interval_seconds,
        JobTimers.for_config(config),
        config.privacy.retention_interval_hours,
    )
    return app


def register_housekeeping(
    app: App,
    reconcile_seconds: float,
    timers: JobTimers | None = None,
    retention_hours: int = 24,
) -> None:
    """The periodic passes: the reconciler, retention, and recovery of a dead worker's jobs."""
    timers = timers or JobTimers()

    @app.periodic(cron=cron_every(reconcile_seconds), periodic_id="reconcile")
    @app.task(name="reconcile", queue=HOUSEKEEPING, queueing_lock="reconcile", pass_context=True)
    async def reconcile(context: JobContext, timestamp: int) -> None:
        """`hotline reconcile`'s pass, once per tick for the whole cluster."""
        work = context.additional_context.get(HOUSEKEEPING_WORK)
        if isinstance(work, HousekeepingWork) and work.reconcile is not None:
            await work.reconcile()

    @app.periodic(cron=cron_every(retention_hours * 3600), periodic_id="retention")
    @app.task(name="retention", queue=HOUSEKEEPING, queueing_lock="retention", pass_context=True)
    async def retention(context: JobContext, timestamp: int) -> None:
        """`hotline retention run`'s pass, once per tick for the whole cluster: one worker
        deletes every node's stored call records past their period (privacy.retention)."""
        work = context.additional_context.get(HOUSEKEEPING_WORK)
        if isinstance(work, HousekeepingWork) and work.retention is not None:
            await work.retention()

    @app.periodic(cron=timers.recovery_cron, periodic_id="retry_stalled_jobs")
    @app.task(
        name="retry_stalled_jobs",
        queue=HOUSEKEEPING,
        queueing_lock="retry_stalled_jobs",
        pass_context=True,
    )
    async def retry_stalled_jobs(context: JobContext, timestamp: int) -> int:
        """Jobs left running by a worker whose heartbeat stopped go back in the queue."""
        return await retry_stalled(context.app, timers.stalled_seconds)


async def retry_stalled(app: App, stalled_seconds: float = STALLED_SECONDS) -> int:
    """Put back every job of a worker silent for `stalled_seconds`; how many went back.

    A job whose twin already waits under the same queueing lock is closed as
    failed instead: the twin does its work.
    """
    retried = 0
    for job in await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=stalled_seconds):
        try:
            await app.job_manager.retry_job(job)
            retried += 1
        except UniqueViolation:
            log.warning("job %s (%s): its twin waits already; closed", job.id, job.task_name)
            await app.job_manager.finish_job(job, Status.FAILED, delete_job=False)
        else:
            log.warning(
                "job %s (%s): its worker stopped beating; queued again", job.id, job.task_name
            )
    return retried


async def run_worker(
    app: App,
    context: Mapping[str, object],
    queues: tuple[str, ...] = QUEUES,
    concurrency: int = 1,
    name: str | None = None,
    stop: asyncio.Event | None = None,
    timers: JobTimers | None = None,
) -> None:
    """Take jobs until SIGINT or SIGTERM (or `stop`): one lane per queue, each its own worker.

    A lane per queue, so a long recording never holds back the reconciler or
    the recovery of a dead worker's jobs. Each lane beats on its own, and
    runs the periodic deferrer (one deferral per tick whoever makes it).
    `concurrency` is the transcription lane's; housekeeping runs one at a time.
    A stop lets each lane finish the job in hand.
    """
    timers = timers or JobTimers()
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
    async with app.open_async():
        lanes = [
            asyncio.create_task(
                app.run_worker_async(
                    queues=[queue],
                    concurrency=concurrency if queue == TRANSCRIPTION else 1,
                    name=f"{name or 'worker'}-{queue}",
                    additional_context=dict(context),
                    update_heartbeat_interval=timers.heartbeat_seconds,
                    stalled_worker_timeout=timers.stalled_seconds,
                    install_signal_handlers=False,
                ),
                name=f"jobs-{queue}",
            )
            for queue in queues
        ]
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait([*lanes, stopped], return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        for lane in lanes:
            lane.cancel()  # procrastinate's graceful stop: the job in hand is finished
        ended = await asyncio.gather(*lanes, return_exceptions=True)
    failed = [e for e in ended if isinstance(e, Exception)]
    if failed:
        raise failed[0]
