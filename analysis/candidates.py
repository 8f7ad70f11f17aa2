"""每月一题: which frequent, hard problem to take on next, and whether an adopted one falls.

Candidates are scored per category (and per stored topic label) over the 12
months ending at the run's month, from five measures:

- volume: tickets accepted in the 12 months;
- months in the top ten: months in which the category was among the ten largest
  (ties with the tenth included), i.e. how persistent it is;
- unresolved: 1 - resolution rate, over the valid callbacks surveyed in the 12
  months, exactly as the three rates count it (resolved answered 1 / valid);
- returns between units (职责交叉): tickets returned or re-dispatched between units;
- districts above expectation: districts whose share of the category exceeds their
  usual share of all tickets by `min_excess_share` and `min_excess_cases`.

score = w_volume * volume / largest volume
      + w_persistence * months in the top ten / months
      + w_unresolved * (1 - resolution rate)            (0 with no callbacks)
      + w_crossing * return share / largest return share
      + w_spread * districts above / most districts above
with the weights of `ScoreRules` (0.3, 0.2, 0.3, 0.1, 0.1): big, lasting and hard
problems first; crossing and spread break near-ties. Topics store only their size
and three typical tickets, so a topic carries its category's unresolved, return
and district measures.

An adopted topic (`GovernanceTopic`) is tracked month by month from its start
against a pre-adoption seasonal baseline: the mean of the same calendar month in
up to two years before adoption; without such a year, the mean of up to 12
months before adoption, deseasonalised and scaled by the month's seasonal index
(the whole hotline's volume per calendar month over its history).
Nothing here writes: the run writer stores what these functions return.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from statistics import fmean
from typing import TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.orm import Session

from core.periods import calendar_month
from core.vocabulary import EventKind, Level
from db.models import Department, GovernanceTopic, Ticket, TicketEvent, Topic, ValidCallback

WINDOW_MONTHS = 12
TOP = 10
YEARS_BACK = 2
Key = TypeVar("Key")


@dataclass(frozen=True)
class ScoreRules:
    """The composite's weights and what counts as a district above expectation."""

    volume: float = 0.3
    persistence: float = 0.2
    unresolved: float = 0.3
    crossing: float = 0.1
    spread: float = 0.1
    min_excess_share: float = 0.30  # a district at least this much over its expected count
    min_excess_cases: int = 5  # ... and at least this many tickets over it


@dataclass(frozen=True)
class Candidate:
    """One category (topic None) or one topic label of a category, scored and ranked."""

    category: str
    topic: str | None
    volume: int
    months_in_top_ten: int
    unresolved_rate: float | None  # 1 - resolution rate; None without valid callbacks
    returns_between_units: int
    districts_above: tuple[int, ...]
    score: float
    rank: int


@dataclass(frozen=True)
class Candidates:
    month: str
    months: tuple[str, ...]  # the window, oldest first
    categories: list[Candidate]
    topics: list[Candidate]


@dataclass(frozen=True)
class GovernanceMonth:
    month: str
    observed: int
    baseline: float | None  # None: no month before adoption to compare with
    change: float | None  # observed / baseline - 1
    method: str  # same_month | seasonal_index | none


@dataclass(frozen=True)
class GovernanceProgress:
    topic_id: int
    title: str
    start_month: str
    months: list[GovernanceMonth]


