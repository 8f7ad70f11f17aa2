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
    for line in summary.planted:  # what the monthly analysis should find
        console.print(line, highlight=False, markup=False)


def demo_floor(
    agents: Annotated[int, typer.Option(help="Scripted agents logged in to the line's queue.")] = 4,
    calls_per_minute: Annotated[float, typer.Option(help="Citizens arriving (Poisson).")] = 6.0,
    minutes: Annotated[float, typer.Option(help="How long citizens keep arriving.")] = 3.0,
    answer_after: Annotated[float, typer.Option(help="Seconds an agent lets it ring.")] = 2.0,
    talk: Annotated[float, typer.Option(help="Seconds an agent talks.")] = 20.0,
    line: Annotated[str, typer.Option(help="The line citizens call.")] = "12345",
    config: ConfigOption = None,
) -> None:
    """Run a call centre of scripted agents and citizens on the running hotline (`hotline up`).

    The figures are read from Asterisk's queue_log as it grows; the console's
    /agent and /live pages show the same calls.
    """
    import asyncio

    from rich.live import Live

    from telephony.ami import AMIClient, AMIError
    from tools.demo_floor import DemoFloorError, FloorFigures, FloorPlan, run_floor

    cfg = config_or_exit(config)
    plan = FloorPlan(agents, calls_per_minute, minutes, answer_after, talk, line)

    def table(figures: FloorFigures) -> Table:
        shown = Table("placed", "offered", "answered", "within level", "left", "longest wait")
        level = figures.service_level
        shown.add_row(
            str(figures.placed),
            str(figures.offered),
            str(figures.answered),
            "-" if level is None else f"{level:.0%}",
            str(figures.left),
            f"{figures.longest_wait} s",
        )
        return shown

    async def run() -> FloorFigures:
        ami_cfg = cfg.asterisk.ami
        # the tests' AMI user: it may write the scripted agents' and citizens' AstDB scripts
        ami = AMIClient(ami_cfg.host, ami_cfg.port, ami_cfg.test_username, cfg.ami_test_secret())
        await ami.connect()
        try:
            with Live(table(FloorFigures()), console=console, refresh_per_second=2) as live:
                return await run_floor(
                    cfg, sessions(cfg), ami, plan, lambda f: live.update(table(f))
                )
        finally:
            await ami.close()

    try:
        figures = asyncio.run(run())
    except (DemoFloorError, AMIError, OSError) as exc:
        raise fail(f"demo floor: {exc} (is `hotline up` running?)") from None
    console.print(table(figures))
