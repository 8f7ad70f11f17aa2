"""`hotline report performance --day|--week|--month`: the agents' (or teams') performance.

The same report as the console's /performance page and its exports
(`dashboard.performance.performance_report`): a terminal table, CSV (stdout or
`--output`) or XLSX (`--output`). With no period, today (local time).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from hotline.cli.report import Format, Output, build_and_emit
from hotline.cli.support import ConfigOption, config_or_exit, fail

Day = Annotated[str, typer.Option("--day", help="A local day, YYYY-MM-DD (default: today).")]
Week = Annotated[str, typer.Option("--week", help="ISO week, e.g. 2026-W49.")]
Month = Annotated[str, typer.Option("--month", help="Calendar month, e.g. 2026-12.")]
Teams = Annotated[bool, typer.Option("--teams", help="One row per team instead of per agent.")]


def performance_command(
    day: Day = "",
    week: Week = "",
    month: Month = "",
    teams: Teams = False,
    fmt: Format = "table",
    output: Output = None,
    config: ConfigOption = None,
) -> None:
    """绩效: answered, rang out, handle and wrap-up, pauses, occupancy, tickets, rates, quality."""
    from agents.performance import period_of
    from core.periods import PeriodError
    from dashboard.performance import performance_report

    cfg = config_or_exit(config)
    try:
        period = period_of(datetime.now(cfg.tz).date(), day=day, week=week, month=month)
    except PeriodError as exc:
        raise fail(str(exc)) from None
    which = "teams" if teams else "agents"
    build_and_emit(cfg, lambda s: performance_report(s, cfg, period, which), fmt, output)
