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

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction
from functools import cache, cached_property
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    BindParameter,
    Integer,
    Select,
    bindparam,
    case,
    cast,
    func,
    literal,
    literal_column,
    select,
)
from sqlalchemy.orm import Session

from core.vocabulary import EventKind, TicketStatus
from db.departments import MAX_DEPTH, subtree
from db.models import Department, Ticket, TicketEvent, UTCDateTime, ValidCallback

CLOSED_STATUSES = (TicketStatus.CLOSED, TicketStatus.ARCHIVED)
Bound = datetime | BindParameter[datetime]  # a period bound in SQL: a value or a named parameter


class Counts(NamedTuple):
    """The raw counts behind every rate; they add up across units and periods.

    Tuples rather than dataclasses: a report builds hundreds of these per query
    and a tuple is made in a fraction of the time.
    """

    valid: int = 0  # valid callbacks
    contacted: int = 0  # answered 1 to "contacted in time"
    resolved: int = 0  # answered 1 to "resolved"
    satisfied: int = 0  # 满意
    basic: int = 0  # 基本满意
    accepted: int = 0  # tickets accepted in the period
    closed: int = 0  # ... of which closed (or archived) now
    improper_returns: int = 0  # 退单 judged improper in the period

    def __add__(self, other: object) -> Counts:  # element-wise, not tuple concatenation
        assert isinstance(other, Counts)
        return Counts(*(mine + theirs for mine, theirs in zip(self, other, strict=True)))


@dataclass(frozen=True)
class RateRules:
    """How a city weighs its rates (from config `metrics`), as exact fractions."""

    basic_weight: Fraction = Fraction(1)
    response_weight: Fraction = Fraction(1, 10)
    resolution_weight: Fraction = Fraction(1, 2)
    satisfaction_weight: Fraction = Fraction(2, 5)

    @classmethod
    def of(cls, basic_weight: float, composite_weights: dict[str, float]) -> RateRules:
        """From the configured decimals; decimal strings keep 0.35 exactly 35/100."""

        def exact(value: float) -> Fraction:
            return Fraction(str(value))

        return cls(
            basic_weight=exact(basic_weight),
            response_weight=exact(composite_weights["response"]),
            resolution_weight=exact(composite_weights["resolution"]),
            satisfaction_weight=exact(composite_weights["satisfaction"]),
        )

    @cached_property
    def floats(self) -> tuple[float, float, float, float]:
        """The weights as floats, for printing rates (ranking uses the exact ones)."""
        return (
            float(self.basic_weight),
            float(self.response_weight),
            float(self.resolution_weight),
            float(self.satisfaction_weight),
        )

    def exact_composite(self, counts: Counts) -> Fraction | None:
        """The composite score as an exact fraction, so that equal scores are real ties."""
        if not counts.valid:
            return None
        satisfaction = counts.satisfied + self.basic_weight * counts.basic
        weighted = (
            self.response_weight * counts.contacted
            + self.resolution_weight * counts.resolved
            + self.satisfaction_weight * satisfaction
        )
        return weighted / counts.valid


class Rates(NamedTuple):
    """The rates of one set of counts, 0..1; None where the denominator is empty."""

    response: float | None
    resolution: float | None
    satisfaction: float | None
    completion: float | None
    composite: float | None

    @classmethod
    def of(cls, counts: Counts, rules: RateRules) -> Rates:
        completion = counts.closed / counts.accepted if counts.accepted else None
        if not counts.valid:
            return cls(None, None, None, completion, None)
        basic_weight, w_response, w_resolution, w_satisfaction = rules.floats
        response = counts.contacted / counts.valid
        resolution = counts.resolved / counts.valid
        satisfaction = (counts.satisfied + basic_weight * counts.basic) / counts.valid
        composite = (
            w_response * response + w_resolution * resolution + w_satisfaction * satisfaction
        )
        return cls(response, resolution, satisfaction, completion, composite)


