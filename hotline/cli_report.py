"""`hotline report three-rates|ranking|snail-seat|overdue|trend`: what leadership reads on Monday.

Periods: `--week 2026-W47` (ISO week), `--month 2026-10` (calendar month),
`--assessment-month 2026-10` (starts on `metrics.assessment_month_start_day`),
or `--from 2026-10-01 --to 2026-10-31`; with none of them, last week. Output as
a terminal table, CSV (stdout or `--output`) or XLSX (`--output`).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from db.metrics import (
    RateRules,
    Rates,
    overall,
    peer_group_totals,
    unit_figures,
    weekly_counts,
)
from db.ranking import rank_peer_groups, snail_seat
from db.session import unit_of_work
from db.workflow import deadline_lists
from hotline import periods, reports
from hotline.cli_support import ConfigOption, config_or_exit, console, fail, sessions
from hotline.config import HotlineConfig

report_app = typer.Typer(help="Three rates, ranking, snail seat, deadlines (table/CSV/XLSX).")

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


def _today(cfg: HotlineConfig) -> date:
    return datetime.now(cfg.tz).date()


def pick_period(
    cfg: HotlineConfig, week: str, month: str, assessment: str, first: str, last: str
) -> periods.Period:
    """The one period the options name (last week when none is given)."""
    given = [bool(week), bool(month), bool(assessment), bool(first or last)]
    if sum(given) > 1:
        raise fail("give one period: --week, --month, --assessment-month or --from/--to")
    try:
        if week:
            return periods.iso_week(week)
        if month:
            return periods.calendar_month(month)
        if assessment:
            return periods.assessment_month(assessment, cfg.metrics.assessment_month_start_day)
        if first or last:
            if not (first and last):
                raise fail("--from and --to go together")
            return periods.date_range(first, last)
    except periods.PeriodError as exc:
        raise fail(str(exc)) from None
    return periods.week_of(_today(cfg) - timedelta(days=7))


def _level(level: str) -> int | None:
    if not level:
        return None
    if level.isdigit() and 1 <= int(level) <= 5:
        return int(level)
    if level not in reports.LEVEL_OPTIONS:
        raise fail(f"--level: {level!r} is not one of {', '.join(reports.LEVEL_OPTIONS)} or 1-5")
    return reports.LEVEL_OPTIONS[level]


def emit(report: reports.Report, fmt: str, output: Path | None) -> None:
    """Print or write a report in the chosen format."""
    if fmt == "table":
        reports.print_table(report, console)
    elif fmt == "csv":
        reports.write_csv(report, output)
        if output:
            console.print(f"wrote {output} ({len(report.rows)} rows)")
    elif fmt == "xlsx":
        if output is None:
            raise fail("--format xlsx needs --output FILE.xlsx")
        reports.write_xlsx(report, output)
        console.print(f"wrote {output} ({len(report.rows)} rows)")
    else:
        raise fail(f"--format: {fmt!r} is not one of table, csv, xlsx")


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
    cfg = config_or_exit(config)
    period = pick_period(cfg, week, month, assessment, first, last)
    rules = RateRules.from_config(cfg.metrics)
    start, end = period.utc_range(cfg.timezone)
    with unit_of_work(sessions(cfg)) as session:
        figures = unit_figures(
            session, start, end, rules, not own, _level(level), peer_group or None
        )
        total = overall(session, start, end)
    report = reports.three_rates(period.label, figures, total, peer_group_totals(figures), rules)
    emit(report, fmt, output)


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
    cfg = config_or_exit(config)
    period = pick_period(cfg, week, month, assessment, first, last)
    rules = RateRules.from_config(cfg.metrics)
    with unit_of_work(sessions(cfg)) as session:
        figures = unit_figures(session, *period.utc_range(cfg.timezone), rules, level=_level(level))
    emit(reports.ranking(period.label, rank_peer_groups(figures)), fmt, output)


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
    cfg = config_or_exit(config)
    metrics = cfg.metrics
    try:
        months = periods.previous_assessment_months(
            month, metrics.assessment_month_start_day, metrics.snail_months
        )
    except periods.PeriodError as exc:
        raise fail(str(exc)) from None
    with unit_of_work(sessions(cfg)) as session:
        seats = snail_seat(
            session,
            [m.utc_range(cfg.timezone) for m in months],
            RateRules.from_config(metrics),
            metrics.snail_bottom,
            metrics.snail_min_group_size,
        )
    label = f"{months[0].label} .. {months[-1].label}"
    emit(reports.snail_seat(label, seats), fmt, output)


@report_app.command("overdue")
def overdue(
    fmt: Format = "table",
    output: Output = None,
    limit: Annotated[int, typer.Option(help="At most this many tickets.")] = 500,
    config: ConfigOption = None,
) -> None:
    """Open tickets past their due time, due within the escalation or the warning window."""
    cfg = config_or_exit(config)
    now = datetime.now(cfg.tz)
    rules = cfg.deadlines
    with unit_of_work(sessions(cfg)) as session:
        lists = deadline_lists(
            session, now, rules.warn_hours_before, rules.escalate_hours_before, limit
        )
        report = reports.deadlines(now, lists, cfg.tz)
    emit(report, fmt, output)


@report_app.command("trend")
def trend(
    weeks: Annotated[int, typer.Option(help="How many weeks, ending with this week.")] = 12,
    unit: Annotated[str, typer.Option(help="A unit's code (with everything below it).")] = "",
    fmt: Format = "table",
    output: Output = None,
    config: ConfigOption = None,
) -> None:
    """Weekly three rates and composite over the last N weeks (the dashboard charts these)."""
    from db.workflow import department_by_code

    cfg = config_or_exit(config)
    rules = RateRules.from_config(cfg.metrics)
    span = periods.last_weeks(_today(cfg), weeks)
    with unit_of_work(sessions(cfg)) as session:
        department = department_by_code(session, unit) if unit else None
        if unit and department is None:
            raise fail(f"--unit: no department with code {unit!r}")
        series = weekly_counts(
            session,
            span[0].utc_range(cfg.timezone)[0],
            weeks,
            department.id if department else None,
        )
    rows = [(counts, Rates.of(counts, rules)) for counts in series]
    emit(reports.trend(unit or "全部", [p.label for p in span], rows), fmt, output)
