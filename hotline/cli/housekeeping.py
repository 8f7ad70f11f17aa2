"""`hotline reconcile` and `hotline transcribe`: the IVR's nothing-lost and transcript passes."""

from __future__ import annotations

import asyncio
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


def reconcile_command(
    settle: Annotated[
        int | None,
        typer.Option(help="Treat calls/recordings younger than this (s) as in progress."),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Turn calls and recordings without a ticket into tickets; report orphans both ways."""
    from hotline.app import reconcile_once

    cfg = config_or_exit(config)
    setup_logging()
    report = asyncio.run(reconcile_once(cfg, settle))
    console.print(f"spool: {report.spool_applied} applied, {report.spool_left} left")
    console.print(f"tickets created for calls without one: {len(report.tickets_for_calls)}")
    console.print(
        "tickets created for recordings without a call: "
        f"{len(report.tickets_for_orphan_recordings)}"
    )
    console.print(f"empty recordings removed: {len(report.empty_recordings_removed)}")
    for uid, path in report.calls_missing_recording:
        console.print(f"[red]missing on disk[/]: call {uid} -> {path}", highlight=False)
    for path in report.recordings_without_call:
        console.print(f"[red]no call names[/]: {path}", highlight=False)
    if not report.clean:
        raise typer.Exit(code=1)


def transcribe_command(
    limit: Annotated[int, typer.Option(help="At most this many recordings.")] = 50,
    config: ConfigOption = None,
) -> None:
    """Transcribe request recordings into their tickets with the configured vosk model."""
    from ivr.transcribe import Transcriber
    from speech.recognition import SpeechModel, SpeechModelError

    cfg = config_or_exit(config)
    try:
        model = SpeechModel(cfg.speech_model, cfg.source, cfg.speech.decoder())
        report = Transcriber(cfg, sessions(cfg), model).run_once(limit)
    except SpeechModelError as exc:
        raise fail(str(exc)) from None
    if report.model is None:
        console.print(
            f"no speech.model_path configured in {cfg.source}: "
            f"{report.waiting} request recordings wait for transcription"
        )
        return
    console.print(
        f"transcribed {report.done}, failed {report.failed}, "
        f"{report.waiting} still waiting (model {report.model})"
    )