@dataclass
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
    rules: RateRules = field(default_factory=RateRules, compare=False, repr=False)

    @cached_property
    def score(self) -> Fraction | None:
        """The exact composite, for ranking (computed only when a ranking asks)."""
        return self.rules.exact_composite(self.counts)


def _callback_counts(start: Bound, end: Bound) -> Select[Any]:
    return (
        select(ValidCallback.department_id.label("unit"), *_answer_sums(ValidCallback))
        .where(ValidCallback.surveyed_at >= start, ValidCallback.surveyed_at < end)
        .group_by(ValidCallback.department_id)
    )


def _ticket_counts(start: Bound, end: Bound) -> Select[Any]:
    return (
        select(
            Ticket.department_id.label("unit"),
            func.count().label("accepted"),
            _ones(Ticket.status.in_(CLOSED_STATUSES)).label("closed"),
        )
        .where(Ticket.accepted_at >= start, Ticket.accepted_at < end)
        .group_by(Ticket.department_id)
    )


def _return_counts(start: Bound, end: Bound) -> Select[Any]:
    return (
        select(TicketEvent.department_id.label("unit"), func.count().label("improper_returns"))
        .where(
            TicketEvent.kind == EventKind.RETURN_REJECTED,
            TicketEvent.at >= start,
            TicketEvent.at < end,
        )
        .group_by(TicketEvent.department_id)
    )


CALLBACK_COUNTS = ("valid", "contacted", "resolved", "satisfied", "basic")
HANDLING_COUNTS = ("accepted", "closed", "improper_returns")


def _ancestry(rolled_up: bool):  # type: ignore[no-untyped-def]
    """ancestry(unit, ancestor): every unit with itself and, rolled up, each unit above it.

    The walk up stops after `MAX_DEPTH` steps, as the walk down does: a looping
    parent chain must end the report's query, not hang it.
    """
    ancestry = select(
        Department.id.label("unit"),
        Department.id.label("ancestor"),
        literal_column("0").label("depth"),
    ).cte("ancestry", recursive=True)
    if not rolled_up:
        return ancestry
    parent = select(Department.id, Department.parent_id).subquery("parent_link")
    return ancestry.union_all(
        select(ancestry.c.unit, parent.c.parent_id, ancestry.c.depth + literal_column("1")).where(
            parent.c.id == ancestry.c.ancestor,
            parent.c.parent_id.is_not(None),
            ancestry.c.depth < literal_column(str(MAX_DEPTH)),
        )
    )


def _rolled(aggregate: Select, name: str, ancestry):  # type: ignore[no-untyped-def,type-arg]
    """A flat `unit, *counts` aggregate summed per ancestor (a CTE named name).

    The aggregate is a materialized CTE of its own, so the database scans the
    period exactly as it would for the bare GROUP BY (in parallel on
    PostgreSQL); only its few hundred unit rows meet the tree.
    """
    counts = aggregate.cte(f"{name}_per_unit").prefix_with("MATERIALIZED")
    names = [c.name for c in counts.c if c.name != "unit"]
    return (
        select(
            ancestry.c.ancestor, *(cast(func.sum(counts.c[n]), BigInteger).label(n) for n in names)
        )
        .select_from(ancestry.join(counts, counts.c.unit == ancestry.c.unit))
        .group_by(ancestry.c.ancestor)
        .cte(name)
    )


def _handling_counts(start: Bound, end: Bound) -> Select[Any]:
    tickets = _ticket_counts(start, end)
    returns = _return_counts(start, end)
    both = (
        tickets.add_columns(literal_column("0").label("improper_returns"))
        .union_all(
            returns.with_only_columns(
                returns.selected_columns.unit,
                literal_column("0").label("accepted"),
                literal_column("0").label("closed"),
                returns.selected_columns.improper_returns,
            )
        )
        .subquery("handling")
    )
    return select(
        both.c.unit, *(func.sum(both.c[name]).label(name) for name in HANDLING_COUNTS)
    ).group_by(both.c.unit)


