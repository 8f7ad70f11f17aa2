"""The three rates (三率), completion and the composite score, aggregated in SQL.

Over the valid callbacks (有效回访, the `valid_callbacks` rows) of a unit in a
period:

- response (响应率)      = contacted in time / valid callbacks
- resolution (解决率)    = resolved / valid callbacks
- satisfaction (满意率)  = (satisfied + w x basically satisfied) / valid callbacks
- completion (办结率)    = tickets accepted in the period and closed by now / accepted
- composite (综合成绩)    = the configured weighted sum of the three rates

A unit's figures include every unit below it (rates roll up the tree): one
query counts per unit, walks the tree with a recursive CTE and sums per
ancestor, so the database does the work and Python only divides the few
hundred totals it returns. A unit without valid callbacks has no rate at all
(None, printed "no data"), never 0%.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from fractions import Fraction

from sqlalchemy import Integer, Select, case, cast, func, literal, select
from sqlalchemy.orm import Session

from db.models import Department, EventKind, Ticket, TicketEvent, TicketStatus, ValidCallback
from db.robot import robot_figures

__all__ = ["Counts", "RateRules", "UnitFigures", "overall", "robot_figures", "unit_figures"]

CLOSED_STATUSES = (TicketStatus.CLOSED, TicketStatus.ARCHIVED)


@dataclass(frozen=True)
class Counts:
    """The raw counts behind every rate; they add up across units and periods."""

    valid: int = 0  # valid callbacks
    contacted: int = 0  # answered 1 to "contacted in time"
    resolved: int = 0  # answered 1 to "resolved"
    satisfied: int = 0  # 满意
    basic: int = 0  # 基本满意
    accepted: int = 0  # tickets accepted in the period
    closed: int = 0  # ... of which closed (or archived) now
    improper_returns: int = 0  # 退单 judged improper in the period

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))


@dataclass(frozen=True)
class RateRules:
    """How a city weighs its rates (from config `metrics`), as exact fractions."""

    basic_weight: Fraction = Fraction(1)
    response_weight: Fraction = Fraction(1, 10)
    resolution_weight: Fraction = Fraction(1, 2)
    satisfaction_weight: Fraction = Fraction(2, 5)

    @classmethod
    def from_config(cls, metrics: object) -> RateRules:
        """From a `MetricsConfig`; decimal strings keep 0.35 exactly 35/100."""
        weights = metrics.composite_weights  # type: ignore[attr-defined]
        exact = lambda value: Fraction(str(value))  # noqa: E731
        return cls(
            basic_weight=exact(metrics.basic_satisfied_weight),  # type: ignore[attr-defined]
            response_weight=exact(weights["response"]),
            resolution_weight=exact(weights["resolution"]),
            satisfaction_weight=exact(weights["satisfaction"]),
        )


@dataclass(frozen=True)
class Rates:
    """Exact rates of one set of counts; None where the denominator is empty."""

    response: Fraction | None
    resolution: Fraction | None
    satisfaction: Fraction | None
    completion: Fraction | None
    composite: Fraction | None

    @classmethod
    def of(cls, counts: Counts, rules: RateRules) -> Rates:
        completion = Fraction(counts.closed, counts.accepted) if counts.accepted else None
        if not counts.valid:
            return cls(None, None, None, completion, None)
        response = Fraction(counts.contacted, counts.valid)
        resolution = Fraction(counts.resolved, counts.valid)
        satisfaction = Fraction(counts.satisfied, counts.valid) + rules.basic_weight * Fraction(
            counts.basic, counts.valid
        )
        composite = (
            rules.response_weight * response
            + rules.resolution_weight * resolution
            + rules.satisfaction_weight * satisfaction
        )
        return cls(response, resolution, satisfaction, completion, composite)


@dataclass(frozen=True)
class UnitFigures:
    """One unit's counts and rates in a period (its whole subtree when rolled up)."""

    department_id: int
    code: str
    name: str
    level: int
    peer_group: str
    parent_id: int | None
    counts: Counts
    rates: Rates


def _callback_counts(start: datetime, end: datetime) -> Select:  # type: ignore[type-arg]
    return (
        select(ValidCallback.department_id.label("unit"), *_answer_sums(ValidCallback))
        .where(ValidCallback.surveyed_at >= start, ValidCallback.surveyed_at < end)
        .group_by(ValidCallback.department_id)
    )


def _ticket_counts(start: datetime, end: datetime) -> Select:  # type: ignore[type-arg]
    return (
        select(
            Ticket.department_id.label("unit"),
            func.count().label("accepted"),
            func.sum(case((Ticket.status.in_(CLOSED_STATUSES), 1), else_=0)).label("closed"),
        )
        .where(Ticket.accepted_at >= start, Ticket.accepted_at < end)
        .group_by(Ticket.department_id)
    )


def _return_counts(start: datetime, end: datetime) -> Select:  # type: ignore[type-arg]
    return (
        select(TicketEvent.department_id.label("unit"), func.count().label("improper_returns"))
        .where(
            TicketEvent.kind == EventKind.RETURN_REJECTED,
            TicketEvent.at >= start,
            TicketEvent.at < end,
        )
        .group_by(TicketEvent.department_id)
    )


COUNT_NAMES = [f.name for f in fields(Counts)]


