"""`hotline tickets import|dispatch|sign|return|redispatch|close|rework|urge`.

Plain functions registered on the `tickets` sub-command by `hotline.cli`; each
workflow step is one transaction and prints the ticket's new state, or one
error line naming what is wrong (exit code 2).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy.orm import Session

from db.models import Ticket
from db.session import unit_of_work
from hotline import handling
from hotline.cli_support import ConfigOption, config_or_exit, console, fail, local_time, sessions

Number = Annotated[str, typer.Argument(help="The ticket number.")]
Unit = Annotated[str, typer.Argument(help="The unit's department code.")]
Actor = Annotated[str, typer.Option(help="Who does this (recorded on the event).")]


def import_tickets(
    file: Annotated[Path, typer.Argument(help="A .csv, .json or .jsonl file from the platform.")],
    chunk: Annotated[int, typer.Option(help="Commit every N records.")] = 500,
    config: ConfigOption = None,
) -> None:
    """Upsert departments and tickets from the main work-order platform (idempotent).

    Exit code 0 when every record landed, 1 when some were refused (the others
    landed; each refusal is listed with its line), 2 when the file is unreadable.
    """
    from hotline.intake.importer import Importer, ImportFileError, count_records, read_file

    cfg = config_or_exit(config)
    try:
        items = read_file(file)
        total = count_records(file)
        columns = [TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task("import", total=total)
            report = Importer(sessions(cfg), cfg).run(
                items, lambda n: progress.advance(task, n), chunk
            )
    except ImportFileError as exc:
        raise fail(str(exc)) from None
    console.print(f"{file}: {report.summary()}", highlight=False)
    for error in report.errors[:50]:
        console.print(f"  [red]refused[/] {error.where}: {error.reason}", highlight=False)
    if len(report.errors) > 50:
        console.print(f"  ... and {len(report.errors) - 50} more", highlight=False)
    if report.errors:
        raise typer.Exit(code=1)


def _run_step(config: Path | None, step: Callable[[Session], Ticket]) -> None:
    cfg = config_or_exit(config)
    try:
        with unit_of_work(sessions(cfg)) as session:
            ticket = step(session)
            unit = ticket.department.code if ticket.department else "-"
            due = local_time(ticket.due_at, cfg) or "-"
            line = f"ticket {ticket.number}: {ticket.status.value}, unit {unit}, due {due}"
    except handling.HandlingError as exc:
        raise fail(str(exc)) from None
    console.print(line, highlight=False)


def dispatch(number: Number, unit: Unit, actor: Actor = "operator", config: ConfigOption = None):  # type: ignore[no-untyped-def]
    """派单: send an accepted ticket to a unit (the level above gets a copy: 双派单)."""
    cfg = config_or_exit(config)
    _run_step(config, lambda s: handling.dispatch(s, number, unit, actor, cfg))


def sign(number: Number, unit: Unit, actor: Actor = "unit", config: ConfigOption = None):  # type: ignore[no-untyped-def]
    """签收: the unit takes the ticket on."""
    _run_step(config, lambda s: handling.sign(s, number, unit, actor))


def return_ticket(  # type: ignore[no-untyped-def]
    number: Number,
    unit: Unit,
    reason: Annotated[str, typer.Option(help="Why it is not the unit's business.")],
    actor: Actor = "unit",
    config: ConfigOption = None,
):
    """退单: the unit hands the ticket back, with a reason."""
    _run_step(config, lambda s: handling.return_ticket(s, number, unit, reason, actor))


def redispatch(  # type: ignore[no-untyped-def]
    number: Number,
    unit: Unit,
    improper_return: Annotated[
        bool, typer.Option(help="Judge the last return improper (counted against that unit).")
    ] = False,
    note: Annotated[str, typer.Option(help="A note on the event.")] = "",
    actor: Actor = "supervisor",
    config: ConfigOption = None,
):
    """改派: send the ticket to another (or the same) unit."""
    _run_step(
        config,
        lambda s: handling.redispatch(s, number, unit, actor, improper_return, note or None),
    )


def close(  # type: ignore[no-untyped-def]
    number: Number,
    unit: Unit,
    reply: Annotated[str, typer.Option(help="The reply to the citizen.")],
    actor: Actor = "unit",
    config: ConfigOption = None,
):
    """办结: the unit closes the ticket with its reply; the robot will call back."""
    _run_step(config, lambda s: handling.close(s, number, unit, reply, actor))


def rework(  # type: ignore[no-untyped-def]
    number: Number,
    reason: Annotated[str, typer.Option(help="Why it goes back.")],
    actor: Actor = "supervisor",
    config: ConfigOption = None,
):
    """发回重办: a closed ticket goes back to its unit with a new due time."""
    cfg = config_or_exit(config)
    _run_step(config, lambda s: handling.rework(s, number, reason, actor, cfg))


def urge(number: Number, actor: Actor = "supervisor", config: ConfigOption = None):  # type: ignore[no-untyped-def]
    """催办: urge the unit (counted on the ticket)."""
    _run_step(config, lambda s: handling.urge(s, number, actor))


COMMANDS: dict[str, Callable[..., None]] = {
    "import": import_tickets,
    "dispatch": dispatch,
    "sign": sign,
    "return": return_ticket,
    "redispatch": redispatch,
    "close": close,
    "rework": rework,
    "urge": urge,
}