def unit_figures(
    session: Session,
    start: datetime,
    end: datetime,
    rules: RateRules,
    rolled_up: bool = True,
    level: int | None = None,
    peer_group: str | None = None,
    handling: bool = True,
) -> list[UnitFigures]:
    """Every unit's figures in [start, end), ordered by level and code, in one statement.

    The three rates come from one aggregate over the period's valid callbacks;
    `handling` adds completion and improper returns (a second aggregate, over
    the period's tickets and events).
    """
    statement = _figures_statement(rolled_up, handling, level is not None, peer_group is not None)
    values = {"start": start, "end": end, "level": level, "peer_group": peer_group}
    return [_figures(row, rules) for row in session.execute(statement, values)]


@cache
def _figures_statement(
    rolled_up: bool, handling: bool, by_level: bool, by_group: bool
) -> Select[Any]:
    """The figures query for one combination of options, built once (with bound periods)."""
    start, end = bindparam("start", type_=UTCDateTime()), bindparam("end", type_=UTCDateTime())
    ancestry = _ancestry(rolled_up)
    parts = [(_rolled(_callback_counts(start, end), "callbacks", ancestry), CALLBACK_COUNTS)]
    if handling:
        parts.append((_rolled(_handling_counts(start, end), "handling", ancestry), HANDLING_COUNTS))
    columns = [func.coalesce(cte.c[name], 0).label(name) for cte, names in parts for name in names]
    query = select(
        Department.id,
        Department.code,
        Department.name,
        Department.level,
        Department.peer_group,
        Department.parent_id,
        *columns,
    ).order_by(Department.level, Department.code)
    for cte, _ in parts:
        query = query.outerjoin(cte, cte.c.ancestor == Department.id)
    if by_level:
        query = query.where(Department.level == bindparam("level"))
    if by_group:
        query = query.where(Department.peer_group == bindparam("peer_group"))
    return query


def _figures(row, rules: RateRules) -> UnitFigures:  # type: ignore[no-untyped-def]
    unit_id, code, name, level, peer_group, parent_id, *values = row
    counts = Counts(*values)  # bigint sums: ints on every database
    return UnitFigures(
        unit_id, code, name, level, peer_group, parent_id, counts, Rates.of(counts, rules), rules
    )


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


def peer_group_totals(figures: list[UnitFigures]) -> dict[str, Counts]:
    """Each peer group's counts: the sum of its members' (a group holds units of one level)."""
    groups: dict[str, Counts] = {}
    for unit in figures:
        groups[unit.peer_group] = groups.get(unit.peer_group, Counts()) + unit.counts
    return dict(sorted(groups.items()))


def _week_index(column, start: datetime, dialect: str):  # type: ignore[no-untyped-def]
    """Whole weeks between start and a UTC timestamp column, computed in SQL."""
    if dialect == "postgresql":
        return func.floor(func.extract("epoch", column - literal(start)) / 604800)
    return cast((func.julianday(column) - func.julianday(literal(start))) / 7, Integer)


def _ones(condition):  # type: ignore[no-untyped-def]
    """sum(CASE WHEN condition THEN 1 ELSE 0 END), constants inline (not per-row parameters)."""
    return func.sum(case((condition, literal_column("1")), else_=literal_column("0")))


def _answer_sums(columns: type[ValidCallback]):  # type: ignore[no-untyped-def]
    answer = lambda value: literal_column(str(value))  # noqa: E731
    return (
        func.count().label("valid"),
        _ones(columns.contacted == answer(1)).label("contacted"),
        _ones(columns.resolved == answer(1)).label("resolved"),
        _ones(columns.satisfaction == answer(1)).label("satisfied"),
        _ones(columns.satisfaction == answer(2)).label("basic"),
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
        query = query.where(ValidCallback.department_id.in_(subtree(department_id)))
    series = [Counts() for _ in range(weeks)]
    for row in session.execute(query):
        index = int(row[0])
        if 0 <= index < weeks:
            series[index] = Counts(*(int(v) for v in row[1:]))
    return series