def _per_unit_counts(session: Session, start: datetime, end: datetime, rolled_up: bool):  # type: ignore[no-untyped-def]
    """Rows of (unit id, *counts): own counts, or summed over each unit's subtree."""
    callbacks = _callback_counts(start, end).subquery("callbacks")
    tickets = _ticket_counts(start, end).subquery("tickets_in_period")
    returns = _return_counts(start, end).subquery("returns")
    # ancestry(unit, ancestor): every unit paired with itself and each unit above it
    ancestry = select(Department.id.label("unit"), Department.id.label("ancestor")).cte(
        "ancestry", recursive=True
    )
    if rolled_up:
        parent = select(Department).subquery("parent_link")
        ancestry = ancestry.union_all(
            select(ancestry.c.unit, parent.c.parent_id).where(
                parent.c.id == ancestry.c.ancestor, parent.c.parent_id.is_not(None)
            )
        )
    sources = {
        "valid": callbacks,
        "contacted": callbacks,
        "resolved": callbacks,
        "satisfied": callbacks,
        "basic": callbacks,
        "accepted": tickets,
        "closed": tickets,
        "improper_returns": returns,
    }
    joined = (
        ancestry.outerjoin(callbacks, callbacks.c.unit == ancestry.c.unit)
        .outerjoin(tickets, tickets.c.unit == ancestry.c.unit)
        .outerjoin(returns, returns.c.unit == ancestry.c.unit)
    )
    totals = [func.coalesce(func.sum(sources[name].c[name]), 0).label(name) for name in COUNT_NAMES]
    return session.execute(
        select(ancestry.c.ancestor, *totals).select_from(joined).group_by(ancestry.c.ancestor)
    ).all()


def unit_figures(
    session: Session,
    start: datetime,
    end: datetime,
    rules: RateRules,
    rolled_up: bool = True,
    level: int | None = None,
    peer_group: str | None = None,
) -> list[UnitFigures]:
    """Every unit's figures in [start, end), ordered by level and code."""
    counts = {
        row[0]: Counts(*(int(value) for value in row[1:]))
        for row in _per_unit_counts(session, start, end, rolled_up)
    }
    query = select(Department).order_by(Department.level, Department.code)
    if level is not None:
        query = query.where(Department.level == level)
    if peer_group is not None:
        query = query.where(Department.peer_group == peer_group)
    result = []
    for unit in session.scalars(query):
        unit_counts = counts.get(unit.id, Counts())
        result.append(
            UnitFigures(
                department_id=unit.id,
                code=unit.code,
                name=unit.name,
                level=unit.level,
                peer_group=unit.peer_group,
                parent_id=unit.parent_id,
                counts=unit_counts,
                rates=Rates.of(unit_counts, rules),
            )
        )
    return result


def overall(session: Session, start: datetime, end: datetime) -> Counts:
    """The whole hotline's counts in [start, end), tickets with no unit yet included."""
    totals: dict[str, int] = {}
    for query in (
        _callback_counts(start, end),
        _ticket_counts(start, end),
        _return_counts(start, end),
    ):
        inner = query.subquery()
        names = [c.name for c in inner.c if c.name != "unit"]
        row = session.execute(
            select(*(func.coalesce(func.sum(inner.c[n]), 0) for n in names))
        ).one()
        totals.update(zip(names, (int(v) for v in row), strict=True))
    return Counts(**totals)


def peer_group_totals(figures: list[UnitFigures], rules: RateRules) -> dict[str, Rates]:
    """Each peer group's rates over its members' counts (members of one level, no overlap)."""
    groups: dict[str, Counts] = {}
    for unit in figures:
        groups[unit.peer_group] = groups.get(unit.peer_group, Counts()) + unit.counts
    return {name: Rates.of(counts, rules) for name, counts in sorted(groups.items())}


def subtree_filter(root_id: int):  # type: ignore[no-untyped-def]
    """A SQL condition: the callback's unit is root_id or below it."""
    tree = select(Department.id).where(Department.id == root_id).cte("subtree", recursive=True)
    tree = tree.union_all(select(Department.id).where(Department.parent_id == tree.c.id))
    return ValidCallback.department_id.in_(select(tree.c.id))


def _week_index(column, start: datetime, dialect: str):  # type: ignore[no-untyped-def]
    """Whole weeks between start and a UTC timestamp column, computed in SQL."""
    if dialect == "postgresql":
        return func.floor(func.extract("epoch", column - literal(start)) / 604800)
    return cast((func.julianday(column) - func.julianday(literal(start))) / 7, Integer)


def _answer_sums(columns: type[ValidCallback]):  # type: ignore[no-untyped-def]
    one = lambda condition: func.sum(case((condition, 1), else_=0))  # noqa: E731
    return (
        func.count().label("valid"),
        one(columns.contacted == 1).label("contacted"),
        one(columns.resolved == 1).label("resolved"),
        one(columns.satisfaction == 1).label("satisfied"),
        one(columns.satisfaction == 2).label("basic"),
    )


def weekly_counts(
    session: Session, start: datetime, weeks: int, department_id: int | None = None
) -> list[Counts]:
    """Valid-callback counts for `weeks` consecutive weeks from start (a trend series).

    start is the UTC instant of a Monday midnight; the weeks are bucketed in
    SQL. department_id limits the series to that unit and everything below it.
    """
    dialect = session.get_bind().dialect.name
    end = start + timedelta(weeks=weeks)
    week = _week_index(ValidCallback.surveyed_at, start, dialect).label("week")
    query = (
        select(week, *_answer_sums(ValidCallback))
        .where(ValidCallback.surveyed_at >= start, ValidCallback.surveyed_at < end)
        .group_by(week)
    )
    if department_id is not None:
        query = query.where(subtree_filter(department_id))
    series = [Counts() for _ in range(weeks)]
    for row in session.execute(query):
        index = int(row[0])
        if 0 <= index < weeks:
            series[index] = Counts(*(int(v) for v in row[1:]))
    return series