def shift_month(label: str, months: int) -> str:
    """'2025-10' moved by months: shift_month('2025-10', -12) == '2024-10'."""
    first = calendar_month(label).first
    index = first.year * 12 + first.month - 1 + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _bounds(first: str, last: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """UTC instants of local midnight at the first month's start and after the last month."""
    return _instant(calendar_month(first).first, tz), _instant(calendar_month(last).end, tz)


def _instant(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tz).astimezone(UTC)


# ---- candidates ---------------------------------------------------------------------------


def monthly_candidates(
    session: Session, month: str, tz: ZoneInfo, rules: ScoreRules | None = None
) -> Candidates:
    """The categories and topics of the 12 months ending at month, scored and ranked."""
    return ranked_candidates(session, category_measures(session, month, tz, rules), rules)


@dataclass(frozen=True)
class CategoryMeasures:
    """Everything the candidates need but the stored topics: each category's measures.

    Apart from the ranking so that a run can measure while its topics are still being
    found, and rank once they are stored (the month's own topics count).
    """

    month: str
    months: tuple[str, ...]
    volumes: dict[str, int]
    measures: _Measures


def category_measures(
    session: Session, month: str, tz: ZoneInfo, rules: ScoreRules | None = None
) -> CategoryMeasures:
    """Volume, months in the top ten, unresolved, returns and districts of each category."""
    rules = rules or ScoreRules()
    months = tuple(shift_month(month, back) for back in range(1 - WINDOW_MONTHS, 1))
    start, end = _bounds(months[0], months[-1], tz)
    per_month = {label: _category_counts(session, *_bounds(label, label, tz)) for label in months}
    volumes: dict[str, int] = defaultdict(int)
    for counts in per_month.values():
        for category, count in counts.items():
            volumes[category] += count
    measures = _Measures(
        top_months=_months_in_top(per_month.values()),
        unresolved=_unresolved(session, start, end),
        returns=_returns(session, start, end),
        districts=_districts_above(session, start, end, rules),
    )
    return CategoryMeasures(month, months, dict(volumes), measures)


def ranked_candidates(
    session: Session, measured: CategoryMeasures, rules: ScoreRules | None = None
) -> Candidates:
    """The categories, and the topic labels stored for the window's months, ranked."""
    rules = rules or ScoreRules()
    measures = measured.measures
    categories = [
        measures.candidate(category, None, volume) for category, volume in measured.volumes.items()
    ]
    topics = [
        measures.candidate(category, label, volume, top_months)
        for (category, label), (volume, top_months) in _topic_sizes(
            session, measured.months
        ).items()
    ]
    months = len(measured.months)
    return Candidates(
        measured.month,
        measured.months,
        _ranked(categories, rules, months),
        _ranked(topics, rules, months),
    )


@dataclass(frozen=True)
class _Measures:
    top_months: dict[str, int]
    unresolved: dict[str, float]
    returns: dict[str, int]
    districts: dict[str, tuple[int, ...]]

    def candidate(
        self, category: str, topic: str | None, volume: int, top_months: int | None = None
    ) -> Candidate:
        return Candidate(
            category=category,
            topic=topic,
            volume=volume,
            months_in_top_ten=self.top_months.get(category, 0)
            if top_months is None
            else top_months,
            unresolved_rate=self.unresolved.get(category),
            returns_between_units=self.returns.get(category, 0),
            districts_above=self.districts.get(category, ()),
            score=0.0,
            rank=0,
        )


def _ranked(candidates: list[Candidate], rules: ScoreRules, months: int) -> list[Candidate]:
    """Score each against the largest of its list; rank 1 is the highest score."""
    if not candidates:
        return []
    top_volume = max(c.volume for c in candidates) or 1
    top_crossing = max(_crossing(c) for c in candidates) or 1.0
    top_spread = max(len(c.districts_above) for c in candidates) or 1
    scored = [
        (
            rules.volume * c.volume / top_volume
            + rules.persistence * c.months_in_top_ten / months
            + rules.unresolved * (c.unresolved_rate or 0.0)
            + rules.crossing * _crossing(c) / top_crossing
            + rules.spread * len(c.districts_above) / top_spread,
            c,
        )
        for c in candidates
    ]
    scored.sort(key=lambda pair: (-pair[0], -pair[1].volume, pair[1].category, pair[1].topic or ""))
    return [
        Candidate(**{**c.__dict__, "score": round(score, 6), "rank": rank})
        for rank, (score, c) in enumerate(scored, start=1)
    ]


def _crossing(candidate: Candidate) -> float:
    if not candidate.volume:
        return 0.0
    return candidate.returns_between_units / candidate.volume


def _in_period(column, start: datetime, end: datetime) -> ColumnElement[bool]:  # type: ignore[no-untyped-def]
    return and_(column >= start, column < end)


def _category_counts(session: Session, start: datetime, end: datetime) -> dict[str, int]:
    query = (
        select(Ticket.category, func.count())
        .where(_in_period(Ticket.accepted_at, start, end), Ticket.category.is_not(None))
        .group_by(Ticket.category)
    )
    return {category: int(count) for category, count in session.execute(query)}


def _months_in_top(per_month: Iterable[Mapping[Key, int]]) -> dict[Key, int]:
    """How many months each key was in the top ten (a tie with the tenth is in)."""
    months: dict[Key, int] = defaultdict(int)
    for counts in per_month:
        ordered = sorted(counts.values(), reverse=True)
        if not ordered:
            continue
        tenth = ordered[min(TOP, len(ordered)) - 1]
        for key, count in counts.items():
            if count >= tenth:
                months[key] += 1
    return months


def _unresolved(session: Session, start: datetime, end: datetime) -> dict[str, float]:
    """1 - resolution rate per category, over the valid callbacks surveyed in the period."""
    query = (
        select(
            Ticket.category,
            func.count(),
            func.sum(case((ValidCallback.resolved == 1, 1), else_=0)),
        )
        .join(Ticket, Ticket.id == ValidCallback.ticket_id)
        .where(_in_period(ValidCallback.surveyed_at, start, end), Ticket.category.is_not(None))
        .group_by(Ticket.category)
    )
    return {
        category: 1 - int(resolved or 0) / int(valid)
        for category, valid, resolved in session.execute(query)
    }


def _returns(session: Session, start: datetime, end: datetime) -> dict[str, int]:
    """职责交叉: tickets per category returned or re-dispatched between units in the period."""
    query = (
        select(Ticket.category, func.count(func.distinct(Ticket.id)))
        .join(TicketEvent, TicketEvent.ticket_id == Ticket.id)
        .where(
            TicketEvent.kind.in_((EventKind.RETURNED, EventKind.REDISPATCHED)),
            _in_period(TicketEvent.at, start, end),
            Ticket.category.is_not(None),
        )
        .group_by(Ticket.category)
    )
    return {category: int(count) for category, count in session.execute(query)}


def _districts_above(
    session: Session, start: datetime, end: datetime, rules: ScoreRules
) -> dict[str, tuple[int, ...]]:
    """Per category, districts with clearly more of it than their usual share of all tickets."""
    district_of = _district_of(session)
    counts: dict[tuple[str, int], int] = defaultdict(int)
    query = (
        select(Ticket.category, Ticket.area_id, func.count())
        .where(
            _in_period(Ticket.accepted_at, start, end),
            Ticket.category.is_not(None),
            Ticket.area_id.is_not(None),
        )
        .group_by(Ticket.category, Ticket.area_id)
    )
    for category, area, count in session.execute(query):
        if (district := district_of.get(area)) is not None:
            counts[(category, district)] += int(count)
    per_district: dict[int, int] = defaultdict(int)
    per_category: dict[str, int] = defaultdict(int)
    for (category, district), count in counts.items():
        per_district[district] += count
        per_category[category] += count
    everything = sum(per_district.values())
    above: dict[str, list[int]] = defaultdict(list)
    for (category, district), count in sorted(counts.items()):
        expected = per_category[category] * per_district[district] / everything
        if (
            count >= expected * (1 + rules.min_excess_share)
            and count - expected >= rules.min_excess_cases
        ):
            above[category].append(district)
    return {category: tuple(districts) for category, districts in above.items()}


def _district_of(session: Session) -> dict[int, int]:
    """Each unit's district: itself at district level, else its ancestor at that level."""
    units = {
        unit: (parent, level)
        for unit, parent, level in session.execute(
            select(Department.id, Department.parent_id, Department.level)
        )
    }
    districts: dict[int, int] = {}
    for unit in units:
        current: int | None = unit
        for _ in range(len(Level)):
            if current is None or current not in units:
                break
            parent, level = units[current]
            if level == Level.DISTRICT:
                districts[unit] = current
                break
            current = parent
    return districts


def _topic_sizes(
    session: Session, months: tuple[str, ...]
) -> dict[tuple[str, str], tuple[int, int]]:
    """(category, label) -> (tickets over the window, months in that month's top ten topics).

    A month analysed more than once counts once: its latest run's topics.
    """
    latest = (
        select(Topic.month, func.max(Topic.run_id).label("run_id"))
        .where(Topic.month.in_(months))
        .group_by(Topic.month)
        .subquery()
    )
    query = select(Topic.month, Topic.category, Topic.label, Topic.size).join(
        latest, and_(Topic.month == latest.c.month, Topic.run_id == latest.c.run_id)
    )
    per_month: dict[str, dict[tuple[str, str], int]] = defaultdict(lambda: defaultdict(int))
    for month, category, label, size in session.execute(query):
        per_month[month][(category, label)] += int(size)
    volumes: dict[tuple[str, str], int] = defaultdict(int)
    for sizes in per_month.values():
        for key, size in sizes.items():
            volumes[key] += size
    top = _months_in_top(per_month.values())
    return {key: (volume, top.get(key, 0)) for key, volume in volumes.items()}


# ---- an adopted topic's progress ------------------------------------------------------------


def governance_progress(
    session: Session,
    topic: GovernanceTopic,
    month: str,
    tz: ZoneInfo,
    seasonal_index: Mapping[int, float] | None = None,
) -> GovernanceProgress:
    """Each month from the topic's start to month: observed, baseline and change.

    seasonal_index maps calendar month (1-12) to its index (mean 1); by default it
    is the whole hotline's volume per calendar month before adoption.
    """
    matches = _topic_filter(topic)
    history = _history_start(session, tz)
    before = [
        label
        for label in (shift_month(topic.start_month, back) for back in range(-WINDOW_MONTHS, 0))
        if history is not None and label >= history
    ]

    def count(label: str, *where: ColumnElement[bool]) -> int:
        start, end = _bounds(label, label, tz)
        query = select(func.count()).select_from(Ticket)
        query = query.where(_in_period(Ticket.accepted_at, start, end), *where)
        return int(session.scalar(query) or 0)

    if seasonal_index is None and history is not None:
        seasonal_index = _seasonal_index(
            {label: count(label) for label in _months_between(history, topic.start_month)}
        )
    index = seasonal_index or {}
    rows = []
    label = topic.start_month
    while label <= month:
        observed = count(label, *matches)
        same = [
            shift_month(label, -12 * years)
            for years in range(1, YEARS_BACK + 1)
            if history is not None
            and history <= shift_month(label, -12 * years) < topic.start_month
        ]
        if same:
            baseline, method = fmean(count(m, *matches) for m in same), "same_month"
        elif before:
            level = fmean(count(m, *matches) for m in before)
            season = fmean(index.get(_calendar(m), 1.0) for m in before) or 1.0
            baseline, method = level / season * index.get(_calendar(label), 1.0), "seasonal_index"
        else:
            baseline, method = None, "none"
        change = observed / baseline - 1 if baseline else None
        rows.append(GovernanceMonth(label, observed, baseline, change, method))
        label = shift_month(label, 1)
    return GovernanceProgress(topic.id, topic.title, topic.start_month, rows)


def _topic_filter(topic: GovernanceTopic) -> list[ColumnElement[bool]]:
    """The topic's tickets: its category, and any of its keywords in the text when it has some."""
    where: list[ColumnElement[bool]] = []
    if topic.category:
        where.append(Ticket.category == topic.category)
    keywords = [k for k in json.loads(topic.keywords or "[]") if str(k).strip()]
    if keywords:
        where.append(
            or_(
                *(Ticket.description.contains(k, autoescape=True) for k in keywords),
                *(Ticket.transcript.contains(k, autoescape=True) for k in keywords),
            )
        )
    return where


def _history_start(session: Session, tz: ZoneInfo) -> str | None:
    """The local month of the store's first ticket."""
    first = session.scalar(select(func.min(Ticket.accepted_at)))
    if first is None:
        return None
    if first.tzinfo is None:  # min() loses the column type on SQLite
        first = first.replace(tzinfo=UTC)
    return first.astimezone(tz).strftime("%Y-%m")


def _months_between(first: str, end: str) -> list[str]:
    """Month labels from first up to, not including, end."""
    labels = []
    while first < end:
        labels.append(first)
        first = shift_month(first, 1)
    return labels


def _calendar(label: str) -> int:
    return int(label[5:7])


def _seasonal_index(counts: Mapping[str, int]) -> dict[int, float]:
    """Calendar month -> mean volume of that month over the overall monthly mean."""
    per_month: dict[int, list[int]] = defaultdict(list)
    for label, count in counts.items():
        per_month[_calendar(label)].append(count)
    if not per_month:
        return {}
    means = {month: fmean(values) for month, values in per_month.items()}
    overall = fmean(means.values())
    return {month: value / overall for month, value in means.items()} if overall else {}
