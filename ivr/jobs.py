"""Transcription as jobs of the queue (procrastinate), for a hotline on PostgreSQL.

One job per ticket, `transcribe(ticket_id)`, run by any transcription worker:
the same `transcribe_ticket` step the one-box drain takes, with the model the
worker loaded once. A ticket is deferred once its recording is in the store:
`defer_transcription` where a recording lands, and, every few seconds once
across the cluster, `queue_waiting_transcripts` for every ticket still waiting
whose recording is there (a deferral lost with a crashed process is made
again). The queueing lock keeps one job per ticket waiting however often it is
deferred; the ticket lock lets one run at a time, so a job retried after its
worker died and a fresh deferral never hear the same recording at once.

A recording that cannot be read yet (a network filesystem away, still being
shipped) and a lost database connection are tried again with an exponential
wait; bad audio is the ticket's FAILED transcript at once, and so is an
unreadable recording on the last attempt.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from procrastinate import App, JobContext, RetryStrategy
from procrastinate.exceptions import AlreadyEnqueued
from procrastinate.jobs import JobDeferrer
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from core.recording_keys import resolve
from db.jobs import locks_with_open_jobs
from db.session import unit_of_work
from db.tickets import tickets_needing_transcript
from ivr.transcribe import transcribe_ticket
from speech.recognition import SpeechModel

log = logging.getLogger(__name__)

QUEUE = "transcription"
TRANSCRIBE = "transcribe"
QUEUE_WAITING = "queue_waiting_transcripts"
# transient: the recording's filesystem, the database's connection; anything else is a bug
TRANSIENT: tuple[type[Exception], ...] = (OSError, OperationalError, InterfaceError)
# 6 runs, waiting 3, 9, 27, 81, 243 s between them: about six minutes in all
RETRY = RetryStrategy(max_attempts=5, exponential_wait=3, retry_exceptions=TRANSIENT)
SWEEP_CRON = "* * * * * */5"  # every 5 s (croniter's sixth field is the seconds)
SWEEP_LIMIT = 500  # tickets looked at per sweep, oldest first


class NoSpeechModel(RuntimeError):
    """A transcription worker without `speech.model_path`: it must not take jobs."""


@dataclass(frozen=True)
class TranscriptionWork:
    """What a transcription worker holds for all its jobs: the store and the one model."""

    sessions: sessionmaker[Session]
    model: SpeechModel
    # where store keys are (core.recording_keys.recordings_root): a cluster's shipped recordings
    recordings_root: Path | None = None


WORK = "transcription"  # TranscriptionWork's key in the worker's additional context


def work_of(context: JobContext) -> TranscriptionWork:
    work = context.additional_context.get(WORK)
    if not isinstance(work, TranscriptionWork):
        raise RuntimeError("the worker was started without TranscriptionWork in its context")
    return work


def register_transcription(app: App) -> None:
    """The transcription tasks on app: `transcribe` and its sweep (periodic)."""

    @app.task(name=TRANSCRIBE, queue=QUEUE, retry=RETRY, pass_context=True)
    def transcribe(context: JobContext, ticket_id: int) -> str | None:
        """One ticket's transcript; None when it no longer waits (written by an earlier run)."""
        work = work_of(context)
        model = work.model()  # loaded on the first job, kept for every later one
        if model is None:
            raise NoSpeechModel("no speech.model_path: this worker cannot transcribe")
        last = context.job.attempts >= (RETRY.max_attempts or 0)
        status = transcribe_ticket(
            work.sessions, model, ticket_id, unreadable_is_final=last, root=work.recordings_root
        )
        return status.value if status is not None else None

    @app.periodic(cron=SWEEP_CRON, periodic_id=QUEUE_WAITING)
    @app.task(name=QUEUE_WAITING, queue=QUEUE, queueing_lock=QUEUE_WAITING, pass_context=True)
    async def queue_waiting_transcripts(context: JobContext, timestamp: int) -> int:
        """Defer every waiting ticket whose recording is in the store; how many were new."""
        work = work_of(context)
        waiting = await asyncio.to_thread(
            recorded_tickets_waiting, work.sessions, SWEEP_LIMIT, work.recordings_root
        )
        return sum([await defer_transcription_async(context.app, t) for t in waiting])


def recorded_tickets_waiting(
    sessions: sessionmaker[Session], limit: int = SWEEP_LIMIT, root: Path | None = None
) -> list[int]:
    """Tickets waiting for a transcript, recording in the store, no job yet; oldest first.

    A ticket whose job waits or runs (a dead worker's included, which
    `retry_stalled_jobs` puts back) is left alone: a second job would keep
    the first from going back in the queue under the same queueing lock.
    A recording named by a store key is looked for under `root`.
    """
    with unit_of_work(sessions) as session:
        tickets = [(t.id, t.recording_path) for t in tickets_needing_transcript(session, limit)]
        taken = locks_with_open_jobs(session, [ticket_lock(t) for t, _ in tickets])
    return [
        ticket_id
        for ticket_id, path in tickets
        if ticket_lock(ticket_id) not in taken and path and _there(path, root)
    ]


def _there(stored: str, root: Path | None) -> bool:
    return (resolve(stored, root) if root is not None else Path(stored)).exists()


def ticket_lock(ticket_id: int) -> str:
    """The lock of a ticket's transcription jobs: one of them runs at a time."""
    return f"ticket-{ticket_id}"


def _configured(app: App, ticket_id: int) -> JobDeferrer:
    return app.configure_task(
        TRANSCRIBE,
        queueing_lock=f"transcribe-{ticket_id}",  # one job waiting per ticket
        lock=ticket_lock(ticket_id),
    )


def defer_transcription(app: App, ticket_id: int) -> bool:
    """Queue one ticket's transcription; False when a job for it already waits."""
    try:
        _configured(app, ticket_id).defer(ticket_id=ticket_id)
    except AlreadyEnqueued:
        return False
    return True


async def defer_transcription_async(app: App, ticket_id: int) -> bool:
    """`defer_transcription` from a coroutine."""
    try:
        await _configured(app, ticket_id).defer_async(ticket_id=ticket_id)
    except AlreadyEnqueued:
        return False
    return True
