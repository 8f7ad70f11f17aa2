"""`hotline robot run|status|report`: the callback robot."""

from __future__ import annotations

import asyncio
import csv
import sys
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from hotline.cli.support import ConfigOption, config_or_exit, console, fail, sessions, setup_logging

robot_app = typer.Typer(help="The callback robot: run, status, report.")


@robot_app.command("run")
def robot_run(config: ConfigOption = None, verbose: bool = False) -> None:
    """Dispatch survey calls within the call windows until Ctrl-C."""
    from callback_robot.runner import run_robot
    from telephony.ami import AMIError

    cfg = config_or_exit(config)
    setup_logging(verbose, cfg)
    try:
        asyncio.run(run_robot(cfg))
    except AMIError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        pass


@robot_app.command("status")
def robot_status(config: ConfigOption = None) -> None:
    """What is dialing, in a call, and done, and who is due next."""
    from callback_robot.status import robot_status as read_status
    from core.vocabulary import AttemptState
    from db.session import unit_of_work

    cfg = config_or_exit(config)
    with unit_of_work(sessions(cfg)) as session:
        status = read_status(session, cfg, datetime.now(UTC))
    opens = status.window_opens
    console.print(
        f"call window: {'open' if status.window_open else 'closed'}"
        + ("" if opens is None else f" (opens {opens.strftime('%Y-%m-%d %H:%M')})")
    )
    for state in (AttemptState.DIALING, AttemptState.IN_CALL, AttemptState.DONE):
        console.print(f"{state.value:<8} {status.states[state]}")
    console.print(f"due now  {status.due_now} tickets")
    console.print(
        f"waiting to retry {status.waiting_to_retry} tickets (interval, daily or per-citizen limit)"
    )
    if status.heartbeat is None:
        console.print("robot    [red]stalled[/]: no dispatch pass recorded yet")
    else:
        age = (datetime.now(UTC) - status.heartbeat).total_seconds()
        state = "[red]stalled[/]" if status.stalled else "running"
        console.print(
            f"robot    {state}: last dispatch pass {age:.0f} s ago ({status.heartbeat_of})"
        )


@robot_app.command("report")
def robot_report(
    start: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD (local).")],
    end: Annotated[str, typer.Option("--to", help="Last day, YYYY-MM-DD (local), included.")],
    fmt: Annotated[str, typer.Option("--format", help="table or csv.")] = "table",
    within: Annotated[int, typer.Option(help="Per-ticket reach within N attempts.")] = 3,
    config: ConfigOption = None,
) -> None:
    """Calls placed, reached, completed, success rate and outcomes per day."""

    from callback_robot.status import robot_report as read_report
    from core.periods import PeriodError
    from core.vocabulary import AttemptOutcome
    from db.session import unit_of_work

    cfg = config_or_exit(config)
    if fmt not in ("table", "csv"):
        raise fail(f"--format: {fmt!r} is not one of table, csv")
    try:
        with unit_of_work(sessions(cfg)) as session:
            figures = read_report(session, cfg, start, end, within)
    except PeriodError as exc:
        raise fail(f"--from/--to: {exc}") from None
    outcomes = [o.value for o in AttemptOutcome]
    rows = [
        [day, sum(counts.values()), *(counts.get(o, 0) for o in outcomes)]
        for day, counts in figures.by_day.items()
    ]
    if fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(["day", "placed", *outcomes])
        writer.writerows(rows)
        return
    rate, ticket_rate = figures.success_rate, figures.ticket_rate
    console.print(
        f"calls placed {figures.placed}, reached {figures.reached}, "
        f"completed {figures.completed}, success rate "
        f"{'no data' if rate is None else f'{rate:.2%}'}"
    )
    console.print(
        f"tickets called {figures.tickets}, completed within {within} attempts "
        f"{figures.tickets_completed_within} "
        f"({'no data' if ticket_rate is None else f'{ticket_rate:.2%}'})"
    )
    table = Table("day", "placed", *outcomes)
    for row in rows:
        table.add_row(*map(str, row))
    console.print(table)
