"""`hotline tickets list|show|import|dispatch|sign|return|redispatch|close|rework|urge`.

Each workflow step is one transaction and prints the ticket's new state, or one
error line naming what is wrong (exit code 2). Listing and showing print what
`tickets.views` returns.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hotline.cli.support import ConfigOption, config_or_exit, console, fail, sessions

if TYPE_CHECKING:  # the store's types only: `hotline --help` loads no SQLAlchemy
    from sqlalchemy.orm import Session, sessionmaker

tickets_app = typer.Typer(help="Tickets in the store: list, show, import, the handling steps.")

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
    from tickets.intake.importer import Importer, ImportFileError, count_records, read_file

    cfg = config_or_exit(config)
    factory = sessions(cfg)
    try:
        items = read_file(file)
        total = count_records(file)
        columns = [TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task("import", total=total)
            report = Importer(factory, cfg).run(items, lambda n: progress.advance(task, n), chunk)
    except ImportFileError as exc:
        raise fail(str(exc)) from None
    _audit_import(factory, file, report.summary())
    console.print(f"{file}: {report.summary()}", highlight=False, markup=False)
    for error in report.errors[:50]:
        # where and why come from the platform's file: printed as text, never as markup
        console.print(
            f"  [red]refused[/] {escape(error.where)}: {escape(error.reason)}", highlight=False
        )
    if len(report.errors) > 50:
        console.print(f"  ... and {len(report.errors) - 50} more", highlight=False)
    if report.errors:
        raise typer.Exit(code=1)


def _audit_import(factory: sessionmaker[Session], file: Path, summary: str) -> None:
    """The import as an audit row, like the platform's through the API: who (the
    operator's login), which file, the counts."""
    import getpass

    from dashboard.audit import audit
    from db.session import unit_of_work

    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = "unknown"
    with unit_of_work(factory) as session:
        audit(
            session,
            f"cli:{who}"[:64],
            "cli",
            "import",
            "import",
            None,
            "local",
            f"file {file.name}; {summary}",
        )


def _run_step(config: Path | None, step: str, *args: object) -> None:
    """Run one handling step (a function of `tickets.handling`) and print the new state."""
    from db.session import unit_of_work
    from tickets import handling  # lazy: keeps `hotline --help` fast
    from tickets.views import step_summary

    cfg = config_or_exit(config)
    try:
        with unit_of_work(sessions(cfg)) as session:
            line = step_summary(getattr(handling, step)(session, *args), cfg.tz)
    except handling.HandlingError as exc:
        raise fail(str(exc)) from None
    console.print(line, highlight=False, markup=False)


def dispatch(
    number: Number, unit: Unit, actor: Actor = "operator", config: ConfigOption = None
) -> None:
    """派单: send an accepted ticket to a unit (the level above gets a copy: 双派单)."""
    cfg = config_or_exit(config)
    _run_step(config, "dispatch", number, unit, actor, cfg)


def sign(number: Number, unit: Unit, actor: Actor = "unit", config: ConfigOption = None) -> None:
    """签收: the unit takes the ticket on."""
    _run_step(config, "sign", number, unit, actor)


def return_ticket(
    number: Number,
    unit: Unit,
    reason: Annotated[str, typer.Option(help="Why it is not the unit's business.")],
    actor: Actor = "unit",
    config: ConfigOption = None,
) -> None:
    """退单: the unit hands the ticket back, with a reason."""
    _run_step(config, "return_ticket", number, unit, reason, actor)


def redispatch(
    number: Number,
    unit: Unit,
    improper_return: Annotated[
        bool, typer.Option(help="Judge the last return improper (counted against that unit).")
    ] = False,
    note: Annotated[str, typer.Option(help="A note on the event.")] = "",
    actor: Actor = "supervisor",
    config: ConfigOption = None,
) -> None:
    """改派: send the ticket to another (or the same) unit."""
    _run_step(config, "redispatch", number, unit, actor, improper_return, note or None)


def close(
    number: Number,
    unit: Unit,
    reply: Annotated[str, typer.Option(help="The reply to the citizen.")],
    closed_as: Annotated[
        str,
        typer.Option(
            "--closed-as",
            help="How it ended: resolved 已解决, explained 已解释 or unresolvable 无法解决.",
        ),
    ],
    actor: Actor = "unit",
    config: ConfigOption = None,
) -> None:
    """办结: the unit closes the ticket with its reply and how it ended; the robot calls back."""
    _run_step(config, "close", number, unit, reply, actor, closed_as)


def rework(
    number: Number,
    reason: Annotated[str, typer.Option(help="Why it goes back.")],
    actor: Actor = "supervisor",
    config: ConfigOption = None,
) -> None:
    """发回重办: a closed ticket goes back to its unit with a new due time."""
    cfg = config_or_exit(config)
    _run_step(config, "rework", number, reason, actor, cfg)


def urge(number: Number, actor: Actor = "supervisor", config: ConfigOption = None) -> None:
    """催办: urge the unit (counted on the ticket)."""
    _run_step(config, "urge", number, actor)


@tickets_app.command("list")
def list_command(
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 30,
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
    caller: Annotated[str, typer.Option(help="Only this caller's tickets.")] = "",
    config: ConfigOption = None,
) -> None:
    """The newest tickets (the table fits 80 columns; --format json has every field)."""

    from db.session import unit_of_work
    from tickets.views import ticket_rows

    if fmt not in ("table", "json"):
        raise fail(f"--format: {fmt!r} is not one of table, json")
    cfg = config_or_exit(config)
    with unit_of_work(sessions(cfg)) as session:
        rows = ticket_rows(session, cfg.tz, limit, caller or None)
    if fmt == "json":
        console.print_json(json.dumps([asdict(r) for r in rows], ensure_ascii=False))
        return
    # numbers and times are never cut; free text (type, status) wraps instead
    table = Table(box=None, pad_edge=False)
    for header in ("number", "accepted", "caller"):
        table.add_column(header, no_wrap=True)
    for header in ("type", "urgency", "status"):
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(
            row.number, row.accepted, row.caller, row.type or "-", row.urgency, row.status
        )
    console.print(table, markup=False)


@tickets_app.command("show")
def show_command(
    number: Annotated[str, typer.Argument(help="The ticket number.")],
    config: ConfigOption = None,
) -> None:
    """One ticket with its calls, recordings, transcript and event history."""
    from db.session import unit_of_work
    from tickets.views import ticket_detail

    cfg = config_or_exit(config)
    with unit_of_work(sessions(cfg)) as session:
        detail = ticket_detail(session, number, cfg.tz)
    if detail is None:
        raise fail(f"no ticket numbered {number}")
    out = [f"ticket {detail.number} ({detail.status})"]
    out += [f"  {key:<12} {value}" for key, value in detail.fields.items()]
    out.append("  calls:")
    for call in detail.calls:
        out.append(
            f"    {call.uniqueid} {call.direction} from {call.caller} {call.started} -> "
            f"{call.ended} cause {call.hangup_cause or '-'} step {call.last_step or '-'} "
            f"recording {call.recording or '-'}" + (f" ({call.note})" if call.note else "")
        )
    out.append("  events:")
    for event in detail.events:
        out.append(
            f"    {event.at} {event.kind:<12} by {event.actor}"
            + (f": {event.note}" if event.note else "")
        )
    console.print("\n".join(out), highlight=False, markup=False)


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
for _name, _command in COMMANDS.items():
    tickets_app.command(_name)(_command)
