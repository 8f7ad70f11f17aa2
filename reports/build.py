"""The reports leadership reads, built from the store: one function per report.

The CLI (`hotline report ...`) and the web console call the same functions and
get the same `Report`, which `reports.tables` prints or writes as CSV/XLSX.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy.orm import Session

from core import periods
from core.config import HotlineConfig
from db.departments import department_by_code
from reports import tables
from reports.deadline_lists import Units, deadline_counts, deadline_lists, deadline_page
from reports.metrics import (
    RateRules,
    Rates,
    overall,
    peer_group_totals,
    unit_figures,
    weekly_counts,
)
from reports.ranking import rank_peer_groups, snail_seat
from reports.tables import Report


def rate_rules(config: HotlineConfig) -> RateRules:
    """The city's weights (config `metrics`) as the store's exact rate rules."""
    metrics = config.metrics
    return RateRules.of(metrics.basic_satisfied_weight, dict(metrics.composite_weights))


class UnknownUnit(LookupError):
    """A report was asked for a unit code the store does not know."""


def level_number(level: str) -> int | None:
    """A level option ('street', 'village', '4' ...) as its number; '' for all levels.

    Raises ValueError naming the allowed values.
    """
    if not level:
        return None
    if level.isdigit() and 1 <= int(level) <= 5:
        return int(level)
    if level not in tables.LEVEL_OPTIONS:
        raise ValueError(
            f"--level: {level!r} is not one of {', '.join(tables.LEVEL_OPTIONS)} or 1-5"
        )
    return tables.LEVEL_OPTIONS[level]


def three_rates_report(
    session: Session,
    config: HotlineConfig,
    period: periods.Period,
    *,
    own: bool = False,
    level: int | None = None,
    peer_group: str | None = None,
) -> Report:
    """Per unit: the three rates, completion and composite (rolled up unless `own`)."""
    rules = rate_rules(config)
    start, end = period.utc_range(config.timezone)
    figures = unit_figures(session, start, end, rules, not own, level, peer_group)
    total = overall(session, start, end)
    return tables.three_rates(period.label, figures, total, peer_group_totals(figures), rules)


def ranking_report(
    session: Session, config: HotlineConfig, period: periods.Period, level: int | None = None
) -> Report:
    """Units ranked by composite within each peer group."""
    rules = rate_rules(config)
    figures = unit_figures(session, *period.utc_range(config.timezone), rules, level=level)
    groups = rank_peer_groups(figures, config.metrics.min_valid_callbacks)
    return tables.ranking(period.label, groups)


def snail_seat_report(session: Session, config: HotlineConfig, month: str) -> Report:
    """蜗牛席 for the run of assessment months ending with `month` (raises PeriodError)."""
    metrics = config.metrics
    months = periods.previous_assessment_months(
        month, metrics.assessment_month_start_day, metrics.snail_months
    )
    seats = snail_seat(
        session,
        [m.utc_range(config.timezone) for m in months],
        rate_rules(config),
        metrics.snail_bottom,
        metrics.snail_min_group_size,
        metrics.min_valid_callbacks,
    )
    return tables.snail_seat(f"{months[0].label} .. {months[-1].label}", seats)


def overdue_report(
    session: Session,
    config: HotlineConfig,
    now: datetime,
    limit: int,
    units: Units = None,
) -> Report:
    """Open tickets past due, due within the escalation window, or within the warning one.

    `units` keeps the tickets of those departments only (a staff member's subtree).
    """
    rules = config.deadlines
    lists = deadline_lists(
        session, now, rules.warn_hours_before, rules.escalate_hours_before, limit, units
    )
    return tables.deadlines(now, lists, config.tz)


def deadline_page_report(
    session: Session,
    config: HotlineConfig,
    now: datetime,
    which: str,
    offset: int,
    limit: int,
    units: Units = None,
) -> Report:
    """One page of one deadline list (`overdue`, `escalate`, `warn`) as a report."""
    rules = config.deadlines
    tickets = deadline_page(
        session,
        now,
        rules.warn_hours_before,
        rules.escalate_hours_before,
        which,
        offset,
        limit,
        units,
    )
    return tables.deadlines(now, {which: tickets}, config.tz)


def deadline_totals(
    session: Session, config: HotlineConfig, now: datetime, units: Units = None
) -> dict[str, int]:
    """How many tickets each deadline list holds."""
    rules = config.deadlines
    return deadline_counts(
        session, now, rules.warn_hours_before, rules.escalate_hours_before, units
    )


def trend_report(
    session: Session, config: HotlineConfig, today: date, weeks: int, unit: str = ""
) -> Report:
    """Weekly rates over the last `weeks` weeks for a unit's subtree (or everything)."""
    rules = rate_rules(config)
    span = periods.last_weeks(today, weeks)
    department = department_by_code(session, unit) if unit else None
    if unit and department is None:
        raise UnknownUnit(f"--unit: no department with code {unit!r}")
    series = weekly_counts(
        session,
        span[0].utc_range(config.timezone)[0],
        weeks,
        department.id if department else None,
    )
    rows = [(counts, Rates.of(counts, rules)) for counts in series]
    return tables.trend(unit or "全部", [p.label for p in span], rows)
