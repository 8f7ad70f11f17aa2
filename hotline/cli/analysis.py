"""`hotline analyse --month 2026-10` and `hotline report hotspots|topics|accountability|kb`.

`analyse` writes one stored run of the month (`hotline.monthly`); the reports read
the newest finished run, as the console's /hotspots page does, in a terminal
table, CSV or XLSX.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

import typer

from hotline.cli.report import Format, Output, build_and_emit
from hotline.cli.support import ConfigOption, config_or_exit, console, fail, sessions

Month = Annotated[str, typer.Option("--month", help="Local month, e.g. 2026-10 (default: last).")]
Level = Annotated[str, typer.Option("--level", help="district or township (default: both).")]
Category = Annotated[
    str, typer.Option("--category", help="One category's topics (default: every category).")
]


def _month_or_last(cfg_tz: object, month: str) -> str:
    if month:
        return month
    today = datetime.now(cfg_tz).date()  # type: ignore[arg-type]
    return (today.replace(day=1) - timedelta(days=1)).strftime("%Y-%m")


def analyse_command(month: Month = "", config: ConfigOption = None) -> None:
    """未诉先办: analyse a month (surges, topics, candidates, signals, knowledge base)."""
    from core.periods import PeriodError
    from hotline.monthly import analyse_month

    cfg = config_or_exit(config)
    month = _month_or_last(cfg.tz, month)
    try:
        with console.status(f"analysing {month} …"):
            result = analyse_month(sessions(cfg), cfg, month)
    except PeriodError as exc:
        raise fail(str(exc)) from None
    for line in result.lines:
        console.print(line)
    console.print(
        f"run {result.run_id}: {result.flags} surge flags, {result.topics} topics, "
        f"{result.signals} unit signals (`hotline report hotspots --month {month}`)"
    )


def _report(cfg: object, build: object, fmt: str, output: object) -> None:
    from dashboard.analysis_reports import NoRun

    try:
        build_and_emit(cfg, build, fmt, output)  # type: ignore[arg-type]
    except NoRun as exc:
        raise fail(str(exc)) from None


def hotspots_command(
    month: Month = "",
    level: Level = "",
    fmt: Format = "table",
    output: Output = None,
    config: ConfigOption = None,
) -> None:
    """热点: what rose beyond its season, and where (the stored run of the month)."""
    from dashboard.analysis_reports import hotspots_report

    if level not in ("", "district", "township"):
        raise fail(f"--level: {level!r} is not district or township")
    cfg = config_or_exit(config)
    month = _month_or_last(cfg.tz, month)
    _report(cfg, lambda s: hotspots_report(s, month, level), fmt, output)


def topics_command(
    month: Month = "",
    category: Category = "",
    fmt: Format = "table",
    output: Output = None,
    config: ConfigOption = None,
) -> None:
    """主要反映: each category's month (环比, 同比, main topics), or one category's topics."""
    from dashboard.analysis_reports import topics_report

    cfg = config_or_exit(config)
    month = _month_or_last(cfg.tz, month)
    _report(cfg, lambda s: topics_report(s, month, category), fmt, output)


def accountability_command(
    month: Month = "",
    fmt: Format = "table",
    output: Output = None,
    config: ConfigOption = None,
) -> None:
    """履职信号: 谎报瞒报 and 推诿扯皮 evidence per unit, for review."""
    from dashboard.analysis_reports import accountability_report

    cfg = config_or_exit(config)
    month = _month_or_last(cfg.tz, month)
    _report(cfg, lambda s: accountability_report(s, month), fmt, output)


def kb_command(
    month: Month = "",
    fmt: Format = "table",
    output: Output = None,
    config: ConfigOption = None,
) -> None:
    """知识库: offered, heard, accepted and truly deflected per entry; the gaps."""
    from dashboard.analysis_reports import kb_report

    cfg = config_or_exit(config)
    month = _month_or_last(cfg.tz, month)
    _report(cfg, lambda s: kb_report(s, month), fmt, output)
