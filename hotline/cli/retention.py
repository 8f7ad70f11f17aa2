"""`hotline retention run|log`: delete personal data past its retention, and show what went."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from hotline.cli.support import ConfigOption, config_or_exit, console, sessions, setup_logging

retention_app = typer.Typer(help="Retention of recordings, transcripts, CDRs and logs.")


@retention_app.command("run")
def run(config: ConfigOption = None) -> None:
    """Delete what is older than privacy.retention_days (an open ticket's recording is kept)."""
    from privacy.retention import run_retention

    cfg = config_or_exit(config)
    setup_logging()
    report = run_retention(cfg, sessions(cfg))
    days = cfg.privacy.retention_days
    console.print(
        f"recordings deleted: {len(report.recordings_deleted)} (older than {days.recordings} "
        f"days; {len(report.recordings_kept_for_open_tickets)} kept for open tickets)"
    )
    console.print(f"transcripts cleared: {len(report.transcripts_cleared)}")
    console.print(f"CDR rows deleted: {report.cdr_rows_deleted}")
    console.print(f"stored call records deleted (cdr_records): {report.cdr_records_deleted}")
    console.print(f"rotated logs deleted: {len(report.logs_deleted)}")


@retention_app.command("log")
def show_log(
    kind: Annotated[str, typer.Option(help="recording, transcript, cdr or log.")] = "",
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 50,
    config: ConfigOption = None,
) -> None:
    """The audit of deletions, newest first."""
    from core.phone_numbers import mask_in_text
    from db.session import unit_of_work
    from privacy.store import deletions
    from tickets.views import local_minutes

    cfg = config_or_exit(config)
    table = Table("at", "kind", "what", "why", box=None)
    with unit_of_work(sessions(cfg)) as session:
        for row in deletions(session, kind or None)[:limit]:
            table.add_row(
                local_minutes(row.at, cfg.tz), row.kind, mask_in_text(row.target), row.detail
            )
    console.print(table, markup=False)
