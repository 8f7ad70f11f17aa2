"""`hotline report three-rates|ranking|snail-seat|overdue|trend|service-level`: what leadership
reads on Monday, and the standard's daily report.

Periods: `--week 2026-W47` (ISO week), `--month 2026-10` (calendar month),
`--assessment-month 2026-10` (starts on `metrics.assessment_month_start_day`),
or `--from 2026-10-01 --to 2026-10-31`; with none of them, last week. Output as
a terminal table, CSV (stdout or `--output`) or XLSX (`--output`). The reports
themselves are built by `reports.build`, which the web console uses too.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from hotline.cli.support import ConfigOption, config_or_exit, console, fail, sessions

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from core.config import HotlineConfig
    from core.periods import Period
    from reports.tables import Report

report_app = typer.Typer(
    help="Three rates, ranking, snail seat, deadlines, service level (table/CSV/XLSX)."
)

Week = Annotated[str, typer.Option("--week", help="ISO week, e.g. 2026-W47.")]
Month = Annotated[str, typer.Option("--month", help="Calendar month, e.g. 2026-10.")]
Assessment = Annotated[
    str, typer.Option("--assessment-month", help="Assessment month, e.g. 2026-10.")
]
From = Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD (with --to).")]
To = Annotated[str, typer.Option("--to", help="Last day, YYYY-MM-DD, included.")]
Format = Annotated[str, typer.Option("--format", help="table, csv or xlsx.")]
Output = Annotated[Path | None, typer.Option("--output", "-o", help="File for csv/xlsx.")]
Level = Annotated[
    str, typer.Option(help="Only units of this level: region, city, district, street, village.")
]
PeerGroup = Annotated[str, typer.Option("--peer-group", help="Only this peer group.")]


def pick_period(
    cfg: HotlineConfig, week: str, month: str, assessment: str, first: str, last: str
) -> Period:
    """The one period the options name (last week when none is given)."""
    from core.periods import PeriodError, choose_period

    try:
        return choose_period(
            datetime.now(cfg.tz).date(),
            cfg.metrics.assessment_month_start_day,
            week=week,
            month=month,
            assessment=assessment,
            first=first,
            last=last,
        )
    except PeriodError as exc:
        raise fail(str(exc)) from None


def level_or_exit(level: str) -> int | None:
    """The --level option as a level number, or one error line."""
    from reports.build import level_number

    try:
        return level_number(level)
    except ValueError as exc:
        raise fail(str(exc)) from None


def build_and_emit(
    cfg: HotlineConfig, build: Callable[[Session], Report], fmt: str, output: Path | None
) -> None:
    """Build a report in one transaction, then print or write it in the chosen format."""
    from core.periods import PeriodError
    from db.session import unit_of_work
    from reports import tables
    from reports.build import UnknownUnit

    if fmt not in ("table", "csv", "xlsx"):
        raise fail(f"--format: {fmt!r} is not one of table, csv, xlsx")
    if fmt == "xlsx" and output is None:
        raise fail("--format xlsx needs --output FILE.xlsx")
    try:
        with unit_of_work(sessions(cfg)) as session:
            report = build(session)
    except (PeriodError, UnknownUnit) as exc:
        raise fail(str(exc)) from None
    if fmt == "table":
        tables.print_table(report, console)
        return
    if fmt == "csv":
        tables.write_csv(report, output)
    else:
        assert output is not None
        tables.write_xlsx(report, output)
    if output:
        console.print(f"wrote {output} ({len(report.rows)} rows)")


@report_app.command("three-rates")
def three_rates(
    week: Week = "",
    month: Month = "",
    assessment: Assessment = "",
    first: From = "",
    last: To = "",
    level: Level = "",
    peer_group: PeerGroup = "",
    own: Annotated[bool, typer.Option(help="Each unit's own tickets only (no roll-up).")] = False,
    fmt: Format = "table",
    output: Output = None,
    config: ConfigOption = None,
) -> None:
    """Response, resolution, satisfaction, completion and composite per unit."""
    from reports.build import three_rates_report

    cfg = config_or_exit(config)
    period = pick_period(cfg, week, month, assessment, first, last)
    number = level_or_exit(level)
    build_and_emit(
        cfg,
        lambda s: three_rates_report(
            s, cfg, period, own=own, level=number, peer_group=peer_group or None
        ),
        fmt,
        output,
    )


@report_app.command("ranking")
def ranking(
    week: Week = "",
    month: Month = "",
    assessment: Assessment = "",
    first: From = "",
    last: To = "",
    level: Level = "",
    fmt: Format = "table",
    output: Output = None,
    config: ConfigOption = None,
) -> None:
    """Units ranked by composite score within each peer group (weekly or assessment month)."""
    from reports.build import ranking_report

    cfg = config_or_exit(config)
    period = pick_period(cfg, week, month, assessment, first, last)
    number = level_or_exit(level)
    build_and_emit(cfg, lambda s: ranking_report(s, cfg, period, number), fmt, output)


@report_app.command("snail-seat")
def snail_seat_command(
    month: Annotated[
        str, typer.Option("--month", help="The assessment month that ends the run, e.g. 2026-10.")
    ],
    fmt: Format = "table",
    output: Output = None,
    config: ConfigOption = None,
) -> None:
    """蜗牛席: units in their group's bottom two for the configured run of assessment months."""
    from reports.build import snail_seat_report

    cfg = config_or_exit(config)
    build_and_emit(cfg, lambda s: snail_seat_report(s, cfg, month), fmt, output)


@report_app.command("overdue")
def overdue(
    fmt: Format = "table",
    output: Output = None,
    limit: Annotated[int, typer.Option(help="At most this many tickets.")] = 500,
    config: ConfigOption = None,
) -> None:
    """Open tickets past their due time, due within the escalation or the warning window."""
    from reports.build import overdue_report

    cfg = config_or_exit(config)
    now = datetime.now(cfg.tz)
    build_and_emit(cfg, lambda s: overdue_report(s, cfg, now, limit), fmt, output)


@report_app.command("trend")
def trend(
    weeks: Annotated[int, typer.Option(help="How many weeks, ending with this week.")] = 12,
    unit: Annotated[str, typer.Option(help="A unit's code (with everything below it).")] = "",
    fmt: Format = "table",
    output: Output = None,
    config: ConfigOption = None,
) -> None:
    """Weekly three rates and composite over the last N weeks (the dashboard charts these)."""
    from reports.build import trend_report

    cfg = config_or_exit(config)
    today = datetime.now(cfg.tz).date()
    build_and_emit(cfg, lambda s: trend_report(s, cfg, today, weeks, unit), fmt, output)


@report_app.command("service-level")
def service_level(
    day: Annotated[str, typer.Option("--day", help="A local day, YYYY-MM-DD.")] = "",
    week: Week = "",
    month: Month = "",
    fmt: Format = "table",
    output: Output = None,
    config: ConfigOption = None,
) -> None:
    """GB/T 33358 per line, queue and day: offered, answered within 15 s, 接通率 (day and worst
    rolling 24 h), abandoned by wait, callbacks (with none of --day/--week/--month: today)."""
    from core.periods import PeriodError
    from dashboard.service_level import choose, service_level_report

    cfg = config_or_exit(config)
    try:
        period = choose(datetime.now(cfg.tz).date(), day=day, week=week, month=month)
    except PeriodError as exc:
        raise fail(str(exc)) from None
    build_and_emit(cfg, lambda s: service_level_report(s, cfg, period), fmt, output)
