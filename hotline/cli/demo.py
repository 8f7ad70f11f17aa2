"""`hotline demo-data`: a realistic demo city in an empty store."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table

from hotline.cli.store import db_upgrade
from hotline.cli.support import ConfigOption, config_or_exit, console, fail, sessions


def demo_data(
    seed: Annotated[int, typer.Option(help="Same seed, size and --until: identical data.")] = 12345,
    tickets: Annotated[int, typer.Option(help="How many tickets.")] = 300_000,
    until: Annotated[
        str, typer.Option(help="Last day, YYYY-MM-DD (default: today, local time).")
    ] = "",
    years: Annotated[float, typer.Option(help="How far back the city's history goes.")] = 2.5,
    config: ConfigOption = None,
) -> None:
    """Fill an empty store with a realistic demo city (five-level tree, tickets, callbacks)."""

    from tools.demo_city import DemoError, generate_demo_city

    try:
        last = date.fromisoformat(until) if until else None
    except ValueError:
        raise fail(f"--until: {until!r} is not a date; use YYYY-MM-DD") from None
    db_upgrade(config)
    cfg = config_or_exit(config)
    columns = [BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    try:
        with Progress("demo city: tickets", *columns, console=console) as bar:
            task = bar.add_task("tickets", total=tickets)
            summary = generate_demo_city(
                sessions(cfg),
                cfg,
                seed,
                tickets,
                last,
                years,
                lambda done, total: bar.update(task, completed=done, total=total),
            )
    except DemoError as exc:
        raise fail(str(exc)) from None
    console.print(
        f"{summary.departments} units, {summary.tickets:,} tickets "
        f"({summary.first_day} .. {summary.last_day}), {summary.events:,} events, "
        f"{summary.attempts:,} robot calls, {summary.valid_callbacks:,} valid callbacks"
    )
    table = Table("rate", "demo city", "seed city")
    for name, value, target in summary.against_seed_city():
        table.add_row(name, "no data" if value is None else f"{value:.1%}", f"{target:.1%}")
    console.print(table)
