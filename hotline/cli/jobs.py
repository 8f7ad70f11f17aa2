"""`hotline jobs worker`: one worker of the job queue (a hotline on PostgreSQL, issue 22)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated

import typer

from hotline.cli.support import (
    ConfigOption,
    config_or_exit,
    console,
    fail,
    sessions,
    setup_logging,
)

jobs_app = typer.Typer(help="The job queue (PostgreSQL): transcription and periodic passes.")


@jobs_app.command("worker")
def worker_command(
    queue: Annotated[
        list[str] | None,
        typer.Option(help="A queue to take jobs from (repeat it); default: all of them."),
    ] = None,
    concurrency: Annotated[int, typer.Option(min=1, help="Jobs run at once.")] = 1,
    name: Annotated[str | None, typer.Option(help="The worker's name in the log.")] = None,
    config: ConfigOption = None,
    verbose: bool = False,
) -> None:
    """Take jobs until Ctrl-C: transcripts with the model loaded once, and the periodic passes."""
    from core.recording_keys import recordings_root
    from hotline.app import reconcile_once
    from hotline.jobs import (
        HOUSEKEEPING_WORK,
        QUEUES,
        HousekeepingWork,
        JobTimers,
        build_jobs_app,
        run_worker,
    )
    from ivr.jobs import QUEUE as TRANSCRIPTION
    from ivr.jobs import WORK, TranscriptionWork
    from privacy.retention import run_retention
    from speech.recognition import SpeechModel, SpeechModelError

    cfg = config_or_exit(config)
    setup_logging(verbose, cfg)
    if not cfg.database_url.startswith("postgresql"):
        raise fail(f"{cfg.source}: the job queue needs a PostgreSQL store (database.url)")
    queues = tuple(queue or QUEUES)
    unknown = sorted(set(queues) - set(QUEUES))
    if unknown:
        raise fail(f"no such queue: {', '.join(unknown)} (queues: {', '.join(QUEUES)})")
    model = SpeechModel(cfg.speech_model, cfg.source, cfg.speech.decoder())
    try:
        model()  # loaded once, before the first job: a bad model_path stops the worker here
    except SpeechModelError as exc:
        raise fail(str(exc)) from None
    if cfg.speech_model is None and TRANSCRIPTION in queues:
        queues = tuple(q for q in queues if q != TRANSCRIPTION)
        console.print(f"no speech.model_path in {cfg.source}: not taking transcription jobs")
        if not queues:
            raise typer.Exit(code=1)
    store = sessions(cfg)
    context = {
        WORK: TranscriptionWork(store, model, recordings_root(cfg)),
        HOUSEKEEPING_WORK: HousekeepingWork(
            reconcile=lambda: reconcile_once(cfg),
            retention=lambda: asyncio.to_thread(run_retention, cfg, store),
        ),
    }
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            run_worker(
                build_jobs_app(cfg),
                context,
                queues,
                concurrency,
                name,
                timers=JobTimers.for_config(cfg),
            )
        )
